// Starts what the HTTP API needs (the sharded state, the agent on shard 0) on
// the test's shards, without sockets, and calls api::handle directly.
#pragma once
#include <string>

#include "engine/combinators.hh"
#include "engine/reactor.hh"
#include "engine/snapshot.hh"
#include "services/api/http_api.hh"
#include "services/session/ttl.hh"
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
    http::response resp = co_await api::handle(ctx, r);
    co_return co_await http::complete(std::move(resp));
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

// A response and how long (on the test's clock) it took.
struct timed {
    http::response r;
    engine::clock::duration took{};
};

// GET `target` on shard 1 (so the query and the writes cross shards), timed.
inline engine::task<timed> timed_get(const api::context* ctx, std::string target) {
    auto start = engine::clock::now();
    timed t;
    t.r = co_await call_on(1, ctx, "GET", std::move(target));
    t.took = engine::clock::now() - start;
    co_return t;
}

// PUT `target` after `d`; the PUT must succeed.
inline engine::task<timed> put_at(const api::context* ctx, engine::clock::duration d, std::string target,
                                  std::string body) {
    co_await engine::sleep_for(d);
    timed t;
    t.r = co_await call(ctx, "PUT", target, std::move(body));
    EXPECT_EQ(t.r.status, 200u) << target << ": " << t.r.body;
    co_return t;
}

// Starts a (blocking) GET on shard 1 and a PUT at 5 s on shard 0; returns the GET.
inline engine::task<timed> get_with_put(const api::context* ctx, std::string get, std::string put,
                                        std::string body) {
    std::vector<engine::task<timed>> both;
    both.push_back(timed_get(ctx, std::move(get)));
    both.push_back(put_at(ctx, std::chrono::seconds(5), std::move(put), std::move(body)));
    auto res = co_await engine::when_all(std::move(both));
    co_return std::move(res[0]);
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
    session::ttl_timers timers(&st);
    timers.start();
    api::context ctx;
    ctx.state = &st;
    ctx.agent = &ag;
    ctx.agent_shard = engine::this_shard();
    ctx.session_timers = &timers;
    ctx.datacenter = cfg.datacenter;
    co_await body(&ctx);
    co_await ag.stop();
    co_await timers.stop();
    co_await st.stop();
}

}  // namespace pharos::apitest
