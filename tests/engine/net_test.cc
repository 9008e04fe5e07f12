// Sockets: TCP listeners and streams, UDP sockets, socket addresses.
//
// ctest runs this binary once per backend (PHAROS_BACKEND=io_uring, epoll).
// Every test binds only to 127.0.0.1, stops by itself (every network wait has
// a deadline, so a hang fails instead of blocking), and spends at most a few
// hundred ms of real time asleep.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/combinators.hh"
#include "engine/gate.hh"
#include "engine/net.hh"
#include "engine/smp.hh"
#include "tests/support/coro_test.hh"

using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

// ---------- plain helpers (not coroutines) ----------

// The bound on every network wait: a hang fails the test instead of blocking it.
constexpr auto io_timeout = 5s;

socket_address loopback(uint16_t port) { return socket_address::parse("127.0.0.1", port).value(); }

// Deterministic bytes that differ at every offset, so loss, duplication or
// reordering shows up as a mismatch.
std::string pattern(size_t n, uint32_t seed) {
    std::string s(n, '\0');
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s[i] = char(x);
    }
    return s;
}

// Index of the first byte where a and b differ (npos if equal).
size_t first_mismatch(std::string_view a, std::string_view b) {
    size_t n = std::min(a.size(), b.size());
    for (size_t i = 0; i < n; ++i)
        if (a[i] != b[i]) return i;
    return a.size() == b.size() ? std::string::npos : n;
}

// Makes the next close() of `s` send a RST instead of a FIN.
void arm_reset_on_close(tcp_stream& s) {
    linger lg{1, 0};
    ASSERT_EQ(setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
}

// Datagrams the kernel dropped on the UDP socket bound to 127.0.0.1:port
// (the "drops" column of /proc/net/udp): loss the engine is not to blame for.
uint64_t udp_kernel_drops(uint16_t port) {
    std::ifstream f("/proc/net/udp");
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
        std::istringstream in(line);
        std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode, ref, ptr, drops;
        in >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >> inode >> ref >> ptr >> drops;
        auto colon = local.find(':');
        if (colon == std::string::npos || drops.empty()) continue;
        if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) return std::stoull(drops);
    }
    return 0;
}

// A plain kernel UDP socket on 127.0.0.1, to see exactly what the engine has put
// on the wire, independently of the engine's own receive path.
struct raw_udp {
    int fd = -1;
    raw_udp() {
        fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int sz = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        socket_address a = loopback(0);
        if (::bind(fd, a.sa(), a.len) < 0) {
            ::close(fd);
            fd = -1;
        }
    }
    raw_udp(const raw_udp&) = delete;
    ~raw_udp() {
        if (fd >= 0) ::close(fd);
    }
    uint16_t port() const {
        sockaddr_in sin{};
        socklen_t len = sizeof sin;
        getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
        return ntohs(sin.sin_port);
    }
    // Every datagram already queued on the socket, without waiting.
    std::vector<std::string> drain() {
        std::vector<std::string> out;
        char buf[65536];
        for (;;) {
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n < 0) break;
            out.emplace_back(buf, size_t(n));
        }
        return out;
    }
};

// While alive on this thread: SIGPIPE gets its default (fatal) action but is
// blocked, so a send without MSG_NOSIGNAL leaves it pending instead of being
// swallowed by the SIG_IGN that smp::run installs.
struct sigpipe_probe {
    sigset_t old;
    sigpipe_probe() {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &s, &old);
        signal(SIGPIPE, SIG_DFL);
    }
    sigpipe_probe(const sigpipe_probe&) = delete;
    bool raised() const {
        sigset_t p;
        sigpending(&p);
        return sigismember(&p, SIGPIPE) == 1;
    }
    ~sigpipe_probe() {
        if (raised()) {
            sigset_t s;
            sigemptyset(&s);
            sigaddset(&s, SIGPIPE);
            timespec zero{};
            sigtimedwait(&s, nullptr, &zero);
        }
        signal(SIGPIPE, SIG_IGN);
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
};

// One listener per shard, opened, used and closed on its own shard (held by sharded<>).
struct listener_slot {
    tcp_listener listener;
    // Listens on 127.0.0.1:port (0: ephemeral) with SO_REUSEPORT; the bound port, 0 on failure.
    uint16_t open(uint16_t port) {
        auto l = tcp_listener::listen(loopback(port));
        EXPECT_TRUE(l.ok()) << "listen on shard " << this_shard() << ": " << l.error().message();
        if (!l) return 0;
        listener = std::move(l.value());
        return listener.port();
    }
};

// One UDP socket per shard, likewise.
struct udp_slot {
    udp_socket sock;
    uint16_t open() {
        auto u = udp_socket::bind(loopback(0));
        EXPECT_TRUE(u.ok()) << u.error().message();
        if (!u) return 0;
        sock = std::move(u.value());
        return sock.port();
    }
};

// ---------- TCP coroutine helpers ----------

// A connected client/server pair on the current shard, and its listener.
struct tcp_pair {
    tcp_listener listener;
    tcp_stream client;
    tcp_stream server;
};

task<bool> open_pair(tcp_pair* p, clock::duration limit = io_timeout) {
    auto l = tcp_listener::listen(loopback(0));
    if (!l) {
        ADD_FAILURE() << "listen: " << l.error().message();
        co_return false;
    }
    p->listener = std::move(l.value());
    deadline dl = limit == clock::duration::max() ? no_deadline : after(limit);
    auto c = co_await tcp_stream::connect(loopback(p->listener.port()), dl);
    if (!c) {
        ADD_FAILURE() << "connect: " << c.error().message();
        co_return false;
    }
    p->client = std::move(c.value());
    auto a = co_await p->listener.accept(dl);
    if (!a) {
        ADD_FAILURE() << "accept: " << a.error().message();
        co_return false;
    }
    p->server = std::move(a.value());
    co_return true;
}

// `text` must outlive the task (literals, or strings named in the caller's frame).
task<result<void>> send_text(tcp_stream* s, std::string_view text, deadline dl) {
    buffer b = buffer::copy_of(text);
    co_return co_await s->write(std::move(b), dl);
}

struct received {
    std::string data;
    size_t chunks = 0;
    bool eof = false;
    std::error_code error;
};

// Reads until EOF, an error, or at least `want` bytes.
task<received> read_until(tcp_stream* s, size_t want, deadline dl) {
    received out;
    while (out.data.size() < want) {
        auto r = co_await s->read(dl);
        if (!r) {
            out.error = r.error();
            break;
        }
        if (r->empty()) {
            out.eof = true;
            break;
        }
        out.data.append(r->view());
        ++out.chunks;
    }
    co_return std::move(out);
}

// read_until() to EOF into *out, as a task<size_t> for when_all.
task<size_t> read_to_eof(tcp_stream* s, received* out) {
    *out = co_await read_until(s, SIZE_MAX, after(io_timeout));
    co_return out->data.size();
}

// One read, its error (if any) recorded; a task<int> to race in when_any / when_all.
task<int> read_once(tcp_stream* s, std::error_code* err) {
    auto r = co_await s->read();
    *err = r.ok() ? std::error_code() : r.error();
    co_return 0;
}

