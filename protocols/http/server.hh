// http::server: an HTTP/1.1 server on the engine. One instance per shard
// (sharded<http::server>), each with its own SO_REUSEPORT listener; requests are
// parsed by Boost.Beast and handed to a handler coroutine on the same shard.
//
// Keep-alive and pipelining: requests on one connection are answered in order;
// responses to requests that arrived together leave in one write.
// Limits: header bytes (431), body bytes (413), an idle timeout between
// requests and a deadline for a request to arrive once begun (slowloris). A
// malformed request gets 400 and the connection is closed; the handler never
// sees it.
#pragma once
#include <chrono>
#include <functional>
#include <string>

#include "engine/gate.hh"
#include "engine/net.hh"
#include "protocols/http/message.hh"

namespace pharos::http {

struct server_config {
    std::string addr = "127.0.0.1";
    uint16_t port = 8500;
    size_t max_header_bytes = 1 << 20;  // Go's net/http default, as Consul
    size_t max_body_bytes = 4 << 20;    // endpoints apply their own, smaller limits
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(90)};
    std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};  // first byte to whole request
    std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
};

using handler = std::function<engine::task<response>(request&)>;

struct server_stats {
    uint64_t requests = 0;
    uint64_t bad_requests = 0;
    uint64_t connections = 0;
    uint64_t open_connections = 0;
};

// Lives on one shard; start(), stop() and the handler run there.
class server {
public:
    server(server_config cfg, handler h) : cfg_(std::move(cfg)), handler_(std::move(h)) {}
    // Binds the listener (throws std::runtime_error on failure) and starts accepting.
    engine::task<void> start();
    // Stops accepting, cancels idle connections, lets requests in progress finish
    // (up to 5 s), then returns.
    engine::task<void> stop();
    uint16_t port() const { return listener_.port(); }
    const server_stats& stats() const { return stats_; }

private:
    engine::task<void> accept_loop();
    engine::task<void> serve(engine::tcp_stream conn);

    server_config cfg_;
    handler handler_;
    engine::tcp_listener listener_;
    engine::gate gate_;
    engine::cancel_source idle_;  // cancels connections waiting for a request
    server_stats stats_;
};

}  // namespace pharos::http
