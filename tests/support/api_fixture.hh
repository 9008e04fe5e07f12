// Starts what the HTTP API needs (the sharded state, the agent on shard 0) on
// the test's shards, without sockets, and calls api::handle directly.
#pragma once
#include <string>

#include "engine/snapshot.hh"
#include "services/api/http_api.hh"
#include "tests/support/coro_test.hh"

namespace pharos::apitest {

inline http::request make_request(std::string method, std::string target, std::string body = "") {
    http::request r;
    r.method = std::move(method);
    r.target = std::move(target);
    EXPECT_TRUE(http::split_target(r.target, r.path, r.query));
    r.body = std::move(body);
    return r;
}

inline engine::task<http::response> call(const api::context* ctx, std::string method, std::string target,
                                         std::string body = "") {
    http::request r = make_request(std::move(method), std::move(target), std::move(body));
    co_return co_await api::handle(ctx, r);
}

// The same request, made on `shard`.
inline engine::task<http::response> call_on(unsigned shard, const api::context* ctx, std::string method,
                                            std::string target, std::string body = "") {
    auto fn = [ctx, method, target, body]() { return call(ctx, method, target, body); };
    co_return co_await engine::submit_to(shard, std::move(fn));
}

inline std::string header(const http::response& r, std::string_view name) {
    for (auto& [k, v] : r.headers)
        if (k == name) return v;
    return "";
}

inline agent::config test_agent_config() {
    agent::config c;
    c.dev = c.server = c.bootstrap = true;
    c.node_name = "node1";
    c.node_id = "11111111-2222-3333-4444-555555555555";
    c.bind_addr = "127.0.0.1";
    return c;
}

// Runs body(ctx) with a fresh state and agent. Must be called on shard 0.
inline engine::task<void> with_api(engine::task<void> (*body)(const api::context*),
                                   agent::config cfg = test_agent_config()) {
    engine::published<state::snapshot> pub(std::make_unique<state::snapshot>());
    engine::sharded<state::service> st;
    co_await st.start(&st, &pub);
    agent::agent ag(cfg, &st);
    co_await ag.start();
    api::context ctx;
    ctx.state = &st;
    ctx.agent = &ag;
    ctx.agent_shard = engine::this_shard();
    ctx.datacenter = cfg.datacenter;
    co_await body(&ctx);
    co_await ag.stop();
    co_await st.stop();
}

}  // namespace pharos::apitest
