// The Consul HTTP API routes. handle() runs on whichever shard accepted the
// connection; state lives in services (kv on shard 0) reached by submit_to.
#pragma once
#include <optional>
#include <string>

#include "engine/smp.hh"
#include "protocols/http/message.hh"
#include "services/kv/service.hh"

namespace pharos::api {

struct context {
    engine::sharded<kv::service>* kv = nullptr;
    std::string server_addr = "127.0.0.1:8300";  // reported by /v1/status/*
    size_t kv_max_value_size = 512 * 1024;
};

engine::task<http::response> handle(const context* ctx, http::request& r);

// Go's time.ParseDuration ("300ms", "1.5h", "2h45m"); nullopt if malformed.
std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view s);

}  // namespace pharos::api
