// catalog::store semantics: registration, idempotence, deregistration
// cascades, checks following their service, per-service and per-node indexes,
// table indexes that never go backwards, validation that changes nothing, and
// copies (snapshots) that later writes leave alone.
#include <gtest/gtest.h>

#include <algorithm>

#include "services/catalog/json.hh"
#include "services/catalog/store.hh"

using namespace pharos;
using catalog::check;
using catalog::register_request;
using catalog::service;

namespace {

register_request node_req(const std::string& name, const std::string& addr = "10.0.0.1") {
    register_request r;
    r.n.name = name;
    r.n.address = addr;
    r.n.datacenter = "dc1";
    return r;
}

service svc(const std::string& id, const std::string& name, std::vector<std::string> tags = {}) {
    service s;
    s.id = id;
    s.name = name;
    s.tags = std::move(tags);
    s.port = 80;
    return s;
}

check chk(const std::string& id, const std::string& status, const std::string& service_id = "") {
    check c;
    c.check_id = id;
    c.name = id;
    c.status = status;
    c.service_id = service_id;
    return c;
}

catalog::deregister_request dereg(const std::string& node, const std::string& service_id = "",
                                  const std::string& check_id = "") {
    catalog::deregister_request d;
    d.node = node;
    d.service_id = service_id;
    d.check_id = check_id;
    return d;
}

// Everything a reader can see, as one string: rows (Consul's JSON) and indexes.
std::string dump(const catalog::store& s) {
    json::writer w;
    w.begin_object();
    w.key("nodes").begin_array();
    s.for_each_node([&](const catalog::node& n) { catalog::write_node(w, n); });
    w.end_array();
    w.key("instances").begin_array();
    s.for_each_instance([&](const service& x) {
        w.begin_object().key("Node").string(x.node).key("S");
        catalog::write_agent_service(w, x);
        w.end_object();
    });
    w.end_array();
    w.key("checks").begin_array();
    s.for_each_check([&](const check& c) { catalog::write_check(w, c); });
    w.end_array();
    w.key("idx").begin_array();
    w.number(s.nodes_index()).number(s.services_index()).number(s.checks_index());
    w.end_array();
    w.end_object();
    return w.take();
}

std::vector<std::string> instance_ids(const catalog::store& s, const std::string& name) {
    std::vector<std::string> out;
    s.for_each_instance(name, [&](const service& x) { out.push_back(x.node + "/" + x.id); });
    return out;
}

// n1: web1 (web, tags a,b) with check web1-http; node check serfHealth.
// n2: web2 (web) and db1 (db); node check serfHealth.
catalog::store two_nodes() {
    catalog::store s;
    auto r = node_req("n1");
    r.svc = svc("web1", "web", {"a", "b"});
    r.checks.push_back(chk("serfHealth", "passing"));
    r.checks.push_back(chk("web1-http", "passing", "web1"));
    EXPECT_FALSE(s.register_(r, 10));
    r = node_req("n2", "10.0.0.2");
    r.svc = svc("web2", "web");
    r.checks.push_back(chk("serfHealth", "passing"));
    EXPECT_FALSE(s.register_(r, 11));
    r = node_req("n2", "10.0.0.2");
    r.svc = svc("db1", "db");
    EXPECT_FALSE(s.register_(r, 12));
    return s;
}

}  // namespace

