// buffer: a move-only byte buffer. Operations that hand memory to the kernel
// take buffers by value, so the memory belongs to the in-flight operation (and
// through it to the reactor) until the completion arrives, even if the awaiting
// coroutine is gone. The completed operation hands the buffer back.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

namespace pharos::engine {

class buffer {
public:
    buffer() = default;
    explicit buffer(size_t capacity) : data_(static_cast<char*>(std::malloc(capacity ? capacity : 1))), cap_(capacity), owned_(true) {}
    // Wraps memory with static lifetime (no copy, never freed).
    static buffer from_static(std::string_view s) noexcept {
        buffer b;
        b.data_ = const_cast<char*>(s.data());
        b.size_ = b.cap_ = s.size();
        return b;
    }
    static buffer copy_of(std::string_view s) {
        buffer b(s.size());
        std::memcpy(b.data_, s.data(), s.size());
        b.size_ = s.size();
        return b;
    }
    buffer(buffer&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), cap_(std::exchange(o.cap_, 0)),
          owned_(std::exchange(o.owned_, false)) {}
    buffer& operator=(buffer&& o) noexcept {
        if (this != &o) {
            release();
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
            cap_ = std::exchange(o.cap_, 0);
            owned_ = std::exchange(o.owned_, false);
        }
        return *this;
    }
    ~buffer() { release(); }

    char* data() noexcept { return data_; }
    const char* data() const noexcept { return data_; }
    size_t size() const noexcept { return size_; }
    size_t capacity() const noexcept { return cap_; }
    bool empty() const noexcept { return size_ == 0; }
    std::string_view view() const noexcept { return {data_, size_}; }
    void resize(size_t n) noexcept { size_ = n <= cap_ ? n : cap_; }
    // Appends, growing geometrically. A static buffer is copied first.
    void append(std::string_view s) {
        reserve(size_ + s.size());
        std::memcpy(data_ + size_, s.data(), s.size());
        size_ += s.size();
    }
    void reserve(size_t n) {
        if (n <= cap_ && owned_) return;
        size_t ncap = cap_ * 2 > n ? cap_ * 2 : n;
        char* p = static_cast<char*>(std::malloc(ncap ? ncap : 1));
        if (size_) std::memcpy(p, data_, size_);
        release_keep_size();
        data_ = p;
        cap_ = ncap;
        owned_ = true;
    }
    void clear() noexcept { size_ = 0; }

private:
    void release_keep_size() noexcept {
        if (owned_) std::free(data_);
        data_ = nullptr;
        cap_ = 0;
        owned_ = false;
    }
    void release() noexcept {
        release_keep_size();
        size_ = 0;
    }
    char* data_ = nullptr;
    size_t size_ = 0;
    size_t cap_ = 0;
    bool owned_ = false;
};

}  // namespace pharos::engine
