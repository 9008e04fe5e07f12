// /v1/kv through api::handle on 2 shards (no sockets): routing, Consul's error
// answers for bad input, and blocking queries on the manual clock.
#include "engine/combinators.hh"
#include "services/api/http_api.hh"
#include "tests/support/api_fixture.hh"

using namespace pharos;
using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

using apitest::call;
using apitest::header;

task<http::response> call_on_shard_one(const api::context* ctx, std::string method, std::string target,
                                       std::string body) {
    co_return co_await apitest::call_on(1, ctx, std::move(method), std::move(target), std::move(body));
}

task<void> with_kv(task<void> (*body)(const api::context*)) { co_await apitest::with_api(body); }

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
    EXPECT_EQ(r.body, R"([{"LockIndex":0,"Key":"a/b","Flags":9,"Value":"dmFsdWU=","CreateIndex":3,"ModifyIndex":3}])");
    EXPECT_EQ(header(r, "X-Consul-Index"), "3");  // index 2 is the agent registering its node
    r = co_await call(ctx, "GET", "/v1/kv/a/b?raw");
    EXPECT_EQ(r.body, "value");
    EXPECT_EQ(header(r, "Content-Security-Policy"), "sandbox");
    r = co_await call(ctx, "GET", "/v1/kv/nothing?keys");
    EXPECT_EQ(r.status, 404u);  // Consul's KVSGetKeys: 404 for an empty prefix...
    r = co_await call(ctx, "GET", "/v1/kv/?keys");
    EXPECT_EQ(r.status, 200u);  // ...but [] would be the root's answer; here it holds a/b
    EXPECT_EQ(r.body, R"(["a/b"])");
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
    auto r = co_await call(ctx, "GET", "/v1/kv/w?index=3&wait=10s");
    auto waited = clock::now() - start;
    EXPECT_GE(waited, 10s);
    EXPECT_LE(waited, 10s + 625ms);  // wait/16 of jitter at most
    EXPECT_EQ(header(r, "X-Consul-Index"), "3");
    // A write 30 s in wakes a 5-minute query at once.
    start = clock::now();
    std::vector<task<http::response>> both;
    both.push_back(call_on_shard_one(ctx, "GET", "/v1/kv/w?index=3&wait=5m", ""));
    both.push_back(write_later(ctx));
    auto res = co_await when_all(std::move(both));
    EXPECT_EQ(clock::now() - start, 30s);
    EXPECT_EQ(header(res[0], "X-Consul-Index"), "4");
    EXPECT_NE(res[0].body.find("c2Vjb25k"), std::string::npos);  // "second"
}

}  // namespace

PHAROS_CORO_TEST(kv_api, bad_input_gets_consuls_errors_and_writes_nothing) { co_await with_kv(&bad_input_body); }
PHAROS_CORO_TEST(kv_api, requests_on_any_shard_see_writes_made_through_the_owner) { co_await with_kv(&cross_shard_body); }
PHAROS_MANUAL_CLOCK_TEST(kv_api, blocking_queries_wait_for_a_change_or_their_wait_time) {
    co_await with_kv(&blocking_body);
}
