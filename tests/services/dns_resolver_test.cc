// dns::resolver over a catalog built in-process: every query form of Consul's
// DNS interface, health filtering, SRV weights/targets/additional records,
// trimming (512 bytes, EDNS, udp_answer_limit, TC), TTLs and error answers.
#include <gtest/gtest.h>

#include <set>

#include "services/dns/resolver.hh"
#include "tests/support/dns_probe.hh"

using namespace pharos;
using dnstest::make_query;

namespace {

struct fixture {
    state::snapshot snap;
    uint64_t index = 10;

    void node(const std::string& name, const std::string& addr, catalog::str_map meta = {},
              catalog::str_map tagged = {}) {
        catalog::register_request r;
        r.n.name = name;
        r.n.address = addr;
        r.n.datacenter = "dc1";
        r.n.meta = std::move(meta);
        r.n.tagged_addresses = std::move(tagged);
        auto err = snap.catalog.register_(r, ++index);
        ASSERT_FALSE(err) << *err;
    }
    // An instance with one service check in `status` ("" for no check).
    void instance(const std::string& node_name, const std::string& id, const std::string& svc, int port,
                  const std::string& status = "passing", std::vector<std::string> tags = {},
                  const std::string& addr = "", int w_pass = 1, int w_warn = 1) {
        const catalog::node* n = snap.catalog.get_node(node_name);
        ASSERT_TRUE(n);
        catalog::register_request r;
        r.n = *n;
        catalog::service s;
        s.id = id;
        s.name = svc;
        s.port = port;
        s.tags = std::move(tags);
        s.address = addr;
        s.weight_passing = w_pass;
        s.weight_warning = w_warn;
        r.svc = s;
        if (!status.empty()) {
            catalog::check c;
            c.check_id = "service:" + id;
            c.name = "check " + id;
            c.status = status;
            c.service_id = id;
            c.service_name = svc;
            r.checks.push_back(c);
        }
        auto err = snap.catalog.register_(r, ++index);
        ASSERT_FALSE(err) << *err;
    }
    void node_check(const std::string& node_name, const std::string& status) {
        catalog::register_request r;
        r.n = *snap.catalog.get_node(node_name);
        catalog::check c;
        c.check_id = "node-health";
        c.name = "node";
        c.status = status;
        r.checks.push_back(c);
        auto err = snap.catalog.register_(r, ++index);
        ASSERT_FALSE(err) << *err;
    }
};

dns::resolver_config base_config() {
    dns::resolver_config c;
    c.domain = "consul.";
    c.datacenter = "dc1";
    return c;
}

dnstest::message ask(dns::resolver& r, const state::snapshot& s, std::string_view name, uint16_t qtype,
                     int edns = -1, bool udp = true) {
    std::string out;
    auto v = r.answer(make_query(77, name, qtype, edns), s, udp, out);
    EXPECT_EQ(v, dns::verdict::reply) << name;
    auto m = dnstest::decode(out);
    EXPECT_TRUE(m.ok) << name << ": malformed response";
    EXPECT_EQ(m.id, 77);
    return m;
}

std::multiset<std::string> data_of(const std::vector<dnstest::rr>& v, uint16_t type = 0) {
    std::multiset<std::string> out;
    for (auto& r : v)
        if (!type || r.type == type) out.insert(r.data);
    return out;
}

// Ten "web" instances on ten nodes 10.0.0.1..10, plus the server node.
fixture web_fixture(int n = 10) {
    fixture f;
    f.node("server", "127.0.0.1");
    f.instance("server", "consul", "consul", 8300);
    for (int i = 1; i <= n; ++i) {
        std::string node = "node" + std::to_string(i);
        f.node(node, "10.0.0." + std::to_string(i));
        f.instance(node, "web" + std::to_string(i), "web", 8000 + i, "passing", {"prod"});
    }
    return f;
}

}  // namespace

TEST(dns_resolver, service_a_answers_only_instances_without_critical_checks) {
    fixture f;
    f.node("n1", "10.0.0.1");
    f.node("n2", "10.0.0.2");
    f.node("n3", "10.0.0.3");
    f.node("n4", "10.0.0.4");
    f.instance("n1", "web1", "web", 80, "passing");
    f.instance("n2", "web2", "web", 80, "warning");
    f.instance("n3", "web3", "web", 80, "critical");
    f.instance("n4", "web4", "web", 80, "passing");
    f.node_check("n4", "critical");  // a critical node check takes every instance on the node out
    dns::resolver r(base_config());
    auto m = ask(r, f.snap, "web.service.consul", dns::type::A);
    EXPECT_EQ(m.rcode, dns::rcode::noerror);
    EXPECT_TRUE(m.aa);
    EXPECT_FALSE(m.ra);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"10.0.0.1", "10.0.0.2"}));
    for (auto& a : m.answer) EXPECT_EQ(a.name, "web.service.consul.");

    auto cfg = base_config();
    cfg.s.only_passing = true;
    dns::resolver strict(cfg);
    m = ask(strict, f.snap, "web.service.consul", dns::type::A);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"10.0.0.1"}));
}

