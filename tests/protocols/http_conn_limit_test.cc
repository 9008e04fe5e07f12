// http::server's per-client connection limit (max_conns_per_client, Consul's
// limits.http_max_conns_per_client) on 2 shards: the count for an IP is shared
// by every shard, past it a connection gets 429 and is closed, and every slot
// comes back whether the connection ends normally, is cut, or the server stops.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/combinators.hh"
#include "protocols/http/server.hh"
#include "tests/support/coro_test.hh"

using namespace pharos;
using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

task<http::response> ok_handler(http::request& r) {
    if (r.path == "/big") co_return http::response::text(200, std::string(4 << 20, 'b'));
    co_return http::response::text(200,
                                   "ok " + r.path + " from " + r.peer_ip + " shard=" + std::to_string(this_shard()));
}

http::server_config limit_config(size_t max) {
    http::server_config c;
    c.addr = "127.0.0.1";
    c.port = 0;  // each shard gets its own port; the count is still shared
    c.max_conns_per_client = max;
    c.request_timeout = 300ms;
    c.idle_timeout = 10s;
    c.stop_timeout = 500ms;
    return c;
}

struct servers {
    sharded<http::server> s;
    uint16_t ports[2] = {0, 0};
};

task<void> start(servers* sv, size_t max) {
    http::handler h = &ok_handler;
    co_await sv->s.start(limit_config(max), h);
    for (unsigned i = 0; i < 2; ++i) {
        auto fn = [](http::server& x) { return x.port(); };
        sv->ports[i] = co_await sv->s.invoke_on(i, fn);
    }
}

// A connection from `src` (any 127.0.0.0/8 address) to 127.0.0.1:port. The engine's
// connect has no local-address option, so the socket is bound and connected here
// (a loopback connect completes at once) and handed to a tcp_stream.
tcp_stream connect_from(const char* src, uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, src, &local.sin_addr);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local), 0) << src;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    if (this_reactor().io().wants_nonblocking()) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return tcp_stream(fd);
}

// Everything the server sends until it closes (or 3 s of silence).
task<std::string> read_to_close(tcp_stream* c) {
    std::string got;
    for (;;) {
        auto chunk = co_await c->read(after(3s));
        if (!chunk || chunk->empty()) break;
        got.append(chunk->view());
    }
    co_return got;
}

// One GET on an open connection; the response (one read is enough for these small answers).
task<std::string> get(tcp_stream* c, std::string path) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
    auto w = co_await c->write(buffer::copy_of(req), after(2s));
    if (!w) co_return "write failed";
    auto chunk = co_await c->read(after(3s));
    if (!chunk) co_return "read failed: " + chunk.error().message();
    co_return std::string(chunk->view());
}

// Waits until the server counts `n` connections for `ip`: accepts and closes reach
// the home shard asynchronously.
task<bool> wait_count(const http::conn_limit* l, std::string ip, size_t n) {
    for (int i = 0; i < 300; ++i) {
        if (co_await l->count(ip) == n) co_return true;
        co_await sleep_for(10ms);
    }
    co_return false;
}

task<uint64_t> open_on(servers* sv, unsigned shard) {
    auto fn = [](http::server& x) { return x.stats().open_connections; };
    co_return co_await sv->s.invoke_on(shard, fn);
}

task<uint64_t> rejected_total(servers* sv) {
    uint64_t n = 0;
    for (unsigned i = 0; i < 2; ++i) {
        auto fn = [](http::server& x) { return x.stats().rejected_connections; };
        n += co_await sv->s.invoke_on(i, fn);
    }
    co_return n;
}

task<size_t> tracked_total() {
    size_t n = 0;
    for (unsigned i = 0; i < 2; ++i) n += co_await submit_to(i, [] { return http::conn_limit::tracked_here(); });
    co_return n;
}

const char* const other_clients[] = {"127.0.0.2", "127.0.0.3"};

bool is_429(const std::string& got) {
    return got.rfind("HTTP/1.1 429 Too Many Requests\r\n", 0) == 0 &&
           got.find("Connection: close\r\n") != std::string::npos &&
           got.find("too many concurrent connections") != std::string::npos;
}

}  // namespace

PHAROS_CORO_TEST(http_conn_limit, the_connection_past_the_limit_gets_429_and_closing_one_frees_a_slot) {
    servers sv;
    co_await start(&sv, 5);
    const http::conn_limit lim = sv.s.local().limit();  // a handle: outlives the server
    // Five connections from 127.0.0.1, on both shards: three on shard 0, two on shard 1.
    std::vector<tcp_stream> held;
    for (int i = 0; i < 5; ++i) held.push_back(connect_from("127.0.0.1", sv.ports[i < 3 ? 0 : 1]));
    CO_ASSERT_TRUE(co_await wait_count(&lim, "127.0.0.1", 5));
    EXPECT_EQ(co_await open_on(&sv, 0), 3u);
    EXPECT_EQ(co_await open_on(&sv, 1), 2u);
    auto ok = co_await get(&held[4], "/held");
    EXPECT_NE(ok.find("200 OK"), std::string::npos) << ok;
    // The sixth is refused, whichever shard takes it.
    for (unsigned shard = 0; shard < 2; ++shard) {
        tcp_stream sixth = connect_from("127.0.0.1", sv.ports[shard]);
        auto got = co_await read_to_close(&sixth);
        EXPECT_TRUE(is_429(got)) << "shard " << shard << ": " << got;
    }
    // Also when the client sends its request before reading: the 429 is not lost
    // to a reset when the server closes with the request unread.
    {
        tcp_stream eager = connect_from("127.0.0.1", sv.ports[0]);
        auto w = co_await eager.write(buffer::copy_of(std::string("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")), after(2s));
        EXPECT_TRUE(w.ok());
        auto got = co_await read_to_close(&eager);
        EXPECT_TRUE(is_429(got)) << got;
    }
    EXPECT_EQ(co_await rejected_total(&sv), 3u);
    EXPECT_EQ(co_await lim.count("127.0.0.1"), 5u);  // refused ones hold no slot
    // Closing one (on shard 1) frees a slot for a connection on shard 0.
    held[3].close();
    CO_ASSERT_TRUE(co_await wait_count(&lim, "127.0.0.1", 4));
    tcp_stream again = connect_from("127.0.0.1", sv.ports[0]);
    auto got = co_await get(&again, "/again");
    EXPECT_NE(got.find("200 OK"), std::string::npos) << got;
    EXPECT_EQ(co_await lim.count("127.0.0.1"), 5u);
    held.clear();
    again.close();
    CO_ASSERT_TRUE(co_await wait_count(&lim, "127.0.0.1", 0));
    EXPECT_EQ(co_await tracked_total(), 0u);
    co_await sv.s.stop();
}

