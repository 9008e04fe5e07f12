// Command-line flags for the tools in tools/ (load generators, target farm,
// gossip simulator, memberlist node), with Go's flag package conventions so
// they read like the Go peers they are compared with:
//
//   -name value, -name=value, --name value; a boolean flag takes no value
//   (-leave) unless written -leave=false. -h / -help prints the usage to
//   stdout and exits 0. An unknown flag, a missing or bad value, or a stray
//   argument prints the reason and the usage to stderr and exits 2.
//
// Flags write straight into the caller's variables; what a variable holds
// before parse() is its default and is shown in the usage.
#pragma once
#include <cstdio>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "engine/backend.hh"
#include "engine/clock.hh"
#include "engine/net.hh"

namespace pharos::tools {

class flag_set {
public:
    // `about` is printed under the usage line (may be empty).
    flag_set(std::string program, std::string about = {});

    void string(std::string name, std::string& dst, std::string help);
    void boolean(std::string name, bool& dst, std::string help);
    // A Go duration ("500ms", "1m30s", "0"); negative ones are refused.
    void duration(std::string name, engine::clock::duration& dst, std::string help);
    // auto | io_uring | epoll.
    void backend(std::string name, engine::backend_kind& dst);
    // A decimal number within [lo, hi].
    template <class T>
    void number(std::string name, T& dst, std::string help, T lo = std::numeric_limits<T>::lowest(),
                T hi = std::numeric_limits<T>::max()) {
        static_assert(std::is_arithmetic_v<T>);
        add(std::move(name), "N", std::move(help), show(dst), false, [&dst, lo, hi](std::string_view v) {
            T x{};
            if (!parse_number(v, x) || x < lo || x > hi) return false;
            dst = x;
            return true;
        });
    }
    // Anything else: `set` returns false when the value is bad.
    void custom(std::string name, std::string metavar, std::string help, std::string shown_default,
                std::function<bool(std::string_view)> set);

    // Parses argv[1..]; exits as described above.
    void parse(int argc, char** argv);
    // For checks after parse(): prints "<program>: <why>" and the usage, exits 2.
    [[noreturn]] void fail(const std::string& why) const;
    void usage(std::FILE* to) const;

    static bool parse_port(std::string_view v, unsigned long long& x);

private:
    struct flag {
        std::string name, metavar, help, shown_default;
        bool is_bool;
        std::function<bool(std::string_view)> set;
    };
    void add(std::string name, std::string metavar, std::string help, std::string shown_default, bool is_bool,
             std::function<bool(std::string_view)> set);
    static bool parse_number(std::string_view v, long long& x);
    static bool parse_number(std::string_view v, unsigned long long& x);
    static bool parse_number(std::string_view v, double& x);
    template <class T>
    static bool parse_number(std::string_view v, T& x) {
        using wide = std::conditional_t<std::is_floating_point_v<T>, double,
                                        std::conditional_t<std::is_signed_v<T>, long long, unsigned long long>>;
        wide w{};
        if (!parse_number(v, w)) return false;
        if constexpr (!std::is_floating_point_v<T>) {
            if (w < wide(std::numeric_limits<T>::lowest()) || w > wide(std::numeric_limits<T>::max())) return false;
        }
        x = T(w);
        return true;
    }
    template <class T>
    static std::string show(const T& v) {
        if constexpr (std::is_floating_point_v<T>) {
            char b[32];
            std::snprintf(b, sizeof b, "%g", double(v));
            return b;
        } else {
            return std::to_string(v);
        }
    }

    std::string program_, about_;
    std::vector<flag> flags_;
};

// "IP:PORT", "http://IP:PORT" or "localhost:PORT" (as 127.0.0.1); nullopt if malformed.
std::optional<engine::socket_address> parse_ip_port(std::string_view text);

}  // namespace pharos::tools
