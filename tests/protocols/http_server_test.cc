// http::server over real loopback sockets on 2 shards.
#include "protocols/http/server.hh"

#include <random>

#include "engine/combinators.hh"
#include "tests/support/coro_test.hh"

using namespace pharos;
using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

// A deferred answer: sleeps, then answers with what it kept from the request
// (the request itself is gone by then), or throws; "/later/twice" defers again.
class later_answer final : public http::deferred {
public:
    later_answer(std::string what, int hops) : what_(std::move(what)), hops_(hops) {}
    task<http::response> finish() override {
        co_await sleep_for(20ms);
        if (what_ == "/later/boom") throw std::runtime_error("deferred exploded");
        http::response r;
        if (--hops_ > 0) {
            r.later = std::make_shared<later_answer>(what_, hops_);
            co_return r;
        }
        co_return http::response::text(200, "later " + what_);
    }

private:
    std::string what_;
    int hops_;
};

// Echoes what it understood, so tests can check parsing; "/boom" throws;
// "/later/..." answers through a deferred response.
task<http::response> echo_handler(http::request& r) {
    if (r.path == "/boom") throw std::runtime_error("handler exploded");
    if (r.path.rfind("/later/", 0) == 0) {
        http::response d;
        d.later = std::make_shared<later_answer>(r.path, r.path == "/later/twice" ? 2 : 1);
        co_return d;
    }
    std::string body = r.method + " " + r.path;
    for (auto& [k, v] : r.query) body += " [" + k + "=" + v + "]";
    body += " body=" + std::to_string(r.body.size());
    body += " shard=" + std::to_string(this_shard());
    co_return http::response::text(200, body);
}

http::server_config test_config() {
    http::server_config c;
    c.addr = "127.0.0.1";
    c.port = 0;
    c.max_header_bytes = 8 * 1024;
    c.max_body_bytes = 64 * 1024;
    c.request_timeout = 300ms;
    c.idle_timeout = 5s;
    return c;
}

// Sends `raw` and reads until the peer closes or `expect_responses` complete
// responses (counted by status lines) have arrived.
task<std::string> exchange(uint16_t port, std::string raw, int expect_responses) {
    auto addr = socket_address::parse("127.0.0.1", port);
    auto c = co_await tcp_stream::connect(*addr, after(2s));
    if (!c) co_return "connect failed: " + c.error().message();
    tcp_stream conn = std::move(*c);
    if (!raw.empty()) {
        auto w = co_await conn.write(buffer::copy_of(raw), after(2s));
        if (!w) co_return "write failed";
    }
    std::string got;
    for (;;) {
        size_t n = 0, pos = 0;
        while ((pos = got.find("HTTP/1.1 ", pos)) != std::string::npos) { ++n; pos += 9; }
        if (expect_responses > 0 && int(n) >= expect_responses) {
            // Wait for the last body: Content-Length of the last response.
            auto last = got.rfind("HTTP/1.1 ");
            auto hdr_end = got.find("\r\n\r\n", last);
            auto cl = got.find("Content-Length: ", last);
            if (hdr_end != std::string::npos && cl != std::string::npos && cl < hdr_end) {
                size_t len = std::stoul(got.substr(cl + 16));
                if (got.size() >= hdr_end + 4 + len) break;
            }
        }
        auto chunk = co_await conn.read(after(3s));
        if (!chunk || chunk->empty()) break;
        got.append(chunk->view());
    }
    co_return got;
}

// Starts a server on every shard, each on an ephemeral port of its own (port 0);
// returns shard 0's port, which is where the tests connect.
task<uint16_t> start_servers(sharded<http::server>* s) {
    auto cfg = test_config();
    http::handler h = &echo_handler;
    co_await s->start(cfg, h);
    co_return s->local().port();
}

size_t count(const std::string& s, std::string_view what) {
    size_t n = 0, pos = 0;
    while ((pos = s.find(what, pos)) != std::string::npos) { ++n; pos += what.size(); }
    return n;
}

}  // namespace