TEST(dns_resolver, no_healthy_instance_is_nxdomain_with_the_soa) {
    fixture f;
    f.node("n1", "10.0.0.1");
    f.instance("n1", "web1", "web", 80, "critical");
    dns::resolver r(base_config());
    for (auto name : {"web.service.consul", "nope.service.consul", "web.service.dc1.consul"}) {
        auto m = ask(r, f.snap, name, dns::type::A);
        EXPECT_EQ(m.rcode, dns::rcode::nxdomain) << name;
        ASSERT_EQ(m.authority.size(), 1u);
        EXPECT_EQ(m.authority[0].type, dns::type::SOA);
        EXPECT_EQ(m.authority[0].name, "consul.");
        EXPECT_EQ(m.authority[0].data, "ns.consul. hostmaster.consul.");
    }
    EXPECT_EQ(r.stats().nxdomain, 3u);
}

TEST(dns_resolver, service_address_beats_node_address_and_duplicates_collapse) {
    fixture f;
    f.node("n1", "10.0.0.1");
    f.instance("n1", "web1", "web", 80, "passing", {}, "192.168.1.1");
    f.instance("n1", "web2", "web", 81, "passing", {}, "192.168.1.1");  // same address: one A
    f.instance("n1", "web3", "web", 82, "passing");                     // node address
    dns::resolver r(base_config());
    auto m = ask(r, f.snap, "web.service.consul", dns::type::A);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"10.0.0.1", "192.168.1.1"}));
}

TEST(dns_resolver, aaaa_answers_ipv6_addresses_and_nodata_without_them) {
    fixture f;
    f.node("n1", "10.0.0.1");
    f.node("n6", "fd00::6");
    f.instance("n1", "web1", "web", 80);
    f.instance("n6", "db1", "db", 80);
    dns::resolver r(base_config());
    auto m = ask(r, f.snap, "db.service.consul", dns::type::AAAA);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"fd00::6"}));
    m = ask(r, f.snap, "web.service.consul", dns::type::AAAA);
    EXPECT_EQ(m.rcode, dns::rcode::noerror);  // the name exists: NODATA
    EXPECT_TRUE(m.answer.empty());
    ASSERT_EQ(m.authority.size(), 1u);
    EXPECT_EQ(m.authority[0].type, dns::type::SOA);
}

TEST(dns_resolver, tags_filter_in_both_forms) {
    fixture f;
    f.node("n1", "10.0.0.1");
    f.node("n2", "10.0.0.2");
    f.instance("n1", "web1", "web", 80, "passing", {"Prod", "v1"});
    f.instance("n2", "web2", "web", 80, "passing", {"canary"});
    dns::resolver r(base_config());
    EXPECT_EQ(data_of(ask(r, f.snap, "prod.web.service.consul", dns::type::A).answer),
              (std::multiset<std::string>{"10.0.0.1"}));
    EXPECT_EQ(data_of(ask(r, f.snap, "canary.web.service.consul", dns::type::A).answer),
              (std::multiset<std::string>{"10.0.0.2"}));
    auto m = ask(r, f.snap, "_web._canary.service.consul", dns::type::SRV);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"1 1 80 n2.node.dc1.consul."}));
    m = ask(r, f.snap, "_web._tcp.service.consul", dns::type::SRV);  // "tcp": no tag filter
    EXPECT_EQ(m.answer.size(), 2u);
    m = ask(r, f.snap, "_web._tcp.consul", dns::type::SRV);  // "service" may be left out for SRV
    EXPECT_EQ(m.answer.size(), 2u);
    m = ask(r, f.snap, "_web._tcp.dc1.consul", dns::type::SRV);
    EXPECT_EQ(m.answer.size(), 2u);
    EXPECT_EQ(ask(r, f.snap, "other.web.service.consul", dns::type::A).rcode, dns::rcode::nxdomain);
}

