// Each probe type once against in-process targets on 127.0.0.1 (real clock,
// short deadlines): Consul's status mapping and output text for HTTP (2xx,
// 429, 5xx, chunked and capped bodies, headers sent), TCP and UDP, and scripts
// (exit codes, captured output, timeouts that kill the process group); how an
// HTTP probe closes (RST only after the target's EOF) and a connect that does
// not finish at once.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "engine/net.hh"
#include "protocols/http/server.hh"
#include "services/health/probe.hh"
#include "tests/support/coro_test.hh"

using namespace pharos;
using namespace pharos::engine;
using namespace std::chrono_literals;
using health::status;

namespace {

socket_address loopback() {
    auto a = socket_address::parse("127.0.0.1", 0);
    return *a;
}

std::string last_headers;  // what the HTTP target saw last (shard 0 only)

task<http::response> target(http::request& r) {
    if (r.path == "/ok") co_return http::response::text(200, "all good");
    if (r.path == "/created") co_return http::response::text(201, "");
    if (r.path == "/busy") co_return http::response::text(429, "slow down");
    if (r.path == "/boom") co_return http::response::text(500, "boom");
    if (r.path == "/big") co_return http::response::text(200, std::string(5000, 'a') + std::string(100, 'z'));
    if (r.path == "/slow") {
        co_await sleep_for(400ms);
        co_return http::response::text(200, "late");
    }
    if (r.path == "/echo") {
        std::string h;
        for (auto& [k, v] : r.headers) h += k + "=" + v + ";";
        last_headers = h;
        co_return http::response::text(200, r.method + " " + r.body);
    }
    co_return http::response::text(404, "not found");
}

task<health::probe_result> get(uint16_t port, std::string path, size_t max = 4096, std::string method = "",
                               clock::duration timeout = 2s) {
    health::http_options o;
    o.url = "http://127.0.0.1:" + std::to_string(port) + path;
    o.method = method;
    auto t = health::prepare_http(o);
    co_return co_await health::probe_http(t, max, after(timeout));
}

}  // namespace

