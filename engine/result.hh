// result<T>: a value or a std::error_code. Kernel results stay -errno until
// they are turned into an error_code here, at one conversion point.
#pragma once
#include <cerrno>
#include <system_error>
#include <utility>
#include <variant>

namespace pharos::engine {

// Error conditions that the engine itself raises (besides errno values).
enum class errc { cancelled = 1, timed_out, queue_full };

const std::error_category& engine_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {int(e), engine_category()}; }

// The one conversion point from a kernel result (-errno) to an error_code.
// ECANCELED and ETIMEDOUT map to the engine's own codes, so callers test one thing.
inline std::error_code from_errno(int negative_errno) noexcept {
    int e = -negative_errno;
    if (e == ECANCELED) return make_error_code(errc::cancelled);
    if (e == ETIME || e == ETIMEDOUT) return make_error_code(errc::timed_out);
    return {e, std::system_category()};
}

template <class T>
class [[nodiscard]] result {
    std::variant<T, std::error_code> v_;

public:
    result(T v) : v_(std::in_place_index<0>, std::move(v)) {}
    result(std::error_code ec) : v_(std::in_place_index<1>, ec) {}
    result(errc e) : v_(std::in_place_index<1>, make_error_code(e)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }
    std::error_code error() const noexcept { return ok() ? std::error_code{} : std::get<1>(v_); }
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &std::get<0>(v_); }
    T& operator*() & { return value(); }
};

template <>
class [[nodiscard]] result<void> {
    std::error_code ec_;

public:
    result() = default;
    result(std::error_code ec) : ec_(ec) {}
    result(errc e) : ec_(make_error_code(e)) {}
    bool ok() const noexcept { return !ec_; }
    explicit operator bool() const noexcept { return ok(); }
    std::error_code error() const noexcept { return ec_; }
};

inline bool is_cancelled(std::error_code ec) { return ec == make_error_code(errc::cancelled); }
inline bool is_timed_out(std::error_code ec) { return ec == make_error_code(errc::timed_out); }

}  // namespace pharos::engine

template <>
struct std::is_error_code_enum<pharos::engine::errc> : std::true_type {};
