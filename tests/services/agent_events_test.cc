// Consul's user events over Serf's messageUserEvent (services/agent/serf_events.hh):
// the event Lamport clock and the de-duplicating buffer of serf_events fed by
// hand, Consul's UserEvent payload against a byte vector, the node/service/tag
// filters, and on the seeded simulated network three memberlists, each with a
// serf_events and an agent-like buffer: an event fired on one is in every
// buffer once, with the same ID and LTime, and the filters hold on receipt;
// Serf's push/pull state repairs an event a node missed in gossip, and a node
// that joins ignoring old events does not replay them.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>

#include "services/agent/serf_events.hh"
#include "services/membership/sim.hh"

using namespace pharos;
using namespace pharos::agent;
using namespace std::chrono_literals;
using membership::sim_network;
namespace serf = gossip::serf;

namespace {

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int c : b) s.push_back(char(c));
    return s;
}
std::string hdr(int b, std::string_view s) { return bytes({b}) + std::string(s); }

// A serf_events whose broadcasts and deliveries are recorded.
struct recorder {
    std::vector<std::string> sent;
    std::vector<serf::user_event> got;
    serf_events ev;
    recorder() : ev([this](std::string m) { sent.push_back(std::move(m)); }) {
        ev.set_handler([this](const serf::user_event& e) { got.push_back(e); });
    }
};

std::string msg(uint64_t ltime, std::string name, std::string payload = "") {
    serf::user_event e;
    e.ltime = ltime;
    e.name = std::move(name);
    e.payload = std::move(payload);
    return serf::encode_user_event(e);
}

catalog::service svc(std::string id, std::vector<std::string> tags) {
    catalog::service s;
    s.id = id;
    s.name = std::move(id);
    s.tags = std::move(tags);
    return s;
}

}  // namespace

TEST(agent_events, fire_stamps_the_clock_then_ticks_and_delivers_locally_first) {
    recorder r;
    uint64_t lt = 99;
    EXPECT_EQ(r.ev.fire("a", "x", false, &lt), std::nullopt);
    EXPECT_EQ(lt, 1u);  // Serf: the clock starts at 1; LTime = clock, then the clock moves on
    EXPECT_EQ(r.ev.clock(), 2u);
    ASSERT_EQ(r.got.size(), 1u);
    ASSERT_EQ(r.sent.size(), 1u);
    EXPECT_EQ(r.sent[0], msg(1, "a", "x"));
    EXPECT_EQ(r.ev.fire("a", "x", false, &lt), std::nullopt);
    EXPECT_EQ(lt, 2u);
    EXPECT_EQ(r.got.size(), 2u);  // same name and payload, another LTime: a new event
}

TEST(agent_events, a_received_event_is_delivered_and_relayed_once_and_witnessed) {
    recorder r;
    EXPECT_TRUE(r.ev.on_user_msg(msg(40, "deploy", "v1")));
    EXPECT_EQ(r.ev.clock(), 41u);  // witnessed: max(clock, LTime + 1)
    EXPECT_TRUE(r.ev.on_user_msg(msg(40, "deploy", "v1")));  // a relay of it: consumed, dropped
    EXPECT_TRUE(r.ev.on_user_msg(msg(40, "deploy", "v2")));  // same LTime, other payload: new
    EXPECT_TRUE(r.ev.on_user_msg(msg(40, "other", "v1")));   // same LTime, other name: new
    EXPECT_TRUE(r.ev.on_user_msg(msg(12, "late", "")));      // older but inside the window: new
    ASSERT_EQ(r.got.size(), 4u);
    EXPECT_EQ(r.sent.size(), 4u);  // each new one relayed once, byte for byte
    EXPECT_EQ(r.sent[0], msg(40, "deploy", "v1"));
    EXPECT_EQ(r.ev.clock(), 41u);
    EXPECT_FALSE(r.ev.on_user_msg(bytes({0x04, 0x80})));  // a query: not ours
    EXPECT_TRUE(r.ev.on_user_msg(bytes({0x03, 0x81})));   // ours but malformed: dropped
    EXPECT_EQ(r.got.size(), 4u);
    // Our next event comes after everything witnessed.
    uint64_t lt = 0;
    r.ev.fire("mine", "", false, &lt);
    EXPECT_EQ(lt, 41u);
}