// One write, its error (if any) recorded.
task<int> write_once(tcp_stream* s, std::string_view text, deadline dl, std::error_code* err) {
    auto r = co_await send_text(s, text, dl);
    *err = r.ok() ? std::error_code() : r.error();
    co_return 0;
}

task<int> accept_once(tcp_listener* l, std::error_code* err) {
    auto r = co_await l->accept();
    *err = r.ok() ? std::error_code() : r.error();
    co_return 0;
}

task<int> nap(clock::duration d) {
    co_await sleep_for(d);
    co_return 1;
}

// Closes a stream, listener or UDP socket from a task of its own, after `d`.
template <class S>
task<int> close_after(S* s, clock::duration d) {
    co_await sleep_for(d);
    s->close();
    co_return 1;
}

// Owns a connection and reads until cancelled: when its frame ends, the stream
// is destroyed with its multishot receive still armed. *outcome: 1 if cancelled.
task<int> connect_and_read_forever(uint16_t port, int* outcome) {
    auto c = co_await tcp_stream::connect(loopback(port), after(io_timeout));
    if (!c) {
        ADD_FAILURE() << "connect: " << c.error().message();
        co_return 0;
    }
    tcp_stream s = std::move(c.value());
    auto r = co_await s.read();
    *outcome = !r.ok() && is_cancelled(r.error()) ? 1 : -1;
    co_return 0;
}

// Likewise for a listener with its multishot accept armed.
task<int> listen_and_accept_forever(int* outcome) {
    auto l = tcp_listener::listen(loopback(0));
    if (!l) co_return 0;
    tcp_listener listener = std::move(l.value());
    auto a = co_await listener.accept();
    *outcome = !a.ok() && is_cancelled(a.error()) ? 1 : -1;
    co_return 0;
}

// Waits (a few ms at most) until the shard has no more I/O ops in flight than
// `base`: cancelled and detached ops have all been completed and recycled.
task<size_t> settle_ops(size_t base) {
    for (int i = 0; i < 200 && this_reactor().ops_in_flight() > base; ++i) co_await sleep_for(1ms);
    co_return this_reactor().ops_in_flight();
}

// Reads one chunk, then closes the stream with the rest still queued or arriving.
task<size_t> read_one_then_close(tcp_stream* s) {
    auto r = co_await s->read(after(io_timeout));
    size_t n = r.ok() ? r->size() : 0;
    s->close();
    co_return n;
}

// Writes `payload` to a peer that may vanish meanwhile: errors are expected.
task<size_t> write_regardless(tcp_stream* s, std::string_view payload) {
    buffer b = buffer::copy_of(payload);
    auto w = co_await s->write(std::move(b), after(io_timeout));
    EXPECT_FALSE(is_timed_out(w.error()));
    co_return w.ok() ? payload.size() : 0;
}

// Echoes everything it reads until EOF, then closes. Returns bytes echoed.
task<size_t> echo_until_eof(tcp_stream* s) {
    size_t n = 0;
    for (;;) {
        auto r = co_await s->read(after(io_timeout));
        if (!r) {
            ADD_FAILURE() << "echo read: " << r.error().message();
            break;
        }
        if (r->empty()) break;
        buffer b = buffer::copy_of(r->view());
        size_t len = b.size();
        auto w = co_await s->write(std::move(b), after(io_timeout));
        if (!w) {
            ADD_FAILURE() << "echo write: " << w.error().message();
            break;
        }
        n += len;
    }
    s->close();
    co_return n;
}

task<size_t> accept_and_echo(tcp_listener* l) {
    auto a = co_await l->accept(after(io_timeout));
    if (!a) {
        ADD_FAILURE() << "accept: " << a.error().message();
        co_return 0;
    }
    tcp_stream s = std::move(a.value());
    co_return co_await echo_until_eof(&s);
}

// A detached per-connection echo, holding the server's gate open while it runs.
task<void> echo_connection(tcp_stream s, gate::holder) { co_await echo_until_eof(&s); }

// Writes all of `payload` in one write() (the engine loops over short writes),
// then half-closes. Returns bytes written.
task<size_t> write_then_half_close(tcp_stream* s, std::string_view payload) {
    buffer b = buffer::copy_of(payload);
    auto w = co_await s->write(std::move(b), after(io_timeout));
    EXPECT_TRUE(w.ok()) << "write: " << w.error().message();
    auto h = s->shutdown_write();
    EXPECT_TRUE(h.ok()) << "shutdown_write: " << h.error().message();
    co_return w.ok() ? payload.size() : 0;
}

// writev() of `parts` as separate buffers, then a half-close. Returns bytes written.
task<size_t> writev_then_half_close(tcp_stream* s, std::vector<std::string> parts, std::error_code* err) {
    std::vector<buffer> bufs;
    size_t total = 0;
    for (auto& p : parts) {
        bufs.push_back(buffer::copy_of(p));
        total += p.size();
    }
    auto w = co_await s->writev(std::move(bufs), after(io_timeout));
    *err = w.ok() ? std::error_code() : w.error();
    auto h = s->shutdown_write();
    EXPECT_TRUE(h.ok());
    co_return w.ok() ? total : 0;
}

// Connects to 127.0.0.1:port, sends `bytes` of pattern while reading the echo
// concurrently (neither side's socket buffers could hold it all), half-closes,
// and checks that exactly the same bytes came back. Returns bytes echoed intact.
task<size_t> echo_client(uint16_t port, size_t bytes) {
    auto c = co_await tcp_stream::connect(loopback(port), after(io_timeout));
    if (!c) {
        ADD_FAILURE() << "connect: " << c.error().message();
        co_return 0;
    }
    tcp_stream s = std::move(c.value());
    auto peer = s.peer();
    EXPECT_TRUE(peer.ok() && peer.value() == loopback(port));
    std::string payload = pattern(bytes, uint32_t(bytes));
    received got;
    auto w = write_then_half_close(&s, payload);
    auto r = read_to_eof(&s, &got);
    co_await when_all(std::move(w), std::move(r));
    EXPECT_TRUE(got.eof) << got.error.message();
    EXPECT_EQ(got.data.size(), bytes);
    EXPECT_EQ(first_mismatch(got.data, payload), std::string::npos);
    // 4 KiB provided buffers (16 KiB on the fallback path): a big echo comes in many pieces.
    if (bytes >= (1u << 20)) {
        EXPECT_GE(got.chunks, bytes / 16384);
    }
    co_return got.data == payload ? got.data.size() : 0;
}

// Listener, echo server and client all on the calling shard.
task<size_t> echo_on_this_shard(size_t bytes) {
    auto l = tcp_listener::listen(loopback(0));
    if (!l) {
        ADD_FAILURE() << "listen: " << l.error().message();
        co_return 0;
    }
    tcp_listener listener = std::move(l.value());
    auto server = accept_and_echo(&listener);
    auto client = echo_client(listener.port(), bytes);
    auto r = co_await when_all(std::move(server), std::move(client));
    EXPECT_EQ(r[0], bytes) << "server echoed on shard " << this_shard();
    co_return r[1];
}

