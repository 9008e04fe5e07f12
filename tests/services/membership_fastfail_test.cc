// How fast a failure is acted on (issue 6): a probe whose TCP fallback is refused suspects at
// once, one whose fallback merely times out still waits for the probe deadline (Go's behaviour);
// a new suspect, dead or refutation goes out in a gossip round at once instead of at the next
// gossip tick; a probe tick that lands while a probe runs is kept, as Go's ticker keeps one.
// A scripted transport on a manual clock drives one memberlist and sees every packet and dial;
// the simulated network (where a killed node's port refuses dials) checks the whole cluster.
#include <gtest/gtest.h>

#include "services/membership/sim.hh"

using namespace pharos::membership;
using namespace std::chrono_literals;
namespace g = pharos::gossip;

namespace {

// Records what the memberlist sends; dials stay pending until the test answers them.
struct scripted final : transport {
    time_point clock = time_point(std::chrono::hours(1));
    struct packet {
        time_point at;
        address to;
        std::vector<std::string> msgs;  // flattened
    };
    struct dial {
        address to;
        time_point deadline;
        std::function<void(std::optional<std::string>, bool)> done;
    };
    std::vector<packet> sent;
    std::vector<dial> dials;

    time_point now() override { return clock; }
    void send_packet(const address& to, std::string bytes) override {
        std::string inner;
        std::vector<std::string> msgs;
        if (g::open_packet(bytes, {}, inner) == g::errc::ok) (void)g::flatten(inner, msgs);
        sent.push_back({clock, to, std::move(msgs)});
    }
    void stream(const address& to, std::string, bool, time_point deadline,
                std::function<void(std::optional<std::string>)> done) override {
        dials.push_back({to, deadline, [done](std::optional<std::string> r, bool) { done(std::move(r)); }});
    }
    void stream_with_refusal(const address& to, std::string, bool, time_point deadline,
                             std::function<void(std::optional<std::string>, bool)> done) override {
        dials.push_back({to, deadline, std::move(done)});
    }
    void wake_at(time_point) override {}

    // Fires every timer due up to t, in order, moving the clock with them.
    void advance(memberlist& ml, time_point t) {
        while (ml.next_deadline() <= t) {
            clock = std::max(clock, ml.next_deadline());
            ml.run_timers();
        }
        clock = t;
    }
    // Packets sent at or after `since` that carry a message of type `type`.
    size_t count(g::msg_type type, time_point since) const {
        size_t n = 0;
        for (const auto& p : sent)
            if (p.at >= since)
                for (const auto& m : p.msgs) n += !m.empty() && uint8_t(m[0]) == uint8_t(type);
        return n;
    }
};

address addr(uint8_t i) { return address::v4(127, 0, 0, i, 7946); }

// One memberlist "self" on the scripted transport, knowing `others` (named m<i> at 127.0.0.<i+2>) alive.
struct rig {
    scripted t;
    memberlist ml;
    explicit rig(int others, uint64_t seed = 1) : ml(cfg(), t, {}, seed) {
        ml.start();
        g::push_pull pp;
        for (int i = 0; i < others; ++i) {
            g::push_node_state s;
            s.name = "m" + std::to_string(i);
            s.addr = addr(uint8_t(i + 2)).ip;
            s.port = 7946;
            s.incarnation = 1;
            s.vsn = std::string{1, 5, 2, 0, 0, 0};  // pmax 5: TCP fallback pings and nacks
            pp.nodes.push_back(s);
        }
        ml.bootstrap(pp);
    }
    static config cfg() {
        auto c = config::lan("self", addr(1));
        c.enable_compression = false;
        return c;
    }
    // Runs until the first ping goes out (the probe of the only other member); returns when.
    time_point first_ping() {
        for (int i = 0; i < 2000; ++i) {
            t.advance(ml, t.clock + 1ms);
            for (const auto& p : t.sent)
                for (const auto& m : p.msgs)
                    if (!m.empty() && uint8_t(m[0]) == uint8_t(g::msg_type::ping)) return p.at;
        }
        return time_point::max();
    }
};

}  // namespace

