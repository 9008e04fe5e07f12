#include "crc32c.hh"

#include <cstring>

namespace pharos::storage {
namespace {

struct table {
    uint32_t t[256];
    table() {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            t[i] = c;
        }
    }
};

uint32_t by_table(const unsigned char* p, size_t n, uint32_t c) noexcept {
    static const table tab;
    for (size_t i = 0; i < n; ++i) c = tab.t[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t by_sse42(const unsigned char* p, size_t n, uint32_t c) noexcept {
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = uint32_t(c64);
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
const bool have_sse42 = __builtin_cpu_supports("sse4.2");
#endif

}  // namespace

uint32_t crc32c(std::string_view data, uint32_t crc) noexcept {
    auto* p = reinterpret_cast<const unsigned char*>(data.data());
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (have_sse42) return ~by_sse42(p, data.size(), c);
#endif
    return ~by_table(p, data.size(), c);
}

}  // namespace pharos::storage
