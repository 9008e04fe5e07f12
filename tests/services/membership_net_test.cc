// Two memberlist nodes on real loopback sockets (net_node) in one process, on
// the gossip shard: join by TCP push/pull, probes over UDP, user messages by
// UDP and TCP, graceful leave, clean stop. Real time (Local profile), ~1 s.
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

PHAROS_CORO_TEST(membership_net, two_nodes_join_talk_and_leave_over_loopback) {
    seen at_a;
    delegate da;
    da.on_user_msg = [&at_a](std::string_view m) { at_a.user_msgs.emplace_back(m); };
    da.on_leave = [&at_a](const member& m) { at_a.left.push_back(m.name); };
    net_node a(local_cfg("a", 39461), da, 1);
    net_node b(local_cfg("b", 39462), {}, 2);
    auto la = engine::socket_address::parse("127.0.0.1", 39461);
    auto lb = engine::socket_address::parse("127.0.0.1", 39462);
    CO_ASSERT_TRUE(la.ok() && lb.ok());
    co_await a.start(*la);
    co_await b.start(*lb);
    int joined = -1;
    std::vector<address> seeds;
    seeds.push_back(address::v4(127, 0, 0, 1, 39461));
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
    b.ml().send_user_best_effort(address::v4(127, 0, 0, 1, 39461), "over-udp");
    b.ml().send_user_reliable(address::v4(127, 0, 0, 1, 39461), "over-tcp");
    struct user_wait {
        seen* s;
    } uw{&at_a};
    ok = co_await wait_for([](void* p) { return static_cast<user_wait*>(p)->s->user_msgs.size() >= 2; }, &uw, 3s);
    CO_ASSERT_TRUE(ok);
    std::sort(at_a.user_msgs.begin(), at_a.user_msgs.end());
    EXPECT_EQ(at_a.user_msgs[0], "over-tcp");
    EXPECT_EQ(at_a.user_msgs[1], "over-udp");
    bool left = false;
    b.ml().leave([&left] { left = true; });
    ok = co_await wait_for([](void* p) { return !static_cast<user_wait*>(p)->s->left.empty(); }, &uw, 3s);
    CO_ASSERT_TRUE(ok);
    EXPECT_EQ(at_a.left[0], "b");
    EXPECT_EQ(a.ml().find("b")->state, node_state::left);
    co_await b.stop();
    co_await a.stop();
}
