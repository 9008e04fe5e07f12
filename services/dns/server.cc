#include "server.hh"

#include <algorithm>
#include <stdexcept>

#include "engine/log.hh"

namespace pharos::dns {
using namespace engine;

namespace {

uint16_t frame_len(std::string_view b) { return uint16_t((uint8_t(b[0]) << 8) | uint8_t(b[1])); }

// One exchange with a recursor over UDP. Empty on failure.
task<std::string> exchange_udp(std::string query, socket_address to, deadline dl) {
    socket_address any;
    auto local = socket_address::parse(to.family() == AF_INET6 ? "::" : "0.0.0.0", 0);
    if (!local) co_return std::string();
    any = *local;
    auto sock = udp_socket::bind(any);
    if (!sock) co_return std::string();
    if (!sock->send_to(query, to)) co_return std::string();
    for (;;) {
        auto d = co_await sock->recv_from(dl);
        if (!d) co_return std::string();
        std::string_view r = d->data.view();
        // Only the recursor's answer to this query (same ID) counts.
        if (!(d->from == to) || r.size() < 12 || r.substr(0, 2) != std::string_view(query).substr(0, 2)) continue;
        co_return std::string(r);
    }
}

task<std::string> exchange_tcp(std::string query, socket_address to, deadline dl) {
    auto conn = co_await tcp_stream::connect(to, dl);
    if (!conn) co_return std::string();
    std::string framed;
    framed.push_back(char(query.size() >> 8));
    framed.push_back(char(query.size() & 0xFF));
    framed.append(query);
    auto w = co_await conn->write(buffer::copy_of(framed), dl);
    if (!w) co_return std::string();
    std::string in;
    for (;;) {
        if (in.size() >= 2 && in.size() >= 2u + frame_len(in)) co_return in.substr(2, frame_len(in));
        auto c = co_await conn->read(dl);
        if (!c || c->empty()) co_return std::string();
        in.append(c->view());
    }
}

}  // namespace

result<socket_address> recursor_address(const std::string& s) {
    std::string host = s;
    uint16_t port = 53;
    if (!s.empty() && s[0] == '[') {
        auto close = s.find(']');
        if (close == std::string::npos) return make_error_code(std::errc::invalid_argument);
        host = s.substr(1, close - 1);
        if (close + 1 < s.size()) {
            if (s[close + 1] != ':') return make_error_code(std::errc::invalid_argument);
            port = uint16_t(std::stoi(s.substr(close + 2)));
        }
    } else if (std::count(s.begin(), s.end(), ':') == 1) {
        auto colon = s.find(':');
        host = s.substr(0, colon);
        try {
            port = uint16_t(std::stoi(s.substr(colon + 1)));
        } catch (const std::exception&) {
            return make_error_code(std::errc::invalid_argument);
        }
    }
    return socket_address::parse(host, port);
}

server::server(server_config cfg, resolver_config rc, sharded<state::service>* st)
    : cfg_(std::move(cfg)), res_(std::move(rc)), st_(st) {
    // Each shard shuffles differently.
    res_.seed(0x9E3779B97F4A7C15ull ^ (uint64_t(this_shard() + 1) * 0xBF58476D1CE4E5B9ull) ^
              uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()));
    for (auto& r : cfg_.recursors) {
        auto a = recursor_address(r);
        if (a)
            recursors_.push_back(*a);
        else if (this_shard() == 0)
            log(log_level::warn, "dns: recursor %s is not an IP address[:port]; ignored", r.c_str());
    }
    out_.reserve(4096);
}

task<void> server::start() {
    auto at = socket_address::parse(cfg_.addr, cfg_.port);
    if (!at) throw std::runtime_error("dns: bad address " + cfg_.addr);
    // As the HTTP server: SO_REUSEPORT must not let two agents share the port silently.
    // (Up to 2 s for a process killed a moment ago, as the HTTP server.)
    if (this_shard() == 0 && cfg_.port != 0) {
        auto tcp_free = tcp_listener::check_free(*at);
        auto udp_free = tcp_listener::check_free_udp(*at);
        for (int i = 0; i < 20 && (!tcp_free || !udp_free); ++i) {
            co_await sleep_for(std::chrono::milliseconds(100));
            tcp_free = tcp_listener::check_free(*at);
            udp_free = tcp_listener::check_free_udp(*at);
        }
        if (!tcp_free) throw std::runtime_error("dns: listen tcp " + at->to_string() + ": " + tcp_free.error().message());
        if (!udp_free) throw std::runtime_error("dns: bind udp " + at->to_string() + ": " + udp_free.error().message());
    }
    auto u = udp_socket::bind(*at, true);
    if (!u) throw std::runtime_error("dns: bind udp " + at->to_string() + ": " + u.error().message());
    udp_ = std::move(*u);
    auto l = tcp_listener::listen(*at);
    if (!l) throw std::runtime_error("dns: listen tcp " + at->to_string() + ": " + l.error().message());
    tcp_ = std::move(*l);
    gate_.try_enter();
    this_reactor().spawn(udp_loop());
    gate_.try_enter();
    this_reactor().spawn(accept_loop());
    co_return;
}

