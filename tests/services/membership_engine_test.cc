// memberlist engine details: Lifeguard's suspicion arithmetic against the
// spec's worked numbers, nacks and the local health score, the broadcast
// queue, the TCP responder answering Go's own bytes (push/pull, ping), and
// counting of bad packets.
#include <gtest/gtest.h>

#include <random>

#include "services/membership/sim.hh"

using namespace pharos::membership;
using namespace std::chrono_literals;
namespace g = pharos::gossip;

namespace {
std::string unhex(std::string_view h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(char(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
    return out;
}
}  // namespace

TEST(membership_engine, suspicion_timeouts_match_the_spec) {
    // LAN: n=3 → 4 s fixed; n=10 → min 4 s, max 24 s, 11.381 s after 1 confirmation, 4 s after 2; n=100 → 8 s.
    EXPECT_EQ(suspicion_timeout(4, 3, 1s), 4s);
    EXPECT_EQ(suspicion_timeout(3, 3, 1s), 3s);
    EXPECT_EQ(suspicion_timeout(4, 10, 1s), 4s);
    EXPECT_EQ(suspicion_timeout(4, 100, 1s), 8s);
    EXPECT_EQ(suspicion_timeout(4, 50, 1s), 6792ms);  // log10(50) = 1.698 in thousandths
    EXPECT_EQ(remaining_suspicion(1, 2, 0s, 4s, 24s), 11381ms);
    EXPECT_EQ(remaining_suspicion(2, 2, 0s, 4s, 24s), 4s);
    EXPECT_EQ(remaining_suspicion(1, 2, 2s, 4s, 24s), 9381ms);
}

TEST(membership_engine, broadcasts_replace_by_node_and_stop_at_the_limit) {
    broadcast_queue q;
    int done = 0;
    q.queue("a", std::string(100, 'x'), [&] { ++done; });
    q.queue("a", std::string(50, 'y'), [&] { ++done; });  // replaces the first
    EXPECT_EQ(done, 1);
    q.queue("b", std::string(200, 'z'));
    auto got = q.get(2, 1000, 2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].size(), 200u);  // larger first among equal transmit counts
    got = q.get(2, 100, 2);          // only the 50-byte one fits
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0][0], 'y');
    EXPECT_EQ(done, 2);  // sent twice: finished
    EXPECT_EQ(q.size(), 1u);
}

TEST(membership_engine, nacks_keep_the_health_score_down_when_the_target_is_dead) {
    // Local profile: ProbeTimeout 200 ms, so the relay's nack (sent ProbeTimeout after the indirect
    // request) lands before the 1 s deadline. (With LAN's 500 ms it lands just after it, in Go too:
    // memberlist-protocol.md A.6, so a LAN node pays +1 per failed probe at health 0.)
    sim_network net({});
    for (int i = 0; i < 3; ++i) net.add(config::local("", {}));
    for (int i = 0; i < 3; ++i) net.node(i).start();
    net.node(1).join({net.addr(0)});
    net.node(2).join({net.addr(0)});
    net.run_for(5s);
    net.kill(2);
    // n0's failed probes of n2 get a nack from its relay n1: no missing nack, no health penalty.
    ASSERT_TRUE(net.run_until([&] { return net.node(0).stats().probes_failed >= 1; }, net.now() + 10s, 10ms));
    EXPECT_EQ(net.node(0).health_score(), 0);
}

TEST(membership_engine, an_isolated_node_raises_its_health_score_and_slows_its_probes) {
    sim_network net({});
    for (int i = 0; i < 4; ++i) net.add(config::lan("", {}));
    for (int i = 0; i < 4; ++i) net.node(i).start();
    for (int i = 1; i < 4; ++i) net.node(i).join({net.addr(0)});
    net.run_for(5s);
    net.partition([](size_t i) { return i == 0 ? 1 : 0; });
    // Relays never answer, so each failed probe counts every missing nack.
    ASSERT_TRUE(net.run_until([&] { return net.node(0).health_score() >= 3; }, net.now() + 10s, 10ms));
    net.heal();
    ASSERT_TRUE(net.run_until([&] { return net.node(0).health_score() == 0; }, net.now() + 60s, 100ms));
}

