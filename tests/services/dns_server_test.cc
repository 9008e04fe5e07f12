// dns::server on real sockets, 2 shards: UDP and TCP queries answered from the
// catalog (a write on shard 0 is visible to a query on either shard), names
// outside the domain forwarded to a recursor over UDP and TCP, SERVFAIL when
// the recursor does not answer within recursor_timeout, and a clean stop.
#include <gtest/gtest.h>

#include "engine/combinators.hh"
#include "engine/net.hh"
#include "engine/snapshot.hh"
#include "services/dns/server.hh"
#include "tests/support/coro_test.hh"
#include "tests/support/dns_probe.hh"

using namespace pharos;
using namespace pharos::engine;
using dnstest::make_query;

namespace {

socket_address loopback(uint16_t port) { return socket_address::parse("127.0.0.1", port).value(); }

// A port free for UDP and TCP on 127.0.0.1 (every shard binds it with SO_REUSEPORT).
uint16_t free_port() {
    for (;;) {
        auto t = tcp_listener::listen(loopback(0), listen_options{16, false});
        if (!t) continue;
        uint16_t p = t->port();
        auto u = udp_socket::bind(loopback(p));
        if (u) return p;
    }
}

// A stand-in recursor: answers every query with NOERROR and one A record 192.0.2.1.
std::string recursor_answer(std::string_view q) {
    std::string r(q);
    r[2] = char(uint8_t(r[2]) | 0x80);
    r[7] = 1;  // ANCOUNT
    r[11] = 0;
    // Drop any OPT the query carried: keep header + question only.
    dns::query pq;
    dns::parse_query(q, pq);
    r.resize(12 + pq.qname.wire_len + 4);
    r += std::string("\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01", 16);
    return r;
}

task<void> fake_udp_recursor(udp_socket* s, int answers) {
    for (int i = 0; i < answers; ++i) {
        auto d = co_await s->recv_from(after(std::chrono::seconds(10)));
        if (!d) co_return;
        (void)s->send_to(recursor_answer(d->data.view()), d->from);
    }
}

task<void> fake_tcp_connection(tcp_stream conn);

// Answers `connections` TCP connections (the server opens one per forwarded query).
task<void> fake_tcp_recursor(tcp_listener* l, int connections) {
    for (int i = 0; i < connections; ++i) {
        auto c = co_await l->accept(after(std::chrono::seconds(10)));
        if (!c) co_return;
        co_await fake_tcp_connection(std::move(*c));
    }
}

task<void> fake_tcp_connection(tcp_stream conn) {
    tcp_stream* c = &conn;
    std::string in;
    for (;;) {
        if (in.size() >= 2) {
            size_t len = size_t((uint8_t(in[0]) << 8) | uint8_t(in[1]));
            if (in.size() >= 2 + len) {
                std::string a = recursor_answer(std::string_view(in).substr(2, len));
                std::string framed;
                framed.push_back(char(a.size() >> 8));
                framed.push_back(char(a.size() & 0xFF));
                framed += a;
                (void)co_await c->write(buffer::copy_of(framed), after(std::chrono::seconds(5)));
                co_return;
            }
        }
        auto r = co_await c->read(after(std::chrono::seconds(10)));
        if (!r || r->empty()) co_return;
        in.append(r->view());
    }
}

task<std::string> udp_ask(uint16_t port, std::string q) {
    auto s = udp_socket::bind(loopback(0));
    if (!s) co_return std::string();
    (void)s->send_to(q, loopback(port));
    auto d = co_await s->recv_from(after(std::chrono::seconds(5)));
    if (!d) co_return std::string();
    co_return std::string(d->data.view());
}

task<std::string> tcp_ask(uint16_t port, std::string q) {
    auto c = co_await tcp_stream::connect(loopback(port), after(std::chrono::seconds(5)));
    if (!c) co_return std::string();
    std::string framed;
    framed.push_back(char(q.size() >> 8));
    framed.push_back(char(q.size() & 0xFF));
    framed += q;
    framed += framed;  // two pipelined queries on one connection
    (void)co_await c->write(buffer::copy_of(framed), after(std::chrono::seconds(5)));
    std::string in;
    for (;;) {
        if (in.size() >= 2) {
            size_t len = size_t((uint8_t(in[0]) << 8) | uint8_t(in[1]));
            if (in.size() >= 2 + len && in.size() >= 2 + len + 2) {
                size_t len2 = size_t((uint8_t(in[2 + len]) << 8) | uint8_t(in[3 + len]));
                if (in.size() >= 4 + len + len2) co_return in.substr(2, len);
            }
        }
        auto r = co_await c->read(after(std::chrono::seconds(5)));
        if (!r || r->empty()) co_return std::string();
        in.append(r->view());
    }
}

task<std::string> udp_ask_on(unsigned shard, uint16_t port, std::string q) {
    auto fn = [port, q]() { return udp_ask(port, q); };
    co_return co_await submit_to(shard, std::move(fn));
}

catalog::register_request web_instance(int i) {
    catalog::register_request r;
    r.n.name = "node" + std::to_string(i);
    r.n.address = "10.0.0." + std::to_string(i);
    catalog::service s;
    s.id = "web" + std::to_string(i);
    s.name = "web";
    s.port = 80;
    r.svc = s;
    return r;
}

}  // namespace

