// Bounded push/pull (config::push_pull_max_nodes) on the seeded simulated network: a periodic
// push/pull carries at most K entries, so its bytes per node do not grow with N (a byte count,
// not a timing); a join push/pull still hands the joiner the whole table; the rotating slice
// covers the whole table over N/K exchanges; a partition still heals. Every node starts from
// memberlist::bootstrap (the join merge path), so 400 nodes cost seconds, not minutes.
#include <gtest/gtest.h>

#include <cmath>

#include "services/membership/sim.hh"

using namespace pharos::membership;
using namespace std::chrono_literals;
namespace g = pharos::gossip;

namespace {

double secs(duration d) { return std::chrono::duration<double>(d).count(); }

config small_config(size_t max_nodes) {
    auto cfg = config::lan("", {});
    cfg.enable_compression = false;          // count entries, not how well LZW squeezes them
    cfg.push_pull_interval = 5s;             // scaled with N: 10 s at 50 nodes, 25 s at 400
    cfg.push_pull_max_nodes = max_nodes;
    return cfg;
}

struct bytes_measure {
    double per_node_per_s = 0, per_exchange = 0;
    uint64_t exchanges = 0;
};

// Adds n nodes of `cfg`, started and all knowing each other (as after their joins).
void add_converged(sim_network& net, const config& cfg, size_t n) {
    for (size_t i = 0; i < n; ++i) net.add(cfg);
    auto pp = sim_network::everyone_alive(cfg, n);
    for (size_t i = 0; i < n; ++i) {
        net.node(i).start();
        net.node(i).bootstrap(pp);
    }
}

// n nodes, all knowing each other; after the first push/pulls, the stream bytes over 60 s.
bytes_measure periodic_stream_bytes(size_t n, size_t max_nodes) {
    auto cfg = small_config(max_nodes);
    sim_network::options o;
    o.seed = 11;
    sim_network net(o);
    add_converged(net, cfg, n);
    net.run_for(10s);
    auto streams = [&] {
        uint64_t s = 0;
        for (size_t i = 0; i < n; ++i) s += net.node(i).stats().streams_in;
        return s;
    };
    uint64_t b0 = net.stream_bytes_sent(), s0 = streams();
    auto t0 = net.now();
    net.run_for(60s);
    bytes_measure m;
    m.exchanges = streams() - s0;
    double bytes = double(net.stream_bytes_sent() - b0);
    m.per_node_per_s = bytes / double(n) / secs(net.now() - t0);
    m.per_exchange = m.exchanges ? bytes / double(m.exchanges) : 0;
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(net.node(i).count(node_state::alive), n) << "node " << i;
    return m;
}

}  // namespace

TEST(membership_push_pull, periodic_push_pull_bytes_per_node_do_not_grow_from_50_to_400_nodes) {
    auto small = periodic_stream_bytes(50, 32);
    auto large = periodic_stream_bytes(400, 32);
    auto unbounded = periodic_stream_bytes(400, 0);
    std::printf("periodic push/pull streams, K = 32: 50 nodes %.1f B/node/s (%lu exchanges of %.0f B), "
                "400 nodes %.1f B/node/s (%lu of %.0f B); unbounded at 400: %.1f B/node/s (%lu of %.0f B)\n",
                small.per_node_per_s, (unsigned long)small.exchanges, small.per_exchange, large.per_node_per_s,
                (unsigned long)large.exchanges, large.per_exchange, unbounded.per_node_per_s,
                (unsigned long)unbounded.exchanges, unbounded.per_exchange);
    ASSERT_GT(small.exchanges, 0u);
    ASSERT_GT(large.exchanges, 0u);
    // 8x the nodes: the same K entries each way per exchange, and no more exchanges per node.
    EXPECT_LT(large.per_exchange, 1.25 * small.per_exchange);
    EXPECT_LT(large.per_node_per_s, 1.25 * small.per_node_per_s);
    // The whole table (400 entries each way) is what the bound saves.
    EXPECT_GT(unbounded.per_exchange, 8 * large.per_exchange);
}

TEST(membership_push_pull, a_joiner_gets_the_whole_table_from_one_member) {
    constexpr size_t n = 200;
    auto cfg = small_config(16);
    sim_network::options o;
    o.seed = 12;
    sim_network net(o);
    for (size_t i = 0; i < n + 1; ++i) net.add(cfg);
    auto pp = sim_network::everyone_alive(cfg, n);
    for (size_t i = 0; i < n; ++i) {
        net.node(i).start();
        net.node(i).bootstrap(pp);
    }
    net.run_for(30s);  // periodic (bounded) push/pulls have run
    auto& joiner = net.node(n);
    joiner.start();
    int joined = -1;
    size_t known_at_join = 0;
    joiner.join({net.addr(0)}, [&](int ok) {
        joined = ok;
        known_at_join = joiner.count(node_state::alive);  // from n0's one reply, before any gossip
    });
    ASSERT_TRUE(net.run_until([&] { return joined >= 0; }, net.now() + 15s, 10ms));
    EXPECT_EQ(joined, 1);
    EXPECT_EQ(known_at_join, n + 1);
    EXPECT_EQ(net.node(0).state_of("n200"), node_state::alive);
    // Gossip of the joiner's alive reaches everyone.
    ASSERT_TRUE(net.run_until(
        [&] {
            for (size_t i = 0; i <= n; ++i)
                if (net.node(i).count(node_state::alive) != n + 1) return false;
            return true;
        },
        net.now() + 30s, 100ms));
}

