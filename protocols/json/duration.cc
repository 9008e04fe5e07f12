#include "duration.hh"

#include <cstdint>

namespace pharos::json {

namespace {

constexpr uint64_t k_limit = uint64_t(1) << 63;  // |min int64|

// Digits [0-9]* as an integer; false on overflow past 1<<63.
bool leading_int(std::string_view& s, uint64_t& x) {
    x = 0;
    size_t i = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
        if (x > k_limit / 10) return false;
        x = x * 10 + uint64_t(s[i] - '0');
        if (x > k_limit) return false;
    }
    s.remove_prefix(i);
    return true;
}

// Digits after the point: as many as fit an int64, the rest are dropped
// (their weight is below a nanosecond for every unit). scale = 10^kept.
void leading_fraction(std::string_view& s, uint64_t& x, double& scale) {
    x = 0;
    scale = 1;
    bool overflow = false;
    size_t i = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
        if (overflow) continue;
        if (x > (k_limit - 1) / 10) {
            overflow = true;
            continue;
        }
        uint64_t y = x * 10 + uint64_t(s[i] - '0');
        if (y > k_limit) {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10;
    }
    s.remove_prefix(i);
}

uint64_t unit_ns(std::string_view u) {
    if (u == "ns") return 1;
    if (u == "us" || u == "\xc2\xb5s" || u == "\xce\xbcs") return 1000;
    if (u == "ms") return 1000 * 1000;
    if (u == "s") return 1000 * 1000 * 1000;
    if (u == "m") return uint64_t(60) * 1000 * 1000 * 1000;
    if (u == "h") return uint64_t(3600) * 1000 * 1000 * 1000;
    return 0;
}

bool is_digit_or_point(char c) { return c == '.' || (c >= '0' && c <= '9'); }

// Writes the fraction v / 10^prec before `w` without trailing zeros (and no
// point when it is zero); returns the integer part.
uint64_t put_fraction(char* buf, int& w, uint64_t v, int prec) {
    bool print = false;
    for (int i = 0; i < prec; ++i) {
        char digit = char(v % 10);
        print = print || digit != 0;
        if (print) buf[--w] = char('0' + digit);
        v /= 10;
    }
    if (print) buf[--w] = '.';
    return v;
}

void put_int(char* buf, int& w, uint64_t v) {
    if (v == 0) {
        buf[--w] = '0';
        return;
    }
    while (v > 0) {
        buf[--w] = char('0' + v % 10);
        v /= 10;
    }
}

}  // namespace

std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view s) {
    bool neg = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s == "0") return std::chrono::nanoseconds(0);
    if (s.empty()) return std::nullopt;
    uint64_t d = 0;
    while (!s.empty()) {
        if (!is_digit_or_point(s[0])) return std::nullopt;
        uint64_t v = 0, f = 0;
        double scale = 1;
        size_t before = s.size();
        if (!leading_int(s, v)) return std::nullopt;
        bool pre = s.size() != before;
        bool post = false;
        if (!s.empty() && s[0] == '.') {
            s.remove_prefix(1);
            before = s.size();
            leading_fraction(s, f, scale);
            post = s.size() != before;
        }
        if (!pre && !post) return std::nullopt;
        size_t i = 0;
        while (i < s.size() && !is_digit_or_point(s[i])) ++i;
        if (i == 0) return std::nullopt;  // missing unit
        uint64_t unit = unit_ns(s.substr(0, i));
        if (unit == 0) return std::nullopt;  // unknown unit
        s.remove_prefix(i);
        if (v > k_limit / unit) return std::nullopt;
        v *= unit;
        if (f > 0) {
            // A double is exact enough here: f*unit/scale is at most 3.6e12.
            v += uint64_t(double(f) * (double(unit) / scale));
            if (v > k_limit) return std::nullopt;
        }
        d += v;
        if (d > k_limit) return std::nullopt;
    }
    if (neg) return std::chrono::nanoseconds(int64_t(0 - d));  // 1<<63 wraps to min int64
    if (d > k_limit - 1) return std::nullopt;
    return std::chrono::nanoseconds(int64_t(d));
}

std::string format_go_duration(std::chrono::nanoseconds dur) {
    char buf[32];  // longest is "-2562047h47m16.854775808s"
    int w = sizeof buf;
    int64_t d = dur.count();
    bool neg = d < 0;
    uint64_t u = neg ? 0 - uint64_t(d) : uint64_t(d);
    constexpr uint64_t second = 1000 * 1000 * 1000;
    if (u < second) {
        int prec = 0;
        buf[--w] = 's';
        if (u == 0) return "0s";
        if (u < 1000) {
            buf[--w] = 'n';
        } else if (u < 1000 * 1000) {
            prec = 3;
            buf[--w] = '\xb5';  // U+00B5 in UTF-8: C2 B5
            buf[--w] = '\xc2';
        } else {
            prec = 6;
            buf[--w] = 'm';
        }
        u = put_fraction(buf, w, u, prec);
        put_int(buf, w, u);
    } else {
        buf[--w] = 's';
        u = put_fraction(buf, w, u, 9);
        put_int(buf, w, u % 60);
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            put_int(buf, w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                put_int(buf, w, u);
            }
        }
    }
    if (neg) buf[--w] = '-';
    return std::string(buf + w, sizeof buf - size_t(w));
}

}  // namespace pharos::json