// Accepts exactly n connections, echoes each on a task of its own, and returns
// once all of them have ended. Returns connections accepted.
task<size_t> serve_n_echo(tcp_listener* l, size_t n) {
    gate g;
    size_t accepted = 0;
    while (accepted < n) {
        auto a = co_await l->accept(after(io_timeout));
        if (!a) {
            ADD_FAILURE() << "accept #" << accepted << ": " << a.error().message();
            break;
        }
        ++accepted;
        gate::holder h(g);
        this_reactor().spawn(echo_connection(std::move(a.value()), std::move(h)));
    }
    auto closed = co_await g.close(after(io_timeout));
    EXPECT_TRUE(closed.ok()) << "connections still open on the server";
    co_return accepted;
}

// A client doing `rounds` request/response round trips of varied sizes. Returns
// round trips that came back intact.
task<size_t> chatty_client(uint16_t port, int id, int rounds) {
    auto c = co_await tcp_stream::connect(loopback(port), after(io_timeout));
    if (!c) {
        ADD_FAILURE() << "client " << id << " connect: " << c.error().message();
        co_return 0;
    }
    tcp_stream s = std::move(c.value());
    size_t ok = 0;
    for (int r = 0; r < rounds; ++r) {
        std::string msg = "client " + std::to_string(id) + " round " + std::to_string(r) + ":" +
                          pattern(size_t(id * 37 + r * 101) % 3000 + 1, uint32_t(id * 16 + r));
        auto w = co_await send_text(&s, msg, after(io_timeout));
        if (!w) break;
        auto got = co_await read_until(&s, msg.size(), after(io_timeout));
        if (got.data != msg) {
            ADD_FAILURE() << "client " << id << " round " << r << ": got " << got.data.size() << " bytes, error "
                          << got.error.message();
            break;
        }
        ++ok;
    }
    co_return ok;
}

// Serves until its listener is closed: each connection gets one reply naming
// the shard that accepted it. Returns connections served.
task<void> reply_with_shard(tcp_stream s, gate::holder) {
    auto r = co_await s.read(after(io_timeout));
    if (!r || r->empty()) {
        ADD_FAILURE() << "no request";
        co_return;
    }
    std::string reply = "shard " + std::to_string(this_shard());
    auto w = co_await send_text(&s, reply, after(io_timeout));
    EXPECT_TRUE(w.ok());
}

task<size_t> serve_until_closed(tcp_listener* l) {
    gate g;
    size_t served = 0;
    for (;;) {
        auto a = co_await l->accept(after(io_timeout));
        if (!a) {
            // The listener was closed under the pending accept: EBADF, not a timeout.
            EXPECT_FALSE(is_timed_out(a.error()));
            break;
        }
        ++served;
        gate::holder h(g);
        this_reactor().spawn(reply_with_shard(std::move(a.value()), std::move(h)));
    }
    auto closed = co_await g.close(after(io_timeout));
    EXPECT_TRUE(closed.ok());
    co_return served;
}

// Asks which shard serves it; -1 on failure.
task<int> ask_shard(uint16_t port) {
    auto c = co_await tcp_stream::connect(loopback(port), after(io_timeout));
    if (!c) {
        ADD_FAILURE() << "connect: " << c.error().message();
        co_return -1;
    }
    tcp_stream s = std::move(c.value());
    auto w = co_await send_text(&s, "which shard?", after(io_timeout));
    if (!w) co_return -1;
    auto got = co_await read_until(&s, SIZE_MAX, after(io_timeout));  // to EOF
    if (got.data == "shard 0") co_return 0;
    if (got.data == "shard 1") co_return 1;
    ADD_FAILURE() << "reply: '" << got.data << "' " << got.error.message();
    co_return -1;
}

// Runs n clients, tallies who served them, then closes the listener on every
// shard (each from a task other than its accept loop). Returns clients served.
task<size_t> ask_then_close(sharded<listener_slot>* srv, uint16_t port, int n, std::array<size_t, 2>* tally) {
    std::vector<task<int>> asks;
    for (int i = 0; i < n; ++i) asks.push_back(ask_shard(port));
    auto who = co_await when_all(std::move(asks));
    size_t ok = 0;
    for (int w : who)
        if (w == 0 || w == 1) {
            ++(*tally)[size_t(w)];
            ++ok;
        }
    auto shut = [](listener_slot& s) { s.listener.close(); };
    auto shut1 = shut;
    co_await srv->invoke_on(0, std::move(shut));
    co_await srv->invoke_on(1, std::move(shut1));
    co_return ok;
}

// ---------- UDP coroutine helpers ----------

// On the socket's shard: answers one datagram with "pong:<payload>" and a
// 60000-byte datagram. Returns "<payload> from <sender>".
task<std::string> udp_ponger(udp_socket* u) {
    auto d = co_await u->recv_from(after(io_timeout));
    if (!d) co_return "error: " + d.error().message();
    std::string payload(d->data.view());
    std::string reply = "pong:" + payload;
    auto s1 = u->send_to(reply, d->from);
    std::string big = pattern(60000, 7);
    auto s2 = u->send_to(big, d->from);
    std::string seen = payload + " from " + d->from.to_string();
    if (!s1 || !s2) seen += " (reply not queued)";
    co_return seen;
}

// Sends "ping" to 127.0.0.1:peer_port and checks both replies. Returns "" or what went wrong.
task<std::string> udp_pinger(udp_socket* u, uint16_t peer_port) {
    auto s = u->send_to("ping", loopback(peer_port));
    if (!s) co_return "send_to: " + s.error().message();
    auto pong = co_await u->recv_from(after(io_timeout));
    if (!pong) co_return "recv pong: " + pong.error().message();
    if (pong->data.view() != "pong:ping") co_return "pong payload: " + std::string(pong->data.view());
    if (!(pong->from == loopback(peer_port))) co_return "pong sender: " + pong->from.to_string();
    auto big = co_await u->recv_from(after(io_timeout));
    if (!big) co_return "recv big: " + big.error().message();
    if (big->data.view() != pattern(60000, 7)) co_return "big payload of " + std::to_string(big->data.size());
    co_return "";
}

task<int> recv_once(udp_socket* u, std::error_code* err) {
    auto r = co_await u->recv_from();
    *err = r.ok() ? std::error_code() : r.error();
    co_return 0;
}

std::string seq_payload(int i) {
    char head[16];
    std::snprintf(head, sizeof head, "%05d:", i);
    return head + pattern(size_t(i % 200) + 1, uint32_t(i));
}
// The sequence number of a seq_payload() datagram, -1 if it is not one intact.
int seq_of(std::string_view d) {
    if (d.size() < 6 || d[5] != ':') return -1;
    int i = std::atoi(std::string(d.substr(0, 5)).c_str());
    return d == seq_payload(i) ? i : -1;
}

}  // namespace

// ===================== socket_address =====================

