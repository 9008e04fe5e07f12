// The agent's gossip layer without sockets: memberlists on the seeded simulated
// network (virtual time) feed node 0's serf_table, and Consul's reconcile turns
// its members into catalog commands applied to a state::fsm — alive → passing
// serfHealth, failed → critical (the node's services drop out of ?passing),
// left → deregistered, force-leave → left, failed past reconnect_timeout →
// reaped and deregistered. Also: Consul's tags fit memberlist's 512-byte Meta.
#include <gtest/gtest.h>

#include "services/agent/gossip.hh"
#include "services/membership/sim.hh"

using namespace pharos;
using namespace pharos::agent;
using namespace std::chrono_literals;
using membership::sim_network;

namespace {

struct world {
    sim_network net;
    serf_table table;  // node 0's Serf view
    state::fsm fsm;
    uint64_t index = 1;

    explicit world(size_t n) : net(sim_network::options{}) {
        for (size_t i = 0; i < n; ++i) {
            membership::config c = membership::config::lan("", {});
            agent::config ac;
            ac.node_name = "n" + std::to_string(i);
            ac.node_id = "00000000-0000-4000-8000-00000000000" + std::to_string(i);
            ac.server = i < 2;  // n0, n1 servers; the rest clients
            ac.ports.server = 8300;
            c.meta = *gossip::serf::encode_tags(consul_tags(ac));
            membership::delegate d;
            if (i == 0) {
                d.on_join = [this](const membership::member& m) { table.joined(m, net.now()); };
                d.on_update = d.on_join;
                d.on_leave = [this](const membership::member& m) { table.departed(m, net.now()); };
            }
            net.add(c, d);
        }
        for (size_t i = 0; i < n; ++i) net.node(i).start();
        for (size_t i = 1; i < n; ++i) {
            net.node(i).join({net.addr(0)});
            net.run_for(5ms);
        }
    }
    const catalog::store& cat() const { return fsm.tables().catalog; }
    // Runs reconcile; returns how many commands it issued.
    size_t reconcile_once() {
        auto cmds = reconcile(cat(), table.members(), "n0", "dc1");
        for (auto& c : cmds) {
            state::change_set cs;
            auto r = fsm.apply(c, ++index, cs);
            EXPECT_TRUE(r.error.empty()) << r.error;
        }
        return cmds.size();
    }
    std::string serf_status(const std::string& node) const {
        auto* c = cat().get_check(node, "serfHealth");
        return c ? c->status : "";
    }
    bool status_is(const std::string& node, member_status s) const {
        auto* m = table.find(node);
        return m && m->status == s;
    }
    bool wait_status(const std::string& node, member_status s, std::chrono::seconds limit = 60s) {
        return net.run_until([&] { return status_is(node, s); }, net.now() + limit);
    }
};

}  // namespace

TEST(agent_gossip, consul_tags_fit_memberlist_meta) {
    agent::config c;
    c.node_id = "5b6f2a4e-3b1e-4f49-9a8e-1f3c2d4b5a6c";
    c.datacenter = std::string(64, 'd');
    c.server = true;
    c.bootstrap_expect = 3;
    auto meta = gossip::serf::encode_tags(consul_tags(c));
    ASSERT_TRUE(meta);
    EXPECT_LE(meta->size(), 512u);
    auto t = gossip::serf::decode_tags(*meta);
    EXPECT_EQ(t["role"], "consul");
    EXPECT_EQ(t["expect"], "3");
    EXPECT_EQ(t["port"], "8300");
    c.server = false;
    t = consul_tags(c);
    EXPECT_EQ(t["role"], "node");
    EXPECT_EQ(t.count("port"), 0u);
}