TEST(membership_fastfail, a_refused_tcp_fallback_suspects_before_the_probe_interval_ends) {
    rig r(1);
    time_point sent = r.first_ping();
    ASSERT_NE(sent, time_point::max());
    // No ack: at ProbeTimeout (500 ms) the TCP fallback is dialled, with the probe deadline as its own.
    r.t.advance(r.ml, sent + 500ms);
    ASSERT_EQ(r.t.dials.size(), 1u);
    EXPECT_EQ(r.t.dials[0].to, addr(2));
    EXPECT_EQ(r.t.dials[0].deadline, sent + 1s);
    EXPECT_EQ(r.ml.state_of("m0"), node_state::alive);
    // The dial is refused 1 ms later: nothing listens on m0's port. Suspected now, not at sent + 1 s.
    r.t.advance(r.ml, sent + 501ms);
    r.t.dials[0].done(std::nullopt, true);
    EXPECT_EQ(r.ml.state_of("m0"), node_state::suspect);
    EXPECT_EQ(r.ml.stats().probes_refused, 1u);
    EXPECT_EQ(r.ml.stats().probes_failed, 1u);
    EXPECT_EQ(r.ml.stats().suspects_raised, 1u);
    // The probe still ends at its deadline (the health score as in Go: no relay, +1), without a second suspicion.
    r.t.advance(r.ml, sent + 1s);
    EXPECT_EQ(r.ml.stats().probes_failed, 1u);
    EXPECT_EQ(r.ml.stats().suspects_raised, 1u);
    EXPECT_EQ(r.ml.health_score(), 1);
    // The suspicion keeps its full timeout (3 members: 4 s) and can still be refuted: m0 dies only then.
    r.t.advance(r.ml, sent + 501ms + 4s - 1ms);
    EXPECT_EQ(r.ml.state_of("m0"), node_state::suspect);
    r.t.advance(r.ml, sent + 501ms + 4s);
    EXPECT_EQ(r.ml.state_of("m0"), node_state::dead);
}

TEST(membership_fastfail, a_timed_out_tcp_fallback_suspects_only_at_the_probe_deadline) {
    rig r(1);
    time_point sent = r.first_ping();
    ASSERT_NE(sent, time_point::max());
    r.t.advance(r.ml, sent + 500ms);
    ASSERT_EQ(r.t.dials.size(), 1u);
    r.t.advance(r.ml, sent + 1s - 1ms);
    EXPECT_EQ(r.ml.state_of("m0"), node_state::alive);
    // The fallback ends without contact at its deadline (SYN unanswered): no verdict before the deadline.
    r.t.advance(r.ml, sent + 1s);
    r.t.dials[0].done(std::nullopt, false);
    EXPECT_EQ(r.ml.state_of("m0"), node_state::suspect);
    EXPECT_EQ(r.ml.stats().probes_refused, 0u);
    EXPECT_EQ(r.ml.stats().probes_failed, 1u);
}

TEST(membership_fastfail, a_refusal_after_the_probe_succeeded_changes_nothing) {
    // A refusal only counts for the probe it belongs to: one that returns after an ack is ignored.
    rig r(1);
    time_point sent = r.first_ping();
    r.t.advance(r.ml, sent + 500ms);
    ASSERT_EQ(r.t.dials.size(), 1u);
    // m0 acks over UDP before the fallback returns: the probe succeeds and ends.
    g::ack_resp ack;
    ack.seq_no = 1;
    r.ml.handle_packet(addr(2), g::encode_msg(ack));
    r.t.dials[0].done(std::nullopt, true);
    EXPECT_EQ(r.ml.state_of("m0"), node_state::alive);
    EXPECT_EQ(r.ml.stats().probes_refused, 0u);
}