// One node answers hand-made push/pull requests: what its reply carries.
TEST(membership_push_pull, a_reply_is_bounded_unless_join_and_corrects_stale_entries) {
    constexpr size_t n = 100;
    auto cfg = small_config(16);
    sim_network::options o;
    o.seed = 15;
    sim_network net(o);
    for (size_t i = 0; i < n; ++i) net.add(cfg);
    auto pp = sim_network::everyone_alive(cfg, n), newer = pp;
    for (auto& e : newer.nodes) e.incarnation = 2;  // the answering node knows everyone at incarnation >= 2
    for (size_t i = 0; i < n; ++i) {
        net.node(i).start();
        net.node(i).bootstrap(i == 1 ? newer : pp);
    }
    net.run_for(30s);  // the bootstrap is no longer a recent change (push/pull period: 15 s)
    auto ask = [&](bool join, std::vector<size_t> stale) {
        g::push_pull req;
        req.header.join = join;
        req.nodes.push_back(pp.nodes[0]);
        req.nodes.back().incarnation = net.node(1).find("n0")->incarnation;  // the asker itself: up to date
        for (size_t i : stale) {
            req.nodes.push_back(pp.nodes[i]);
            req.nodes.back().incarnation = 1;
            req.nodes.back().state = node_state::dead;
        }
        auto raw = net.node(1).handle_stream(net.addr(0), g::seal_stream(g::encode_push_pull(req), false, {}));
        std::string msg;
        size_t used = 0;
        g::push_pull reply;
        EXPECT_EQ(g::open_stream(raw, {}, msg, used), g::errc::ok);
        EXPECT_EQ(g::decode_push_pull(msg, reply), g::errc::ok);
        EXPECT_EQ(reply.header.join, join);
        return reply;
    };
    std::vector<size_t> stale;
    stale.push_back(40);
    stale.push_back(77);
    auto reply = ask(false, stale);
    ASSERT_EQ(reply.nodes.size(), 16u);
    EXPECT_EQ(reply.nodes[0].name, "n1");  // ourselves first
    EXPECT_EQ(reply.nodes[1].name, "n40");  // then what the asker had stale, with our incarnation
    EXPECT_GE(reply.nodes[1].incarnation, 2u);
    EXPECT_EQ(reply.nodes[2].name, "n77");
    // The next request gets the next slice of the table.
    auto next = ask(false, {});
    ASSERT_EQ(next.nodes.size(), 16u);
    EXPECT_NE(next.nodes[1].name, reply.nodes[3].name);
    EXPECT_EQ(ask(true, {}).nodes.size(), n);  // a join gets the whole table
    // The asker's stale dead entries are then merged as Go does: incarnation 1 < 2, ignored.
    EXPECT_EQ(net.node(1).state_of("n40"), node_state::alive);
}

TEST(membership_push_pull, bounded_push_pulls_cover_the_whole_table) {
    // n0 starts knowing only the even nodes; no gossip will mention the odd ones (nothing changes),
    // so only the rotating slices of bounded push/pulls (16 entries) can teach it the other 50.
    constexpr size_t n = 100;
    auto cfg = small_config(16);
    sim_network::options o;
    o.seed = 13;
    sim_network net(o);
    for (size_t i = 0; i < n; ++i) net.add(cfg);
    auto pp = sim_network::everyone_alive(cfg, n);
    g::push_pull half;
    for (size_t i = 0; i < n; i += 2) half.nodes.push_back(pp.nodes[i]);
    for (size_t i = 0; i < n; ++i) {
        net.node(i).start();
        net.node(i).bootstrap(i == 0 ? half : pp);
    }
    ASSERT_EQ(net.node(0).count(node_state::alive), n / 2);
    auto t0 = net.now();
    ASSERT_TRUE(net.run_until([&] { return net.node(0).count(node_state::alive) == n; }, t0 + 600s, 1s))
        << net.node(0).count(node_state::alive);
    std::printf("100 nodes, K = 16: n0 learnt the 50 members it missed in %.0f s of bounded push/pulls\n",
                secs(net.now() - t0));
}

TEST(membership_push_pull, a_healed_partition_converges_with_bounded_push_pulls) {
    constexpr size_t n = 100;
    auto cfg = small_config(16);
    cfg.reconnect_interval = 10s;  // Serf's reconnector (30 s in Serf), shortened to keep the test short
    sim_network::options o;
    o.seed = 14;
    sim_network net(o);
    add_converged(net, cfg, n);
    net.run_for(20s);
    net.partition([](size_t i) { return int(i % 2); });
    ASSERT_TRUE(net.run_until(
        [&] {
            for (size_t i = 0; i < n; ++i)
                if (net.node(i).num_alive() != n / 2) return false;
            return true;
        },
        net.now() + 120s, 500ms));
    net.heal();
    auto t0 = net.now();
    ASSERT_TRUE(net.run_until(
        [&] {
            for (size_t i = 0; i < n; ++i)
                if (net.node(i).count(node_state::alive) != n) return false;
            return true;
        },
        t0 + 300s, 500ms));
    std::printf("100 nodes, K = 16: partition healed -> all see all alive in %.1f s\n", secs(net.now() - t0));
}