TEST(socket_address, parses_and_prints_ipv4) {
    auto a = socket_address::parse("127.0.0.1", 8500);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->family(), AF_INET);
    EXPECT_EQ(a->len, socklen_t(sizeof(sockaddr_in)));
    EXPECT_EQ(a->port(), 8500);
    EXPECT_EQ(a->ip(), "127.0.0.1");
    EXPECT_EQ(a->to_string(), "127.0.0.1:8500");
    auto any = socket_address::parse("0.0.0.0", 0);
    ASSERT_TRUE(any.ok());
    EXPECT_EQ(any->to_string(), "0.0.0.0:0");
    auto high = socket_address::parse("255.255.255.255", 65535);
    ASSERT_TRUE(high.ok());
    EXPECT_EQ(high->to_string(), "255.255.255.255:65535");
}

TEST(socket_address, parses_and_prints_ipv6_with_or_without_brackets) {
    auto a = socket_address::parse("::1", 53);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->family(), AF_INET6);
    EXPECT_EQ(a->len, socklen_t(sizeof(sockaddr_in6)));
    EXPECT_EQ(a->port(), 53);
    EXPECT_EQ(a->ip(), "::1");
    EXPECT_EQ(a->to_string(), "[::1]:53");
    auto bracketed = socket_address::parse("[::1]", 53);
    ASSERT_TRUE(bracketed.ok());
    EXPECT_TRUE(bracketed.value() == a.value());
    // Printed in canonical (compressed, lower-case) form.
    auto longform = socket_address::parse("2001:DB8:0:0:0:0:0:1", 8300);
    ASSERT_TRUE(longform.ok());
    EXPECT_EQ(longform->to_string(), "[2001:db8::1]:8300");
    auto mapped = socket_address::parse("::ffff:10.0.0.1", 1);
    ASSERT_TRUE(mapped.ok());
    EXPECT_EQ(mapped->family(), AF_INET6);
    EXPECT_EQ(mapped->to_string(), "[::ffff:10.0.0.1]:1");
}

TEST(socket_address, rejects_junk) {
    const char* junk[] = {"",          "localhost",   "1.2.3",       "256.1.1.1",  "1.2.3.4.5",    "127.0.0.1:80",
                          " 127.0.0.1", "127.0.0.1 ", "::g",         ":::",        "[::1",         "::1]",
                          "[]",        "[127.0.0.1",  "1:2:3:4:5:6:7:8:9", "0x7f.1", "fe80::1%lo", "[[::1]]"};
    for (const char* s : junk) {
        auto a = socket_address::parse(s, 80);
        EXPECT_FALSE(a.ok()) << "accepted '" << s << "' as " << (a.ok() ? a->to_string() : "");
        if (!a.ok()) {
            EXPECT_EQ(a.error(), std::errc::invalid_argument) << s;
        }
    }
}

TEST(socket_address, compares_by_family_address_and_port) {
    auto a = socket_address::parse("127.0.0.1", 80).value();
    EXPECT_TRUE(a == socket_address::parse("127.0.0.1", 80).value());
    EXPECT_FALSE(a == socket_address::parse("127.0.0.1", 81).value());
    EXPECT_FALSE(a == socket_address::parse("127.0.0.2", 80).value());
    EXPECT_FALSE(a == socket_address::parse("::ffff:127.0.0.1", 80).value());
    // from() round-trips the raw sockaddr.
    auto b = socket_address::from(a.sa(), a.len);
    EXPECT_TRUE(a == b);
    EXPECT_EQ(b.to_string(), "127.0.0.1:80");
}

// ===================== TCP: echo =====================

PHAROS_CORO_TEST(net, tcp_echo_of_4_mib_round_trips_with_both_ends_on_one_shard) {
    constexpr size_t bytes = 4u << 20;
    size_t n0 = co_await echo_on_this_shard(bytes);
    EXPECT_EQ(n0, bytes) << "on shard 0";
    auto fn = [] { return echo_on_this_shard(bytes); };
    size_t n1 = co_await submit_to(1, std::move(fn));
    EXPECT_EQ(n1, bytes) << "on shard 1";
}

PHAROS_CORO_TEST(net, tcp_echo_of_4_mib_round_trips_from_shard_0_to_a_server_on_shard_1) {
    constexpr size_t bytes = 4u << 20;
    sharded<listener_slot> srv;
    co_await srv.start();
    auto open = [](listener_slot& s) { return s.open(0); };
    uint16_t port = co_await srv.invoke_on(1, open);
    EXPECT_NE(port, 0);
    if (port) {
        auto serve = [](listener_slot& s) { return accept_and_echo(&s.listener); };
        auto server = srv.invoke_on(1, serve);
        auto client = echo_client(port, bytes);
        auto r = co_await when_all(std::move(server), std::move(client));
        EXPECT_EQ(r[0], bytes) << "bytes the server on shard 1 echoed";
        EXPECT_EQ(r[1], bytes) << "bytes the client on shard 0 got back intact";
    }
    co_await srv.stop();
}

PHAROS_CORO_TEST(net, tcp_echo_of_one_byte_round_trips) {
    size_t n = co_await echo_on_this_shard(1);
    EXPECT_EQ(n, 1u);
}

// ===================== TCP: writev, half-close =====================

PHAROS_CORO_TEST(net, writev_delivers_its_buffers_whole_and_in_order) {
    tcp_pair p;
    bool ok = co_await open_pair(&p);
    CO_ASSERT_TRUE(ok);
    // 41 buffers of uneven sizes (some empty), ~2 MiB: more than the socket
    // buffers take at once, so sendmsg returns short and resumes mid-buffer.
    std::vector<std::string> parts;
    std::string expected;
    for (int i = 0; i <= 40; ++i) {
        parts.push_back(i % 10 == 3 ? std::string() : pattern(size_t(i * 7919) % 100000 + 1, uint32_t(i)));
        expected += parts.back();
    }
    std::error_code err;
    received got;
    auto w = writev_then_half_close(&p.client, std::move(parts), &err);
    auto r = read_to_eof(&p.server, &got);
    auto n = co_await when_all(std::move(w), std::move(r));
    EXPECT_FALSE(err) << err.message();
    EXPECT_EQ(n[0], expected.size());
    EXPECT_TRUE(got.eof);
    EXPECT_EQ(got.data.size(), expected.size());
    EXPECT_EQ(first_mismatch(got.data, expected), std::string::npos);
}

PHAROS_CORO_TEST(net, writev_of_a_few_small_buffers_arrives_as_their_concatenation) {
    tcp_pair p;
    bool ok = co_await open_pair(&p);
    CO_ASSERT_TRUE(ok);
    std::vector<buffer> bufs;
    bufs.push_back(buffer::copy_of("GET /v1/kv/"));
    bufs.push_back(buffer::copy_of(""));
    bufs.push_back(buffer::from_static("key HTTP/1.1\r\n"));
    bufs.push_back(buffer::copy_of("\r\n"));
    auto w = co_await p.client.writev(std::move(bufs), after(io_timeout));
    EXPECT_TRUE(w.ok()) << w.error().message();
    std::string_view expected = "GET /v1/kv/key HTTP/1.1\r\n\r\n";
    auto got = co_await read_until(&p.server, expected.size(), after(io_timeout));
    EXPECT_FALSE(got.error) << got.error.message();
    EXPECT_EQ(got.data, expected);
}