// sharded::start passes the same config to every shard; with port 0 each shard
// would get its own port, so these tests talk to shard 0's port.

PHAROS_CORO_TEST(http_server, answers_a_request_and_keeps_the_connection_alive) {
    sharded<http::server> s;
    uint16_t port = co_await start_servers(&s);
    std::string two =
        "GET /v1/kv/a%20b?recurse&dc=dc1 HTTP/1.1\r\nHost: x\r\n\r\n"
        "PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    auto got = co_await exchange(port, two, 2);
    EXPECT_EQ(count(got, "HTTP/1.1 200 OK"), 2u) << got;
    EXPECT_NE(got.find("GET /v1/kv/a b [recurse=] [dc=dc1] body=0"), std::string::npos) << got;
    EXPECT_NE(got.find("PUT /v1/kv/k body=5"), std::string::npos) << got;
    EXPECT_EQ(got.find("Connection: close"), std::string::npos);
    co_await s.stop();
}

PHAROS_CORO_TEST(http_server, answers_pipelined_requests_in_order) {
    sharded<http::server> s;
    uint16_t port = co_await start_servers(&s);
    std::string many;
    for (int i = 0; i < 50; ++i) many += "GET /r" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
    auto got = co_await exchange(port, many, 50);
    EXPECT_EQ(count(got, "HTTP/1.1 200 OK"), 50u);
    size_t last = 0;
    for (int i = 0; i < 50; ++i) {
        auto at = got.find("GET /r" + std::to_string(i) + " ", last);
        CO_ASSERT_TRUE(at != std::string::npos);
        last = at;
    }
    co_await s.stop();
}