TEST(agent_gossip, alive_members_get_a_passing_serf_health_and_servers_the_consul_service) {
    world w(4);
    ASSERT_TRUE(w.net.run_until([&] { return w.table.members().size() == 4; }, w.net.now() + 10s));
    for (auto& [name, m] : w.table.members()) {
        EXPECT_EQ(m.status, member_status::alive) << name;
        EXPECT_EQ(m.tags.at("id").back(), name.back());
        EXPECT_EQ(m.vsn[5], 0);  // these sim nodes set no delegate version
    }
    EXPECT_EQ(w.reconcile_once(), 4u);
    for (int i = 0; i < 4; ++i) {
        std::string n = "n" + std::to_string(i);
        ASSERT_TRUE(w.cat().get_node(n)) << n;
        EXPECT_EQ(w.serf_status(n), "passing");
        EXPECT_EQ(w.cat().get_check(n, "serfHealth")->output, "Agent alive and reachable");
        EXPECT_EQ(bool(w.cat().get_service(n, "consul")), i < 2) << n;
    }
    EXPECT_EQ(w.cat().get_node("n2")->id, "00000000-0000-4000-8000-000000000002");
    EXPECT_EQ(w.reconcile_once(), 0u);  // nothing to do twice
}

TEST(agent_gossip, failed_member_turns_serf_health_critical_and_its_services_stop_passing) {
    world w(4);
    ASSERT_TRUE(w.net.run_until([&] { return w.table.members().size() == 4; }, w.net.now() + 10s));
    w.reconcile_once();
    // n2's own agent registered a service (its anti-entropy, simulated here).
    catalog::register_request web;
    web.n = *w.cat().get_node("n2");
    web.skip_node_update = true;
    catalog::service s;
    s.id = s.name = "web";
    web.svc = s;
    state::change_set cs;
    w.fsm.apply(web, ++w.index, cs);
    const catalog::service* inst = w.cat().get_service("n2", "web");
    ASSERT_TRUE(inst);
    EXPECT_EQ(w.cat().instance_health(*inst), catalog::health::passing);

    w.net.kill(2);
    ASSERT_TRUE(w.wait_status("n2", member_status::failed));
    EXPECT_EQ(w.reconcile_once(), 1u);  // one check_updates command
    EXPECT_EQ(w.serf_status("n2"), "critical");
    EXPECT_EQ(w.cat().get_check("n2", "serfHealth")->output, "Agent not live or unreachable");
    inst = w.cat().get_service("n2", "web");
    EXPECT_EQ(w.cat().instance_health(*inst), catalog::health::critical);
    EXPECT_EQ(w.reconcile_once(), 0u);
    // memberlist forgets the dead node after 30 s; Serf (and the catalog) keep it failed.
    w.net.run_for(60s);
    EXPECT_TRUE(w.status_is("n2", member_status::failed));
    EXPECT_EQ(w.reconcile_once(), 0u);
}

TEST(agent_gossip, graceful_leave_deregisters_the_node) {
    world w(3);
    ASSERT_TRUE(w.net.run_until([&] { return w.table.members().size() == 3; }, w.net.now() + 10s));
    w.reconcile_once();
    w.net.node(1).leave();
    ASSERT_TRUE(w.wait_status("n1", member_status::left, 10s));
    EXPECT_EQ(w.reconcile_once(), 1u);
    EXPECT_FALSE(w.cat().get_node("n1"));
    EXPECT_TRUE(w.cat().get_node("n0"));
}

TEST(agent_gossip, force_leave_marks_a_failed_member_left_and_prune_forgets_it) {
    world w(4);
    ASSERT_TRUE(w.net.run_until([&] { return w.table.members().size() == 4; }, w.net.now() + 10s));
    w.reconcile_once();
    w.net.kill(3);
    ASSERT_TRUE(w.wait_status("n3", member_status::failed));
    w.reconcile_once();
    gossip::serf::leave_intent alive_one{w.table.tick(), "n1", false};
    EXPECT_TRUE(w.table.leave_intent(alive_one, w.net.now()));  // an alive member is leaving...
    EXPECT_TRUE(w.status_is("n1", member_status::leaving));
    EXPECT_TRUE(w.table.join_intent(gossip::serf::join_intent{w.table.tick(), "n1"}));  // ...until it refutes
    EXPECT_TRUE(w.status_is("n1", member_status::alive));
    gossip::serf::leave_intent l{w.table.tick(), "n3", false};
    EXPECT_TRUE(w.table.leave_intent(l, w.net.now()));
    EXPECT_FALSE(w.table.leave_intent(l, w.net.now()));  // same Lamport time: applied once
    EXPECT_TRUE(w.status_is("n3", member_status::left));
    w.reconcile_once();
    EXPECT_FALSE(w.cat().get_node("n3"));
    gossip::serf::leave_intent prune{w.table.tick(), "n3", true};
    EXPECT_TRUE(w.table.leave_intent(prune, w.net.now()));
    EXPECT_FALSE(w.table.find("n3"));
}

