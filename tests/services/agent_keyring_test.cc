// Serf's queries and key rotation on the seeded simulated network: N
// encrypted memberlists, each with a serf_queries whose handler is
// handle_key_query on that node's keyring. A query reaches every node once
// (relays deduplicated), answers come back to the originator, and the key
// queries rotate the ring as Consul's `keyring -install/-use/-remove` does:
// install → every node lists both keys, use → the new primary everywhere and
// gossip still flows, remove → only the new key; removing the primary and
// using an unknown key are refused by every node. Also the keyring file
// format (Consul's serf/local.keyring).
#include <gtest/gtest.h>

#include <unistd.h>

#include <deque>

#include "protocols/json/writer.hh"
#include "services/agent/serf_query.hh"
#include "services/membership/sim.hh"

using namespace pharos;
using namespace pharos::agent;
using namespace std::chrono_literals;
using membership::sim_network;
namespace serf = gossip::serf;

namespace {

const std::string key_a = "AAAAAAAAAAAAAAAA";                  // 16 bytes
const std::string key_b = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";  // 32 bytes
const std::string key_c = "CCCCCCCCCCCCCCCCCCCCCCCC";          // 24 bytes, never installed
std::string b64(const std::string& k) { return json::base64_encode(k); }

struct world {
    sim_network net;
    std::deque<gossip::keyring> rings;
    std::deque<std::vector<std::string>> saved;  // each node's last persisted ring
    std::vector<std::unique_ptr<serf_queries>> q;
    std::vector<int> handled;  // handler calls per node

    // n nodes keyed with `key` ("" = no encryption), joined to n0.
    explicit world(size_t n, const std::string& key = key_a) : net(sim_network::options{}) {
        for (size_t i = 0; i < n; ++i) add(key);
        for (size_t i = 1; i < n; ++i) {
            net.node(i).join({net.addr(0)});
            net.run_for(5ms);
        }
        net.run_for(2s);
    }
    size_t add(const std::string& key) {
        size_t i = net.size();
        rings.emplace_back();
        saved.emplace_back();
        handled.push_back(0);
        if (!key.empty()) rings[i].add_key(key);
        membership::config c = membership::config::lan("", {});
        c.wire.keys = &rings[i];
        membership::delegate d;
        d.on_user_msg = [this, i](std::string_view m) { q[i]->on_user_msg(m, net.now()); };
        net.add(c, d);
        q.push_back(std::make_unique<serf_queries>(net.node(i), "n" + std::to_string(i), serf::tags{}, 7 + i));
        q[i]->set_handler([this, i](const serf::query& qq) -> std::optional<std::string> {
            ++handled[i];
            keyring_saver save = [this, i](const gossip::keyring& r) -> std::optional<std::string> {
                saved[i] = r.keys();
                return std::nullopt;
            };
            if (auto a = handle_key_query(qq, rings[i], save)) return a;
            return std::string("pong from n") + std::to_string(i);
        });
        net.node(i).start();
        return i;
    }
    // Runs a query from node `from` until every member answered or it timed out.
    std::shared_ptr<serf_queries::pending> ask(size_t from, const std::string& name, const std::string& payload,
                                               uint32_t flags = 0) {
        auto p = q[from]->start(name, payload, net.now(), {}, flags);
        net.run_until([&] { return p->responses.size() >= p->num_nodes; }, p->deadline);
        q[from]->close(p);
        return p;
    }
    key_response key_op(size_t from, const char* name, const std::string& raw_key = "") {
        return summarize(*ask(from, name, serf::encode_key_request(raw_key)));
    }
    bool all_alive(size_t n) {
        for (size_t i = 0; i < net.size(); ++i)
            if (net.node(i).num_alive() != n) return false;
        return true;
    }
};

}  // namespace