TEST(membership_fastfail, a_new_suspect_dead_or_refutation_is_gossiped_without_waiting_for_the_tick) {
    rig r(3);
    // Past the first gossip tick (the queue is empty) and before any probe can have failed (>= 1 s).
    r.t.advance(r.ml, r.t.clock + 900ms);
    ASSERT_EQ(r.ml.stats().eager_gossip, 0u);
    // m0 tells us it suspects m1: we pass it on at once, at this very instant, not at the next tick.
    time_point t0 = r.t.clock;
    r.ml.handle_packet(addr(2), g::encode_msg(g::suspect{1, "m1", "m0"}));
    EXPECT_EQ(r.ml.state_of("m1"), node_state::suspect);
    r.t.advance(r.ml, t0);
    EXPECT_GE(r.t.count(g::msg_type::suspect, t0), 1u);
    EXPECT_EQ(r.ml.stats().eager_gossip, 1u);
    // A dead about m2: the same.
    r.t.advance(r.ml, t0 + 1ms);
    time_point t1 = r.t.clock;
    r.ml.handle_packet(addr(2), g::encode_msg(g::dead{1, "m2", "m0"}));
    r.t.advance(r.ml, t1);
    EXPECT_GE(r.t.count(g::msg_type::dead, t1), 1u);
    EXPECT_EQ(r.ml.stats().eager_gossip, 2u);
    // A suspicion of ourselves: the refuting alive leaves at once too.
    r.t.advance(r.ml, t1 + 1ms);
    time_point t2 = r.t.clock;
    r.ml.handle_packet(addr(2), g::encode_msg(g::suspect{r.ml.incarnation(), "self", "m0"}));
    r.t.advance(r.ml, t2);
    EXPECT_EQ(r.ml.stats().refutes, 1u);
    EXPECT_GE(r.t.count(g::msg_type::alive, t2), 1u);
    EXPECT_EQ(r.ml.stats().eager_gossip, 3u);
    // A plain alive (a new member: nobody's health changed) waits for the tick.
    r.t.advance(r.ml, t2 + 1ms);
    g::alive a{5, "m9", addr(20).ip, 7946, "", std::string{1, 5, 2, 0, 0, 0}};
    r.ml.handle_packet(addr(2), g::encode_msg(a));
    r.t.advance(r.ml, r.t.clock);
    EXPECT_EQ(r.ml.stats().eager_gossip, 3u);
    // Two suspicions in one packet make one round.
    std::vector<std::string> parts;
    parts.push_back(g::encode_msg(g::suspect{5, "m9", "m0"}));
    parts.push_back(g::encode_msg(g::suspect{1, "m0", "m9"}));
    r.ml.handle_packet(addr(2), g::make_compound(parts));
    EXPECT_EQ(r.ml.state_of("m9"), node_state::suspect);
    EXPECT_EQ(r.ml.state_of("m0"), node_state::suspect);
    r.t.advance(r.ml, r.t.clock);
    EXPECT_EQ(r.ml.stats().eager_gossip, 4u);
}

TEST(membership_fastfail, a_probe_tick_during_a_probe_is_kept_not_dropped) {
    // A failed probe lasts the whole interval, so the next tick lands while it runs; Go's ticker keeps
    // that tick and probes again right when the first probe ends, one interval after the first ping.
    rig r(2);
    time_point sent = r.first_ping();
    ASSERT_NE(sent, time_point::max());
    r.t.advance(r.ml, sent + 1s);  // no ack, no nack: failed at the deadline
    EXPECT_EQ(r.ml.stats().probes_failed, 1u);
    EXPECT_EQ(r.ml.stats().probes, 2u);  // the next probe started at once
    EXPECT_EQ(r.t.count(g::msg_type::ping, sent + 1s), 1u);
}

TEST(membership_fastfail, three_nodes_suspect_a_killed_node_when_its_port_refuses) {
    // The simulated network refuses dials to a killed node: the survivors' probes of it fail on the
    // refused fallback. A partitioned (alive, unreachable) node's dials time out instead: no early verdict.
    for (uint64_t seed = 1; seed <= 4; ++seed) {
        sim_network net({0, 0, std::chrono::microseconds(500), std::chrono::milliseconds(5), seed});
        for (int i = 0; i < 3; ++i) net.add(config::lan("", {}));
        for (int i = 0; i < 3; ++i) net.node(i).start();
        net.node(1).join({net.addr(0)});
        net.node(2).join({net.addr(0)});
        net.run_for(10s);
        ASSERT_EQ(net.node(0).count(node_state::alive), 3u);
        net.kill(2);
        ASSERT_TRUE(net.run_until(
            [&] {
                return net.node(0).state_of("n2") == node_state::dead && net.node(1).state_of("n2") == node_state::dead;
            },
            net.now() + 20s, 10ms));
        EXPECT_GE(net.node(0).stats().probes_refused + net.node(1).stats().probes_refused, 1u) << "seed " << seed;
    }
    sim_network net({});
    for (int i = 0; i < 3; ++i) net.add(config::lan("", {}));
    for (int i = 0; i < 3; ++i) net.node(i).start();
    net.node(1).join({net.addr(0)});
    net.node(2).join({net.addr(0)});
    net.run_for(10s);
    net.partition([](size_t i) { return i == 2 ? 1 : 0; });
    ASSERT_TRUE(net.run_until([&] { return net.node(0).state_of("n2") == node_state::dead; }, net.now() + 20s, 10ms));
    EXPECT_EQ(net.node(0).stats().probes_refused + net.node(1).stats().probes_refused, 0u);
    EXPECT_GE(net.node(0).stats().probes_failed + net.node(1).stats().probes_failed, 1u);
}