PHAROS_CORO_TEST(health_probe, http_status_maps_to_check_status_with_consul_output) {
    http::server_config cfg;
    cfg.port = 0;
    http::server srv(cfg, target);
    co_await srv.start();
    uint16_t port = srv.port();
    std::string base = "http://127.0.0.1:" + std::to_string(port);

    auto r = co_await get(port, "/ok");
    EXPECT_EQ(r.st, status::passing);
    EXPECT_EQ(r.output, "HTTP GET " + base + "/ok: 200 OK Output: all good");
    r = co_await get(port, "/created");
    EXPECT_EQ(r.st, status::passing);
    EXPECT_EQ(r.output, "HTTP GET " + base + "/created: 201 Created Output: ");
    r = co_await get(port, "/busy");
    EXPECT_EQ(r.st, status::warning);
    EXPECT_EQ(r.output, "HTTP GET " + base + "/busy: 429 Too Many Requests Output: slow down");
    r = co_await get(port, "/boom");
    EXPECT_EQ(r.st, status::critical);
    EXPECT_EQ(r.output, "HTTP GET " + base + "/boom: 500 Internal Server Error Output: boom");
    r = co_await get(port, "/nope");
    EXPECT_EQ(r.st, status::critical);

    // The body is kept as a ring of OutputMaxSize bytes: the last ones win.
    r = co_await get(port, "/big", 10);
    EXPECT_EQ(r.output, "HTTP GET " + base + "/big: 200 OK Output: zzzzzzzzzz");

    // Method, body and headers; Host from Header overrides; Consul's User-Agent.
    health::http_options o;
    o.url = base + "/echo";
    o.method = "PUT";
    o.body = "payload";
    std::vector<std::string> hv;
    hv.push_back("a");
    hv.push_back("b");
    o.header.emplace_back("X-Test", hv);
    std::vector<std::string> host;
    host.push_back("example.test");
    o.header.emplace_back("Host", host);
    r = co_await health::probe_http(health::prepare_http(o), 4096, after(2s));
    EXPECT_EQ(r.st, status::passing);
    EXPECT_EQ(r.output, "HTTP PUT " + base + "/echo: 200 OK Output: PUT payload");
    EXPECT_NE(last_headers.find("Host=example.test;"), std::string::npos) << last_headers;
    EXPECT_NE(last_headers.find("User-Agent=Consul Health Check;"), std::string::npos) << last_headers;
    EXPECT_NE(last_headers.find("X-Test=a;X-Test=b;"), std::string::npos) << last_headers;
    EXPECT_NE(last_headers.find("Connection=close;"), std::string::npos) << last_headers;

    // The deadline covers the whole exchange.
    r = co_await get(port, "/slow", 4096, "", 200ms);
    EXPECT_EQ(r.st, status::critical);
    EXPECT_EQ(r.output, "Get \"" + base + "/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
    co_await srv.stop();

    // Nothing listens now.
    r = co_await get(port, "/ok");
    EXPECT_EQ(r.st, status::critical);
    EXPECT_EQ(r.output, "Get \"" + base + "/ok\": dial tcp 127.0.0.1:" + std::to_string(port) +
                            ": connect: connection refused");
}

PHAROS_CORO_TEST(health_probe, http_reads_chunked_and_close_delimited_bodies) {
    auto l = tcp_listener::listen(loopback());
    CO_ASSERT_TRUE(bool(l));
    uint16_t port = l->port();
    // Two raw responses, one per connection.
    auto serve = [](tcp_listener* l) -> task<void> {
        const char* replies[2] = {
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n",
            "HTTP/1.0 503 Service Unavailable\r\n\r\ndown for now"};
        for (int i = 0; i < 2; ++i) {
            auto c = co_await l->accept(after(5s));
            if (!c) co_return;
            co_await c->read(after(5s));
            co_await c->write(buffer::copy_of(replies[i]), after(5s));
            c->close();
        }
    };
    std::vector<task<void>> both;
    both.push_back(serve(&*l));
    auto client = [](uint16_t port) -> task<void> {
        auto r = co_await get(port, "/");
        EXPECT_EQ(r.st, status::passing);
        EXPECT_EQ(r.output, "HTTP GET http://127.0.0.1:" + std::to_string(port) + "/: 200 OK Output: abcdefg");
        r = co_await get(port, "/");
        EXPECT_EQ(r.st, status::critical);
        EXPECT_EQ(r.output,
                  "HTTP GET http://127.0.0.1:" + std::to_string(port) + "/: 503 Service Unavailable Output: down for now");
    };
    both.push_back(client(port));
    co_await when_all(std::move(both));
}

namespace {
// A blocking loopback listener served by a thread: one connection per entry of
// `replies`; after sending it (and half-closing when `shut[i]`), it reads once
// and records what ended the connection: 0 for the probe's FIN, ECONNRESET for
// its RST.
struct raw_target {
    int lfd = -1;
    uint16_t port = 0;
    std::vector<int> ended;
    std::thread th;
    void start(std::vector<std::string> replies, std::vector<bool> shut) {
        lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(lfd, 4);
        socklen_t len = sizeof a;
        ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
        ended.assign(replies.size(), -1);
        th = std::thread([this, replies, shut] {
            for (size_t i = 0; i < replies.size(); ++i) {
                int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) return;
                timeval tv{5, 0};
                ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                std::string in;
                char b[4096];
                while (in.find("\r\n\r\n") == std::string::npos) {
                    ssize_t n = ::recv(c, b, sizeof b, 0);
                    if (n <= 0) break;
                    in.append(b, size_t(n));
                }
                ::send(c, replies[i].data(), replies[i].size(), MSG_NOSIGNAL);
                if (shut[i]) ::shutdown(c, SHUT_WR);
                ssize_t n = ::recv(c, b, sizeof b, 0);
                ended[i] = n == 0 ? 0 : n < 0 ? errno : -2;
                ::close(c);
            }
        });
    }
    void join() {
        if (th.joinable()) th.join();
        ::close(lfd);
    }
};
}  // namespace