task<void> server::stop() {
    udp_.close();
    tcp_.close();
    cancel_.request_cancel();
    (void)co_await gate_.close();
}

server_stats server::stats() const {
    server_stats s = stats_;
    s.dropped += res_.stats().dropped;
    s.formerr = res_.stats().formerr;
    s.forwarded = res_.stats().forwarded;
    return s;
}

task<void> server::udp_loop() {
    for (;;) {
        auto d = co_await udp_.recv_from();
        if (!d) {
            if (gate_.closing() || is_cancelled(d.error()) || d.error().value() == EBADF) break;
            ++stats_.dropped;  // a receive error (ENOMEM and the like): give the shard a turn and go on
            co_await yield();
            continue;
        }
        ++stats_.udp_queries;
        const state::snapshot& snap = st_->local().read();
        verdict v = res_.answer(d->data.view(), snap, true, out_);
        if (v == verdict::reply) {
            if (!udp_.send_to(out_, d->from)) ++stats_.dropped;
        } else if (v == verdict::forward) {
            if (!gate_.try_enter()) break;
            std::string q(d->data.view());
            this_reactor().spawn(forward_udp(std::move(q), d->from).with_cancel(&cancel_));
        }
        // End of a received batch: let the turn end so the answers are sent now
        // (sends leave at the end of a turn) before reading the next batch.
        if (udp_.buffered() == 0) co_await yield();
    }
    gate_.leave();
}

task<void> server::forward_udp(std::string query, socket_address client) {
    std::string answer = co_await recurse(std::move(query), false);
    if (!answer.empty() && !udp_.send_to(answer, client)) ++stats_.dropped;
    gate_.leave();
}

task<std::string> server::recurse(std::string query, bool tcp) {
    for (auto& to : recursors_) {
        deadline dl = after(std::chrono::duration_cast<clock::duration>(res_.config().s.recursor_timeout));
        std::string r;
        if (tcp)
            r = co_await exchange_tcp(query, to, dl);
        else
            r = co_await exchange_udp(query, to, dl);
        if (r.size() < 12) continue;
        uint8_t rc = uint8_t(r[3]) & 0xF;
        bool truncated = (uint8_t(r[2]) & 0x02) != 0;
        if (rc != rcode::noerror && rc != rcode::nxdomain && !truncated) continue;
        co_return r;
    }
    ++stats_.recursor_failures;
    std::string out;
    res_.servfail(query, out);
    co_return out;
}

task<void> server::accept_loop() {
    for (;;) {
        auto c = co_await tcp_.accept();
        if (!c) {
            if (!tcp_.is_open() || is_cancelled(c.error())) break;
            continue;
        }
        if (!gate_.try_enter()) break;
        ++stats_.tcp_connections;
        this_reactor().spawn(serve_tcp(std::move(*c)).with_cancel(&cancel_));
    }
    gate_.leave();
}

// One TCP connection: 2-byte length-prefixed queries, answered in order, until
// the peer closes or stays idle past tcp_idle_timeout.
task<void> server::serve_tcp(tcp_stream conn) {
    std::string in, out, framed;
    bool open = true;
    while (open) {
        while (open && in.size() >= 2 && in.size() >= 2u + frame_len(in)) {
            size_t len = frame_len(in);
            std::string_view q(in.data() + 2, len);
            ++stats_.tcp_queries;
            const state::snapshot& snap = st_->local().read();
            verdict v = res_.answer(q, snap, false, out);
            if (v == verdict::forward) {
                out = co_await recurse(std::string(q), true);
                v = out.empty() ? verdict::drop : verdict::reply;
            }
            in.erase(0, 2 + len);
            if (v != verdict::reply) continue;
            framed.clear();
            framed.push_back(char(out.size() >> 8));
            framed.push_back(char(out.size() & 0xFF));
            framed.append(out);
            auto w = co_await conn.write(buffer::copy_of(framed), after(cfg_.tcp_idle_timeout));
            if (!w) open = false;
        }
        if (!open) break;
        auto c = co_await conn.read(after(cfg_.tcp_idle_timeout));
        if (!c || c->empty()) break;
        in.append(c->view());
    }
    conn.close();
    gate_.leave();
}

}  // namespace pharos::dns