TEST(agent_events, events_older_than_the_buffer_window_are_dropped) {
    recorder r;
    r.ev.on_user_msg(msg(1000, "new"));
    EXPECT_EQ(r.ev.clock(), 1001u);
    r.ev.on_user_msg(msg(1001 - 512, "edge"));   // clock - 512: still inside
    r.ev.on_user_msg(msg(1001 - 513, "stale"));  // below the window: Serf drops it, no relay
    ASSERT_EQ(r.got.size(), 2u);
    EXPECT_EQ(r.got[1].name, "edge");
    EXPECT_EQ(r.sent.size(), 2u);
    // A slot reused by a newer LTime forgets the older one's events.
    r.ev.on_user_msg(msg(1000 + 512, "wrap"));
    r.ev.on_user_msg(msg(1000 + 512, "wrap"));
    EXPECT_EQ(r.got.size(), 3u);
}

TEST(agent_events, fire_refuses_events_over_serfs_size_limit) {
    recorder r;
    auto err = r.ev.fire("n", std::string(512, 'x'), false);
    EXPECT_EQ(err, "user event exceeds configured limit of 512 bytes before encoding");
    err = r.ev.fire("n", std::string(500, 'x'), false);  // fits before encoding, not after
    EXPECT_EQ(err, "encoded user event exceeds configured limit of 512 bytes after encoding");
    EXPECT_TRUE(r.sent.empty());
    EXPECT_TRUE(r.got.empty());
    EXPECT_EQ(r.ev.clock(), 1u);  // a refused event does not tick the clock
}

TEST(agent_events, consul_user_event_payload_matches_consuls_msgpack) {
    user_event e;
    e.id = "0123";
    e.name = "deploy";
    e.payload = "v1";
    e.service_filter = "web";
    e.ltime = 77;  // not on the wire
    // Go struct order, omitempty fields left out: {ID, n, p, sf, v}.
    std::string want = bytes({0x85}) + hdr(0xa2, "ID") + hdr(0xa4, "0123") + hdr(0xa1, "n") + hdr(0xa6, "deploy") +
                       hdr(0xa1, "p") + hdr(0xa2, "v1") + hdr(0xa2, "sf") + hdr(0xa3, "web") + hdr(0xa1, "v") +
                       bytes({0x01});
    EXPECT_EQ(encode_consul_event(e), want);
    auto back = decode_consul_event(want);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->id, "0123");
    EXPECT_EQ(back->name, "deploy");
    EXPECT_EQ(back->payload, "v1");
    EXPECT_EQ(back->service_filter, "web");
    EXPECT_EQ(back->node_filter, "");
    EXPECT_EQ(back->version, 1);
    EXPECT_EQ(back->ltime, 0u);
    // Consul's own encoder (WriteExt) writes Payload as bin8; and the Serf event carries the LTime.
    std::string go = bytes({0x83}) + hdr(0xa2, "ID") + hdr(0xa1, "i") + hdr(0xa1, "n") + hdr(0xa1, "x") +
                     hdr(0xa1, "p") + bytes({0xc4, 1, 'z'});
    serf::user_event s;
    s.ltime = 9;
    s.name = "consul:event:x";
    s.payload = go;
    auto c = consul_event_of(s);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->payload, "z");
    EXPECT_EQ(c->ltime, 9u);
    s.name = "x";  // not Consul's
    EXPECT_FALSE(consul_event_of(s));
    s.name = "consul:event:x";
    s.payload = want.substr(0, want.size() - 1);
    EXPECT_FALSE(consul_event_of(s));
}

