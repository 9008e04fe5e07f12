// state::fsm, change sets, watch_hub and state::service: the same commands give
// the same tables; each command reports exactly what it touched; a hub wakes
// only the watchers whose topic a write touched; a write made from shard 1 is
// visible on shard 1 when it returns.
#include "services/state/state.hh"

#include <algorithm>

#include "engine/combinators.hh"
#include "engine/snapshot.hh"
#include "services/catalog/json.hh"
#include "tests/support/coro_test.hh"

using namespace pharos;
using namespace pharos::engine;
using namespace std::chrono_literals;
using state::change_set;
using state::command;
using state::topic;

namespace {

state::kv_op kv_cmd(state::kv_verb verb, const std::string& key, const std::string& value = "", uint64_t cas = 0) {
    state::kv_op op;
    op.verb = verb;
    op.key = key;
    op.value = value;
    op.cas = cas;
    return op;
}

catalog::register_request reg(const std::string& node, const std::string& svc_id = "", const std::string& svc_name = "",
                              const std::string& check_id = "", const std::string& status = "passing") {
    catalog::register_request r;
    r.n.name = node;
    r.n.address = "10.0.0.1";
    if (!svc_id.empty()) {
        catalog::service s;
        s.id = svc_id;
        s.name = svc_name;
        r.svc = s;
    }
    if (!check_id.empty()) {
        catalog::check c;
        c.check_id = check_id;
        c.name = check_id;
        c.status = status;
        c.service_id = svc_id;
        r.checks.push_back(c);
    }
    return r;
}

catalog::deregister_request dereg(const std::string& node, const std::string& svc_id = "") {
    catalog::deregister_request d;
    d.node = node;
    d.service_id = svc_id;
    return d;
}

state::check_update upd(const std::string& node, const std::string& id, const std::string& status) {
    state::check_update u;
    u.node = node;
    u.check_id = id;
    u.status = status;
    u.output = status + " output";
    return u;
}

// Every table of a snapshot, as Consul's JSON plus the indexes.
std::string render(const state::snapshot& s) {
    std::string out = "index=" + std::to_string(s.index) + " kv=" + kv::to_json(s.kv.list("")) +
                      " kvidx=" + std::to_string(s.kv.table_index());
    json::writer w;
    w.begin_array();
    s.catalog.for_each_node([&](const catalog::node& n) { catalog::write_node(w, n); });
    s.catalog.for_each_instance([&](const catalog::service& x) { catalog::write_agent_service(w, x); });
    s.catalog.for_each_check([&](const catalog::check& c) { catalog::write_check(w, c); });
    w.number(s.catalog.nodes_index()).number(s.catalog.services_index()).number(s.catalog.checks_index());
    w.number(s.catalog.service_index("web")).number(s.catalog.node_index("n1"));
    w.end_array();
    return out + " catalog=" + w.take();
}

std::vector<command> script() {
    std::vector<command> cmds;
    cmds.push_back(kv_cmd(state::kv_verb::set, "a", "1"));
    cmds.push_back(kv_cmd(state::kv_verb::set, "a/b", "2"));
    cmds.push_back(kv_cmd(state::kv_verb::set, "a/c", "3"));
    cmds.push_back(kv_cmd(state::kv_verb::cas, "a", "4", 99));  // fails
    cmds.push_back(kv_cmd(state::kv_verb::cas, "a", "5", 2));
    cmds.push_back(reg("n1", "web1", "web", "web1-http"));
    cmds.push_back(reg("n2", "web2", "web", "web2-http", "warning"));
    cmds.push_back(reg("n1", "db1", "db"));
    cmds.push_back(reg("", "x", "x"));  // refused
    cmds.push_back(upd("n1", "web1-http", "critical"));
    cmds.push_back(upd("n1", "nosuch", "critical"));         // refused
    cmds.push_back(kv_cmd(state::kv_verb::lock, "l", "v"));  // refused (no sessions yet)
    cmds.push_back(kv_cmd(state::kv_verb::remove_tree, "a"));
    cmds.push_back(dereg("n2"));
    cmds.push_back(kv_cmd(state::kv_verb::set, "z", "9"));
    cmds.push_back(kv_cmd(state::kv_verb::remove_cas, "z", "", 16));
    cmds.push_back(dereg("n1", "db1"));
    return cmds;
}

std::vector<std::string> sorted_unique(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

}  // namespace

TEST(state_fsm, the_same_commands_give_identical_tables) {
    state::fsm a, b;
    auto cmds = script();
    uint64_t index = 2;
    for (auto& c : cmds) {
        change_set ca, cb;
        state::result ra = a.apply(c, index, ca);
        state::result rb = b.apply(c, index, cb);
        EXPECT_EQ(ra.ok, rb.ok);
        EXPECT_EQ(ra.error, rb.error);
        EXPECT_EQ(ra.index, index);
        EXPECT_EQ(ca.kv_keys, cb.kv_keys);
        EXPECT_EQ(ca.services, cb.services);
        EXPECT_EQ(ca.nodes, cb.nodes);
        EXPECT_EQ(render(a.tables()), render(b.tables())) << "after command at index " << index;
        ++index;
    }
    std::string final_state = render(a.tables());
    EXPECT_NE(final_state.find("\"Node\":\"n1\""), std::string::npos);
    EXPECT_EQ(final_state.find("\"Node\":\"n2\""), std::string::npos);
    EXPECT_EQ(a.tables().index, index - 1);
    // A third fsm fed the same list in one go agrees too.
    state::fsm c;
    index = 2;
    for (auto& cmd : cmds) {
        change_set cs;
        c.apply(cmd, index++, cs);
    }
    EXPECT_EQ(render(c.tables()), final_state);
}

TEST(state_fsm, refused_commands_report_consuls_error_and_touch_nothing) {
    state::fsm f;
    change_set cs;
    EXPECT_FALSE(f.apply(reg("n1", "web1", "web"), 2, cs).error.size() > 0);
    std::string before = render(f.tables());
    cs = change_set();
    auto r = f.apply(reg("", "x", "x"), 3, cs);
    EXPECT_EQ(r.error, "Must provide node");
    EXPECT_TRUE(cs.empty());
    cs = change_set();
    r = f.apply(upd("n1", "nosuch", "passing"), 4, cs);
    EXPECT_FALSE(r.error.empty());
    EXPECT_TRUE(cs.empty());
    cs = change_set();
    r = f.apply(kv_cmd(state::kv_verb::lock, "k", "v"), 5, cs);
    EXPECT_EQ(r.error, "missing session");  // kvsLockTxn's words for an empty session
    EXPECT_TRUE(cs.empty());
    cs = change_set();
    r = f.apply(kv_cmd(state::kv_verb::cas, "k", "v", 77), 6, cs);
    EXPECT_TRUE(r.error.empty());
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(cs.empty());
    // Only the applied index moved.
    std::string after = render(f.tables());
    EXPECT_EQ(after.substr(after.find(' ')), before.substr(before.find(' ')));
}

TEST(state_fsm, change_sets_name_the_kv_keys_each_command_wrote) {
    state::fsm f;
    change_set cs;
    f.apply(kv_cmd(state::kv_verb::set, "a", "1"), 2, cs);
    EXPECT_EQ(cs.kv_keys, std::vector<std::string>{"a"});
    EXPECT_EQ(cs.index, 2u);
    EXPECT_TRUE(cs.services.empty() && cs.nodes.empty());
    EXPECT_FALSE(cs.nodes_table || cs.services_table || cs.checks_table);
    for (const char* k : {"a/b", "a/c/d", "ab", "b"}) {
        cs = change_set();
        f.apply(kv_cmd(state::kv_verb::set, k, "x"), f.tables().index + 1, cs);
    }
    cs = change_set();
    f.apply(kv_cmd(state::kv_verb::remove, "b"), 10, cs);
    EXPECT_EQ(cs.kv_keys, std::vector<std::string>{"b"});
    cs = change_set();
    f.apply(kv_cmd(state::kv_verb::remove, "never-existed"), 11, cs);
    EXPECT_TRUE(cs.kv_keys.empty());
    // delete-tree lists every key it deleted (a prefix, not a directory: "ab" goes too).
    cs = change_set();
    f.apply(kv_cmd(state::kv_verb::remove_tree, "a"), 12, cs);
    EXPECT_EQ(sorted_unique(cs.kv_keys), (std::vector<std::string>{"a", "a/b", "a/c/d", "ab"}));
    EXPECT_EQ(f.tables().kv.size(), 0u);
    cs = change_set();
    f.apply(kv_cmd(state::kv_verb::remove_tree, "a"), 13, cs);
    EXPECT_TRUE(cs.kv_keys.empty());
}

TEST(state_fsm, change_sets_name_the_services_nodes_and_tables_each_catalog_command_touched) {
    state::fsm f;
    change_set cs;
    f.apply(reg("n1", "web1", "web", "web1-http"), 2, cs);
    EXPECT_EQ(sorted_unique(cs.services), std::vector<std::string>{"web"});
    EXPECT_EQ(sorted_unique(cs.nodes), std::vector<std::string>{"n1"});
    EXPECT_TRUE(cs.nodes_table && cs.services_table && cs.checks_table);
    EXPECT_TRUE(cs.kv_keys.empty());

    cs = change_set();
    f.apply(reg("n1", "db1", "db"), 3, cs);
    EXPECT_EQ(sorted_unique(cs.services), std::vector<std::string>{"db"});
    EXPECT_FALSE(cs.nodes_table);  // the node row did not change
    EXPECT_TRUE(cs.services_table);
    EXPECT_FALSE(cs.checks_table);

    // A service check's status: that service and its node; only the checks table.
    cs = change_set();
    f.apply(upd("n1", "web1-http", "critical"), 4, cs);
    EXPECT_EQ(sorted_unique(cs.services), std::vector<std::string>{"web"});
    EXPECT_EQ(sorted_unique(cs.nodes), std::vector<std::string>{"n1"});
    EXPECT_FALSE(cs.nodes_table || cs.services_table);
    EXPECT_TRUE(cs.checks_table);

    // A node-level check: every service on the node.
    cs = change_set();
    f.apply(reg("n1", "", "", "serfHealth"), 5, cs);
    EXPECT_EQ(sorted_unique(cs.services), (std::vector<std::string>{"db", "web"}));
    cs = change_set();
    f.apply(upd("n1", "serfHealth", "critical"), 6, cs);
    EXPECT_EQ(sorted_unique(cs.services), (std::vector<std::string>{"db", "web"}));

    // Deleting a service.
    cs = change_set();
    f.apply(dereg("n1", "db1"), 7, cs);
    EXPECT_EQ(sorted_unique(cs.services), std::vector<std::string>{"db"});
    EXPECT_TRUE(cs.services_table);
    EXPECT_FALSE(cs.nodes_table);

    // Deleting the node: its services, the node, every table.
    cs = change_set();
    f.apply(dereg("n1"), 8, cs);
    EXPECT_EQ(sorted_unique(cs.services), std::vector<std::string>{"web"});
    EXPECT_EQ(sorted_unique(cs.nodes), std::vector<std::string>{"n1"});
    EXPECT_TRUE(cs.nodes_table && cs.services_table && cs.checks_table);

    // An identical re-registration touches nothing.
    f.apply(reg("n2", "api1", "api", "api-check"), 9, cs);
    cs = change_set();
    f.apply(reg("n2", "api1", "api", "api-check"), 10, cs);
    EXPECT_TRUE(cs.empty());
}

// --- watch_hub ---
namespace {

struct wake {
    int result = 1;
    clock::duration after{};
};

task<int> wait_for_touch(state::watcher* w, wake* out) {
    auto start = clock::now();
    out->result = co_await w->wait(clock::now() + 10s);
    out->after = clock::now() - start;
    co_return 0;
}

task<int> notify_later(state::watch_hub* hub, const change_set* cs) {
    co_await sleep_for(1s);
    hub->notify(*cs);
    co_return 0;
}

// Expects a watcher on (t, name) to be woken by `cs` (sent at 1 s), or, if
// not `expected`, to time out at 10 s.
task<void> expect_woken(topic t, std::string name, change_set cs, bool expected) {
    state::watch_hub hub;
    state::watcher w(hub, t, name);
    wake got;
    std::vector<task<int>> both;
    both.push_back(wait_for_touch(&w, &got));
    both.push_back(notify_later(&hub, &cs));
    co_await when_all(std::move(both));
    std::string what = "watcher on " + std::to_string(int(t)) + "/" + name;
    if (expected) {
        EXPECT_EQ(got.result, 0) << what << " was not woken";
        EXPECT_EQ(got.after, 1s) << what;
    } else {
        EXPECT_EQ(got.result, -ETIMEDOUT) << what << " was woken";
        EXPECT_EQ(got.after, 10s) << what;
    }
}

change_set keys(std::vector<std::string> k) {
    change_set cs;
    cs.index = 5;
    cs.kv_keys = std::move(k);
    return cs;
}

change_set services(std::vector<std::string> s) {
    change_set cs;
    cs.index = 5;
    cs.services = std::move(s);
    return cs;
}

}  // namespace

PHAROS_MANUAL_CLOCK_TEST(watch_hub, a_key_watcher_wakes_only_for_its_key) {
    std::vector<std::string> k;
    k.push_back("b");
    co_await expect_woken(topic::kv_key, "a", keys(k), false);
    k.clear();
    k.push_back("a/b");  // a key under "a" is not the key "a"
    co_await expect_woken(topic::kv_key, "a", keys(k), false);
    k.clear();
    k.push_back("b");
    k.push_back("a");
    co_await expect_woken(topic::kv_key, "a", keys(k), true);
}

PHAROS_MANUAL_CLOCK_TEST(watch_hub, a_prefix_watcher_wakes_for_keys_under_it_and_for_a_tree_delete) {
    std::vector<std::string> k;
    k.push_back("a/b");
    co_await expect_woken(topic::kv_prefix, "a/", keys(k), true);
    k.clear();
    k.push_back("ab");
    co_await expect_woken(topic::kv_prefix, "a/", keys(k), false);
    k.clear();
    k.push_back("a");
    co_await expect_woken(topic::kv_prefix, "a/", keys(k), false);
    k.clear();
    k.push_back("b/a/");
    co_await expect_woken(topic::kv_prefix, "a/", keys(k), false);
    // The empty prefix is the whole table.
    k.clear();
    k.push_back("zzz");
    co_await expect_woken(topic::kv_prefix, "", keys(k), true);

    // A delete-tree of "a" through the fsm lists "a/b", which wakes "a/".
    state::fsm f;
    change_set cs;
    f.apply(kv_cmd(state::kv_verb::set, "a/b", "1"), 2, cs);
    cs = change_set();
    f.apply(kv_cmd(state::kv_verb::remove_tree, "a"), 3, cs);
    co_await expect_woken(topic::kv_prefix, "a/", cs, true);
    co_await expect_woken(topic::kv_key, "a/b", cs, true);
    co_await expect_woken(topic::kv_key, "a", cs, false);
}

PHAROS_MANUAL_CLOCK_TEST(watch_hub, service_node_and_table_watchers_wake_only_for_their_topic) {
    std::vector<std::string> s;
    s.push_back("db");
    co_await expect_woken(topic::service, "web", services(s), false);
    s.push_back("web");
    co_await expect_woken(topic::service, "web", services(s), true);
    s.clear();
    s.push_back("webx");
    co_await expect_woken(topic::service, "web", services(s), false);

    change_set tables;
    tables.checks_table = true;
    co_await expect_woken(topic::checks_table, "", tables, true);
    co_await expect_woken(topic::services_table, "", tables, false);
    co_await expect_woken(topic::nodes_table, "", tables, false);
    change_set nodes;
    nodes.nodes.push_back("n1");
    co_await expect_woken(topic::node, "n1", nodes, true);
    co_await expect_woken(topic::node, "n2", nodes, false);
    std::vector<std::string> k;
    k.push_back("web");  // a KV key named like a service is not the service
    co_await expect_woken(topic::service, "web", keys(k), false);
}

PHAROS_MANUAL_CLOCK_TEST(watch_hub, a_service_watcher_wakes_for_a_node_level_check_change) {
    state::fsm f;
    change_set cs;
    f.apply(reg("n1", "web1", "web", "web1-http"), 2, cs);
    f.apply(reg("n1", "", "", "serfHealth"), 3, cs);
    f.apply(reg("n2", "db1", "db", "", ""), 4, cs);
    cs = change_set();
    f.apply(upd("n1", "serfHealth", "critical"), 5, cs);
    co_await expect_woken(topic::service, "web", cs, true);
    co_await expect_woken(topic::service, "db", cs, false);
    co_await expect_woken(topic::node, "n1", cs, true);
    co_await expect_woken(topic::node, "n2", cs, false);
}

PHAROS_CORO_TEST(watch_hub, watchers_unlink_themselves_and_many_share_a_topic) {
    state::watch_hub hub;
    {
        state::watcher a(hub, topic::service, "web");
        state::watcher b(hub, topic::service, "web");
        state::watcher c(hub, topic::kv_prefix, "x/");
        EXPECT_EQ(hub.size(), 3u);
        {
            state::watcher d(hub, topic::service, "web");
            EXPECT_EQ(hub.size(), 4u);
        }
        EXPECT_EQ(hub.size(), 3u);
        hub.notify(services(std::vector<std::string>(1, "web")));  // nobody waiting: nothing to do
    }
    EXPECT_EQ(hub.size(), 0u);
    co_return;
}

// --- state::service on 2 shards ---
namespace {

struct seen {
    bool present = false;
    std::string value;
    uint64_t index = 0;
};

task<seen> write_then_read_here(sharded<state::service>* st, std::string key, std::string value) {
    command c = kv_cmd(state::kv_verb::set, key, value);
    auto res = co_await st->local().write(std::move(c));
    seen out;
    const state::snapshot& s = st->local().read();
    out.index = s.index;
    EXPECT_EQ(res.index, s.index);
    if (const kv::entry* e = s.kv.get(key)) {
        out.present = true;
        out.value = e->value;
    }
    co_return out;
}

task<seen> register_then_read_here(sharded<state::service>* st) {
    command c = reg("n1", "web1", "web", "web1-http");
    auto res = co_await st->local().write(std::move(c));
    EXPECT_TRUE(res.ok);
    seen out;
    const state::snapshot& s = st->local().read();
    out.present = s.catalog.get_service("n1", "web1") != nullptr;
    out.index = s.catalog.service_index("web");
    co_return out;
}

}  // namespace

PHAROS_CORO_TEST(state_service, a_write_from_shard_1_is_visible_on_shard_1_when_it_returns) {
    published<state::snapshot> pub(std::make_unique<state::snapshot>());
    sharded<state::service> st;
    co_await st.start(&st, &pub);
    EXPECT_EQ(st.local().read().index, 1u);  // never 0
    sharded<state::service>* g = &st;
    for (int i = 0; i < 20; ++i) {
        std::string v = "v" + std::to_string(i);
        auto fn = [g, v]() { return write_then_read_here(g, "k", v); };
        seen got = co_await submit_to(1, std::move(fn));
        EXPECT_TRUE(got.present);
        EXPECT_EQ(got.value, v);
        EXPECT_EQ(got.index, uint64_t(i + 2));  // the first user write gets 2
    }
    auto reg_fn = [g]() { return register_then_read_here(g); };
    seen got = co_await submit_to(1, std::move(reg_fn));
    EXPECT_TRUE(got.present);
    EXPECT_EQ(got.index, 22u);
    // And the owner sees the same.
    EXPECT_EQ(st.local().read().index, 22u);
    EXPECT_TRUE(st.local().read().catalog.get_service("n1", "web1"));
    co_await st.stop();
}

namespace {

task<int> watch_on_this_shard(sharded<state::service>* st, topic t, std::string name, clock::duration wait) {
    state::watcher w(st->local().hub(), t, name);
    co_return co_await w.wait(clock::now() + wait);
}

task<int> watch_on_shard_1(sharded<state::service>* st, topic t, std::string name, clock::duration wait) {
    auto fn = [st, t, name, wait]() { return watch_on_this_shard(st, t, name, wait); };
    co_return co_await submit_to(1, std::move(fn));
}

task<int> write_after(sharded<state::service>* st, clock::duration d, command c) {
    co_await sleep_for(d);
    co_await st->local().write(std::move(c));
    co_return 0;
}

}  // namespace

PHAROS_MANUAL_CLOCK_TEST(state_service, every_shards_hub_hears_of_each_write) {
    published<state::snapshot> pub(std::make_unique<state::snapshot>());
    sharded<state::service> st;
    co_await st.start(&st, &pub);
    {
        auto start = clock::now();
        std::vector<task<int>> tasks;
        tasks.push_back(watch_on_shard_1(&st, topic::service, "web", 1min));
        tasks.push_back(write_after(&st, 5s, reg("n1", "web1", "web")));
        auto res = co_await when_all(std::move(tasks));
        EXPECT_EQ(res[0], 0);
        EXPECT_EQ(clock::now() - start, 5s);
    }
    {
        // An unrelated write leaves the watcher waiting until its deadline.
        auto start = clock::now();
        std::vector<task<int>> tasks;
        tasks.push_back(watch_on_shard_1(&st, topic::service, "web", 1min));
        tasks.push_back(write_after(&st, 5s, kv_cmd(state::kv_verb::set, "web", "x")));
        auto res = co_await when_all(std::move(tasks));
        EXPECT_EQ(res[0], -ETIMEDOUT);
        EXPECT_EQ(clock::now() - start, 1min);
    }
    co_await st.stop();
}
