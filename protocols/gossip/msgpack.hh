// msgpack as HashiCorp's go-msgpack writes memberlist's structs: maps keyed by
// Go field names, strings and []byte both in the legacy raw-str family (fixstr,
// str16, str32; never str8 or bin), nil for an empty []byte, non-negative ints
// in the smallest unsigned form. The reader accepts every int family, str8 and
// bin for strings and bytes, and nil as an empty string; it never reads past
// `end`, and reports "need more bytes" apart from "malformed" so that stream
// framing can parse incrementally. Values only: no shard state.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace pharos::gossip::msgpack {

class writer {
public:
    explicit writer(std::string& out) : out_(out) {}
    void map(uint32_t n);
    void array(uint32_t n);
    void key(std::string_view k) { str(k); }
    void str(std::string_view s);    // raw family: fixstr, str16, str32
    void bytes(std::string_view b);  // a Go []byte: nil (c0) when empty
    void uint(uint64_t v);           // smallest unsigned form
    void sint(int64_t v);            // a Go int as go-msgpack 0.5.x writes it (unsigned forms when >= 0)
    void go_int(int64_t v);          // a Go int as go-msgpack v2 writes it (signed forms above 127; Serf)
    void boolean(bool b) { out_.push_back(b ? char(0xc3) : char(0xc2)); }
    void nil() { out_.push_back(char(0xc0)); }

private:
    std::string& out_;
};

enum class status : uint8_t { ok, short_input, malformed };

class reader {
public:
    reader(std::string_view in) : p_(reinterpret_cast<const uint8_t*>(in.data())), end_(p_ + in.size()) {}
    // Each read returns false and sets status() on failure; later reads then fail too.
    bool map(uint32_t& n);
    bool array(uint32_t& n);  // nil (a Go nil slice) reads as 0 items
    bool str(std::string& s);  // str, bin or nil
    bool u64(uint64_t& v);     // any int family; negative values are malformed
    bool i64(int64_t& v);      // any int family
    bool boolean(bool& b);
    bool skip(int depth = 0);  // any one value (nested up to 32 levels)
    template <class T>
    bool uint_as(T& v) {
        uint64_t x;
        if (!u64(x)) return false;
        if (x > uint64_t(T(~T(0)))) return fail(status::malformed);
        v = T(x);
        return true;
    }
    status state() const { return st_; }
    size_t remaining() const { return size_t(end_ - p_); }
    const uint8_t* pos() const { return p_; }

private:
    bool fail(status s) {
        if (st_ == status::ok) st_ = s;
        return false;
    }
    bool need(size_t n) { return st_ == status::ok && (size_t(end_ - p_) >= n || fail(status::short_input)); }
    uint64_t be(int n) {
        uint64_t v = 0;
        for (int i = 0; i < n; ++i) v = (v << 8) | *p_++;
        return v;
    }
    const uint8_t* p_;
    const uint8_t* end_;
    status st_ = status::ok;
};

// A Go struct as go-msgpack writes it: a map of string keys. Calls field(key) for
// each entry; field reads the value and returns whether it could (an unknown key:
// return r.skip()). False on a malformed map or value.
template <class F>
bool read_struct(reader& r, F&& field) {
    uint32_t n = 0;
    if (!r.map(n)) return false;
    std::string k;
    for (uint32_t i = 0; i < n; ++i) {
        if (!r.str(k) || !field(k)) return false;
    }
    return true;
}

}  // namespace pharos::gossip::msgpack