TEST(agent_keyring, a_query_reaches_every_node_once_and_every_answer_comes_back) {
    world w(5, "");
    auto p = w.ask(2, "ping-ish", "x", serf::query_flag_ack);
    EXPECT_EQ(p->num_nodes, 5u);
    ASSERT_EQ(p->responses.size(), 5u);
    EXPECT_EQ(p->acks.size(), 5u);
    for (auto& [from, payload] : p->responses) EXPECT_EQ(payload, "pong from " + from);
    w.net.run_for(10s);  // every relay has died out
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(w.handled[i], 1) << "n" << i;
    EXPECT_GT(w.q[4]->clock(), p->ltime);  // the query clock was witnessed
}

TEST(agent_keyring, default_timeout_is_serfs) {
    world w(3, "");
    // GossipInterval 200 ms * 16 * ceil(log10(3 + 1)) = 3.2 s
    EXPECT_EQ(w.q[0]->default_timeout(), 3200ms);
}

TEST(agent_keyring, a_silent_node_leaves_the_query_short_at_its_timeout) {
    world w(4, key_a);
    w.net.kill(3);
    auto start = w.net.now();
    auto k = w.key_op(0, list_keys_query);
    EXPECT_GE(w.net.now() - start, 3200ms);
    EXPECT_EQ(k.num_nodes, 4);
    EXPECT_EQ(k.num_resp, 3);
    EXPECT_EQ(k.error, "3/4 nodes reported success");
    EXPECT_EQ(k.keys[b64(key_a)], 3);
}

TEST(agent_keyring, rotation_install_use_remove_on_every_node) {
    world w(4, key_a);
    auto list = w.key_op(1, list_keys_query);
    EXPECT_EQ(list.error, "");
    EXPECT_EQ(list.num_nodes, 4);
    EXPECT_EQ(list.keys, (std::map<std::string, int>{{b64(key_a), 4}}));
    EXPECT_EQ(list.primary_keys, (std::map<std::string, int>{{b64(key_a), 4}}));

    auto inst = w.key_op(1, install_key_query, key_b);
    EXPECT_EQ(inst.error, "");
    EXPECT_EQ(inst.num_resp, 4);
    list = w.key_op(2, list_keys_query);
    EXPECT_EQ(list.keys, (std::map<std::string, int>{{b64(key_a), 4}, {b64(key_b), 4}}));
    EXPECT_EQ(list.primary_keys, (std::map<std::string, int>{{b64(key_a), 4}}));

    auto use = w.key_op(3, use_key_query, key_b);
    EXPECT_EQ(use.error, "");
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(w.rings[i].keys().front(), key_b) << "n" << i;
        EXPECT_EQ(w.saved[i].front(), key_b) << "n" << i;  // persisted
    }
    list = w.key_op(0, list_keys_query);
    EXPECT_EQ(list.primary_keys, (std::map<std::string, int>{{b64(key_b), 4}}));

    // The primary cannot go, on any node.
    auto bad = w.key_op(0, remove_key_query, key_b);
    EXPECT_EQ(bad.error, "4/4 nodes reported failure");
    ASSERT_EQ(bad.messages.size(), 4u);
    for (auto& [node, msg] : bad.messages) EXPECT_EQ(msg, "Removing the primary key is not allowed") << node;

    auto rem = w.key_op(0, remove_key_query, key_a);
    EXPECT_EQ(rem.error, "");
    list = w.key_op(2, list_keys_query);
    EXPECT_EQ(list.keys, (std::map<std::string, int>{{b64(key_b), 4}}));
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(w.saved[i], std::vector<std::string>{key_b});

    // Gossip still flows with the new key only: nobody is suspected for a while, and a node keyed
    // with the new key joins while one with the old key cannot.
    w.net.run_for(30s);
    EXPECT_TRUE(w.all_alive(4));
    size_t old_node = w.add(key_a);
    w.net.node(old_node).join({w.net.addr(1)});
    w.net.run_for(5s);
    EXPECT_EQ(w.net.node(old_node).num_alive(), 1u);
    size_t new_node = w.add(key_b);
    w.net.node(new_node).join({w.net.addr(1)});
    EXPECT_TRUE(w.net.run_until([&] { return w.net.node(new_node).num_alive() == 5; }, w.net.now() + 10s));
    EXPECT_TRUE(w.net.run_until([&] { return w.net.node(0).num_alive() == 5; }, w.net.now() + 10s));
    list = w.key_op(new_node, list_keys_query);
    EXPECT_EQ(list.keys, (std::map<std::string, int>{{b64(key_b), 5}}));
}