TEST(agent_events, filters_are_consuls_should_process_user_event) {
    std::map<std::string, catalog::service> services;
    services["web1"] = svc("web1", {"primary", "v2"});
    services["db"] = svc("db", {"replica"});
    auto pass = [&](std::string nf, std::string sf, std::string tf) {
        user_event e;
        e.node_filter = std::move(nf);
        e.service_filter = std::move(sf);
        e.tag_filter = std::move(tf);
        return should_process(e, "node-a", services);
    };
    EXPECT_TRUE(pass("", "", ""));
    EXPECT_TRUE(pass("node", "", ""));  // unanchored, as Go's MatchString
    EXPECT_FALSE(pass("^b", "", ""));
    EXPECT_FALSE(pass("(", "", ""));  // does not compile: not processed
    EXPECT_TRUE(pass("", "web", ""));
    EXPECT_FALSE(pass("", "^web$", ""));  // service IDs, as Consul's local state is keyed
    EXPECT_TRUE(pass("", "web", "^v2$"));
    EXPECT_FALSE(pass("", "web", "replica"));
    EXPECT_TRUE(pass("", ".", "replica"));
    EXPECT_FALSE(pass("^b", "web", ""));
    EXPECT_EQ(validate_event(user_event{}), "User event missing name");
    user_event e;
    e.name = "x";
    e.tag_filter = "t";
    EXPECT_EQ(validate_event(e), "Cannot provide tag filter without service filter");
    e.service_filter = "[";
    EXPECT_EQ(validate_event(e), "Invalid service filter: [");
}

namespace {

// n memberlists on the simulated network, each with a serf_events and the agent's side: Consul
// events that pass the node's filters land in its buffer.
struct world {
    sim_network net;
    std::vector<std::unique_ptr<serf_events>> ev;
    std::deque<std::map<std::string, catalog::service>> services;
    std::deque<std::vector<user_event>> buffers;
    std::vector<bool> deaf;      // drops every gossiped user message (lost in gossip)
    std::vector<bool> ignoring;  // joining with ignore_old (Consul's joins)

    explicit world(size_t n) : net(sim_network::options{}) {
        for (size_t i = 0; i < n; ++i) add();
        for (size_t i = 1; i < n; ++i) {
            net.node(i).join({net.addr(0)});
            net.run_for(5ms);
        }
        net.run_for(2s);
    }
    void add() {
        size_t i = net.size();
        services.emplace_back();
        buffers.emplace_back();
        deaf.push_back(false);
        ignoring.push_back(false);
        membership::delegate d;
        d.on_user_msg = [this, i](std::string_view m) {
            if (!deaf[i]) ev[i]->on_user_msg(m);
        };
        d.local_state = [this, i](bool) {
            serf::push_pull_state pp;
            ev[i]->export_state(pp);
            return serf::encode_push_pull_state(pp);
        };
        d.merge_remote_state = [this, i](std::string_view b, bool join) {
            if (auto pp = serf::decode_push_pull_state(b)) ev[i]->merge_state(*pp, join && ignoring[i]);
        };
        net.add(membership::config::lan("", {}), d);
        ev.push_back(std::make_unique<serf_events>([this, i](std::string m) { net.node(i).broadcast_user(m); }));
        ev[i]->set_handler([this, i](const serf::user_event& e) {
            auto c = consul_event_of(e);
            if (c && should_process(*c, "n" + std::to_string(i), services[i])) buffers[i].push_back(*c);
        });
        net.node(i).start();
    }
    user_event fire(size_t from, user_event e) {
        e.id = "id-" + e.name;
        EXPECT_EQ(fire_consul_event(*ev[from], e, &e.ltime), std::nullopt);
        return e;
    }
};

}  // namespace