TEST(membership_engine, answers_gos_compressed_push_pull_and_tcp_ping) {
    sim_network net({});
    net.add(config::lan("", {}));
    std::vector<std::string> joined;
    net.node(0).start();
    // Go's push/pull join request from n2 (memberlist-protocol.md A.4), compressed as Go sends it.
    auto req = unhex(
        "0982a4416c676f00a3427566da0067000d0c22a5e44d1a37c34a397943a6cc9c00acaacc2923670a9d3074ca3029e306c0215241c890914"
        "3ea0f00000156257133268c1c3718d3bc7113805493321745b59141ca4998366544b9e109e58d1c3acd3e2c286511631900a3accc71632a4001"
        "0127010404");
    auto reply = net.node(0).handle_stream(address::v4(127, 0, 0, 1, 7947), req);
    std::string msg;
    size_t used;
    ASSERT_EQ(g::open_stream(reply, net.node(0).wire(), msg, used), g::errc::ok);
    EXPECT_EQ(uint8_t(reply[0]), 9);  // compressed, as Go does on streams
    g::push_pull pp;
    ASSERT_EQ(g::decode_push_pull(msg, pp), g::errc::ok);
    EXPECT_TRUE(pp.header.join);  // echoed
    ASSERT_EQ(pp.nodes.size(), 1u);  // our state before merging theirs
    EXPECT_EQ(pp.nodes[0].name, "n0");
    EXPECT_EQ(pp.nodes[0].vsn, unhex("010502000000"));
    auto n2 = net.node(0).find("n2");
    ASSERT_TRUE(n2.has_value());
    EXPECT_EQ(n2->state, node_state::alive);
    EXPECT_EQ(n2->meta, "m2");
    EXPECT_EQ(n2->addr.port, 7947);
    // A TCP ping for us gets an ack with the same SeqNo; one for another name gets nothing.
    g::ping p;
    p.seq_no = 120;
    p.node = "n0";
    reply = net.node(0).handle_stream({}, g::encode_msg(p));
    ASSERT_EQ(g::open_stream(reply, net.node(0).wire(), msg, used), g::errc::ok);
    EXPECT_EQ(msg, unhex("0282a75061796c6f6164c0a55365714e6f78"));
    p.node = "other";
    EXPECT_TRUE(net.node(0).handle_stream({}, g::encode_msg(p)).empty());
}

TEST(membership_engine, bad_packets_are_counted_and_dropped) {
    sim_network net({});
    net.add(config::lan("", {}));
    net.node(0).start();
    auto& ml = net.node(0);
    ml.handle_packet({}, "");
    ml.handle_packet({}, unhex("0c00000000ff"));          // bad CRC
    ml.handle_packet({}, unhex("0703"));                  // truncated compound
    ml.handle_packet({}, unhex("0985a4"));                // truncated compress
    ml.handle_packet({}, unhex("0081a55365714e6fc3"));    // SeqNo of the wrong type
    ml.handle_packet({}, unhex("f403616263"));            // label the node does not use
    ml.handle_packet({}, unhex("63"));                    // unknown type
    EXPECT_EQ(ml.stats().packets_bad, 5u);
    EXPECT_EQ(ml.stats().messages_bad, 1u);
    EXPECT_EQ(ml.stats().messages_unknown, 1u);
    EXPECT_EQ(ml.stats().packets_in, 7u);
}

TEST(membership_engine, mutated_traffic_never_crashes_a_node_and_is_counted) {
    // Real packets of a 3-node cluster, mutated at random and fed to n0 as packets and streams.
    sim_network net({});
    for (int i = 0; i < 3; ++i) net.add(config::lan("", {}));
    for (int i = 0; i < 3; ++i) net.node(i).start();
    net.node(1).join({net.addr(0)});
    net.node(2).join({net.addr(0)});
    net.run_for(3s);
    std::vector<std::string> corpus;
    corpus.push_back(g::encode_msg(g::suspect{1, "n1", "n2"}));
    g::alive a;
    a.incarnation = 7, a.node = "n9", a.addr = std::string("\x0a\0\0\x09", 4), a.port = 7946, a.vsn = unhex("010502000000");
    corpus.push_back(g::add_crc(g::encode_msg(a)));
    std::vector<std::string> parts{corpus[0], corpus[1], g::encode_msg(g::ping{3, "n0", "", 0, ""})};
    corpus.push_back(g::compress_message(g::make_compound(parts)));
    corpus.push_back(g::seal_stream(g::encode_msg(g::ping{4, "n0", "", 0, ""}), true, {}));
    std::mt19937_64 rng(99);
    auto& n0 = net.node(0);
    for (int i = 0; i < 20000; ++i) {
        std::string m = corpus[rng() % corpus.size()];
        for (int k = 0, ops = 1 + int(rng() % 3); k < ops && !m.empty(); ++k) {
            size_t at = rng() % m.size();
            if (rng() % 3 == 0) m.resize(at);
            else m[at] = char(rng());
        }
        if (i % 2) n0.handle_packet(net.addr(1), m);
        else (void)n0.handle_stream(net.addr(1), m);
        if (i % 1000 == 0) net.run_for(50ms);
    }
    EXPECT_GT(n0.stats().packets_bad + n0.stats().messages_bad, 0u);
    EXPECT_GT(n0.stats().streams_bad, 0u);
    net.run_for(10s);
    EXPECT_TRUE(n0.find("n1").has_value());
    EXPECT_EQ(n0.find("n0")->state, node_state::alive);
}
