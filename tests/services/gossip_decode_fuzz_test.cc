// The gossip decoder fuzz target (tests/fuzz/gossip_fuzz.hh) over seeded
// mutations of valid packets and streams of every kind (plain, label, CRC,
// compound, compressed, encrypted v0/v1; push/pull streams): any crash, read
// out of bounds (under ASan) or breached limit fails the test. Also: bad input
// is dropped and counted by reason in the engine's stats.
#include <gtest/gtest.h>

#include "tests/fuzz/gossip_fuzz.hh"

namespace gf = pharos::gossipfuzz;
namespace g = pharos::gossip;

TEST(gossip_decode_fuzz, seeded_mutations_never_break_a_decoder) {
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    for (unsigned i = 0; i < 30000; ++i) {
        std::string p = gf::mutate(gf::seed_input(i), rng);
        gf::one(reinterpret_cast<const uint8_t*>(p.data()), p.size());
    }
}

TEST(gossip_decode_fuzz, unmutated_seeds_open) {
    auto ws = gf::wires();
    for (unsigned i = 0; i < 7 * 4 * 10; ++i) {
        std::string p = gf::seed_input(i);
        const auto& w = ws[(i / 7) % ws.size()];
        std::string out, msg;
        size_t used = 0;
        switch (i % 7) {
            case 4:
                EXPECT_TRUE(g::lzw::decompress(p).has_value()) << i;
                break;
            case 5:
            case 6:
                EXPECT_EQ(g::open_stream(p, w, msg, used), g::errc::ok) << i;
                break;
            default: {
                ASSERT_EQ(g::open_packet(p, w, out), g::errc::ok) << i;
                std::vector<std::string> msgs;
                EXPECT_EQ(g::flatten(out, msgs), g::errc::ok) << i;
                EXPECT_FALSE(msgs.empty());
            }
        }
        gf::one(reinterpret_cast<const uint8_t*>(p.data()), p.size());
    }
}

TEST(gossip_decode_fuzz, bad_packets_are_dropped_and_counted_by_reason) {
    gf::engine_box plain(gf::wires()[0]), sealed(gf::wires()[3]);
    auto& ml = *plain.ml;
    auto from = pharos::membership::address::v4(10, 0, 0, 2, 7946);
    auto drops = [&](g::errc e) { return ml.stats().packet_drops[size_t(e)]; };
    ml.handle_packet(from, "");
    EXPECT_EQ(drops(g::errc::empty), 1u);
    ml.handle_packet(from, std::string(70000, '\0'));
    EXPECT_EQ(drops(g::errc::too_large), 1u);
    std::string crc = g::add_crc(g::encode_msg(g::nack_resp{1}));
    crc[6] ^= 1;
    ml.handle_packet(from, crc);
    EXPECT_EQ(drops(g::errc::bad_crc), 1u);
    std::string compound = g::make_compound(gf::messages());
    ml.handle_packet(from, compound.substr(0, compound.size() / 2));
    EXPECT_EQ(drops(g::errc::truncated), 1u);
    ml.handle_packet(from, std::string(1, char(g::msg_type::compress)) + "\xff\xff");
    EXPECT_EQ(ml.stats().packets_bad, 5u);
    uint64_t bad = ml.stats().messages_bad + ml.stats().messages_unknown;
    ml.handle_packet(from, std::string(1, char(g::msg_type::alive)) + "\x85\xa3xyz");  // a truncated map
    ml.handle_packet(from, std::string(1, char(200)));                                 // no such type
    EXPECT_EQ(ml.stats().messages_bad + ml.stats().messages_unknown, bad + 2);
    // Plaintext to a node that requires encryption; and a stream that is not one.
    sealed.ml->handle_packet(from, g::encode_msg(g::nack_resp{1}));
    EXPECT_EQ(sealed.ml->stats().packet_drops[size_t(g::errc::bad_label)] +
                  sealed.ml->stats().packet_drops[size_t(g::errc::decrypt_failed)],
              1u);
    ml.handle_stream(from, std::string(1, char(250)));
    EXPECT_EQ(ml.stats().streams_bad, 1u);
    EXPECT_EQ(ml.find("n2")->state, pharos::membership::node_state::alive);  // nothing above hurt anyone
}