TEST(agent_gossip, a_leaving_member_that_goes_silent_has_left) {
    world w(4);
    ASSERT_TRUE(w.net.run_until([&] { return w.table.members().size() == 4; }, w.net.now() + 10s));
    w.reconcile_once();
    // n3 sent its leave intent, but memberlist's dead message never reached us: it just stops answering.
    EXPECT_TRUE(w.table.leave_intent(gossip::serf::leave_intent{w.table.tick(), "n3", false}, w.net.now()));
    w.net.kill(3);
    ASSERT_TRUE(w.wait_status("n3", member_status::left));
    EXPECT_EQ(w.reconcile_once(), 1u);
    EXPECT_FALSE(w.cat().get_node("n3"));
}

TEST(agent_gossip, failed_member_is_reaped_after_reconnect_timeout) {
    world w(3);
    ASSERT_TRUE(w.net.run_until([&] { return w.table.members().size() == 3; }, w.net.now() + 10s));
    w.reconcile_once();
    w.net.kill(2);
    ASSERT_TRUE(w.wait_status("n2", member_status::failed));
    w.reconcile_once();
    EXPECT_FALSE(w.table.reap(w.net.now(), 10min, 24h));
    w.net.run_for(10min + 1s);
    EXPECT_TRUE(w.table.reap(w.net.now(), 10min, 24h));
    EXPECT_FALSE(w.table.find("n2"));
    EXPECT_EQ(w.reconcile_once(), 1u);
    EXPECT_FALSE(w.cat().get_node("n2"));
    EXPECT_TRUE(w.cat().get_node("n1"));
}

TEST(agent_gossip, reconcile_leaves_catalog_only_nodes_and_the_local_node_alone) {
    state::fsm fsm;
    state::change_set cs;
    catalog::register_request ext;  // an external node registered through /v1/catalog: no serfHealth
    ext.n.name = "db-ext";
    ext.n.address = "10.0.0.9";
    fsm.apply(ext, 2, cs);
    catalog::register_request self;
    self.n.name = "n0";
    self.n.address = "127.0.0.1";
    catalog::check c;
    c.check_id = "serfHealth";
    c.status = "passing";
    self.checks.push_back(c);
    fsm.apply(self, 3, cs);
    std::map<std::string, serf_member> none;
    EXPECT_TRUE(reconcile(fsm.tables().catalog, none, "n0", "dc1").empty());
    std::map<std::string, serf_member> left;
    left["n0"].name = "n0";
    left["n0"].status = member_status::left;
    left["n0"].tags = {{"role", "consul"}, {"dc", "dc1"}};
    EXPECT_TRUE(reconcile(fsm.tables().catalog, left, "n0", "dc1").empty());
    // A plain memberlist peer (no Serf tags) or another datacenter's agent is not registered.
    std::map<std::string, serf_member> others;
    others["plain"].name = "plain";
    others["plain"].addr = "10.0.0.7";
    others["plain"].status = member_status::alive;
    others["remote"] = others["plain"];
    others["remote"].name = "remote";
    others["remote"].tags = {{"role", "node"}, {"dc", "dc2"}};
    EXPECT_TRUE(reconcile(fsm.tables().catalog, others, "n0", "dc1").empty());
}

TEST(agent_gossip, join_addresses_take_the_default_port) {
    auto a = resolve_join_address("127.0.0.1", 8301);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->to_string(), "127.0.0.1:8301");
    a = resolve_join_address("127.0.0.1:9000", 8301);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->port, 9000);
    a = resolve_join_address("[::1]:9001", 8301);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->ip.size(), 16u);
    EXPECT_EQ(a->port, 9001);
    EXPECT_FALSE(resolve_join_address("127.0.0.1:0", 8301));
    EXPECT_FALSE(resolve_join_address("[::1", 8301));
}