PHAROS_CORO_TEST(http_conn_limit, each_client_ip_has_its_own_count) {
    servers sv;
    co_await start(&sv, 5);
    const http::conn_limit lim = sv.s.local().limit();  // a handle: outlives the server
    std::vector<tcp_stream> held;
    for (int i = 0; i < 5; ++i) held.push_back(connect_from("127.0.0.1", sv.ports[i % 2]));
    CO_ASSERT_TRUE(co_await wait_count(&lim, "127.0.0.1", 5));
    // 127.0.0.2 and 127.0.0.3 are other clients: each may open five of its own.
    for (const char* ip : other_clients) {
        for (int i = 0; i < 5; ++i) held.push_back(connect_from(ip, sv.ports[i % 2]));
        CO_ASSERT_TRUE(co_await wait_count(&lim, ip, 5));
        auto ok = co_await get(&held.back(), "/other");
        EXPECT_NE(ok.find(std::string("200 OK")), std::string::npos) << ok;
        EXPECT_NE(ok.find(std::string("from ") + ip), std::string::npos) << ok;
        tcp_stream sixth = connect_from(ip, sv.ports[1]);
        EXPECT_TRUE(is_429(co_await read_to_close(&sixth))) << ip;
    }
    EXPECT_EQ(co_await lim.count("127.0.0.1"), 5u);
    // The counts live on the IPs' home shards; together they hold three clients.
    EXPECT_EQ(co_await tracked_total(), 3u);
    held.clear();
    co_await sv.s.stop();
    EXPECT_EQ(co_await tracked_total(), 0u);
}

PHAROS_CORO_TEST(http_conn_limit, zero_means_unlimited) {
    servers sv;
    co_await start(&sv, 0);
    std::vector<tcp_stream> held;
    for (int i = 0; i < 40; ++i) held.push_back(connect_from("127.0.0.1", sv.ports[i % 2]));
    for (auto& c : held) {
        auto got = co_await get(&c, "/many");
        EXPECT_NE(got.find("200 OK"), std::string::npos) << got;
    }
    EXPECT_EQ(co_await rejected_total(&sv), 0u);
    EXPECT_EQ(co_await tracked_total(), 0u);  // nothing is counted at all
    held.clear();
    co_await sv.s.stop();
}

PHAROS_CORO_TEST(http_conn_limit, slots_come_back_from_cut_connections_and_at_stop) {
    servers sv;
    co_await start(&sv, 3);
    const http::conn_limit lim = sv.s.local().limit();  // a handle: outlives the server
    // A connection cut by the request deadline (half a request, then silence) and
    // one answered 400 give their slots back.
    {
        tcp_stream slow = connect_from("127.0.0.1", sv.ports[0]);
        tcp_stream bad = connect_from("127.0.0.1", sv.ports[1]);
        (void)co_await slow.write(buffer::copy_of(std::string("GET / HTTP/1.1\r\n")), after(2s));
        (void)co_await bad.write(buffer::copy_of(std::string("NOT HTTP\r\n\r\n")), after(2s));
        auto got = co_await read_to_close(&bad);
        EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
        got = co_await read_to_close(&slow);
        EXPECT_TRUE(got.empty()) << got;
    }
    CO_ASSERT_TRUE(co_await wait_count(&lim, "127.0.0.1", 0));
    // Connections still open when the server stops (idle, mid-request, and one
    // whose client never reads a large answer) are released too.
    std::vector<tcp_stream> held;
    for (int i = 0; i < 3; ++i) held.push_back(connect_from("127.0.0.1", sv.ports[i % 2]));
    CO_ASSERT_TRUE(co_await wait_count(&lim, "127.0.0.1", 3));
    (void)co_await held[1].write(buffer::copy_of(std::string("PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nab")),
                                 after(2s));
    std::string bigs;
    for (int i = 0; i < 16; ++i) bigs += "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)co_await held[2].write(buffer::copy_of(bigs), after(2s));
    co_await sleep_for(100ms);  // let the server fill the socket buffers (a real wait, but no timing is asserted)
    co_await sv.s.stop();       // write_timeout is 30 s: stop must cancel the stuck write after stop_timeout
    EXPECT_EQ(co_await lim.count("127.0.0.1"), 0u);
    EXPECT_EQ(co_await tracked_total(), 0u);
    for (int i = 0; i < 2; ++i) {  // idle and mid-request: closed without an answer
        auto got = co_await read_to_close(&held[i]);
        EXPECT_TRUE(got.empty()) << got.substr(0, 100);
    }
}