// The probe closes with RST only once it has read the target's EOF (close-
// delimited body, target half-closed first); a target that answers with a
// Content-Length and keeps the connection open gets a normal FIN, as from
// Consul, and so does one whose reply cannot be parsed.
PHAROS_CORO_TEST(health_probe, http_closes_with_rst_only_after_the_targets_eof) {
    raw_target t;
    std::vector<std::string> replies;
    replies.push_back("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    replies.push_back("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbye");
    replies.push_back("junk\r\n\r\n");
    std::vector<bool> shut;
    shut.push_back(false);
    shut.push_back(true);
    shut.push_back(false);
    t.start(replies, shut);
    std::string base = "http://127.0.0.1:" + std::to_string(t.port);
    auto r = co_await get(t.port, "/");
    EXPECT_EQ(r.output, "HTTP GET " + base + "/: 200 OK Output: ok");
    r = co_await get(t.port, "/");
    EXPECT_EQ(r.output, "HTTP GET " + base + "/: 200 OK Output: bye");
    r = co_await get(t.port, "/");
    EXPECT_EQ(r.st, status::critical);
    t.join();
    EXPECT_EQ(t.ended[0], 0);           // FIN: the target had not closed
    EXPECT_EQ(t.ended[1], ECONNRESET);  // RST: its EOF was read
    EXPECT_EQ(t.ended[2], 0);           // FIN: an error, no EOF
}

// A connect the kernel cannot finish at once (the listener's accept queue is
// full, so its SYN is dropped) waits through the reactor until the deadline.
PHAROS_CORO_TEST(health_probe, http_connect_still_in_progress_times_out) {
    int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(lfd, 0);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    std::vector<int> fillers;  // never accepted: the queue stays full
    for (int i = 0; i < 2; ++i) {
        int f = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ::connect(f, reinterpret_cast<sockaddr*>(&a), sizeof a);
        fillers.push_back(f);
    }
    uint16_t port = ntohs(a.sin_port);
    auto r = co_await get(port, "/", 4096, "", 300ms);
    EXPECT_EQ(r.st, status::critical);
    EXPECT_EQ(r.output, "Get \"http://127.0.0.1:" + std::to_string(port) +
                            "/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
    for (int f : fillers) ::close(f);
    ::close(lfd);
}

PHAROS_CORO_TEST(health_probe, tcp_and_udp_connects) {
    auto l = tcp_listener::listen(loopback());
    CO_ASSERT_TRUE(bool(l));
    std::string addr = "127.0.0.1:" + std::to_string(l->port());
    auto r = co_await health::probe_tcp(addr, after(2s));
    EXPECT_EQ(r.st, status::passing);
    EXPECT_EQ(r.output, "TCP connect " + addr + ": Success");
    l->close();
    r = co_await health::probe_tcp(addr, after(2s));
    EXPECT_EQ(r.st, status::critical);
    EXPECT_EQ(r.output, "dial tcp " + addr + ": connect: connection refused");
    r = co_await health::probe_tcp("127.0.0.1", after(2s));
    EXPECT_EQ(r.st, status::critical);
    EXPECT_EQ(r.output, "dial tcp: address 127.0.0.1: missing port in address");

    // UDP: silence until the deadline passes; an ICMP port unreachable fails.
    auto u = udp_socket::bind(loopback());
    CO_ASSERT_TRUE(bool(u));
    std::string uaddr = "127.0.0.1:" + std::to_string(u->port());
    r = co_await health::probe_udp(uaddr, after(100ms));
    EXPECT_EQ(r.st, status::passing);
    EXPECT_EQ(r.output, "UDP connect " + uaddr + ": Success");
    u->close();
    r = co_await health::probe_udp(uaddr, after(2s));
    EXPECT_EQ(r.st, status::critical);
    EXPECT_NE(r.output.find("connection refused"), std::string::npos) << r.output;
}

PHAROS_CORO_TEST(health_probe, script_exit_codes_output_and_timeout) {
    auto sh = [](const char* script) {
        std::vector<std::string> a;
        a.push_back("/bin/sh");
        a.push_back("-c");
        a.push_back(script);
        return a;
    };
    auto r = co_await health::probe_script(sh("echo fine"), 4096, 5'000'000'000, after(5s));
    EXPECT_EQ(r.st, status::passing);
    EXPECT_EQ(r.output, "fine\n");
    r = co_await health::probe_script(sh("echo meh >&2; exit 1"), 4096, 5'000'000'000, after(5s));
    EXPECT_EQ(r.st, status::warning);
    EXPECT_EQ(r.output, "meh\n");
    r = co_await health::probe_script(sh("exit 2"), 4096, 5'000'000'000, after(5s));
    EXPECT_EQ(r.st, status::critical);
    EXPECT_EQ(r.output, "");
    r = co_await health::probe_script(sh("printf 0123456789"), 4, 5'000'000'000, after(5s));
    EXPECT_EQ(r.output, "Captured 4 of 10 bytes\n...\n6789");
    // A timeout kills the group, including a child that holds the pipe.
    auto start = clock::now();
    r = co_await health::probe_script(sh("echo started; sleep 30 & sleep 30"), 4096, 300'000'000, after(300ms));
    EXPECT_LT(clock::now() - start, 5s);
    EXPECT_EQ(r.st, status::critical);
    EXPECT_EQ(r.output, "Timed out (300ms) running check\n\nstarted\n");
    std::vector<std::string> missing;
    missing.push_back("no-such-program-xyz");
    r = co_await health::probe_script(missing, 4096, 5'000'000'000, after(5s));
    EXPECT_EQ(r.st, status::critical);
    EXPECT_EQ(r.output, "exec: \"no-such-program-xyz\": executable file not found in $PATH");
}
