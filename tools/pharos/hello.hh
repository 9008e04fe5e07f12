// The engine's demo HTTP responder: a fixed `200 {"ok":true}` for every
// request, on every shard, with keep-alive and pipelining. It measures the
// engine's ceiling (bench/engine) and is not an HTTP implementation: requests
// are only split at the blank line that ends their headers; bodies are not
// expected. The real HTTP server lives in protocols/http.
#pragma once
#include <string>

#include "engine/gate.hh"
#include "engine/net.hh"

namespace pharos::tools {

// One per shard (sharded<hello_server>): its own SO_REUSEPORT listener.
class hello_server {
public:
    hello_server(std::string addr, uint16_t port) : addr_(std::move(addr)), port_(port) {}
    engine::task<void> start();
    engine::task<void> stop();
    uint16_t port() const { return listener_.port(); }
    uint64_t requests() const { return requests_; }

private:
    engine::task<void> accept_loop();
    engine::task<void> serve(engine::tcp_stream conn);

    std::string addr_;
    uint16_t port_;
    engine::tcp_listener listener_;
    engine::gate gate_;
    engine::cancel_source stop_;
    uint64_t requests_ = 0;
};

}  // namespace pharos::tools