TEST(agent_keyring, use_of_an_unknown_key_and_a_bad_key_size_fail_everywhere) {
    world w(3, key_a);
    auto use = w.key_op(0, use_key_query, key_c);
    EXPECT_EQ(use.error, "3/3 nodes reported failure");
    for (auto& [node, msg] : use.messages) EXPECT_EQ(msg, "Requested key is not in the keyring") << node;
    auto inst = w.key_op(0, install_key_query, "short");
    EXPECT_EQ(inst.error, "3/3 nodes reported failure");
    for (auto& [node, msg] : inst.messages) EXPECT_EQ(msg, "key size must be 16, 24 or 32 bytes") << node;
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(w.rings[i].keys(), std::vector<std::string>{key_a});
    // Removing a key that is not installed is a success (memberlist).
    EXPECT_EQ(w.key_op(0, remove_key_query, key_c).error, "");
}

TEST(agent_keyring, without_encryption_every_node_says_so) {
    world w(3, "");
    auto list = w.key_op(0, list_keys_query);
    EXPECT_EQ(list.error, "3/3 nodes reported failure");
    for (auto& [node, msg] : list.messages) EXPECT_EQ(msg, "Keyring is empty (encryption not enabled)") << node;
    auto inst = w.key_op(0, install_key_query, key_a);
    for (auto& [node, msg] : inst.messages) EXPECT_EQ(msg, "No keyring to modify (encryption not enabled)") << node;
    EXPECT_TRUE(w.rings[1].empty());
}

TEST(agent_keyring, node_filter_limits_who_answers) {
    world w(4, "");
    serf::filter f;
    f.nodes = {"n1", "n3"};
    std::vector<std::string> filters;
    filters.push_back(serf::encode_filter(f));
    auto p = w.q[0]->start("who", "", w.net.now(), 2s, 0, filters);
    w.net.run_for(3s);
    w.q[0]->close(p);
    ASSERT_EQ(p->responses.size(), 2u);
    EXPECT_EQ(p->responded, (std::set<std::string>{"n1", "n3"}));
}

TEST(agent_keyring, keyring_file_is_consuls_json_list_primary_first) {
    std::vector<std::string> keys;
    keys.push_back(key_b);
    keys.push_back(key_a);
    std::string text = encode_keyring_file(keys);
    EXPECT_EQ(text, "[\n  \"" + b64(key_b) + "\",\n  \"" + b64(key_a) + "\"\n]");
    std::string err;
    auto back = decode_keyring_file(text, err);
    ASSERT_TRUE(back) << err;
    EXPECT_EQ(*back, keys);
    EXPECT_FALSE(decode_keyring_file("[]", err));
    EXPECT_FALSE(decode_keyring_file("[\"c2hvcnQ=\"]", err));  // "short"
    EXPECT_EQ(err, "key size must be 16, 24 or 32 bytes");

    char tmpl[] = "/tmp/pharos-keyring-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    std::string path = std::string(tmpl) + "/serf/local.keyring";
    EXPECT_FALSE(read_keyring_file(path, err));
    EXPECT_EQ(err, "");  // absent is not an error
    EXPECT_FALSE(write_keyring_file(path, keys));
    auto read = read_keyring_file(path, err);
    ASSERT_TRUE(read) << err;
    EXPECT_EQ(*read, keys);
    ::unlink(path.c_str());
    ::rmdir((std::string(tmpl) + "/serf").c_str());
    ::rmdir(tmpl);
}
