// json::writer: builds JSON text the way Go's encoding/json writes it, since
// Consul clients compare bytes in places (and humans diff outputs): strings
// escape <, > and & as \u003c, \u003e, \u0026, U+2028/2029 as \u2028/\u2029,
// invalid UTF-8 as \ufffd; []byte values are base64 (std encoding, padded).
// Commas are inserted automatically; the caller only opens and closes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pharos::json {

class writer {
public:
    writer& begin_object();
    writer& end_object();
    writer& begin_array();
    writer& end_array();
    // An object member's name; the next value call is its value.
    writer& key(std::string_view k);
    writer& string(std::string_view s);
    writer& bytes_base64(std::string_view raw);  // Go []byte
    writer& number(int64_t v);
    writer& number(uint64_t v);
    writer& number(int v) { return number(int64_t(v)); }
    writer& number(unsigned v) { return number(uint64_t(v)); }
    writer& number(double v);
    writer& boolean(bool v);
    writer& null();
    // Inserts pre-encoded JSON as one value.
    writer& raw(std::string_view json);

    const std::string& str() const noexcept { return out_; }
    std::string take() { return std::move(out_); }

private:
    void comma();
    std::string out_;
    std::vector<bool> first_;  // per open container: no member written yet
    bool after_key_ = false;
};

// Appends `s` as a quoted JSON string with Go's escaping.
void append_quoted(std::string& out, std::string_view s);
std::string base64_encode(std::string_view raw);
// Standard alphabet, padding required (as Go's StdEncoding). False on bad input.
bool base64_decode(std::string_view text, std::string& out);

}  // namespace pharos::json
