// HPACK decoding for the gRPC probe against RFC 7541 Appendix C: literal and
// Huffman strings, static and dynamic table references across header blocks.
#include <gtest/gtest.h>

#include "services/health/hpack.hh"

using namespace pharos::health;

namespace {
std::string unhex(const char* h) {
    std::string out;
    for (const char* p = h; p[0] && p[1];) {
        if (*p == ' ') {
            ++p;
            continue;
        }
        out.push_back(char(std::stoi(std::string(p, 2), nullptr, 16)));
        p += 2;
    }
    return out;
}
}  // namespace

TEST(health_hpack, huffman_strings_decode_as_rfc_7541_c4) {
    std::string out;
    ASSERT_TRUE(huffman_decode(unhex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"), out));
    EXPECT_EQ(out, "www.example.com");
    out.clear();
    ASSERT_TRUE(huffman_decode(unhex("a8eb 1064 9cbf"), out));
    EXPECT_EQ(out, "no-cache");
    out.clear();
    EXPECT_FALSE(huffman_decode(unhex("f1e3 c2e5 f23a 6ba0 ab90 f400"), out));  // padding must be ones
}

TEST(health_hpack, header_blocks_share_the_dynamic_table_as_rfc_7541_c4) {
    hpack_decoder d;
    header_pairs h;
    ASSERT_TRUE(d.decode(unhex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), h));
    ASSERT_EQ(h.size(), 4u);
    EXPECT_EQ(h[0], (std::pair<std::string, std::string>(":method", "GET")));
    EXPECT_EQ(h[3], (std::pair<std::string, std::string>(":authority", "www.example.com")));
    h.clear();
    ASSERT_TRUE(d.decode(unhex("8286 84be 5886 a8eb 1064 9cbf"), h));
    ASSERT_EQ(h.size(), 5u);
    EXPECT_EQ(h[3].second, "www.example.com");  // from the dynamic table
    EXPECT_EQ(h[4], (std::pair<std::string, std::string>("cache-control", "no-cache")));
    h.clear();
    ASSERT_TRUE(d.decode(unhex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"), h));
    ASSERT_EQ(h.size(), 5u);
    EXPECT_EQ(h[2].second, "/index.html");
    EXPECT_EQ(h[3].second, "www.example.com");
    EXPECT_EQ(h[4], (std::pair<std::string, std::string>("custom-key", "custom-value")));
    h.clear();
    EXPECT_FALSE(d.decode(unhex("ff00"), h));  // index past both tables
}
