// The DNS fuzz target (tests/fuzz) over seeded mutations of valid queries:
// truncations, stray compression pointers, pointer loops, wrong counts. Any
// crash, read out of bounds (under ASan) or malformed reply fails the test.
#include <gtest/gtest.h>

#include "tests/fuzz/dns_fuzz.hh"

TEST(dns_fuzz, seeded_mutations_never_break_the_parser_or_the_resolver) {
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    for (unsigned i = 0; i < 200000; ++i) {
        std::string p = pharos::dnsfuzz::mutate(pharos::dnsfuzz::seed_packet(i), rng);
        pharos::dnsfuzz::one(reinterpret_cast<const uint8_t*>(p.data()), p.size());
    }
}

TEST(dns_fuzz, unmutated_seeds_all_parse) {
    for (unsigned i = 0; i < 80; ++i) {
        std::string p = pharos::dnsfuzz::seed_packet(i);
        pharos::dns::query q;
        EXPECT_EQ(pharos::dns::parse_query(p, q), pharos::dns::parse_result::ok) << i;
        pharos::dnsfuzz::one(reinterpret_cast<const uint8_t*>(p.data()), p.size());
    }
}