TEST(dns_resolver, srv_targets_weights_and_additional_records) {
    fixture f;
    f.node("n1", "10.0.0.1", {{"rack", "r1"}, {"rfc1035-raw", "plain"}});
    f.node("n2", "10.0.0.2");
    f.instance("n1", "web1", "web", 8080, "passing", {}, "", 10, 2);
    f.instance("n2", "web2", "web", 8081, "warning", {}, "192.168.0.9", 10, 2);
    dns::resolver r(base_config());
    auto m = ask(r, f.snap, "web.service.consul", dns::type::SRV, 4096);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"1 10 8080 n1.node.dc1.consul.",
                                                             "1 2 8081 c0a80009.addr.dc1.consul."}));
    EXPECT_EQ(data_of(m.additional, dns::type::A), (std::multiset<std::string>{"10.0.0.1", "192.168.0.9"}));
    for (auto& a : m.additional) {
        if (a.type == dns::type::A && a.data == "10.0.0.1") EXPECT_EQ(a.name, "n1.node.dc1.consul.");
        if (a.type == dns::type::A && a.data == "192.168.0.9") EXPECT_EQ(a.name, "c0a80009.addr.dc1.consul.");
    }
    EXPECT_EQ(data_of(m.additional, dns::type::TXT), (std::multiset<std::string>{"\"rack=r1\"", "\"plain\""}));
    EXPECT_TRUE(m.has_opt);
    EXPECT_EQ(m.opt_size, 4096);
}

TEST(dns_resolver, srv_over_ipv6_service_address_uses_a_32_digit_addr_target) {
    fixture f;
    f.node("n1", "10.0.0.1");
    f.instance("n1", "web1", "web", 80, "passing", {}, "2001:db8::1");
    dns::resolver r(base_config());
    auto m = ask(r, f.snap, "web.service.consul", dns::type::SRV);
    ASSERT_EQ(m.answer.size(), 1u);
    EXPECT_EQ(m.answer[0].data, "1 1 80 20010db8000000000000000000000001.addr.dc1.consul.");
    ASSERT_EQ(m.additional.size(), 1u);
    EXPECT_EQ(m.additional[0].type, dns::type::AAAA);
    EXPECT_EQ(m.additional[0].data, "2001:db8::1");
}

TEST(dns_resolver, datacenter_labels) {
    fixture f = web_fixture(2);
    dns::resolver r(base_config());
    EXPECT_EQ(ask(r, f.snap, "web.service.dc1.consul", dns::type::A).answer.size(), 2u);
    EXPECT_EQ(ask(r, f.snap, "web.service.dc1.dc.consul", dns::type::A).answer.size(), 2u);
    EXPECT_EQ(ask(r, f.snap, "web.service.dc2.consul", dns::type::A).rcode, dns::rcode::nxdomain);
    EXPECT_EQ(ask(r, f.snap, "web.service.a.b.c.consul", dns::type::A).rcode, dns::rcode::nxdomain);
    EXPECT_EQ(ask(r, f.snap, "node1.node.dc1.consul", dns::type::A).answer.size(), 1u);
    EXPECT_EQ(ask(r, f.snap, "node1.node.dc2.consul", dns::type::A).rcode, dns::rcode::nxdomain);
}

TEST(dns_resolver, node_lookups_answer_address_and_meta_txt) {
    fixture f;
    f.node("Web-Host", "10.1.2.3", {{"env", "prod"}, {"k=ey", "v`al"}}, {{"lan_ipv6", "fd00::3"}});
    f.node("v6only", "fd00::9");
    f.node("named", "db.example.com");
    dns::resolver r(base_config());
    auto m = ask(r, f.snap, "web-host.node.consul", dns::type::A);  // node names match case-insensitively
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"10.1.2.3"}));
    EXPECT_EQ(m.answer[0].name, "web-host.node.consul.");
    EXPECT_EQ(data_of(m.additional, dns::type::TXT),
              (std::multiset<std::string>{"\"env=prod\"", "\"k`=ey=v``al\""}));
    m = ask(r, f.snap, "Web-Host.node.dc1.consul", dns::type::AAAA);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"fd00::3"}));  // lan_ipv6 tagged address
    m = ask(r, f.snap, "web-host.node.consul", dns::type::TXT);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"\"env=prod\"", "\"k`=ey=v``al\""}));
    m = ask(r, f.snap, "v6only.node.consul", dns::type::A);
    EXPECT_EQ(m.rcode, dns::rcode::noerror);
    EXPECT_TRUE(m.answer.empty());
    m = ask(r, f.snap, "named.node.consul", dns::type::A);
    ASSERT_EQ(m.answer.size(), 1u);
    EXPECT_EQ(m.answer[0].type, dns::type::CNAME);
    EXPECT_EQ(m.answer[0].data, "db.example.com.");
    m = ask(r, f.snap, "missing.node.consul", dns::type::A);
    EXPECT_EQ(m.rcode, dns::rcode::nxdomain);
    EXPECT_EQ(m.authority.size(), 1u);

    auto cfg = base_config();
    cfg.s.enable_additional_node_meta_txt = false;
    dns::resolver quiet(cfg);
    EXPECT_TRUE(ask(quiet, f.snap, "web-host.node.consul", dns::type::A).additional.empty());
}