// UIO_MAXIOV is 1024: a sendmsg with more iovecs fails with EMSGSIZE, so writev
// must split a longer vector across several calls.
// Regression: writev put every buffer into one sendmsg (EMSGSIZE past 1024).
PHAROS_CORO_TEST(net, writev_of_more_buffers_than_iov_max_arrives_whole) {
    tcp_pair p;
    bool ok = co_await open_pair(&p);
    CO_ASSERT_TRUE(ok);
    std::vector<std::string> parts;
    std::string expected;
    for (int i = 0; i < 2000; ++i) {
        parts.push_back(std::to_string(i));
        parts.back() += ';';
        expected += parts.back();
    }
    std::error_code err;
    received got;
    auto w = writev_then_half_close(&p.client, std::move(parts), &err);
    auto r = read_to_eof(&p.server, &got);
    co_await when_all(std::move(w), std::move(r));
    EXPECT_FALSE(err) << "writev of 2000 buffers: " << err.message();
    EXPECT_EQ(got.data.size(), expected.size());
    EXPECT_EQ(first_mismatch(got.data, expected), std::string::npos);
}

PHAROS_CORO_TEST(net, after_a_half_close_the_server_reads_eof_and_can_still_reply) {
    tcp_pair p;
    bool ok = co_await open_pair(&p);
    CO_ASSERT_TRUE(ok);
    auto w = co_await send_text(&p.client, "request", after(io_timeout));
    EXPECT_TRUE(w.ok());
    auto sh = p.client.shutdown_write();
    EXPECT_TRUE(sh.ok()) << sh.error().message();
    // The server sees the request, then EOF (an empty chunk), and EOF stays.
    auto req = co_await read_until(&p.server, SIZE_MAX, after(io_timeout));
    EXPECT_EQ(req.data, "request");
    EXPECT_TRUE(req.eof) << req.error.message();
    auto again = co_await p.server.read(after(io_timeout));
    EXPECT_TRUE(again.ok() && again->empty()) << "EOF is sticky";
    // Its side is still open: the reply reaches the client, then the server's EOF.
    auto reply = co_await send_text(&p.server, "reply after your EOF", after(io_timeout));
    EXPECT_TRUE(reply.ok()) << reply.error().message();
    p.server.close();
    auto got = co_await read_until(&p.client, SIZE_MAX, after(io_timeout));
    EXPECT_EQ(got.data, "reply after your EOF");
    EXPECT_TRUE(got.eof) << got.error.message();
    // Writing on the half-closed side fails, without a crash.
    auto late = co_await send_text(&p.client, "too late", after(io_timeout));
    EXPECT_FALSE(late.ok());
}

// ===================== TCP: failures =====================

PHAROS_CORO_TEST(net, connecting_to_a_closed_port_fails_with_econnrefused) {
    // An ephemeral port that was just bound and released: nobody listens there.
    uint16_t port;
    {
        auto l = tcp_listener::listen(loopback(0));
        CO_ASSERT_TRUE(l.ok());
        port = l->port();
    }
    auto t0 = clock::now();
    auto c = co_await tcp_stream::connect(loopback(port), after(io_timeout));
    CO_ASSERT_TRUE(!c.ok());
    EXPECT_EQ(c.error(), std::errc::connection_refused) << c.error().message();
    EXPECT_LT(clock::now() - t0, 1s);
    // The shard is fine afterwards.
    size_t n = co_await echo_on_this_shard(1000);
    EXPECT_EQ(n, 1000u);
}

PHAROS_CORO_TEST(net, a_read_pending_when_the_peer_resets_ends_cleanly) {
    tcp_pair p;
    bool ok = co_await open_pair(&p);
    CO_ASSERT_TRUE(ok);
    arm_reset_on_close(p.server);
    std::error_code err = std::make_error_code(std::errc::operation_in_progress);  // overwritten by the read
    auto reader = read_once(&p.client, &err);
    auto resetter = close_after(&p.server, 10ms);
    auto t0 = clock::now();
    co_await when_all(std::move(reader), std::move(resetter));
    // ECONNRESET (or, if the kernel reports it so, a plain EOF): never a hang.
    EXPECT_TRUE(!err || err == std::errc::connection_reset) << err.message();
    EXPECT_LT(clock::now() - t0, 1s);
    // Reading again ends the same way at once.
    auto again = co_await p.client.read(after(io_timeout));
    EXPECT_TRUE(again.ok() ? again->empty() : !is_timed_out(again.error())) << again.error().message();
}

PHAROS_CORO_TEST(net, a_read_after_the_peer_reset_ends_with_an_error_or_eof) {
    tcp_pair p;
    bool ok = co_await open_pair(&p);
    CO_ASSERT_TRUE(ok);
    // Data the client never reads is in flight when the server resets.
    auto w = co_await send_text(&p.server, "unread", after(io_timeout));
    EXPECT_TRUE(w.ok());
    arm_reset_on_close(p.server);
    p.server.close();
    auto got = co_await read_until(&p.client, SIZE_MAX, after(io_timeout));
    EXPECT_TRUE(got.eof || got.error == std::errc::connection_reset) << got.error.message();
    EXPECT_FALSE(is_timed_out(got.error));
}

PHAROS_CORO_TEST(net, writing_to_a_reset_peer_fails_cleanly_without_sigpipe) {
    sigpipe_probe probe;  // SIGPIPE is fatal again on this thread, but held pending
    tcp_pair p;
    bool ok = co_await open_pair(&p);
    CO_ASSERT_TRUE(ok);
    arm_reset_on_close(p.server);
    p.server.close();
    std::string chunk = pattern(64 << 10, 3);
    // The first write may still be accepted before the RST is noticed; one fails soon.
    std::error_code first;
    for (int i = 0; i < 16 && !first; ++i) {
        auto w = co_await send_text(&p.client, chunk, after(io_timeout));
        if (!w) first = w.error();
    }
    CO_ASSERT_TRUE(bool(first));
    EXPECT_FALSE(is_timed_out(first));
    // Once the reset has been reported, a write meets EPIPE: the case that raises SIGPIPE.
    auto again = co_await send_text(&p.client, chunk, after(io_timeout));
    EXPECT_FALSE(again.ok());
    EXPECT_EQ(again.error(), std::errc::broken_pipe) << again.error().message();
    EXPECT_FALSE(probe.raised()) << "a send raised SIGPIPE (missing MSG_NOSIGNAL)";
}

// ===================== TCP: deadlines =====================