TEST(agent_events, an_event_fired_on_one_of_three_agents_is_in_every_buffer_once) {
    world w(3);
    ASSERT_EQ(w.net.node(0).num_alive(), 3u);
    user_event e;
    e.name = "deploy";
    e.payload = "v1.2.3";
    user_event fired = w.fire(1, e);
    EXPECT_EQ(w.buffers[1].size(), 1u);  // delivered locally at once
    w.net.run_for(5s);                  // every relay has died out
    for (size_t i = 0; i < 3; ++i) {
        ASSERT_EQ(w.buffers[i].size(), 1u) << "n" << i;
        const user_event& got = w.buffers[i][0];
        EXPECT_EQ(got.id, fired.id);
        EXPECT_EQ(got.name, "deploy");
        EXPECT_EQ(got.payload, "v1.2.3");
        EXPECT_EQ(got.version, 1);
        EXPECT_EQ(got.ltime, fired.ltime);
        EXPECT_GT(w.ev[i]->clock(), fired.ltime);
    }
    // The next event, from another node, is later on every clock.
    e.name = "second";
    user_event next = w.fire(2, e);
    EXPECT_GT(next.ltime, fired.ltime);
    w.net.run_for(5s);
    for (size_t i = 0; i < 3; ++i) {
        ASSERT_EQ(w.buffers[i].size(), 2u) << "n" << i;
        EXPECT_EQ(w.buffers[i][1].ltime, next.ltime);
    }
}

TEST(agent_events, filters_apply_on_receipt) {
    world w(3);
    w.services[2]["api-1"] = svc("api-1", {"canary"});
    w.services[0]["api-2"] = svc("api-2", {"stable"});
    user_event e;
    e.name = "only-n1";
    e.node_filter = "^n1$";
    w.fire(0, e);
    e = user_event{};
    e.name = "api";
    e.service_filter = "^api";
    w.fire(1, e);
    e.name = "canary";
    e.tag_filter = "canary";
    w.fire(1, e);
    w.net.run_for(5s);
    auto names = [&](size_t i) {
        std::vector<std::string> out;
        for (auto& x : w.buffers[i]) out.push_back(x.name);
        std::sort(out.begin(), out.end());  // arrival order is the gossip's
        return out;
    };
    EXPECT_EQ(names(0), (std::vector<std::string>{"api"}));
    EXPECT_EQ(names(1), (std::vector<std::string>{"only-n1"}));
    EXPECT_EQ(names(2), (std::vector<std::string>{"api", "canary"}));
}

TEST(agent_events, push_pull_repairs_an_event_lost_in_gossip) {
    world w(3);
    w.deaf[2] = true;
    user_event e;
    e.name = "missed";
    user_event fired = w.fire(0, e);
    w.net.run_for(5s);  // the gossip has died out
    EXPECT_TRUE(w.buffers[2].empty());
    w.deaf[2] = false;
    // Push/pull every 30 s with a random member: n2 learns it from the state once, and not again.
    ASSERT_TRUE(w.net.run_until([&] { return !w.buffers[2].empty(); }, w.net.now() + 5min));
    w.net.run_for(2min);
    ASSERT_EQ(w.buffers[2].size(), 1u);
    EXPECT_EQ(w.buffers[2][0].id, fired.id);
    EXPECT_EQ(w.buffers[2][0].ltime, fired.ltime);
    for (size_t i = 0; i < 2; ++i) EXPECT_EQ(w.buffers[i].size(), 1u);
}

TEST(agent_events, a_node_joining_with_ignore_old_does_not_replay_past_events) {
    world w(3);
    user_event e;
    e.name = "before";
    user_event old = w.fire(1, e);
    w.net.run_for(5s);
    w.add();
    w.ignoring[3] = true;
    w.net.node(3).join({w.net.addr(0)});
    w.net.run_for(5s);
    w.ignoring[3] = false;
    EXPECT_GT(w.ev[3]->clock(), old.ltime);  // the clock came with the join's push/pull
    e.name = "after";
    w.fire(2, e);
    w.net.run_for(2min);  // periodic push/pulls carry "before" too: below n3's minimum time
    ASSERT_EQ(w.buffers[3].size(), 1u);
    EXPECT_EQ(w.buffers[3][0].name, "after");
    // Without ignore_old (Serf's Join(ignoreOld=false)) a joiner gets the buffered events.
    w.add();
    w.net.node(4).join({w.net.addr(0)});
    w.net.run_for(5s);
    std::vector<std::string> names;
    for (auto& x : w.buffers[4]) names.push_back(x.name);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"after", "before"}));
}