TEST(catalog_store, register_stores_node_service_and_checks_with_their_indexes) {
    catalog::store s;
    auto r = node_req("n1");
    r.n.meta.emplace_back("env", "prod");
    r.svc = svc("web1", "web", {"a"});
    r.checks.push_back(chk("serfHealth", "passing"));
    r.checks.push_back(chk("web1-http", "", "web1"));
    ASSERT_FALSE(s.register_(r, 5));

    const catalog::node* n = s.get_node("n1");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->address, "10.0.0.1");
    EXPECT_EQ(n->create_index, 5u);
    EXPECT_EQ(n->modify_index, 5u);
    EXPECT_EQ(n->meta.size(), 1u);
    const service* sv = s.get_service("n1", "web1");
    ASSERT_TRUE(sv);
    EXPECT_EQ(sv->node, "n1");
    EXPECT_EQ(sv->name, "web");
    EXPECT_EQ(sv->create_index, 5u);
    const check* c = s.get_check("n1", "web1-http");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->status, "critical");  // Consul's default for a check without Status
    EXPECT_EQ(c->service_name, "web");
    EXPECT_EQ(c->service_tags, std::vector<std::string>{"a"});
    EXPECT_EQ(c->node, "n1");
    const check* serf = s.get_check("n1", "serfHealth");
    ASSERT_TRUE(serf);
    EXPECT_EQ(serf->service_name, "");
    EXPECT_EQ(s.node_count(), 1u);
    EXPECT_EQ(s.service_count(), 1u);
    EXPECT_EQ(s.check_count(), 2u);
    EXPECT_EQ(s.nodes_index(), 5u);
    EXPECT_EQ(s.services_index(), 5u);
    EXPECT_EQ(s.checks_index(), 5u);
    EXPECT_EQ(s.service_index("web"), 5u);
    EXPECT_EQ(s.node_index("n1"), 5u);
    EXPECT_EQ(s.service_index("nosuch"), 0u);
}

TEST(catalog_store, service_id_defaults_to_its_name_and_check_id_to_its_name) {
    catalog::store s;
    auto r = node_req("n1");
    r.svc = svc("", "redis");
    check c = chk("", "passing", "redis");
    c.name = "redis alive";
    r.checks.push_back(c);
    ASSERT_FALSE(s.register_(r, 2));
    EXPECT_TRUE(s.get_service("n1", "redis"));
    const check* got = s.get_check("n1", "redis alive");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->service_name, "redis");
}

TEST(catalog_store, identical_reregistration_does_not_bump_any_index) {
    catalog::store s = two_nodes();
    std::string before = dump(s);
    uint64_t web = s.service_index("web"), n1 = s.node_index("n1");
    auto r = node_req("n1");
    r.svc = svc("web1", "web", {"a", "b"});
    r.checks.push_back(chk("serfHealth", "passing"));
    r.checks.push_back(chk("web1-http", "passing", "web1"));
    catalog::touched t;
    ASSERT_FALSE(s.register_(r, 20, &t));
    EXPECT_EQ(dump(s), before);
    EXPECT_EQ(s.service_index("web"), web);
    EXPECT_EQ(s.node_index("n1"), n1);
    EXPECT_TRUE(t.services.empty());
    EXPECT_TRUE(t.nodes.empty());
    EXPECT_FALSE(t.nodes_table || t.services_table || t.checks_table);
    EXPECT_FALSE(s.update_check("n1", "web1-http", "passing", "", 21, &t));
    EXPECT_EQ(dump(s), before);
}

TEST(catalog_store, a_changed_row_keeps_its_create_index) {
    catalog::store s = two_nodes();
    auto r = node_req("n1", "10.9.9.9");
    ASSERT_FALSE(s.register_(r, 30));
    EXPECT_EQ(s.get_node("n1")->create_index, 10u);
    EXPECT_EQ(s.get_node("n1")->modify_index, 30u);
    r = node_req("n1", "10.9.9.9");
    r.svc = svc("web1", "web", {"c"});
    ASSERT_FALSE(s.register_(r, 31));
    EXPECT_EQ(s.get_service("n1", "web1")->create_index, 10u);
    EXPECT_EQ(s.get_service("n1", "web1")->modify_index, 31u);
    ASSERT_FALSE(s.update_check("n1", "web1-http", "warning", "slow", 32));
    EXPECT_EQ(s.get_check("n1", "web1-http")->create_index, 10u);
    EXPECT_EQ(s.get_check("n1", "web1-http")->modify_index, 32u);
    EXPECT_EQ(s.get_check("n1", "web1-http")->output, "slow");
}

TEST(catalog_store, deregistering_a_service_removes_its_checks_and_nothing_else) {
    catalog::store s = two_nodes();
    ASSERT_FALSE(s.deregister(dereg("n1", "web1"), 40));
    EXPECT_FALSE(s.get_service("n1", "web1"));
    EXPECT_FALSE(s.get_check("n1", "web1-http"));
    EXPECT_TRUE(s.get_check("n1", "serfHealth"));
    EXPECT_TRUE(s.get_node("n1"));
    EXPECT_EQ(instance_ids(s, "web"), std::vector<std::string>{"n2/web2"});
    EXPECT_EQ(s.service_index("web"), 40u);
    EXPECT_EQ(s.services_index(), 40u);
    EXPECT_EQ(s.checks_index(), 40u);
    EXPECT_EQ(s.nodes_index(), 11u);  // the node row did not change
}

