// health::lookup against a tiny DNS server made here (a UDP socket on
// 127.0.0.1 answering A records, NXDOMAIN with an SOA otherwise, TC for one
// name with the full answer over TCP): names for HTTP, TCP and UDP checks, Go's
// error texts, the per-shard cache, search domains, a silent server's timeout,
// and resolv.conf parsing.
#include <map>

#include "engine/net.hh"
#include "protocols/dns/wire.hh"
#include "protocols/http/server.hh"
#include "services/health/lookup.hh"
#include "services/health/probe.hh"
#include "tests/support/coro_test.hh"

using namespace pharos;
using namespace pharos::engine;
using namespace std::chrono_literals;
using health::status;

namespace {

socket_address loopback(uint16_t port = 0) {
    auto a = socket_address::parse("127.0.0.1", port);
    return *a;
}

struct zone {
    std::map<std::string, std::string> a;  // name (lower case, no dot) -> IPv4
    std::string truncated;                  // this name's UDP answer has TC set and no records
    int udp_queries = 0, tcp_queries = 0;
};

// The answer to one query packet ("" to drop it).
std::string answer(std::string_view pkt, zone& z, bool over_tcp) {
    dns::query q;
    if (dns::parse_query(pkt, q) != dns::parse_result::ok) return "";
    std::string out;
    dns::writer w;
    w.begin(out, q, dns::flag::aa, true);
    std::string name(q.qname.text());
    auto it = z.a.find(name);
    if (it == z.a.end()) {
        w.set_rcode(dns::rcode::nxdomain);
        w.begin_rr(dns::writer::section::authority, "test.", dns::type::SOA, 30);
        w.rdata_name("ns.test.", true);
        w.rdata_name("admin.test.", true);
        w.u32(1);
        w.u32(3600);
        w.u32(600);
        w.u32(86400);
        w.u32(30);
        w.end_rr();
        return out;
    }
    if (name == z.truncated && !over_tcp) {
        w.set_flag(dns::flag::tc, true);
        return out;
    }
    if (q.qtype == dns::type::A) {
        auto ip = socket_address::parse(it->second, 0);
        w.begin_rr_qname(dns::writer::section::answer, dns::type::A, 60);
        w.bytes(std::string_view(reinterpret_cast<const char*>(&reinterpret_cast<const sockaddr_in*>(&ip->ss)->sin_addr), 4));
        w.end_rr();
    }
    return out;  // AAAA: NOERROR, no records
}

task<void> serve_udp(udp_socket* s, zone* z) {
    for (;;) {
        auto d = co_await s->recv_from(no_deadline);
        if (!d) co_return;
        ++z->udp_queries;
        std::string a = answer(d->data.view(), *z, false);
        if (!a.empty()) (void)s->send_to(a, d->from);
    }
}

task<void> serve_tcp(tcp_listener* l, zone* z) {
    for (;;) {
        auto c = co_await l->accept(no_deadline);
        if (!c) co_return;
        std::string in;
        while (in.size() < 2 || in.size() < 2u + ((uint8_t(in[0]) << 8) | uint8_t(in[1]))) {
            auto chunk = co_await c->read(after(2s));
            if (!chunk || chunk->empty()) break;
            in.append(chunk->view());
        }
        if (in.size() < 2) continue;
        ++z->tcp_queries;
        std::string a = answer(std::string_view(in).substr(2), *z, true);
        std::string framed;
        framed.push_back(char(a.size() >> 8));
        framed.push_back(char(a.size()));
        framed += a;
        (void)co_await c->write(buffer::copy_of(framed), after(2s));
    }
}

task<http::response> target(http::request& r) {
    if (r.path == "/ok") co_return http::response::text(200, "all good");
    co_return http::response::text(404, "not found");
}

// The test proper, while the DNS server runs on port `dns_port`.
task<void> body(uint16_t dns_port, zone* z, udp_socket* dns_udp, tcp_listener* dns_tcp) {
    health::resolv_conf rc;
    rc.nameservers.push_back(loopback(dns_port));
    rc.search.push_back("test");
    rc.timeout_s = 2;
    rc.attempts = 1;
    health::set_resolv_conf_override(rc);
    std::string ns = "127.0.0.1:" + std::to_string(dns_port);

    // A name to an address; the second lookup comes from the shard's cache.
    std::string err;
    auto addrs = co_await health::lookup_host("web.test", after(2s), &err);
    EXPECT_EQ(err, "");
    EXPECT_EQ(addrs.size(), 1u);
    if (!addrs.empty()) EXPECT_EQ(addrs[0].ip(), "127.0.0.1");
    int before = z->udp_queries;
    uint64_t hits = health::shard_lookup_stats().cache_hits;
    addrs = co_await health::lookup_host("WEB.test", after(2s), &err);
    EXPECT_EQ(addrs.size(), 1u);
    EXPECT_EQ(z->udp_queries, before);
    EXPECT_EQ(health::shard_lookup_stats().cache_hits, hits + 1);

    // Search domains: "other" has no dot, so "other.test" is tried first.
    addrs = co_await health::lookup_host("other", after(2s), &err);
    EXPECT_EQ(addrs.size(), 1u);
    if (!addrs.empty()) EXPECT_EQ(addrs[0].ip(), "127.0.0.2");

    // Truncated over UDP: asked again over TCP.
    addrs = co_await health::lookup_host("big.test", after(2s), &err);
    EXPECT_EQ(addrs.size(), 1u) << err;
    EXPECT_GE(z->tcp_queries, 1);

    // HTTP, TCP and UDP checks by name.
    http::server_config cfg;
    cfg.port = 0;
    http::server srv(cfg, target);
    co_await srv.start();
    std::string port = std::to_string(srv.port());
    health::http_options o;
    o.url = "http://web.test:" + port + "/ok";
    auto t = health::prepare_http(o);
    auto r = co_await health::probe_http(t, 4096, after(2s));
    EXPECT_EQ(r.st, status::passing);
    EXPECT_EQ(r.output, "HTTP GET http://web.test:" + port + "/ok: 200 OK Output: all good");
    r = co_await health::probe_tcp("web.test:" + port, after(2s));
    EXPECT_EQ(r.st, status::passing);
    EXPECT_EQ(r.output, "TCP connect web.test:" + port + ": Success");
    auto u = udp_socket::bind(loopback());
    std::string uport = std::to_string(u->port());
    r = co_await health::probe_udp("web.test:" + uport, after(100ms));
    EXPECT_EQ(r.st, status::passing);
    EXPECT_EQ(r.output, "UDP connect web.test:" + uport + ": Success");
    u->close();
    co_await srv.stop();

    // Unknown names: Go's texts, with the server asked.
    r = co_await health::probe_tcp("nosuch.test:80", after(2s));
    EXPECT_EQ(r.st, status::critical);
    EXPECT_EQ(r.output, "dial tcp: lookup nosuch.test on " + ns + ": no such host");
    o.url = "http://nosuch.test/x";
    t = health::prepare_http(o);
    r = co_await health::probe_http(t, 4096, after(2s));
    EXPECT_EQ(r.output, "Get \"http://nosuch.test/x\": dial tcp: lookup nosuch.test on " + ns + ": no such host");
    // The NXDOMAIN is cached for the SOA's negative TTL.
    before = z->udp_queries;
    r = co_await health::probe_tcp("nosuch.test:80", after(2s));
    EXPECT_EQ(z->udp_queries, before);
    EXPECT_EQ(r.output, "dial tcp: lookup nosuch.test on " + ns + ": no such host");
    // Names in /etc/hosts and localhost need no query.
    before = z->udp_queries;
    r = co_await health::probe_tcp("localhost:1", after(2s));
    EXPECT_EQ(r.output, "dial tcp 127.0.0.1:1: connect: connection refused");
    EXPECT_EQ(z->udp_queries, before);

    // A server that never answers: the attempt's timeout.
    auto silent = udp_socket::bind(loopback());
    health::resolv_conf quiet;
    quiet.nameservers.push_back(loopback(silent->port()));
    quiet.timeout_s = 1;
    quiet.attempts = 1;
    health::set_resolv_conf_override(quiet);
    addrs = co_await health::lookup_host("web.test", after(5s), &err);
    EXPECT_TRUE(addrs.empty());
    EXPECT_EQ(err, "lookup web.test on 127.0.0.1:" + std::to_string(silent->port()) + ": i/o timeout");
    silent->close();

    health::set_resolv_conf_override(std::nullopt);
    dns_udp->close();
    dns_tcp->close();
}

}  // namespace

