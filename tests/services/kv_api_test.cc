// /v1/kv through api::handle on 2 shards (no sockets): routing, Consul's error
// answers for bad input, and blocking queries on the manual clock.
#include "engine/combinators.hh"
#include "services/api/http_api.hh"
#include "tests/support/coro_test.hh"

using namespace pharos;
using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

http::request make(std::string method, std::string target, std::string body = "") {
    http::request r;
    r.method = std::move(method);
    r.target = std::move(target);
    EXPECT_TRUE(http::split_target(r.target, r.path, r.query));
    r.body = std::move(body);
    return r;
}

task<http::response> call(const api::context* ctx, std::string method, std::string target, std::string body = "") {
    http::request r = make(std::move(method), std::move(target), std::move(body));
    co_return co_await api::handle(ctx, r);
}

// Runs a request on shard 1, so that every KV call crosses to shard 0.
task<http::response> call_on_shard_one(const api::context* ctx, std::string method, std::string target,
                                       std::string body) {
    auto fn = [ctx, method, target, body]() { return call(ctx, method, target, body); };
    co_return co_await submit_to(1, std::move(fn));
}

std::string header(const http::response& r, std::string_view name) {
    for (auto& [k, v] : r.headers)
        if (k == name) return v;
    return "";
}

task<void> with_kv(task<void> (*body)(const api::context*)) {
    sharded<kv::service> kv;
    co_await kv.start();
    api::context ctx;
    ctx.kv = &kv;
    co_await body(&ctx);
    co_await kv.stop();
}

task<void> bad_input_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/kv/k?flags=abc", "v");
    EXPECT_EQ(r.status, 400u);
    r = co_await call(ctx, "GET", "/v1/kv/k?index=abc");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body, "Invalid index");
    r = co_await call(ctx, "GET", "/v1/kv/k?index=5&wait=forever");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body, "Invalid wait time");
    r = co_await call(ctx, "PUT", "/v1/kv/k?cas=1&acquire=s", "v");
    EXPECT_EQ(r.status, 400u);
    r = co_await call(ctx, "DELETE", "/v1/kv/k?cas=1&recurse");
    EXPECT_EQ(r.status, 400u);
    r = co_await call(ctx, "PUT", "/v1/kv/big", std::string(512 * 1024 + 1, 'x'));
    EXPECT_EQ(r.status, 413u);
    EXPECT_EQ(r.body.rfind("Request body(524289 bytes) too large, max size: 524288 bytes", 0), 0u);
    r = co_await call(ctx, "PATCH", "/v1/kv/k");
    EXPECT_EQ(r.status, 405u);
    EXPECT_EQ(header(r, "Allow"), "OPTIONS,GET,PUT,DELETE");
    r = co_await call(ctx, "GET", "/v1/kv/");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body, "Missing key name");
    r = co_await call(ctx, "GET", "/v1/not-an-endpoint");
    EXPECT_EQ(r.status, 404u);
    r = co_await call(ctx, "PUT", "/v1/kv/lock?acquire=nosuch", "v");
    EXPECT_EQ(r.status, 500u);
    EXPECT_EQ(r.body.rfind("invalid session", 0), 0u);  // Patroni matches this prefix
    // None of it wrote anything.
    r = co_await call(ctx, "GET", "/v1/kv/?recurse");
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(header(r, "X-Consul-Index"), "1");
}

task<void> cross_shard_body(const api::context* ctx) {
    auto r = co_await call_on_shard_one(ctx, "PUT", "/v1/kv/a/b?flags=9", "value");
    EXPECT_EQ(r.body, "true");
    r = co_await call_on_shard_one(ctx, "GET", "/v1/kv/a/b", "");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, R"([{"LockIndex":0,"Key":"a/b","Flags":9,"Value":"dmFsdWU=","CreateIndex":2,"ModifyIndex":2}])");
    EXPECT_EQ(header(r, "X-Consul-Index"), "2");
    r = co_await call(ctx, "GET", "/v1/kv/a/b?raw");
    EXPECT_EQ(r.body, "value");
    EXPECT_EQ(header(r, "Content-Security-Policy"), "sandbox");
    r = co_await call(ctx, "GET", "/v1/kv/nothing?keys");
    EXPECT_EQ(r.status, 200u);  // ?keys never 404s
    EXPECT_EQ(r.body, "[]");
}

task<http::response> write_later(const api::context* ctx) {
    co_await sleep_for(30s);
    co_return co_await call(ctx, "PUT", "/v1/kv/w", "second");
}

task<void> blocking_body(const api::context* ctx) {
    co_await call(ctx, "PUT", "/v1/kv/w", "first");
    auto start = clock::now();
    // Nothing changes: the query waits out its 10 s (plus up to 1/16 jitter) and
    // answers with the same index.
    auto r = co_await call(ctx, "GET", "/v1/kv/w?index=2&wait=10s");
    auto waited = clock::now() - start;
    EXPECT_GE(waited, 10s);
    EXPECT_LE(waited, 10s + 625ms);  // wait/16 of jitter at most
    EXPECT_EQ(header(r, "X-Consul-Index"), "2");
    // A write 30 s in wakes a 5-minute query at once.
    start = clock::now();
    std::vector<task<http::response>> both;
    both.push_back(call_on_shard_one(ctx, "GET", "/v1/kv/w?index=2&wait=5m", ""));
    both.push_back(write_later(ctx));
    auto res = co_await when_all(std::move(both));
    EXPECT_EQ(clock::now() - start, 30s);
    EXPECT_EQ(header(res[0], "X-Consul-Index"), "3");
    EXPECT_NE(res[0].body.find("c2Vjb25k"), std::string::npos);  // "second"
}

}  // namespace

PHAROS_CORO_TEST(kv_api, bad_input_gets_consuls_errors_and_writes_nothing) { co_await with_kv(&bad_input_body); }
PHAROS_CORO_TEST(kv_api, requests_on_any_shard_reach_the_store_on_shard_zero) { co_await with_kv(&cross_shard_body); }
PHAROS_MANUAL_CLOCK_TEST(kv_api, blocking_queries_wait_for_a_change_or_their_wait_time) {
    co_await with_kv(&blocking_body);
}
