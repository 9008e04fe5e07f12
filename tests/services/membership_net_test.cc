// Two memberlist nodes on real loopback sockets (net_node) in one process, on
// the gossip shard: join by TCP push/pull, probes over UDP, user messages by
// UDP and TCP, graceful leave, clean stop; a vanished node suspected on a refused
// TCP fallback. Real time (Local profile), ~4 s.
#include <gtest/gtest.h>

#include "services/membership/net_node.hh"
#include "tests/support/coro_test.hh"

using namespace pharos;
using namespace pharos::membership;
using namespace std::chrono_literals;

namespace {
struct seen {
    std::vector<std::string> user_msgs;
    std::vector<std::string> left;
};

config local_cfg(const char* name, uint16_t port) {
    auto c = config::local(name, address::v4(127, 0, 0, 1, port));
    c.meta = std::string("meta-") + name;
    return c;
}

engine::task<bool> wait_for(bool (*pred)(void*), void* arg, engine::clock::duration limit) {
    auto end = engine::clock::now() + limit;
    while (!pred(arg)) {
        if (engine::clock::now() > end) co_return false;
        co_await engine::sleep_for(10ms);
    }
    co_return true;
}
}  // namespace

// Starts a node on the first free port from `base` (below the ephemeral range, so outgoing
// connections of other processes do not hold it). Null when none of 50 ports binds.
engine::task<std::unique_ptr<net_node>> start_on_free_port(const char* name, uint16_t base, delegate d, uint64_t seed) {
    for (uint16_t port = base; port < base + 50; ++port) {
        auto n = std::make_unique<net_node>(local_cfg(name, port), d, seed);
        auto at = engine::socket_address::parse("127.0.0.1", port);
        bool ok = true;
        try {
            co_await n->start(*at);
        } catch (const std::runtime_error&) {
            ok = false;
        }
        if (ok) co_return n;
    }
    co_return nullptr;
}

// The checks; it may stop early (CO_ASSERT), and the caller stops both nodes either way.
engine::task<void> exercise(net_node& a, net_node& b, seen& at_a) {
    address a_addr = a.ml().cfg().advertise;
    int joined = -1;
    std::vector<address> seeds;
    seeds.push_back(a_addr);
    b.ml().join(seeds, [&joined](int n) { joined = n; });
    struct both {
        net_node* a;
        net_node* b;
        int* joined;
    } st{&a, &b, &joined};
    bool ok = co_await wait_for(
        [](void* p) {
            auto* s = static_cast<both*>(p);
            return *s->joined == 1 && s->a->ml().count(node_state::alive) == 2 &&
                   s->b->ml().count(node_state::alive) == 2;
        },
        &st, 5s);
    CO_ASSERT_TRUE(ok);
    EXPECT_EQ(a.ml().find("b")->meta, "meta-b");
    // Some probes go both ways without failures.
    co_await engine::sleep_for(1500ms);
    EXPECT_GE(a.ml().stats().probes, 1u);
    EXPECT_EQ(a.ml().stats().probes_failed, 0u);
    EXPECT_EQ(a.ml().stats().packets_bad, 0u);
    b.ml().send_user_best_effort(a_addr, "over-udp");
    b.ml().send_user_reliable(a_addr, "over-tcp");
    struct user_wait {
        seen* s;
    } uw{&at_a};
    ok = co_await wait_for([](void* p) { return static_cast<user_wait*>(p)->s->user_msgs.size() >= 2; }, &uw, 3s);
    CO_ASSERT_TRUE(ok);
    std::sort(at_a.user_msgs.begin(), at_a.user_msgs.end());
    EXPECT_EQ(at_a.user_msgs[0], "over-tcp");
    EXPECT_EQ(at_a.user_msgs[1], "over-udp");
    auto left = std::make_shared<bool>(false);  // the callback may run after this frame is gone
    b.ml().leave([left] { *left = true; });
    ok = co_await wait_for([](void* p) { return !static_cast<user_wait*>(p)->s->left.empty(); }, &uw, 3s);
    CO_ASSERT_TRUE(ok);
    EXPECT_EQ(at_a.left[0], "b");
    EXPECT_EQ(a.ml().find("b")->state, node_state::left);
}

PHAROS_CORO_TEST(membership_net, two_nodes_join_talk_and_leave_over_loopback) {
    seen at_a;
    delegate da;
    da.on_user_msg = [&at_a](std::string_view m) { at_a.user_msgs.emplace_back(m); };
    da.on_leave = [&at_a](const member& m) { at_a.left.push_back(m.name); };
    auto pa = co_await start_on_free_port("a", 24600, da, 1);
    CO_ASSERT_TRUE(pa != nullptr);
    auto pb = co_await start_on_free_port("b", 24700, {}, 2);
    if (!pb) {
        ADD_FAILURE() << "no free port for b";
        co_await pa->stop();
        co_return;
    }
    co_await exercise(*pa, *pb, at_a);
    co_await pb->stop();
    co_await pa->stop();
}

// b goes away (its sockets close, as at kill -9): a's next probe of b finds the TCP fallback refused
// (ECONNREFUSED on loopback) and suspects b right then, not at the probe deadline (~3 s of real time).
PHAROS_CORO_TEST(membership_net, a_vanished_node_is_suspected_on_a_refused_fallback) {
    auto pa = co_await start_on_free_port("a", 24800, {}, 3);
    CO_ASSERT_TRUE(pa != nullptr);
    auto pb = co_await start_on_free_port("b", 24900, {}, 4);
    if (!pb) {
        ADD_FAILURE() << "no free port for b";
        co_await pa->stop();
        co_return;
    }
    std::vector<address> seeds;
    seeds.push_back(pa->ml().cfg().advertise);
    pb->ml().join(seeds);
    net_node* a = pa.get();
    bool joined = co_await wait_for(
        [](void* p) { return static_cast<net_node*>(p)->ml().count(node_state::alive) == 2; }, a, 5s);
    co_await pb->stop();
    bool refused = false;
    if (joined) {
        refused = co_await wait_for(
            [](void* p) { return static_cast<net_node*>(p)->ml().stats().probes_refused >= 1; }, a, 5s);
    }
    EXPECT_TRUE(joined);
    EXPECT_TRUE(refused);
    if (refused) {
        EXPECT_EQ(a->ml().state_of("b"), node_state::suspect);  // Local profile: 3 s of suspicion follow
    }
    co_await pa->stop();
}