PHAROS_CORO_TEST(health_lookup, names_for_checks_through_a_test_dns_server) {
    zone z;
    z.a["web.test"] = "127.0.0.1";
    z.a["other.test"] = "127.0.0.2";
    z.a["big.test"] = "127.0.0.3";
    z.truncated = "big.test";
    // One port for both: a UDP port whose TCP twin is free (retried if taken).
    auto udp = udp_socket::bind(loopback());
    CO_ASSERT_TRUE(bool(udp));
    auto tcp = tcp_listener::listen(loopback(udp->port()));
    for (int i = 0; i < 50 && !tcp; ++i) {
        udp = udp_socket::bind(loopback());
        CO_ASSERT_TRUE(bool(udp));
        tcp = tcp_listener::listen(loopback(udp->port()));
    }
    CO_ASSERT_TRUE(bool(tcp));
    std::vector<task<void>> all;
    all.push_back(serve_udp(&*udp, &z));
    all.push_back(serve_tcp(&*tcp, &z));
    all.push_back(body(udp->port(), &z, &*udp, &*tcp));
    co_await when_all(std::move(all));
}

TEST(health_lookup, parses_resolv_conf) {
    auto c = health::parse_resolv_conf(
        "# comment\nnameserver 10.0.0.2\nnameserver ::1\nsearch a.example b.example.\n"
        "options ndots:2 timeout:3 attempts:4 rotate\n");
    ASSERT_EQ(c.nameservers.size(), 2u);
    EXPECT_EQ(c.nameservers[0].to_string(), "10.0.0.2:53");
    EXPECT_EQ(c.nameservers[1].to_string(), "[::1]:53");
    ASSERT_EQ(c.search.size(), 2u);
    EXPECT_EQ(c.search[1], "b.example");
    EXPECT_EQ(c.ndots, 2);
    EXPECT_EQ(c.timeout_s, 3);
    EXPECT_EQ(c.attempts, 4);
    auto d = health::parse_resolv_conf("");
    ASSERT_EQ(d.nameservers.size(), 2u);
    EXPECT_EQ(d.nameservers[0].to_string(), "127.0.0.1:53");
}