PHAROS_CORO_TEST(net, a_read_deadline_times_out_in_real_time_and_loses_nothing) {
    tcp_pair p;
    bool ok = co_await open_pair(&p);
    CO_ASSERT_TRUE(ok);
    auto t0 = clock::now();
    auto r = co_await p.client.read(after(50ms));
    auto waited = clock::now() - t0;
    CO_ASSERT_TRUE(!r.ok());
    EXPECT_TRUE(is_timed_out(r.error())) << r.error().message();
    EXPECT_GE(waited, 50ms);
    EXPECT_LT(waited, 500ms);
    // A deadline already past fails at once.
    auto past = co_await p.client.read(clock::now() - 1ms);
    EXPECT_TRUE(!past.ok() && is_timed_out(past.error()));
    // The stream still works: bytes written afterwards arrive whole and in order.
    std::string late = pattern(100000, 9);
    auto w = co_await send_text(&p.server, late, after(io_timeout));
    EXPECT_TRUE(w.ok());
    auto got = co_await read_until(&p.client, late.size(), after(io_timeout));
    EXPECT_EQ(got.data.size(), late.size());
    EXPECT_EQ(first_mismatch(got.data, late), std::string::npos);
    // A timeout with data already queued does not happen: queued data wins.
    auto w2 = co_await send_text(&p.server, "queued", after(io_timeout));
    EXPECT_TRUE(w2.ok());
    co_await sleep_for(5ms);
    auto q = co_await read_until(&p.client, 6, after(50ms));
    EXPECT_EQ(q.data, "queued");
}

PHAROS_CORO_TEST(net, an_accept_deadline_times_out_and_the_next_connection_is_still_accepted) {
    auto l = tcp_listener::listen(loopback(0));
    CO_ASSERT_TRUE(l.ok());
    tcp_listener listener = std::move(l.value());
    auto t0 = clock::now();
    auto a = co_await listener.accept(after(50ms));
    auto waited = clock::now() - t0;
    CO_ASSERT_TRUE(!a.ok());
    EXPECT_TRUE(is_timed_out(a.error())) << a.error().message();
    EXPECT_GE(waited, 50ms);
    EXPECT_LT(waited, 500ms);
    auto server = accept_and_echo(&listener);
    auto client = echo_client(listener.port(), 5000);
    auto n = co_await when_all(std::move(server), std::move(client));
    EXPECT_EQ(n[1], 5000u);
}

PHAROS_MANUAL_CLOCK_TEST(net, a_read_deadline_follows_the_manual_clock) {
    tcp_pair p;
    bool ok = co_await open_pair(&p, clock::duration::max());
    CO_ASSERT_TRUE(ok);
    auto t0 = clock::now();
    auto r = co_await p.client.read(after(30s));
    EXPECT_TRUE(!r.ok() && is_timed_out(r.error()));
    // Nobody wrote, so engine time jumped straight to the deadline.
    EXPECT_EQ(clock::now() - t0, 30s);
    auto w = co_await send_text(&p.server, "hello", no_deadline);
    EXPECT_TRUE(w.ok());
    auto got = co_await read_until(&p.client, 5, no_deadline);
    EXPECT_EQ(got.data, "hello");
}

// ===================== TCP: cancellation and close with operations in flight =====================

PHAROS_CORO_TEST(net, when_any_cancels_a_pending_read_and_the_stream_loses_nothing) {
    tcp_pair p;
    bool ok = co_await open_pair(&p);
    CO_ASSERT_TRUE(ok);
    std::error_code err;
    auto reader = read_once(&p.client, &err);
    auto sleeper = nap(20ms);
    auto r = co_await when_any(std::move(reader), std::move(sleeper));
    EXPECT_EQ(r.index, 1u) << "the sleep wins";
    EXPECT_TRUE(is_cancelled(err)) << err.message();
    // Cancel a few more reads in a row, then send: the bytes are all there.
    for (int i = 0; i < 3; ++i) {
        auto again = read_once(&p.client, &err);
        auto yield_first = nap(0ms);
        auto ri = co_await when_any(std::move(again), std::move(yield_first));
        EXPECT_EQ(ri.index, 1u);
    }
    std::string msg = pattern(20000, 11);
    auto w = co_await send_text(&p.server, msg, after(io_timeout));
    EXPECT_TRUE(w.ok());
    auto got = co_await read_until(&p.client, msg.size(), after(io_timeout));
    EXPECT_EQ(first_mismatch(got.data, msg), std::string::npos);
}

PHAROS_CORO_TEST(net, when_any_cancels_a_pending_accept_and_no_connection_is_lost) {
    auto l = tcp_listener::listen(loopback(0));
    CO_ASSERT_TRUE(l.ok());
    tcp_listener listener = std::move(l.value());
    std::error_code err;
    auto acceptor = accept_once(&listener, &err);
    auto sleeper = nap(20ms);
    auto r = co_await when_any(std::move(acceptor), std::move(sleeper));
    EXPECT_EQ(r.index, 1u);
    EXPECT_TRUE(is_cancelled(err)) << err.message();
    // A connection made while nobody accepts is queued for the next accept.
    auto c = co_await tcp_stream::connect(loopback(listener.port()), after(io_timeout));
    CO_ASSERT_TRUE(c.ok());
    tcp_stream client = std::move(c.value());
    auto a = co_await listener.accept(after(io_timeout));
    CO_ASSERT_TRUE(a.ok());
    tcp_stream server = std::move(a.value());
    auto w = co_await send_text(&client, "hi", after(io_timeout));
    EXPECT_TRUE(w.ok());
    auto got = co_await read_until(&server, 2, after(io_timeout));
    EXPECT_EQ(got.data, "hi");
}

PHAROS_CORO_TEST(net, closing_a_stream_from_another_task_ends_its_pending_read) {
    size_t base = this_reactor().ops_in_flight();
    {
        tcp_pair p;
        bool ok = co_await open_pair(&p);
        CO_ASSERT_TRUE(ok);
        std::error_code err;
        auto reader = read_once(&p.client, &err);
        auto closer = close_after(&p.client, 10ms);
        co_await when_all(std::move(reader), std::move(closer));
        EXPECT_TRUE(bool(err)) << "the pending read ended with an error";
        EXPECT_FALSE(is_timed_out(err));
        EXPECT_FALSE(p.client.is_open());
        // Every later call fails at once.
        auto r = co_await p.client.read(after(io_timeout));
        EXPECT_EQ(r.error(), std::errc::bad_file_descriptor);
        auto w = co_await send_text(&p.client, "x", after(io_timeout));
        EXPECT_EQ(w.error(), std::errc::bad_file_descriptor);
        // The peer sees the close as EOF.
        auto eof = co_await read_until(&p.server, SIZE_MAX, after(io_timeout));
        EXPECT_TRUE(eof.eof) << eof.error.message();
        // Closing twice is harmless.
        p.client.close();
    }
    // The multishot receive and accept were cancelled and recycled, nothing left behind.
    size_t left = co_await settle_ops(base);
    EXPECT_EQ(left, base);
}

PHAROS_CORO_TEST(net, closing_a_stream_with_unread_data_in_flight_leaves_no_op_behind) {
    size_t base = this_reactor().ops_in_flight();
    for (int i = 0; i < 20; ++i) {
        tcp_pair p;
        bool ok = co_await open_pair(&p);
        CO_ASSERT_TRUE(ok);
        // 256 KiB arrive while the client's multishot receive is armed; it reads one
        // chunk and is closed with the rest queued or still arriving.
        std::string blob = pattern(256 << 10, uint32_t(i));
        auto writer = write_regardless(&p.server, blob);
        auto reader = read_one_then_close(&p.client);
        auto n = co_await when_all(std::move(writer), std::move(reader));
        EXPECT_GE(n[1], 1u);
    }
    size_t left = co_await settle_ops(base);
    EXPECT_EQ(left, base);
    // The shard's receive buffers came back: a 4 MiB echo still runs.
    size_t echoed = co_await echo_on_this_shard(4u << 20);
    EXPECT_EQ(echoed, 4u << 20);
}

