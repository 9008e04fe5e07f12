// dns::server: Consul's DNS interface on UDP and TCP. One instance per shard
// (sharded<dns::server>), each with its own SO_REUSEPORT UDP socket and TCP
// listener on the same address, so the kernel spreads queries over shards.
// A query is answered on the shard that received it, from that shard's
// catalog snapshot (state::service::read(), no locks, no cross-shard call).
// Names outside the domain go to the recursors (UDP queries over UDP, TCP
// over TCP, as Consul), each tried in order within recursor_timeout; if all
// fail the client gets SERVFAIL.
//
// Lifecycle: start() binds (throws std::runtime_error on failure) and spawns
// the receive and accept loops; stop() closes the sockets, cancels TCP
// connections and forwarded queries, and returns once every task has left.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "engine/cancel.hh"
#include "engine/gate.hh"
#include "engine/net.hh"
#include "services/dns/resolver.hh"
#include "services/state/state.hh"

namespace pharos::dns {

struct server_config {
    std::string addr = "127.0.0.1";
    uint16_t port = 8600;  // a concrete port: every shard binds the same one
    std::vector<std::string> recursors;  // "ip", "ip:port", "[ip6]:port"
    std::chrono::milliseconds tcp_idle_timeout{std::chrono::seconds(8)};
};

struct server_stats {
    uint64_t udp_queries = 0;
    uint64_t tcp_queries = 0;
    uint64_t tcp_connections = 0;
    uint64_t dropped = 0;  // unparseable packets, oversized TCP frames, full send queue
    uint64_t formerr = 0;
    uint64_t forwarded = 0;
    uint64_t recursor_failures = 0;  // forwarded queries answered SERVFAIL
};

// Lives on one shard; start(), stop() and every query run there.
class server {
public:
    server(server_config cfg, resolver_config rc, engine::sharded<state::service>* st);
    engine::task<void> start();
    engine::task<void> stop();
    uint16_t udp_port() const { return udp_.port(); }
    uint16_t tcp_port() const { return tcp_.port(); }
    server_stats stats() const;
    resolver& local_resolver() noexcept { return res_; }

private:
    engine::task<void> udp_loop();
    engine::task<void> accept_loop();
    engine::task<void> serve_tcp(engine::tcp_stream conn);
    engine::task<void> forward_udp(std::string query, engine::socket_address client);
    // The recursors' answer to `query`, or SERVFAIL. Cancel safety: a cancelled
    // exchange loses only that answer; its socket is closed.
    engine::task<std::string> recurse(std::string query, bool tcp);

    server_config cfg_;
    resolver res_;
    engine::sharded<state::service>* st_;
    std::vector<engine::socket_address> recursors_;
    engine::udp_socket udp_;
    engine::tcp_listener tcp_;
    engine::gate gate_;
    engine::cancel_source cancel_;
    server_stats stats_;
    std::string out_;  // the UDP loop's response buffer
};

// "ip", "ip:port", "[ip6]:port", "ip6" → an address (port 53 if none).
engine::result<engine::socket_address> recursor_address(const std::string& s);

}  // namespace pharos::dns