TEST(catalog_store, deregistering_a_check_removes_only_that_check) {
    catalog::store s = two_nodes();
    uint64_t db = s.service_index("db");
    ASSERT_FALSE(s.deregister(dereg("n1", "", "web1-http"), 41));
    EXPECT_FALSE(s.get_check("n1", "web1-http"));
    EXPECT_TRUE(s.get_service("n1", "web1"));
    EXPECT_EQ(s.checks_index(), 41u);
    EXPECT_EQ(s.service_index("web"), 41u);
    EXPECT_EQ(s.service_index("db"), db);
}

TEST(catalog_store, deregistering_a_node_removes_its_services_and_checks) {
    catalog::store s = two_nodes();
    catalog::touched t;
    ASSERT_FALSE(s.deregister(dereg("n2"), 42, &t));
    EXPECT_FALSE(s.get_node("n2"));
    EXPECT_FALSE(s.get_service("n2", "web2"));
    EXPECT_FALSE(s.get_service("n2", "db1"));
    EXPECT_FALSE(s.get_check("n2", "serfHealth"));
    EXPECT_EQ(instance_ids(s, "db"), std::vector<std::string>{});
    EXPECT_EQ(instance_ids(s, "web"), std::vector<std::string>{"n1/web1"});
    EXPECT_EQ(s.node_count(), 1u);
    EXPECT_EQ(s.service_count(), 1u);
    EXPECT_EQ(s.check_count(), 2u);
    EXPECT_EQ(s.service_index("web"), 42u);
    EXPECT_EQ(s.service_index("db"), 42u);
    EXPECT_EQ(s.node_index("n2"), 42u);
    EXPECT_EQ(s.node_index("n1"), 10u);
    EXPECT_TRUE(t.nodes_table && t.services_table && t.checks_table);
}

TEST(catalog_store, deregistering_what_does_not_exist_changes_nothing) {
    catalog::store s = two_nodes();
    std::string before = dump(s);
    ASSERT_FALSE(s.deregister(dereg("nosuch"), 50));
    ASSERT_FALSE(s.deregister(dereg("n1", "nosuch"), 51));
    ASSERT_FALSE(s.deregister(dereg("n1", "", "nosuch"), 52));
    EXPECT_EQ(dump(s), before);
}

TEST(catalog_store, checks_follow_their_services_name_and_tags) {
    catalog::store s = two_nodes();
    auto r = node_req("n1");
    r.svc = svc("web1", "web", {"v2"});
    ASSERT_FALSE(s.register_(r, 60));
    const check* c = s.get_check("n1", "web1-http");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->service_tags, std::vector<std::string>{"v2"});
    EXPECT_EQ(c->modify_index, 60u);
    // Renaming the service (same ID) moves the instance and its check.
    r = node_req("n1");
    r.svc = svc("web1", "frontend", {"v2"});
    ASSERT_FALSE(s.register_(r, 61));
    c = s.get_check("n1", "web1-http");
    EXPECT_EQ(c->service_name, "frontend");
    EXPECT_EQ(instance_ids(s, "web"), std::vector<std::string>{"n2/web2"});
    EXPECT_EQ(instance_ids(s, "frontend"), std::vector<std::string>{"n1/web1"});
    EXPECT_EQ(s.service_index("web"), 61u);  // lost an instance
    EXPECT_EQ(s.service_index("frontend"), 61u);
}

TEST(catalog_store, a_write_to_one_service_does_not_raise_anothers_index) {
    catalog::store s = two_nodes();
    uint64_t db = s.service_index("db");
    auto r = node_req("n1");
    r.svc = svc("web1", "web", {"z"});
    ASSERT_FALSE(s.register_(r, 70));
    ASSERT_FALSE(s.update_check("n1", "web1-http", "critical", "down", 71));
    EXPECT_EQ(s.service_index("web"), 71u);
    EXPECT_EQ(s.service_index("db"), db);
    EXPECT_EQ(s.node_index("n2"), 12u);
    EXPECT_EQ(s.node_index("n1"), 71u);
}