PHAROS_CORO_TEST(net, closing_a_listener_from_another_task_ends_its_pending_accept) {
    size_t base = this_reactor().ops_in_flight();
    {
        auto l = tcp_listener::listen(loopback(0));
        CO_ASSERT_TRUE(l.ok());
        tcp_listener listener = std::move(l.value());
        std::error_code err;
        auto acceptor = accept_once(&listener, &err);
        auto closer = close_after(&listener, 10ms);
        co_await when_all(std::move(acceptor), std::move(closer));
        EXPECT_TRUE(bool(err));
        EXPECT_FALSE(is_timed_out(err));
        EXPECT_FALSE(listener.is_open());
        auto again = co_await listener.accept(after(io_timeout));
        EXPECT_EQ(again.error(), std::errc::bad_file_descriptor);
    }
    size_t left = co_await settle_ops(base);
    EXPECT_EQ(left, base);
}

PHAROS_CORO_TEST(net, a_cancelled_task_destroys_its_stream_and_listener_with_operations_in_flight) {
    size_t base = this_reactor().ops_in_flight();
    {
        auto l = tcp_listener::listen(loopback(0));
        CO_ASSERT_TRUE(l.ok());
        tcp_listener listener = std::move(l.value());
        int read_outcome = 0, accept_outcome = 0;
        auto reader = connect_and_read_forever(listener.port(), &read_outcome);
        auto acceptor = listen_and_accept_forever(&accept_outcome);
        auto sleeper = nap(20ms);
        auto r = co_await when_any(std::move(reader), std::move(acceptor), std::move(sleeper));
        EXPECT_EQ(r.index, 2u);
        EXPECT_EQ(read_outcome, 1) << "the read ended cancelled";
        EXPECT_EQ(accept_outcome, 1) << "the accept ended cancelled";
        // The destroyed client closed its side: the server end sees EOF.
        auto a = co_await listener.accept(after(io_timeout));
        CO_ASSERT_TRUE(a.ok());
        tcp_stream server = std::move(a.value());
        auto got = co_await read_until(&server, SIZE_MAX, after(io_timeout));
        EXPECT_TRUE(got.eof) << got.error.message();
        EXPECT_EQ(got.data, "");
    }
    size_t left = co_await settle_ops(base);
    EXPECT_EQ(left, base);
}

// A writer stuck on a peer that never reads must be released by close(), as it
// is on epoll (forget_fd cancels every op on the fd).
// Regression (io_uring): io_uring holds its own reference to the file, so close()
// left a pending send armed until its deadline; forget_fd now cancels every op on
// the fd before the reactor closes it.
PHAROS_CORO_TEST(net, closing_a_stream_ends_a_write_blocked_on_a_peer_that_does_not_read) {
    tcp_pair p;
    bool ok = co_await open_pair(&p);
    CO_ASSERT_TRUE(ok);
    std::string huge = pattern(16u << 20, 5);  // far beyond both socket buffers
    auto t0 = clock::now();
    std::error_code err;
    auto writer = write_once(&p.client, huge, after(1s), &err);
    auto closer = close_after(&p.client, 50ms);
    co_await when_all(std::move(writer), std::move(closer));
    auto waited = clock::now() - t0;
    EXPECT_TRUE(bool(err)) << "the write cannot have completed";
    EXPECT_FALSE(is_timed_out(err)) << "the write stayed blocked after close() until its deadline";
    EXPECT_LT(waited, 500ms);
    EXPECT_TRUE(p.server.is_open());
}

// ===================== TCP: many connections, every shard =====================

PHAROS_CORO_TEST(net, two_hundred_concurrent_clients_each_complete_five_round_trips) {
    constexpr int clients = 200;
    constexpr int rounds = 5;
    sharded<listener_slot> srv;
    co_await srv.start();
    auto open = [](listener_slot& s) { return s.open(0); };
    uint16_t port = co_await srv.invoke_on(1, open);
    EXPECT_NE(port, 0);
    if (port) {
        std::vector<task<size_t>> all;
        auto serve = [](listener_slot& s) { return serve_n_echo(&s.listener, clients); };
        all.push_back(srv.invoke_on(1, serve));
        for (int i = 0; i < clients; ++i) all.push_back(chatty_client(port, i, rounds));
        auto r = co_await when_all(std::move(all));
        EXPECT_EQ(r[0], size_t(clients)) << "connections accepted on shard 1";
        size_t trips = 0;
        for (size_t i = 1; i < r.size(); ++i) trips += r[i];
        EXPECT_EQ(trips, size_t(clients * rounds));
    }
    co_await srv.stop();
}

PHAROS_CORO_TEST(net, reuse_port_listeners_on_both_shards_share_a_port_and_both_accept) {
    constexpr int clients = 64;
    sharded<listener_slot> srv;
    co_await srv.start();
    auto open_any = [](listener_slot& s) { return s.open(0); };
    uint16_t port = co_await srv.invoke_on(0, open_any);
    auto open_same = [port](listener_slot& s) { return s.open(port); };
    uint16_t port1 = co_await srv.invoke_on(1, std::move(open_same));
    EXPECT_NE(port, 0);
    EXPECT_EQ(port1, port) << "shard 1 bound the port shard 0 got";
    if (port && port1 == port) {
        std::array<size_t, 2> tally;
        tally.fill(0);
        auto serve = [](listener_slot& s) { return serve_until_closed(&s.listener); };
        auto s0 = srv.invoke_on(0, serve);
        auto s1 = srv.invoke_on(1, serve);
        auto cl = ask_then_close(&srv, port, clients, &tally);
        auto r = co_await when_all(std::move(s0), std::move(s1), std::move(cl));
        EXPECT_EQ(r[2], size_t(clients)) << "clients that got a reply";
        EXPECT_EQ(r[0] + r[1], size_t(clients));
        EXPECT_EQ(r[0], tally[0]);
        EXPECT_EQ(r[1], tally[1]);
        // The kernel spreads connections over the group by hash: with 64 of them,
        // both shards get some (all on one side has odds of 2^-63).
        EXPECT_GT(r[0], 0u);
        EXPECT_GT(r[1], 0u);
    }
    co_await srv.stop();
}

// ===================== UDP =====================