PHAROS_CORO_TEST(http_server, malformed_requests_get_400_and_the_connection_closes) {
    sharded<http::server> s;
    uint16_t port = co_await start_servers(&s);
    auto got = co_await exchange(port, "THIS IS NOT HTTP\r\n\r\n", 0);
    EXPECT_EQ(got.rfind("HTTP/1.1 400 Bad Request", 0), 0u) << got;
    EXPECT_NE(got.find("Connection: close"), std::string::npos);
    got = co_await exchange(port, "GET no-slash HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
    got = co_await exchange(port, "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
    EXPECT_EQ(s.local().stats().requests, 0u);
    co_await s.stop();
}

PHAROS_CORO_TEST(http_server, oversized_headers_get_431_and_bodies_413) {
    sharded<http::server> s;
    uint16_t port = co_await start_servers(&s);
    std::string big_header = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
    auto got = co_await exchange(port, big_header, 0);
    EXPECT_EQ(got.rfind("HTTP/1.1 431", 0), 0u) << got.substr(0, 100);
    std::string big_body = "PUT /v1/kv/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + std::string(100000, 'b');
    got = co_await exchange(port, big_body, 0);
    EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got.substr(0, 100);
    co_await s.stop();
}

PHAROS_CORO_TEST(http_server, a_handler_exception_becomes_a_500_not_a_crash) {
    sharded<http::server> s;
    uint16_t port = co_await start_servers(&s);
    auto got = co_await exchange(port, "GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n", 2);
    EXPECT_EQ(got.rfind("HTTP/1.1 500", 0), 0u) << got;
    EXPECT_NE(got.find("GET /ok"), std::string::npos) << got;
    co_await s.stop();
}

PHAROS_CORO_TEST(http_server, deferred_responses_answer_in_order_and_a_throw_becomes_a_500) {
    sharded<http::server> s;
    uint16_t port = co_await start_servers(&s);
    std::string raw = "GET /later/a HTTP/1.1\r\nHost: x\r\n\r\nGET /later/boom HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /later/twice HTTP/1.1\r\nHost: x\r\n\r\nGET /now HTTP/1.1\r\nHost: x\r\n\r\n";
    auto got = co_await exchange(port, raw, 4);
    auto a = got.find("later /later/a"), boom = got.find("HTTP/1.1 500"), twice = got.find("later /later/twice"),
         now = got.find("GET /now");
    EXPECT_NE(now, std::string::npos) << got;
    CO_ASSERT_TRUE(a != std::string::npos && boom != std::string::npos && twice != std::string::npos &&
                   now != std::string::npos);
    EXPECT_LT(a, boom);
    EXPECT_LT(boom, twice);
    EXPECT_LT(twice, now);
    EXPECT_NE(got.find("deferred exploded"), std::string::npos) << got;
    co_await s.stop();
}

PHAROS_CORO_TEST(http_server, a_slow_client_is_cut_off_at_the_request_deadline) {
    sharded<http::server> s;
    uint16_t port = co_await start_servers(&s);
    // Half a request, then silence: the server must hang up by itself (300 ms).
    auto start = clock::now();
    auto got = co_await exchange(port, "GET / HTTP/1.1\r\nHost: x\r\n", 0);
    auto took = clock::now() - start;
    EXPECT_TRUE(got.empty()) << got;
    EXPECT_LT(took, 2500ms);
    EXPECT_GE(took, 250ms);
    co_await s.stop();
}

PHAROS_CORO_TEST(http_server, stop_closes_idle_connections_and_returns) {
    sharded<http::server> s;
    uint16_t port = co_await start_servers(&s);
    auto addr = socket_address::parse("127.0.0.1", port);
    auto c = co_await tcp_stream::connect(*addr, after(2s));
    CO_ASSERT_TRUE(c.ok());
    auto start = clock::now();
    co_await s.stop();
    EXPECT_LT(clock::now() - start, 2s);
    auto r = co_await c->read(after(2s));
    EXPECT_TRUE(!r || r->empty());  // the server closed its side
}

namespace {
// Random bytes, random HTTP-looking fragments and truncations from a fixed seed.
std::string garbage(std::mt19937& rng) {
    static const char* pieces[] = {"GET ", "PUT ", "/v1/kv/", "%", "%zz", "?", "&", "=", " HTTP/1.1", "\r\n",
                                   "\r\n\r\n", "Content-Length: ", "99999999999999999999", "-1", "Transfer-Encoding: chunked\r\n",
                                   "0\r\n\r\n", "ffffffff\r\n", "Host: x", ":", "\0", "\xff\xfe"};
    std::string s;
    int n = int(rng() % 24);
    for (int i = 0; i < n; ++i) {
        if (rng() % 3 == 0) {
            int k = int(rng() % 16);
            for (int j = 0; j < k; ++j) s.push_back(char(rng() % 256));
        } else {
            s += pieces[rng() % (sizeof pieces / sizeof pieces[0])];
        }
    }
    return s;
}
}  // namespace

// Sends `raw`, half-closes, and reads everything the server answers until it closes.
task<std::string> send_and_half_close(uint16_t port, std::string raw) {
    auto addr = socket_address::parse("127.0.0.1", port);
    auto c = co_await tcp_stream::connect(*addr, after(2s));
    if (!c) co_return "connect failed";
    tcp_stream conn = std::move(*c);
    (void)co_await conn.write(buffer::copy_of(raw), after(2s));
    (void)conn.shutdown_write();
    std::string got;
    for (;;) {
        auto chunk = co_await conn.read(after(3s));
        if (!chunk || chunk->empty()) break;
        got.append(chunk->view());
    }
    co_return got;
}

PHAROS_CORO_TEST(http_server, random_garbage_never_crashes_it_and_it_keeps_answering) {
    sharded<http::server> s;
    uint16_t port = co_await start_servers(&s);
    std::mt19937 rng(12345);
    for (int i = 0; i < 500; ++i) {
        std::string g = garbage(rng);
        // Either answers (errors included) or a close at EOF; never a crash or a hang.
        auto got = co_await send_and_half_close(port, g);
        if (!got.empty()) EXPECT_EQ(got.rfind("HTTP/1.1 ", 0), 0u) << "input #" << i;
    }
    auto ok = co_await exchange(port, "GET /still-alive HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    EXPECT_NE(ok.find("GET /still-alive"), std::string::npos);
    co_await s.stop();
}