TEST(dns_resolver, addr_names_decode_back_to_addresses) {
    fixture f;
    dns::resolver r(base_config());
    auto m = ask(r, f.snap, "7f000001.addr.dc1.consul", dns::type::A);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"127.0.0.1"}));
    m = ask(r, f.snap, "c0a80001.addr.consul", dns::type::A);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"192.168.0.1"}));
    m = ask(r, f.snap, "20010db8000000000000000000000001.addr.dc1.consul", dns::type::AAAA);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"2001:db8::1"}));
    m = ask(r, f.snap, "7f000001.addr.consul", dns::type::AAAA);  // wrong type: in Additional
    EXPECT_TRUE(m.answer.empty());
    EXPECT_EQ(data_of(m.additional), (std::multiset<std::string>{"127.0.0.1"}));
    EXPECT_EQ(ask(r, f.snap, "zz000001.addr.consul", dns::type::A).rcode, dns::rcode::nxdomain);
    EXPECT_EQ(ask(r, f.snap, "a.b.addr.consul", dns::type::A).rcode, dns::rcode::nxdomain);
}

TEST(dns_resolver, ptr_finds_nodes_then_service_addresses) {
    fixture f;
    f.node("n1", "10.0.0.1");
    f.node("n6", "2001:db8::5");
    f.instance("n1", "web1", "web", 80, "passing", {}, "192.168.7.7");
    dns::resolver r(base_config());
    auto m = ask(r, f.snap, "1.0.0.10.in-addr.arpa", dns::type::PTR);
    EXPECT_EQ(m.rcode, dns::rcode::noerror);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"n1.node.dc1.consul."}));
    m = ask(r, f.snap, "7.7.168.192.in-addr.arpa", dns::type::PTR);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"web.service.dc1.consul."}));
    m = ask(r, f.snap, "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", dns::type::PTR);
    EXPECT_EQ(data_of(m.answer), (std::multiset<std::string>{"n6.node.dc1.consul."}));
    m = ask(r, f.snap, "9.9.9.9.in-addr.arpa", dns::type::PTR);  // unknown, no recursors
    EXPECT_EQ(m.rcode, dns::rcode::servfail);
}

TEST(dns_resolver, soa_and_ns_at_the_apex) {
    fixture f = web_fixture(1);
    auto cfg = base_config();
    cfg.s.soa_min_ttl = 30;
    dns::resolver r(cfg);
    auto m = ask(r, f.snap, "consul", dns::type::SOA);
    ASSERT_EQ(m.answer.size(), 1u);
    EXPECT_EQ(m.answer[0].type, dns::type::SOA);
    EXPECT_EQ(m.answer[0].ttl, 30u);
    EXPECT_EQ(data_of(m.authority), (std::multiset<std::string>{"server.node.dc1.consul."}));
    EXPECT_EQ(data_of(m.additional), (std::multiset<std::string>{"127.0.0.1"}));
    m = ask(r, f.snap, "consul", dns::type::NS);
    ASSERT_EQ(m.answer.size(), 1u);
    EXPECT_EQ(m.answer[0].name, "consul.");
    EXPECT_EQ(m.answer[0].data, "server.node.dc1.consul.");
    EXPECT_EQ(m.additional.size(), 1u);
    EXPECT_EQ(ask(r, f.snap, "consul", dns::type::A).rcode, dns::rcode::nxdomain);
    EXPECT_EQ(ask(r, f.snap, "consul", dns::type::AXFR).rcode, dns::rcode::notimp);
}

