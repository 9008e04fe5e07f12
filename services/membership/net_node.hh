// membership::net_node: a memberlist on real sockets — one UDP socket and one
// TCP listener on the same port — driven on the shard that starts it (the
// gossip shard). It is the engine's `transport`: packets go out through the
// batched UDP socket, each stream exchange (push/pull, TCP fallback ping,
// reliable user message) is one short connection in its own task (a dial
// answered by ECONNREFUSED is reported as refused: stream_with_refusal), inbound
// streams are parsed incrementally with gossip::open_stream, and one task
// sleeps until the memberlist's next timer.
//
// Owned by the caller on that shard; start() then stop() (awaitable, in that
// order); destroy only after stop() returned.
#pragma once
#include <memory>

#include "engine/cancel.hh"
#include "engine/gate.hh"
#include "engine/io.hh"
#include "engine/net.hh"
#include "services/membership/memberlist.hh"

namespace pharos::membership {

class net_node final : public transport {
public:
    net_node(config cfg, delegate d, uint64_t seed);
    ~net_node() override;

    // Binds UDP and TCP on `bind` (the port of cfg.advertise when bind's port is 0) and
    // starts the memberlist. Throws std::runtime_error when a socket cannot be bound.
    engine::task<void> start(engine::socket_address bind);
    // Stops the loops and waits for every task of this node (dials end at their deadline or
    // are cancelled). Cancel safety: must run to completion before destruction.
    engine::task<void> stop();
    memberlist& ml() { return *ml_; }

    // transport
    time_point now() override { return engine::clock::now(); }
    void send_packet(const address& to, std::string bytes) override;
    void stream(const address& to, std::string request, bool want_reply, time_point deadline,
                std::function<void(std::optional<std::string>)> done) override;
    void stream_with_refusal(const address& to, std::string request, bool want_reply, time_point deadline,
                             std::function<void(std::optional<std::string>, bool)> done) override;
    void wake_at(time_point t) override;

    uint64_t udp_send_errors() const { return udp_.send_errors(); }

private:
    engine::task<void> udp_loop();
    engine::task<void> accept_loop();
    engine::task<void> timer_loop();
    engine::task<void> serve(engine::tcp_stream conn);
    engine::task<void> dial(address to, std::string request, bool want_reply, time_point deadline,
                            std::function<void(std::optional<std::string>, bool)> done);

    std::unique_ptr<memberlist> ml_;
    engine::udp_socket udp_;
    engine::tcp_listener tcp_;
    engine::gate gate_;
    engine::cancel_source stop_;
    engine::wait_slot wake_;
    bool stopping_ = false;
};

// Conversions between the wire's raw IP bytes and socket addresses.
engine::socket_address to_socket_address(const address& a);
address from_socket_address(const engine::socket_address& s);

}  // namespace pharos::membership