PHAROS_CORO_TEST(net, udp_datagrams_carry_payload_and_sender_both_ways_across_shards) {
    auto a = udp_socket::bind(loopback(0));
    CO_ASSERT_TRUE(a.ok());
    udp_socket mine = std::move(a.value());
    sharded<udp_slot> peer;
    co_await peer.start();
    auto open = [](udp_slot& u) { return u.open(); };
    uint16_t peer_port = co_await peer.invoke_on(1, open);
    EXPECT_NE(peer_port, 0);
    if (peer_port) {
        auto pong = [](udp_slot& u) { return udp_ponger(&u.sock); };
        auto there = peer.invoke_on(1, pong);
        auto here = udp_pinger(&mine, peer_port);
        auto r = co_await when_all(std::move(there), std::move(here));
        EXPECT_EQ(r[0], "ping from 127.0.0.1:" + std::to_string(mine.port())) << "as seen on shard 1";
        EXPECT_EQ(r[1], "") << "as seen on shard 0";
    }
    EXPECT_EQ(mine.send_errors(), 0u);
    co_await peer.stop();
}

PHAROS_CORO_TEST(net, udp_sends_are_queued_and_leave_together_at_the_end_of_the_turn) {
    raw_udp sink;
    CO_ASSERT_TRUE(sink.fd >= 0);
    auto u = udp_socket::bind(loopback(0));
    CO_ASSERT_TRUE(u.ok());
    udp_socket tx = std::move(u.value());
    socket_address to = loopback(sink.port());
    for (int i = 0; i < 1000; ++i) {
        auto s = tx.send_to(seq_payload(i), to);
        EXPECT_TRUE(s.ok()) << i;
    }
    EXPECT_TRUE(sink.drain().empty()) << "send_to only queues; nothing leaves mid-turn";
    co_await yield();  // the end of this turn flushes the queue
    auto got = sink.drain();
    uint64_t drops = udp_kernel_drops(sink.port());
    EXPECT_EQ(got.size() + drops, 1000u) << drops << " dropped by the kernel";
    int last = -1;
    for (auto& d : got) {
        int seq = seq_of(d);
        EXPECT_GT(seq, last) << "datagrams arrive intact and in order";
        last = seq;
    }
    EXPECT_EQ(tx.send_errors(), 0u);
}

PHAROS_CORO_TEST(net, udp_burst_of_1000_datagrams_sent_in_one_turn_all_arrive) {
    auto a = udp_socket::bind(loopback(0));
    auto b = udp_socket::bind(loopback(0));
    CO_ASSERT_TRUE(a.ok() && b.ok());
    udp_socket tx = std::move(a.value());
    udp_socket rx = std::move(b.value());
    socket_address to = loopback(rx.port());
    for (int i = 0; i < 1000; ++i) {
        auto s = tx.send_to(seq_payload(i), to);
        EXPECT_TRUE(s.ok()) << i;
    }
    size_t got = 0;
    int last = -1;
    while (got < 1000) {
        auto d = co_await rx.recv_from(after(300ms));
        if (!d) {
            EXPECT_TRUE(is_timed_out(d.error())) << d.error().message();
            break;
        }
        int seq = seq_of(d->data.view());
        EXPECT_GT(seq, last) << "intact and in order";
        last = seq;
        EXPECT_TRUE(d->from == loopback(tx.port()));
        ++got;
    }
    uint64_t drops = udp_kernel_drops(rx.port());
    EXPECT_EQ(got + drops, 1000u) << "lost beyond the " << drops << " datagrams the kernel dropped";
    EXPECT_GT(got, 0u);
    EXPECT_EQ(tx.send_errors(), 0u);
}

PHAROS_CORO_TEST(net, udp_send_queue_refuses_past_4096_datagrams_in_one_turn) {
    raw_udp sink;
    CO_ASSERT_TRUE(sink.fd >= 0);
    auto u = udp_socket::bind(loopback(0));
    CO_ASSERT_TRUE(u.ok());
    udp_socket tx = std::move(u.value());
    socket_address to = loopback(sink.port());
    int accepted = 0;
    for (int i = 0; i < 4096; ++i)
        if (tx.send_to("x", to).ok()) ++accepted;
    EXPECT_EQ(accepted, 4096);
    auto full = tx.send_to("x", to);
    EXPECT_EQ(full.error(), make_error_code(errc::queue_full));
    co_await yield();  // flushed: room again
    auto next = tx.send_to("after", to);
    EXPECT_TRUE(next.ok()) << next.error().message();
    co_await yield();
    EXPECT_EQ(tx.send_errors(), 0u);
}

PHAROS_CORO_TEST(net, a_udp_receive_deadline_times_out_and_a_later_datagram_still_arrives) {
    auto a = udp_socket::bind(loopback(0));
    auto b = udp_socket::bind(loopback(0));
    CO_ASSERT_TRUE(a.ok() && b.ok());
    udp_socket tx = std::move(a.value());
    udp_socket rx = std::move(b.value());
    auto t0 = clock::now();
    auto d = co_await rx.recv_from(after(50ms));
    auto waited = clock::now() - t0;
    CO_ASSERT_TRUE(!d.ok());
    EXPECT_TRUE(is_timed_out(d.error())) << d.error().message();
    EXPECT_GE(waited, 50ms);
    EXPECT_LT(waited, 500ms);
    auto s = tx.send_to("after the timeout", loopback(rx.port()));
    EXPECT_TRUE(s.ok());
    auto later = co_await rx.recv_from(after(io_timeout));
    CO_ASSERT_TRUE(later.ok());
    EXPECT_EQ(later->data.view(), "after the timeout");
    EXPECT_TRUE(later->from == loopback(tx.port()));
}

PHAROS_CORO_TEST(net, when_any_cancels_a_pending_udp_receive_and_no_datagram_is_lost) {
    auto a = udp_socket::bind(loopback(0));
    auto b = udp_socket::bind(loopback(0));
    CO_ASSERT_TRUE(a.ok() && b.ok());
    udp_socket tx = std::move(a.value());
    udp_socket rx = std::move(b.value());
    std::error_code err;
    auto receiver = recv_once(&rx, &err);
    auto sleeper = nap(20ms);
    auto r = co_await when_any(std::move(receiver), std::move(sleeper));
    EXPECT_EQ(r.index, 1u);
    EXPECT_TRUE(is_cancelled(err)) << err.message();
    for (int i = 0; i < 3; ++i) {
        auto s = tx.send_to(seq_payload(i), loopback(rx.port()));
        EXPECT_TRUE(s.ok());
    }
    for (int i = 0; i < 3; ++i) {
        auto d = co_await rx.recv_from(after(io_timeout));
        CO_ASSERT_TRUE(d.ok());
        EXPECT_EQ(seq_of(d->data.view()), i);
    }
}

PHAROS_CORO_TEST(net, closing_a_udp_socket_from_another_task_ends_its_pending_receive) {
    size_t base = this_reactor().ops_in_flight();
    {
        auto b = udp_socket::bind(loopback(0));
        CO_ASSERT_TRUE(b.ok());
        udp_socket rx = std::move(b.value());
        std::error_code err;
        auto receiver = recv_once(&rx, &err);
        auto closer = close_after(&rx, 10ms);
        co_await when_all(std::move(receiver), std::move(closer));
        EXPECT_EQ(err, std::errc::bad_file_descriptor) << err.message();
        auto s = rx.send_to("x", loopback(9));
        EXPECT_FALSE(s.ok());
    }
    size_t left = co_await settle_ops(base);
    EXPECT_EQ(left, base);
}
