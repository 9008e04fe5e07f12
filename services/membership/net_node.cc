// memberlist on real UDP and TCP sockets; see net_node.hh.
#include "services/membership/net_node.hh"

#include <arpa/inet.h>

#include <cstring>
#include <stdexcept>

#include "engine/log.hh"

namespace pharos::membership {

using namespace engine;

socket_address to_socket_address(const address& a) {
    socket_address s;
    if (a.ip.size() == 4) {
        auto* in = reinterpret_cast<sockaddr_in*>(&s.ss);
        in->sin_family = AF_INET;
        in->sin_port = htons(a.port);
        std::memcpy(&in->sin_addr, a.ip.data(), 4);
        s.len = sizeof(sockaddr_in);
    } else if (a.ip.size() == 16) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&s.ss);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a.port);
        std::memcpy(&in6->sin6_addr, a.ip.data(), 16);
        s.len = sizeof(sockaddr_in6);
    }
    return s;
}

address from_socket_address(const socket_address& s) {
    address a;
    if (s.family() == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(&s.ss);
        a.ip.assign(reinterpret_cast<const char*>(&in->sin_addr), 4);
        a.port = ntohs(in->sin_port);
    } else if (s.family() == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(&s.ss);
        a.ip.assign(reinterpret_cast<const char*>(&in6->sin6_addr), 16);
        a.port = ntohs(in6->sin6_port);
    }
    return a;
}

net_node::net_node(config cfg, delegate d, uint64_t seed)
    : ml_(std::make_unique<memberlist>(std::move(cfg), *this, std::move(d), seed)) {}

net_node::~net_node() = default;

task<void> net_node::start(socket_address bind) {
    if (bind.port() == 0) {
        auto p = socket_address::parse(bind.ip(), ml_->cfg().advertise.port);
        if (p) bind = *p;
    }
    auto u = udp_socket::bind(bind);
    if (!u) throw std::runtime_error("gossip: udp bind " + bind.to_string() + ": " + u.error().message());
    udp_ = std::move(*u);
    listen_options lo;
    lo.reuse_port = false;
    auto l = tcp_listener::listen(bind, lo);
    if (!l) throw std::runtime_error("gossip: tcp listen " + bind.to_string() + ": " + l.error().message());
    tcp_ = std::move(*l);
    gate_.try_enter();
    this_reactor().spawn(udp_loop().with_cancel(&stop_));
    gate_.try_enter();
    this_reactor().spawn(accept_loop().with_cancel(&stop_));
    gate_.try_enter();
    this_reactor().spawn(timer_loop().with_cancel(&stop_));
    ml_->start();
    co_return;
}

task<void> net_node::stop() {
    stopping_ = true;
    ml_->shutdown();
    udp_.close();
    tcp_.close();
    stop_.request_cancel();
    wake_.notify();
    (void)co_await gate_.close();
}

void net_node::send_packet(const address& to, std::string bytes) {
    if (stopping_) return;
    (void)udp_.send_to(bytes, to_socket_address(to));
}

void net_node::stream(const address& to, std::string request, bool want_reply, time_point deadline,
                      std::function<void(std::optional<std::string>)> done) {
    stream_with_refusal(to, std::move(request), want_reply, deadline,
                        [done = std::move(done)](std::optional<std::string> r, bool) { done(std::move(r)); });
}

void net_node::stream_with_refusal(const address& to, std::string request, bool want_reply, time_point deadline,
                                   std::function<void(std::optional<std::string>, bool)> done) {
    if (stopping_ || !gate_.try_enter()) return;
    this_reactor().spawn(dial(to, std::move(request), want_reply, deadline, std::move(done)).with_cancel(&stop_));
}

void net_node::wake_at(time_point) { wake_.notify(); }

task<void> net_node::timer_loop() {
    while (!stopping_) {
        auto dl = ml_->next_deadline();
        if (dl > clock::now()) {
            int r = co_await wake_.wait(dl);
            if (r == -ECANCELED) break;
            continue;  // notified (an earlier timer) or due: recompute
        }
        ml_->run_timers();
    }
    gate_.leave();
}

task<void> net_node::udp_loop() {
    for (;;) {
        auto d = co_await udp_.recv_from();
        if (!d) {
            if (stopping_ || is_cancelled(d.error())) break;
            continue;
        }
        address from = from_socket_address(d->from);
        ml_->handle_packet(from, std::string_view(d->data.data(), d->data.size()));
    }
    gate_.leave();
}

task<void> net_node::accept_loop() {
    for (;;) {
        auto c = co_await tcp_.accept();
        if (!c) {
            if (stopping_ || is_cancelled(c.error())) break;
            continue;
        }
        if (!gate_.try_enter()) break;
        this_reactor().spawn(serve(std::move(*c)).with_cancel(&stop_));
    }
    gate_.leave();
}

task<void> net_node::serve(tcp_stream conn) {
    // Go's handleConn: read one message (the dialer never half-closes), answer, close.
    deadline dl = clock::now() + ml_->cfg().tcp_timeout;
    std::string buf;
    for (;;) {
        auto r = co_await conn.read(dl);
        if (!r || r->empty()) break;
        buf.append(r->view());
        std::string msg;
        size_t used = 0;
        auto e = gossip::open_stream(buf, ml_->wire(), msg, used);
        if (e == gossip::errc::need_more) continue;
        std::string reply = ml_->handle_stream(address{}, buf);
        if (!reply.empty()) {
            auto w = co_await conn.write(buffer::copy_of(reply), dl);
            (void)w;
        }
        break;
    }
    conn.close();
    gate_.leave();
}

task<void> net_node::dial(address to, std::string request, bool want_reply, time_point dl,
                          std::function<void(std::optional<std::string>, bool)> done) {
    std::optional<std::string> reply;
    auto c = co_await tcp_stream::connect(to_socket_address(to), dl);
    // ECONNREFUSED: a reset answered the SYN, nobody listens there (not a timeout or an unreachable net).
    bool refused = !c && c.error() == std::errc::connection_refused;
    if (c) {
        auto w = co_await c->write(buffer::copy_of(request), dl);
        if (w && want_reply) {
            std::string buf;
            for (;;) {
                auto r = co_await c->read(dl);
                if (!r || r->empty()) break;
                buf.append(r->view());
                std::string msg;
                size_t used = 0;
                auto e = gossip::open_stream(buf, ml_->wire(), msg, used);
                if (e == gossip::errc::need_more) continue;
                if (e == gossip::errc::ok) reply = buf.substr(0, used);
                break;
            }
        }
        c->close();
    }
    if (!stopping_) done(std::move(reply), refused);
    gate_.leave();
}

}  // namespace pharos::membership
