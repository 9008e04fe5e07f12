#include "writer.hh"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace pharos::json {

void writer::comma() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!first_.empty()) {
        if (!first_.back()) out_.push_back(',');
        first_.back() = false;
    }
}

writer& writer::begin_object() {
    comma();
    out_.push_back('{');
    first_.push_back(true);
    return *this;
}
writer& writer::end_object() {
    out_.push_back('}');
    first_.pop_back();
    return *this;
}
writer& writer::begin_array() {
    comma();
    out_.push_back('[');
    first_.push_back(true);
    return *this;
}
writer& writer::end_array() {
    out_.push_back(']');
    first_.pop_back();
    return *this;
}
writer& writer::key(std::string_view k) {
    comma();
    append_quoted(out_, k);
    out_.push_back(':');
    after_key_ = true;
    return *this;
}
writer& writer::string(std::string_view s) {
    comma();
    append_quoted(out_, s);
    return *this;
}
writer& writer::bytes_base64(std::string_view raw) {
    comma();
    out_.push_back('"');
    out_.append(base64_encode(raw));
    out_.push_back('"');
    return *this;
}
writer& writer::number(int64_t v) {
    comma();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
    return *this;
}
writer& writer::number(uint64_t v) {
    comma();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
    return *this;
}
writer& writer::number(double v) {
    comma();
    if (!std::isfinite(v)) {
        out_.append("null");  // Go refuses; null is the least surprising output
        return *this;
    }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form, like Go's 'g' -1
    out_.append(buf, r.ptr);
    return *this;
}
writer& writer::boolean(bool v) {
    comma();
    out_.append(v ? "true" : "false");
    return *this;
}
writer& writer::null() {
    comma();
    out_.append("null");
    return *this;
}
writer& writer::raw(std::string_view json) {
    comma();
    out_.append(json);
    return *this;
}

namespace {
// Length of a valid UTF-8 sequence starting at s[i], or 0 if invalid.
size_t utf8_len(std::string_view s, size_t i) {
    auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = b(i);
    size_t n = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k)
        if ((b(i + k) & 0xC0) != 0x80) return 0;
    if (n == 3) {
        if (c == 0xE0 && b(i + 1) < 0xA0) return 0;   // overlong
        if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogates
    }
    if (n == 4) {
        if (c == 0xF0 && b(i + 1) < 0x90) return 0;
        if (c == 0xF4 && b(i + 1) >= 0x90) return 0;
    }
    return n;
}
}  // namespace

void append_quoted(std::string& out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
                case '"':
                    out.append("\\\"");
                    break;
                case '\\':
                    out.append("\\\\");
                    break;
                case '\n':
                    out.append("\\n");
                    break;
                case '\r':
                    out.append("\\r");
                    break;
                case '\t':
                    out.append("\\t");
                    break;
                case '<':
                case '>':
                case '&':
                default:
                    if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                        out.append("\\u00");
                        out.push_back(hex[c >> 4]);
                        out.push_back(hex[c & 15]);
                    } else {
                        out.push_back(char(c));
                    }
            }
            ++i;
            continue;
        }
        size_t n = utf8_len(s, i);
        if (n == 0) {
            out.append("\\ufffd");
            ++i;
            continue;
        }
        if (n == 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
            (static_cast<unsigned char>(s[i + 2]) == 0xA8 || static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
            out.append(static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029");
        } else {
            out.append(s.substr(i, n));
        }
        i += n;
    }
    out.push_back('"');
}

std::string base64_encode(std::string_view raw) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((raw.size() + 2) / 3 * 4);
    size_t i = 0;
    auto at = [&](size_t k) { return static_cast<unsigned char>(raw[k]); };
    for (; i + 3 <= raw.size(); i += 3) {
        uint32_t n = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
        out.push_back(tbl[n >> 18]);
        out.push_back(tbl[(n >> 12) & 63]);
        out.push_back(tbl[(n >> 6) & 63]);
        out.push_back(tbl[n & 63]);
    }
    if (size_t rest = raw.size() - i) {
        uint32_t n = at(i) << 16;
        if (rest == 2) n |= at(i + 1) << 8;
        out.push_back(tbl[n >> 18]);
        out.push_back(tbl[(n >> 12) & 63]);
        out.push_back(rest == 2 ? tbl[(n >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

bool base64_decode(std::string_view text, std::string& out) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    out.clear();
    if (text.size() % 4) return false;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        bool last = i + 4 == text.size();
        int a = val(text[i]), b = val(text[i + 1]);
        if (a < 0 || b < 0) return false;
        char c3 = text[i + 2], c4 = text[i + 3];
        if (last && c3 == '=') {
            if (c4 != '=') return false;
            out.push_back(char((a << 2) | (b >> 4)));
            return true;
        }
        int c = val(c3);
        if (c < 0) return false;
        if (last && c4 == '=') {
            out.push_back(char((a << 2) | (b >> 4)));
            out.push_back(char(((b & 15) << 4) | (c >> 2)));
            return true;
        }
        int d = val(c4);
        if (d < 0) return false;
        out.push_back(char((a << 2) | (b >> 4)));
        out.push_back(char(((b & 15) << 4) | (c >> 2)));
        out.push_back(char(((c & 3) << 6) | d));
    }
    return true;
}

}  // namespace pharos::json
