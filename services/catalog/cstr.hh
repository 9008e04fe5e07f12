// catalog::cstr: a string in one pointer, for row fields that are usually empty
// (most of a check's definition). Empty is a null pointer and costs nothing
// else; a value is one heap block holding its size and bytes. It reads as a
// std::string_view; copies copy the bytes (rows are immutable once shared, so
// copies are rare). The state codec writes it exactly as a std::string.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace pharos::catalog {

class cstr {
public:
    cstr() noexcept = default;
    explicit cstr(std::string_view s) : p_(make(s)) {}
    cstr(const cstr& o) : p_(make(o.view())) {}
    cstr(cstr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    cstr& operator=(const cstr& o) {
        if (this != &o) *this = o.view();
        return *this;
    }
    cstr& operator=(cstr&& o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    cstr& operator=(std::string_view s) {
        char* n = make(s);
        delete[] p_;
        p_ = n;
        return *this;
    }
    ~cstr() { delete[] p_; }

    bool empty() const noexcept { return p_ == nullptr; }
    size_t size() const noexcept {
        if (!p_) return 0;
        uint32_t n;
        std::memcpy(&n, p_, sizeof n);
        return n;
    }
    const char* data() const noexcept { return p_ ? p_ + sizeof(uint32_t) : ""; }
    std::string_view view() const noexcept { return {data(), size()}; }
    operator std::string_view() const noexcept { return view(); }
    std::string str() const { return std::string(view()); }

    friend bool operator==(const cstr& a, const cstr& b) noexcept { return a.view() == b.view(); }
    friend bool operator==(const cstr& a, std::string_view b) noexcept { return a.view() == b; }

private:
    // Values of 4 GiB or more do not occur (request bodies are far smaller).
    static char* make(std::string_view s) {
        if (s.empty()) return nullptr;
        uint32_t n = uint32_t(s.size());
        char* p = new char[sizeof n + s.size()];
        std::memcpy(p, &n, sizeof n);
        std::memcpy(p + sizeof n, s.data(), s.size());
        return p;
    }
    char* p_ = nullptr;
};

}  // namespace pharos::catalog