TEST(dns_resolver, unknown_kinds_are_nxdomain) {
    fixture f = web_fixture(1);
    dns::resolver r(base_config());
    for (auto name : {"foo.consul", "web.bogus.consul", "x.query.consul", "web.connect.consul", "service.consul",
                      "node.consul"})
        EXPECT_EQ(ask(r, f.snap, name, dns::type::A).rcode, dns::rcode::nxdomain) << name;
}

TEST(dns_resolver, names_outside_the_domain_are_refused_or_forwarded) {
    fixture f = web_fixture(1);
    dns::resolver r(base_config());
    auto m = ask(r, f.snap, "example.com", dns::type::A);
    EXPECT_EQ(m.rcode, dns::rcode::refused);
    auto cfg = base_config();
    cfg.recursors = true;
    dns::resolver fw(cfg);
    std::string out;
    EXPECT_EQ(fw.answer(make_query(1, "example.com", dns::type::A), f.snap, true, out), dns::verdict::forward);
    EXPECT_TRUE(ask(fw, f.snap, "web.service.consul", dns::type::A).ra);
    ASSERT_TRUE(fw.servfail(make_query(5, "example.com", dns::type::A, 1232), out));
    auto sf = dnstest::decode(out);
    EXPECT_EQ(sf.rcode, dns::rcode::servfail);
    EXPECT_EQ(sf.id, 5);
    EXPECT_TRUE(sf.ra);
    EXPECT_TRUE(sf.has_opt);
}

TEST(dns_resolver, alt_domain_answers_in_the_domain_asked) {
    fixture f = web_fixture(2);
    auto cfg = base_config();
    cfg.alt_domain = "cluster.local.";
    dns::resolver r(cfg);
    auto m = ask(r, f.snap, "web.service.cluster.local", dns::type::SRV);
    ASSERT_EQ(m.answer.size(), 2u);
    for (auto& a : m.answer) EXPECT_NE(a.data.find(".node.dc1.cluster.local."), std::string::npos) << a.data;
    m = ask(r, f.snap, "nope.service.cluster.local", dns::type::A);
    EXPECT_EQ(m.authority.at(0).name, "cluster.local.");
    EXPECT_EQ(ask(r, f.snap, "web.service.consul", dns::type::A).answer.size(), 2u);
}

TEST(dns_resolver, ttls_from_node_ttl_and_service_ttl_with_wildcards) {
    fixture f = web_fixture(1);
    f.node("n9", "10.9.9.9");
    f.instance("n9", "db1", "db-main", 5432);
    f.instance("n9", "cache1", "cache", 6379);
    auto cfg = base_config();
    cfg.s.node_ttl_s = 7;
    cfg.s.service_ttl_s = {{"web", 11}, {"db-*", 22}, {"*", 33}};
    dns::resolver r(cfg);
    EXPECT_EQ(ask(r, f.snap, "web.service.consul", dns::type::A).answer.at(0).ttl, 11u);
    EXPECT_EQ(ask(r, f.snap, "db-main.service.consul", dns::type::A).answer.at(0).ttl, 22u);
    EXPECT_EQ(ask(r, f.snap, "cache.service.consul", dns::type::A).answer.at(0).ttl, 33u);
    EXPECT_EQ(ask(r, f.snap, "n9.node.consul", dns::type::A).answer.at(0).ttl, 7u);
}

TEST(dns_resolver, udp_without_edns_keeps_udp_answer_limit_answers) {
    fixture f = web_fixture(20);
    dns::resolver r(base_config());
    auto m = ask(r, f.snap, "web.service.consul", dns::type::A);
    EXPECT_EQ(m.answer.size(), 3u);  // udp_answer_limit default
    EXPECT_FALSE(m.tc);              // enable_truncate defaults to false
    m = ask(r, f.snap, "web.service.consul", dns::type::SRV);
    EXPECT_EQ(m.answer.size(), 3u);
    EXPECT_EQ(data_of(m.additional, dns::type::A).size(), 3u);  // synced to the surviving targets
    for (auto& a : m.answer) {
        std::string target = a.data.substr(a.data.rfind(' ') + 1);
        bool found = false;
        for (auto& x : m.additional) found = found || x.name == target;
        EXPECT_TRUE(found) << target;
    }
    m = ask(r, f.snap, "web.service.consul", dns::type::A, -1, false);  // TCP: everything
    EXPECT_EQ(m.answer.size(), 20u);

    auto cfg = base_config();
    cfg.s.udp_answer_limit = 50;  // capped at 8
    cfg.s.enable_truncate = true;
    dns::resolver r8(cfg);
    m = ask(r8, f.snap, "web.service.consul", dns::type::A);
    EXPECT_EQ(m.answer.size(), 8u);
    EXPECT_TRUE(m.tc);
}

