// Go-compatible LZW (LSB, literal width 8); see lzw.hh.
#include "protocols/gossip/lzw.hh"

#include <cstdint>
#include <vector>

namespace pharos::gossip::lzw {

namespace {
constexpr uint32_t clear_code = 256, eof_code = 257, max_code = 4095, max_width = 12;
constexpr uint32_t table_size = 1u << 14, table_mask = table_size - 1, invalid = 0xffffffffu;

struct bit_writer {
    std::string& out;
    uint32_t bits = 0, n = 0, width = 9;
    void put(uint32_t code) {
        bits |= code << n;
        n += width;
        while (n >= 8) {
            out.push_back(char(bits & 0xff));
            bits >>= 8;
            n -= 8;
        }
    }
};
}  // namespace

std::string compress(std::string_view in) {
    std::string out;
    bit_writer w{out};
    // The dictionary: key = (prefix code << 8 | byte) -> code, open addressing as Go's writer
    // (any exact map would give the same output; this one needs no allocation per entry).
    std::vector<uint32_t> table(table_size, invalid);
    uint32_t hi = eof_code, overflow = 512;
    auto reset = [&] {
        w.width = 9;
        hi = eof_code;
        overflow = 512;
        std::fill(table.begin(), table.end(), invalid);
    };
    // Returns false when the table ran out and was cleared (a clear code was written).
    auto inc_hi = [&] {
        ++hi;
        if (hi == overflow) {
            ++w.width;
            overflow <<= 1;
        }
        if (hi == max_code) {
            w.put(clear_code);
            reset();
            return false;
        }
        return true;
    };
    w.put(clear_code);
    if (!in.empty()) {
        uint32_t code = uint8_t(in[0]);
        for (size_t i = 1; i < in.size(); ++i) {
            uint32_t lit = uint8_t(in[i]);
            uint32_t key = code << 8 | lit;
            uint32_t h = (key >> 12 ^ key) & table_mask;
            bool hit = false;
            for (uint32_t t = table[h]; t != invalid; h = (h + 1) & table_mask, t = table[h]) {
                if (key == t >> 12) {
                    code = t & max_code;
                    hit = true;
                    break;
                }
            }
            if (hit) continue;
            w.put(code);
            code = lit;
            if (!inc_hi()) continue;
            table[h] = key << 12 | hi;  // h is the first free slot of the probe above
        }
        w.put(code);
        inc_hi();
    }
    w.put(eof_code);
    if (w.n > 0) out.push_back(char(w.bits & 0xff));
    return out;
}

std::optional<std::string> decompress(std::string_view in, size_t max_out) {
    std::string out;
    uint16_t prefix[1 << max_width];
    uint8_t suffix[1 << max_width];
    uint8_t stack[1 << max_width];
    uint32_t width = 9, hi = eof_code, overflow = 512, last = invalid;
    uint32_t bits = 0, nbits = 0;
    size_t pos = 0;
    for (;;) {
        while (nbits < width) {
            if (pos >= in.size()) return std::nullopt;  // no EOF code
            bits |= uint32_t(uint8_t(in[pos++])) << nbits;
            nbits += 8;
        }
        uint32_t code = bits & ((1u << width) - 1);
        bits >>= width;
        nbits -= width;
        if (code < clear_code) {
            if (out.size() >= max_out) return std::nullopt;
            out.push_back(char(code));
            if (last != invalid) {
                suffix[hi] = uint8_t(code);
                prefix[hi] = uint16_t(last);
            }
        } else if (code == clear_code) {
            width = 9;
            hi = eof_code;
            overflow = 512;
            last = invalid;
            continue;
        } else if (code == eof_code) {
            return out;
        } else if (code < hi || (code == hi && last != invalid)) {
            // Expand by walking the prefix chain into `stack` from the end.
            size_t i = sizeof(stack);
            uint32_t c = code;
            if (code == hi) {
                // KwKwK: last's expansion followed by its own first byte; fill in below.
                c = last;
                --i;
            }
            while (c >= clear_code) {
                if (i == 0) return std::nullopt;
                stack[--i] = suffix[c];
                c = prefix[c];
            }
            if (i == 0) return std::nullopt;
            stack[--i] = uint8_t(c);
            if (code == hi) stack[sizeof(stack) - 1] = uint8_t(c);
            size_t len = sizeof(stack) - i;
            if (out.size() + len > max_out) return std::nullopt;
            out.append(reinterpret_cast<const char*>(stack + i), len);
            if (last != invalid) {
                suffix[hi] = uint8_t(c);
                prefix[hi] = uint16_t(last);
            }
        } else {
            return std::nullopt;  // invalid code
        }
        last = code;
        ++hi;
        if (hi >= overflow) {
            if (width == max_width) {
                last = invalid;
                --hi;
            } else {
                ++width;
                overflow = 1u << width;
            }
        }
    }
}

}  // namespace pharos::gossip::lzw