TEST(catalog_store, a_node_level_check_change_raises_every_service_on_that_node) {
    catalog::store s = two_nodes();
    uint64_t web_on_n1_only = 0;
    catalog::touched t;
    ASSERT_FALSE(s.update_check("n2", "serfHealth", "critical", "gone", 80, &t));
    EXPECT_EQ(s.service_index("web"), 80u);
    EXPECT_EQ(s.service_index("db"), 80u);
    EXPECT_EQ(s.node_index("n2"), 80u);
    EXPECT_EQ(s.node_index("n1"), 10u);
    std::sort(t.services.begin(), t.services.end());
    t.services.erase(std::unique(t.services.begin(), t.services.end()), t.services.end());
    EXPECT_EQ(t.services, (std::vector<std::string>{"db", "web"}));
    (void)web_on_n1_only;
    // A new node-level check and its removal do the same.
    auto r = node_req("n2", "10.0.0.2");
    r.checks.push_back(chk("disk", "warning"));
    ASSERT_FALSE(s.register_(r, 81));
    EXPECT_EQ(s.service_index("db"), 81u);
    ASSERT_FALSE(s.deregister(dereg("n2", "", "disk"), 82));
    EXPECT_EQ(s.service_index("db"), 82u);
    EXPECT_EQ(s.service_index("web"), 82u);
    // And so does a change to the node row itself (health and catalog answers carry it).
    ASSERT_FALSE(s.register_(node_req("n2", "10.0.0.22"), 83));
    EXPECT_EQ(s.service_index("db"), 83u);
}

TEST(catalog_store, moving_a_check_between_services_raises_both_services) {
    catalog::store s = two_nodes();
    // web1-http on n1 belongs to web1 (web); add svc api1 (api) on n1 and move the check to it.
    auto r = node_req("n1");
    r.svc = svc("api1", "api");
    ASSERT_FALSE(s.register_(r, 90));
    r = node_req("n1");
    r.checks.push_back(chk("web1-http", "passing", "api1"));
    ASSERT_FALSE(s.register_(r, 91));
    EXPECT_EQ(s.get_check("n1", "web1-http")->service_name, "api");
    EXPECT_EQ(s.service_index("api"), 91u);
    EXPECT_EQ(s.service_index("web"), 91u);  // web lost a check: its health answer changed
    // From a service check to a node-level check: every service on the node changes.
    r = node_req("n1");
    r.checks.push_back(chk("web1-http", "passing"));
    ASSERT_FALSE(s.register_(r, 92));
    EXPECT_EQ(s.service_index("api"), 92u);
    EXPECT_EQ(s.service_index("web"), 92u);
}

TEST(catalog_store, table_and_name_indexes_never_go_backwards_after_deletes) {
    catalog::store s = two_nodes();
    ASSERT_FALSE(s.deregister(dereg("n1"), 100));
    ASSERT_FALSE(s.deregister(dereg("n2"), 101));
    EXPECT_EQ(s.node_count(), 0u);
    EXPECT_EQ(s.nodes_index(), 101u);
    EXPECT_EQ(s.services_index(), 101u);
    EXPECT_EQ(s.checks_index(), 101u);
    EXPECT_EQ(s.service_index("web"), 101u);
    EXPECT_EQ(s.service_index("db"), 101u);
    EXPECT_EQ(s.node_index("n1"), 100u);
    EXPECT_EQ(s.node_index("n2"), 101u);
}

