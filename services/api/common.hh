// What every endpoint file of the HTTP API shares: the context, Consul's
// error answers, query options (blocking, consistency, filter, tag,
// node-meta, dc), the blocking-query loop, and filter resolvers for the
// catalog's row types.
#pragma once
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/smp.hh"
#include "protocols/http/message.hh"
#include "protocols/json/reader.hh"
#include "services/agent/agent.hh"
#include "protocols/json/writer.hh"
#include "services/api/filter.hh"
#include "services/state/state.hh"

namespace pharos::session {
class ttl_timers;
}

namespace pharos::api {

struct metrics_sample {
    std::string name;
    double value = 0;
    bool counter = false;
    std::string help;
};

struct context {
    engine::sharded<state::service>* state = nullptr;
    agent::agent* agent = nullptr;  // lives on agent_shard
    unsigned agent_shard = 0;
    session::ttl_timers* session_timers = nullptr;  // lives on the state owner's shard
    std::string datacenter = "dc1";
    std::string server_addr = "127.0.0.1:8300";  // reported by /v1/status/*
    size_t kv_max_value_size = 512 * 1024;
    size_t txn_max_req_len = 512 * 1024;
    std::chrono::nanoseconds default_query_time = std::chrono::minutes(5);
    std::chrono::nanoseconds max_query_time = std::chrono::minutes(10);
    // Extra metrics (HTTP server counters...), gathered on demand.
    std::function<engine::task<std::vector<metrics_sample>>()> extra_metrics;
    // Called by PUT /v1/agent/leave once the answer is on its way.
    std::function<void()> shutdown;
    // PUT /v1/agent/reload, run on agent_shard: the config read again and applied;
    // the error that stopped it, or nullopt. Unset: reload is refused.
    std::function<engine::task<std::optional<std::string>>()> reload;
};

using http::request;
using http::response;

response consul_error(unsigned status, std::string msg);
response method_not_allowed(const request& r, std::string_view allow);  // allow: "GET,PUT"
response empty_ok();                                                    // agent writes: 200, empty body
void index_headers(response& r, uint64_t index);
bool parse_u64(std::string_view s, uint64_t& out);
// What follows `prefix` in `path` ("/v1/catalog/service/web", "/v1/catalog/service/" -> "web"),
// or nullopt if `path` does not start with it.
std::optional<std::string> path_tail(const std::string& path, std::string_view prefix);

// How the request asks its answer to be shaped: ?pretty and the consistency
// mode reported in X-Consul-Effective-Consistency.
struct response_shape {
    uint8_t consistency = 0;  // 0 default, 1 stale, 2 consistent
    bool pretty = false;
    static response_shape of(const request& r);
};
void shape_response(const response_shape& s, response& out);

// The options every catalog/health/kv read takes.
struct read_options {
    uint64_t min_index = 0;  // > 0: a blocking query
    response_shape shape;
    engine::deadline dl = engine::no_deadline;
    std::optional<filter> flt;
    std::vector<std::string> tags;                                // ?tag= (repeatable; all must match)
    std::vector<std::pair<std::string, std::string>> node_meta;  // ?node-meta=k:v (repeatable)
};
// Parses index/wait (Consul's clamping and jitter), stale/consistent conflicts,
// dc, filter, tag and node-meta. A returned response is the 400 to send.
std::optional<response> parse_read_options(const context* ctx, const request& r, read_options& o);

// A rendered read: status, JSON body and the index for X-Consul-Index.
struct rendered {
    unsigned status = 200;
    uint64_t index = 1;
    std::string body;
};
using render_fn = std::function<rendered(const state::snapshot&)>;

// Answers a read from this shard's snapshot. If o.min_index > 0 and the result's
// index has not passed it, the answer is deferred (http::response::later): it
// waits on `t`/`name` until the index passes it or the deadline, as Consul's
// blocking queries do, holding only what it needs to render again, not the
// handler's coroutine frames. `cache_key`, if not empty, names the query
// completely (path and every parameter that shapes the answer): watchers woken
// together with the same key share one render. `respond` turns the final
// rendering into the response.
response blocking_read(const context* ctx, const read_options& o, state::topic t, std::string name, render_fn render,
                       std::string cache_key, response (*respond)(rendered));
response to_response(rendered r);

// This shard's cache of recent renders (see blocking_read's cache_key).
const rendered* cached_render(const std::string& key, uint64_t snapshot_index);
void remember_render(const std::string& key, uint64_t snapshot_index, const rendered& r);
// Renders `fn(snapshot)` once per (key, snapshot index) on this shard.
template <class F>
rendered render_once(const std::string& key, const state::snapshot& s, F&& fn) {
    if (const rendered* hit = cached_render(key, s.index)) return *hit;
    rendered r = fn(s);
    remember_render(key, s.index, r);
    return r;
}

// Filter resolvers for each row type ({"Service","Tags"}-style paths).
using fpath = filter::path;
fvalue resolve_node(const catalog::node& n, fpath p);
fvalue resolve_service(const catalog::service& s, fpath p);  // AgentService fields
fvalue resolve_catalog_service(const catalog::node& n, const catalog::service& s, fpath p);
fvalue resolve_check(const catalog::check& c, fpath p);
bool node_meta_matches(const catalog::node& n, const read_options& o);
bool tags_match(const catalog::service& s, const std::vector<std::string>& tags);

// --- request bodies ---
// "Request decode failed: ..." (400) on error.
std::optional<response> decode_body(const request& r, json::document& doc, json::object& root);
// AgentServiceRegistration and AgentCheckRegistration, with Consul's defaults.
std::optional<std::string> decode_service(const json::object& o, catalog::service& s,
                                          std::vector<agent::check_definition>& checks);
std::optional<std::string> decode_check(const json::object& o, agent::check_definition& c);
// catalog/register's shapes.
std::optional<std::string> decode_catalog_service(const json::object& o, catalog::service& s);
std::optional<std::string> decode_catalog_check(const json::object& o, catalog::check& c);

// Runs `fn(agent&)` on the agent's shard.
template <class F>
auto on_agent(const context* ctx, F fn) {
    agent::agent* a = ctx->agent;
    return engine::submit_to(ctx->agent_shard, [a, fn = std::move(fn)]() mutable { return fn(*a); });
}

// Endpoint families; each returns nullopt if the path is not theirs.
engine::task<std::optional<response>> kv_routes(const context* ctx, request& r);
engine::task<std::optional<response>> catalog_routes(const context* ctx, request& r);
engine::task<std::optional<response>> health_routes(const context* ctx, request& r);
engine::task<std::optional<response>> agent_routes(const context* ctx, request& r);
engine::task<std::optional<response>> session_routes(const context* ctx, request& r);
engine::task<std::optional<response>> txn_routes(const context* ctx, request& r);
engine::task<std::optional<response>> operator_routes(const context* ctx, request& r);  // /v1/operator/keyring
engine::task<std::optional<response>> misc_routes(const context* ctx, request& r);  // status, event, metrics

}  // namespace pharos::api
