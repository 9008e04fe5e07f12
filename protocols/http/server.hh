// http::server: an HTTP/1.1 server on the engine. One instance per shard
// (sharded<http::server>), each with its own SO_REUSEPORT listener; requests are
// parsed by Boost.Beast and handed to a handler coroutine on the same shard.
//
// Keep-alive and pipelining: requests on one connection are answered in order;
// responses to requests that arrived together leave in one write.
// Limits: header bytes (431), body bytes (413), an idle timeout between
// requests and a deadline for a request to arrive once begun (slowloris), a
// write deadline (a client that never reads), and open connections per client
// IP across all shards (429, see conn_limit.hh). A malformed request gets 400, a
// Transfer-Encoding other than "chunked" 501 (as Go's net/http), and the
// connection is closed after a short lingering drain; the handler never sees it.
#pragma once
#include <chrono>
#include <functional>
#include <string>

#include "engine/gate.hh"
#include "engine/net.hh"
#include "protocols/http/conn_limit.hh"
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
    // Consul's limits.http_max_conns_per_client: past it a new connection gets 429
    // and is closed. 0: unlimited.
    size_t max_conns_per_client = 200;
    // How long stop() lets requests in progress finish before cancelling them.
    std::chrono::milliseconds stop_timeout{std::chrono::seconds(5)};
};

using handler = std::function<engine::task<response>(request&)>;

struct server_stats {
    uint64_t requests = 0;
    uint64_t bad_requests = 0;
    uint64_t connections = 0;
    uint64_t open_connections = 0;
    uint64_t rejected_connections = 0;  // 429: past max_conns_per_client
};

// Lives on one shard; start(), stop() and the handler run there.
class server {
public:
    server(server_config cfg, handler h)
        : cfg_(std::move(cfg)),
          handler_(std::move(h)),
          limit_(cfg_.addr + ":" + std::to_string(cfg_.port), cfg_.max_conns_per_client) {}
    // Binds the listener (throws std::runtime_error on failure) and starts accepting.
    engine::task<void> start();
    // Stops accepting, cancels idle connections, lets requests in progress finish
    // (up to stop_timeout), then cancels the rest (handlers and writes) and returns
    // once every connection is closed and its per-client slot released.
    engine::task<void> stop();
    uint16_t port() const { return listener_.port(); }
    const server_stats& stats() const { return stats_; }
    const conn_limit& limit() const { return limit_; }

private:
    engine::task<void> accept_loop();
    engine::task<void> serve(engine::tcp_stream conn);
    engine::task<void> serve_requests(engine::tcp_stream& conn, const std::string& peer_ip);
    engine::task<unsigned> read_request(engine::tcp_stream& conn, std::string& in, std::string& out, request& req,
                                        unsigned& version);
    engine::task<void> linger(engine::tcp_stream& conn);

    server_config cfg_;
    handler handler_;
    engine::tcp_listener listener_;
    engine::gate gate_;
    engine::cancel_source idle_;  // cancels connections waiting for a request
    engine::cancel_source hard_;  // cancels handlers and writes once stop_timeout has passed
    conn_limit limit_;
    server_stats stats_;
};

}  // namespace pharos::http