TEST(dns_resolver, udp_answers_fit_512_bytes_or_the_edns_size) {
    fixture f;
    for (int i = 1; i <= 120; ++i) {
        std::string node = "a-rather-long-node-name-to-fill-the-packet-" + std::to_string(i);
        f.node(node, "10.0." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1));
        f.instance(node, "web" + std::to_string(i), "web", 9000);
    }
    auto cfg = base_config();
    cfg.s.udp_answer_limit = 8;
    cfg.s.enable_truncate = true;
    dns::resolver r(cfg);
    std::string out;
    // No EDNS: 8 answers sized uncompressed; long SRV targets push it past 512.
    r.answer(make_query(1, "web.service.consul", dns::type::SRV), f.snap, true, out);
    auto m = dnstest::decode(out);
    EXPECT_LE(out.size(), 512u);
    EXPECT_GE(m.answer.size(), 1u);
    EXPECT_LT(m.answer.size(), 8u);
    EXPECT_TRUE(m.tc);
    // EDNS 1232: more, still within the size.
    r.answer(make_query(1, "web.service.consul", dns::type::SRV, 1232), f.snap, true, out);
    m = dnstest::decode(out);
    EXPECT_TRUE(m.ok);
    EXPECT_LE(out.size(), 1232u);
    EXPECT_GT(m.answer.size(), 8u);
    EXPECT_LT(m.answer.size(), 120u);
    EXPECT_TRUE(m.tc);
    EXPECT_TRUE(m.has_opt);  // the OPT record survives trimming
    EXPECT_EQ(data_of(m.additional, dns::type::A).size(), m.answer.size());
    // A records with EDNS 4096: all 120 fit.
    r.answer(make_query(1, "web.service.consul", dns::type::A, 4096), f.snap, true, out);
    m = dnstest::decode(out);
    EXPECT_EQ(m.answer.size(), 120u);
    EXPECT_FALSE(m.tc);
    // TCP: all 120 SRV records with their additional records.
    r.answer(make_query(1, "web.service.consul", dns::type::SRV), f.snap, false, out);
    m = dnstest::decode(out);
    EXPECT_EQ(m.answer.size(), 120u);
    EXPECT_EQ(data_of(m.additional, dns::type::A).size(), 120u);
}

TEST(dns_resolver, a_record_limit_caps_address_answers) {
    fixture f = web_fixture(10);
    auto cfg = base_config();
    cfg.s.a_record_limit = 2;
    dns::resolver r(cfg);
    EXPECT_EQ(ask(r, f.snap, "web.service.consul", dns::type::A, 4096).answer.size(), 2u);
}

TEST(dns_resolver, answers_are_shuffled) {
    fixture f = web_fixture(10);
    dns::resolver r(base_config());
    r.seed(42);
    std::set<std::string> firsts;
    std::set<std::string> orders;
    for (int i = 0; i < 50; ++i) {
        auto m = ask(r, f.snap, "web.service.consul", dns::type::A, 4096);
        ASSERT_EQ(m.answer.size(), 10u);
        firsts.insert(m.answer[0].data);
        std::string o;
        for (auto& a : m.answer) o += a.data + ",";
        orders.insert(o);
    }
    EXPECT_GE(firsts.size(), 5u);
    EXPECT_GE(orders.size(), 40u);
}

TEST(dns_resolver, query_names_are_case_insensitive) {
    fixture f = web_fixture(2);
    dns::resolver r(base_config());
    auto m = ask(r, f.snap, "WEB.Service.CONSUL", dns::type::A);
    EXPECT_EQ(m.answer.size(), 2u);
}

TEST(dns_resolver, broken_packets_get_formerr_or_are_dropped_and_counted) {
    fixture f = web_fixture(1);
    dns::resolver r(base_config());
    std::string out;
    EXPECT_EQ(r.answer("\x01\x02\x03", f.snap, true, out), dns::verdict::drop);
    std::string q = make_query(9, "web.service.consul", dns::type::A);
    EXPECT_EQ(r.answer(std::string_view(q).substr(0, q.size() - 3), f.snap, true, out), dns::verdict::reply);
    auto m = dnstest::decode(out);
    EXPECT_EQ(m.rcode, dns::rcode::formerr);
    EXPECT_EQ(m.id, 9);
    EXPECT_EQ(r.stats().dropped, 1u);
    EXPECT_EQ(r.stats().formerr, 1u);
}