PHAROS_CORO_TEST(dns_server, answers_udp_and_tcp_on_every_shard_and_forwards_other_names) {
    published<state::snapshot> pub(std::make_unique<state::snapshot>());
    sharded<state::service> st;
    co_await st.start(&st, &pub);
    for (int i = 1; i <= 3; ++i) {
        auto res = co_await st.local().write(web_instance(i));
        EXPECT_TRUE(res.error.empty()) << res.error;
    }

    // The recursor listens on UDP and TCP on one port: retry until both binds succeed.
    result<udp_socket> rec_udp = std::error_code(EADDRINUSE, std::system_category());
    result<tcp_listener> rec_tcp = std::error_code(EADDRINUSE, std::system_category());
    for (int attempt = 0; attempt < 50 && !(rec_udp && rec_tcp); ++attempt) {
        rec_udp = udp_socket::bind(loopback(0));
        if (rec_udp) rec_tcp = tcp_listener::listen(loopback(rec_udp->port()), listen_options{16, false});
    }
    CO_ASSERT_TRUE(rec_udp && rec_tcp);
    this_reactor().spawn(fake_udp_recursor(&*rec_udp, 1));
    this_reactor().spawn(fake_tcp_recursor(&*rec_tcp, 2));

    dns::server_config sc;
    sc.port = free_port();
    sc.recursors.push_back("127.0.0.1:" + std::to_string(rec_udp->port()));
    dns::resolver_config rc;
    rc.recursors = true;
    sharded<dns::server> srv;
    co_await srv.start(sc, rc, &st);

    for (unsigned shard = 0; shard < 2; ++shard) {
        std::string out = co_await udp_ask_on(shard, sc.port, make_query(11, "web.service.consul", dns::type::A, 1232));
        auto m = dnstest::decode(out);
        EXPECT_EQ(m.id, 11);
        EXPECT_EQ(m.answer.size(), 3u) << "asked from shard " << shard;
        EXPECT_TRUE(m.ra);
    }
    std::string out = co_await tcp_ask(sc.port, make_query(12, "_web._tcp.service.consul", dns::type::SRV));
    auto m = dnstest::decode(out);
    EXPECT_EQ(m.id, 12);
    EXPECT_EQ(m.answer.size(), 3u);
    EXPECT_EQ(m.additional.size(), 3u);

    // Forwarded: over UDP, then over TCP.
    out = co_await udp_ask(sc.port, make_query(13, "example.com", dns::type::A));
    m = dnstest::decode(out);
    EXPECT_EQ(m.id, 13);
    EXPECT_EQ(m.rcode, dns::rcode::noerror);
    CO_ASSERT_EQ(m.answer.size(), 1u);
    EXPECT_EQ(m.answer[0].data, "192.0.2.1");
    out = co_await tcp_ask(sc.port, make_query(14, "example.org", dns::type::A));
    m = dnstest::decode(out);
    EXPECT_EQ(m.id, 14);
    CO_ASSERT_EQ(m.answer.size(), 1u);
    EXPECT_EQ(m.answer[0].data, "192.0.2.1");

    auto total = co_await srv.map_reduce([](dns::server& s) { return s.stats(); }, dns::server_stats{},
                                         [](dns::server_stats a, dns::server_stats b) {
                                             a.udp_queries += b.udp_queries;
                                             a.tcp_queries += b.tcp_queries;
                                             a.forwarded += b.forwarded;
                                             return a;
                                         });
    EXPECT_EQ(total.udp_queries, 3u);
    EXPECT_EQ(total.tcp_queries, 4u);
    EXPECT_EQ(total.forwarded, 3u);  // one UDP, two TCP (the pipelined pair)
    co_await srv.stop();
    co_await st.stop();
}

PHAROS_CORO_TEST(dns_server, servfail_when_no_recursor_answers_in_time) {
    published<state::snapshot> pub(std::make_unique<state::snapshot>());
    sharded<state::service> st;
    co_await st.start(&st, &pub);
    // A recursor that never answers: a bound socket nobody reads.
    auto silent = udp_socket::bind(loopback(0));
    CO_ASSERT_TRUE(bool(silent));
    dns::server_config sc;
    sc.port = free_port();
    sc.recursors.push_back("127.0.0.1:" + std::to_string(silent->port()));
    dns::resolver_config rc;
    rc.recursors = true;
    rc.s.recursor_timeout = std::chrono::milliseconds(200);
    sharded<dns::server> srv;
    co_await srv.start(sc, rc, &st);
    std::string out = co_await udp_ask(sc.port, make_query(21, "example.com", dns::type::A));
    auto m = dnstest::decode(out);
    EXPECT_EQ(m.id, 21);
    EXPECT_EQ(m.rcode, dns::rcode::servfail);
    co_await srv.stop();
    co_await st.stop();
}