TEST(catalog_store, validation_errors_leave_the_store_unchanged) {
    catalog::store s = two_nodes();
    std::string before = dump(s);
    uint64_t web = s.service_index("web");
    catalog::touched t;

    auto r = node_req("");
    EXPECT_EQ(s.register_(r, 200, &t).value_or(""), "Must provide node");
    r = node_req("n9", "");
    EXPECT_EQ(s.register_(r, 201, &t).value_or(""), "Must provide address");
    r = node_req("n9");
    r.skip_node_update = true;  // and the node does not exist
    r.n.address.clear();
    EXPECT_TRUE(s.register_(r, 202, &t));
    r = node_req("n1", "10.1.1.1");  // a node change would happen first if validation were late
    r.svc = svc("x", "");
    EXPECT_EQ(s.register_(r, 203, &t).value_or(""), "Must provide service name");
    r = node_req("n1", "10.1.1.1");
    r.svc = svc("web1", "web", {"changed"});
    r.checks.push_back(chk("c", "bogus", "web1"));
    EXPECT_EQ(s.register_(r, 204, &t).value_or(""), "Invalid check status: 'bogus'");
    r = node_req("n1", "10.1.1.1");
    r.checks.push_back(chk("serfHealth", "critical"));
    r.checks.push_back(chk("c", "passing", "nosuch"));
    EXPECT_EQ(s.register_(r, 205, &t).value_or(""), "Missing service 'nosuch' registration");
    r = node_req("n1", "10.1.1.1");
    r.checks.push_back(chk("", "passing"));
    r.checks.back().name.clear();
    EXPECT_TRUE(s.register_(r, 206, &t));
    EXPECT_EQ(s.deregister(dereg(""), 207, &t).value_or(""), "Must provide node");
    EXPECT_TRUE(s.update_check("n1", "nosuch", "passing", "", 208, &t));
    EXPECT_TRUE(s.update_check("n1", "web1-http", "bogus", "", 209, &t));

    EXPECT_EQ(dump(s), before);
    EXPECT_EQ(s.service_index("web"), web);
    EXPECT_EQ(s.node_index("n9"), 0u);
    EXPECT_TRUE(t.services.empty());
    EXPECT_TRUE(t.nodes.empty());
    EXPECT_FALSE(t.nodes_table || t.services_table || t.checks_table);
}

TEST(catalog_store, skip_node_update_keeps_the_node_row) {
    catalog::store s = two_nodes();
    auto r = node_req("n1", "");
    r.skip_node_update = true;
    r.svc = svc("api1", "api");
    ASSERT_FALSE(s.register_(r, 210));
    EXPECT_EQ(s.get_node("n1")->address, "10.0.0.1");
    EXPECT_EQ(s.get_node("n1")->modify_index, 10u);
    EXPECT_TRUE(s.get_service("n1", "api1"));
}

TEST(catalog_store, a_copy_is_a_snapshot_that_later_writes_leave_alone) {
    catalog::store s = two_nodes();
    catalog::store snap = s;
    std::string before = dump(snap);
    auto r = node_req("n1", "10.5.5.5");
    r.svc = svc("web1", "web", {"new"});
    r.checks.push_back(chk("extra", "passing"));
    ASSERT_FALSE(s.register_(r, 300));
    ASSERT_FALSE(s.update_check("n1", "web1-http", "critical", "x", 301));
    ASSERT_FALSE(s.deregister(dereg("n2"), 302));
    EXPECT_EQ(dump(snap), before);
    EXPECT_EQ(snap.service_index("web"), 11u);
    EXPECT_EQ(snap.get_check("n1", "web1-http")->status, "passing");
    EXPECT_TRUE(snap.get_node("n2"));
    EXPECT_NE(dump(s), before);
    // And writes to the copy leave the original alone.
    catalog::store snap2 = s;
    std::string after = dump(s);
    ASSERT_FALSE(snap2.deregister(dereg("n1"), 303));
    EXPECT_EQ(dump(s), after);
}

TEST(catalog_store, instances_are_listed_by_service_then_node_then_id) {
    catalog::store s;
    auto r = node_req("b");
    r.svc = svc("w2", "web");
    ASSERT_FALSE(s.register_(r, 2));
    r = node_req("a");
    r.svc = svc("w9", "web");
    ASSERT_FALSE(s.register_(r, 3));
    r = node_req("a");
    r.svc = svc("w1", "web");
    ASSERT_FALSE(s.register_(r, 4));
    r = node_req("a");
    r.svc = svc("w", "webx");  // a name that extends "web" is not an instance of web
    ASSERT_FALSE(s.register_(r, 5));
    EXPECT_EQ(instance_ids(s, "web"), (std::vector<std::string>{"a/w1", "a/w9", "b/w2"}));
}
