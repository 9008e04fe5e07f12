// Go-style flag parsing for the tools; see flags.hh.
#include "flags.hh"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "protocols/json/duration.hh"

namespace pharos::tools {

flag_set::flag_set(std::string program, std::string about) : program_(std::move(program)), about_(std::move(about)) {}

void flag_set::add(std::string name, std::string metavar, std::string help, std::string shown_default, bool is_bool,
                   std::function<bool(std::string_view)> set) {
    flags_.push_back({std::move(name), std::move(metavar), std::move(help), std::move(shown_default), is_bool,
                      std::move(set)});
}

void flag_set::string(std::string name, std::string& dst, std::string help) {
    add(std::move(name), "S", std::move(help), dst.empty() ? "" : "\"" + dst + "\"", false, [&dst](std::string_view v) {
        dst = std::string(v);
        return true;
    });
}

void flag_set::boolean(std::string name, bool& dst, std::string help) {
    add(std::move(name), "", std::move(help), dst ? "true" : "", true, [&dst](std::string_view v) {
        if (v == "true" || v == "1" || v == "t" || v == "T" || v == "TRUE" || v == "True") dst = true;
        else if (v == "false" || v == "0" || v == "f" || v == "F" || v == "FALSE" || v == "False") dst = false;
        else return false;
        return true;
    });
}

void flag_set::duration(std::string name, engine::clock::duration& dst, std::string help) {
    add(std::move(name), "DUR", std::move(help), json::format_go_duration(dst), false, [&dst](std::string_view v) {
        auto d = json::parse_go_duration(v);
        if (!d || d->count() < 0) return false;
        dst = std::chrono::duration_cast<engine::clock::duration>(*d);
        return true;
    });
}

void flag_set::backend(std::string name, engine::backend_kind& dst) {
    add(std::move(name), "auto|io_uring|epoll", "I/O backend", "auto", false, [&dst](std::string_view v) {
        auto k = engine::parse_backend(v);
        if (!k) return false;
        dst = *k;
        return true;
    });
}

void flag_set::custom(std::string name, std::string metavar, std::string help, std::string shown_default,
                      std::function<bool(std::string_view)> set) {
    add(std::move(name), std::move(metavar), std::move(help), std::move(shown_default), false, std::move(set));
}

bool flag_set::parse_number(std::string_view v, long long& x) {
    std::string s(v);
    char* end = nullptr;
    errno = 0;
    x = std::strtoll(s.c_str(), &end, 10);
    return !s.empty() && *end == 0 && errno == 0;
}

bool flag_set::parse_number(std::string_view v, unsigned long long& x) {
    std::string s(v);
    if (s.empty() || s[0] == '-') return false;
    char* end = nullptr;
    errno = 0;
    x = std::strtoull(s.c_str(), &end, 10);
    return *end == 0 && errno == 0;
}

bool flag_set::parse_port(std::string_view v, unsigned long long& x) { return parse_number(v, x) && x <= 65535; }

bool flag_set::parse_number(std::string_view v, double& x) {
    std::string s(v);
    char* end = nullptr;
    errno = 0;
    x = std::strtod(s.c_str(), &end);
    return !s.empty() && *end == 0 && errno == 0;
}

void flag_set::usage(std::FILE* to) const {
    std::fprintf(to, "usage: %s [flags]\n", program_.c_str());
    if (!about_.empty()) std::fprintf(to, "%s\n", about_.c_str());
    for (auto& f : flags_) {
        std::fprintf(to, "  -%s%s%s\n    \t%s", f.name.c_str(), f.metavar.empty() ? "" : " ", f.metavar.c_str(),
                     f.help.c_str());
        if (!f.shown_default.empty()) std::fprintf(to, " (default %s)", f.shown_default.c_str());
        std::fputc('\n', to);
    }
}

void flag_set::fail(const std::string& why) const {
    std::fprintf(stderr, "%s: %s\n", program_.c_str(), why.c_str());
    usage(stderr);
    std::exit(2);
}

void flag_set::parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a.size() < 2 || a[0] != '-') fail("unexpected argument: " + std::string(a));
        a.remove_prefix(a[1] == '-' ? 2 : 1);
        std::string_view name = a, value;
        bool has_value = false;
        if (auto eq = a.find('='); eq != std::string_view::npos) {
            name = a.substr(0, eq);
            value = a.substr(eq + 1);
            has_value = true;
        }
        if (name == "h" || name == "help") {
            usage(stdout);
            std::exit(0);
        }
        const flag* f = nullptr;
        for (auto& c : flags_)
            if (c.name == name) f = &c;
        if (!f) fail("flag provided but not defined: -" + std::string(name));
        if (!has_value) {
            if (f->is_bool) value = "true";
            else if (i + 1 < argc) value = argv[++i];
            else fail("flag needs an argument: -" + f->name);
        }
        if (!f->set(value)) fail("invalid value \"" + std::string(value) + "\" for flag -" + f->name);
    }
}

std::optional<engine::socket_address> parse_ip_port(std::string_view a) {
    if (a.substr(0, 7) == "http://") a.remove_prefix(7);
    auto colon = a.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view host = a.substr(0, colon);
    if (host == "localhost") host = "127.0.0.1";
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned long long port = 0;
    if (!flag_set::parse_port(a.substr(colon + 1), port)) return std::nullopt;
    auto r = engine::socket_address::parse(host, uint16_t(port));
    if (!r) return std::nullopt;
    return *r;
}

}  // namespace pharos::tools
