// /v1/session and KV locks through api::handle on 2 shards and the manual
// clock: Consul's JSON and errors, TTL expiry within 2×TTL (release and delete
// behaviours), renewal, lock-delay, blocking queries on the sessions table.
#include "engine/combinators.hh"
#include "protocols/json/reader.hh"
#include "services/api/http_api.hh"
#include "tests/support/api_fixture.hh"

using namespace pharos;
using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

using apitest::call;
using apitest::call_on;
using apitest::header;

std::string id_of(const http::response& r) {
    json::document d;
    json::object o;
    EXPECT_FALSE(d.parse(r.body).has_value()) << r.body;
    EXPECT_FALSE(d.root_object(o).has_value());
    std::string id;
    EXPECT_FALSE(o.get_string("ID", id).has_value());
    return id;
}

task<std::string> create(const api::context* ctx, std::string body) {
    auto r = co_await call_on(1, ctx, "PUT", "/v1/session/create", std::move(body));
    EXPECT_EQ(r.status, 200u) << r.body;
    co_return id_of(r);
}

task<void> shapes_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/session/create");
    EXPECT_EQ(r.status, 200u);
    std::string id = id_of(r);
    EXPECT_EQ(id.size(), 36u);
    r = co_await call_on(1, ctx, "GET", "/v1/session/info/" + id);
    EXPECT_EQ(r.status, 200u);
    std::string idx = header(r, "X-Consul-Index");
    EXPECT_EQ(r.body, "[{\"ID\":\"" + id +
                          "\",\"Name\":\"\",\"Node\":\"node1\",\"LockDelay\":15000000000,\"Behavior\":\"release\","
                          "\"TTL\":\"\",\"NodeChecks\":[\"serfHealth\"],\"ServiceChecks\":null,\"CreateIndex\":" +
                          idx + ",\"ModifyIndex\":" + idx + "}]");
    // Python clients send lowercase keys; LockDelay below 1000 means seconds.
    std::string id2 = co_await create(
        ctx, R"({"name":"lk","behavior":"delete","ttl":"10s","lockdelay":2,"checks":[]})");
    r = co_await call(ctx, "GET", "/v1/session/info/" + id2);
    EXPECT_NE(r.body.find(R"("Name":"lk","Node":"node1","LockDelay":2000000000,"Behavior":"delete","TTL":"10s","NodeChecks":[],)"),
              std::string::npos)
        << r.body;
    r = co_await call(ctx, "GET", "/v1/session/list");
    EXPECT_EQ(r.body.find(id < id2 ? id : id2), 8u);  // sorted by ID
    r = co_await call(ctx, "GET", "/v1/session/node/node1");
    EXPECT_NE(r.body.find(id2), std::string::npos);
    r = co_await call(ctx, "GET", "/v1/session/node/other");
    EXPECT_EQ(r.body, "[]");
    r = co_await call(ctx, "GET", "/v1/session/info/nosuch");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "[]");
    // Errors, as Consul words them.
    r = co_await call(ctx, "PUT", "/v1/session/create", R"({"TTL":"5s"})");
    EXPECT_EQ(r.status, 500u);
    EXPECT_EQ(r.body, "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]");
    r = co_await call(ctx, "PUT", "/v1/session/create", R"({"TTL":"soon"})");
    EXPECT_EQ(r.status, 500u);
    EXPECT_EQ(r.body.rfind("Session TTL 'soon' invalid", 0), 0u);
    r = co_await call(ctx, "PUT", "/v1/session/create", R"({"Behavior":"explode"})");
    EXPECT_EQ(r.body, "Invalid Behavior setting 'explode'");
    r = co_await call(ctx, "PUT", "/v1/session/create", R"({"Node":"ghost"})");
    EXPECT_EQ(r.status, 500u);
    EXPECT_EQ(r.body, "Missing node registration");
    r = co_await call(ctx, "PUT", "/v1/session/create", R"({"NodeChecks":["nope"]})");
    EXPECT_EQ(r.body, "Missing check 'nope' registration");
    r = co_await call(ctx, "PUT", "/v1/session/create", R"({"Name":5})");
    EXPECT_EQ(r.status, 400u);
    r = co_await call(ctx, "PUT", "/v1/session/renew/nosuch");
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(r.body, "Session id 'nosuch' not found");
    r = co_await call(ctx, "GET", "/v1/session/create");
    EXPECT_EQ(r.status, 405u);
    r = co_await call(ctx, "PUT", "/v1/session/renew/" + id);
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body.substr(0, 9 + id.size()), "[{\"ID\":\"" + id + "\"");
    r = co_await call_on(1, ctx, "PUT", "/v1/session/destroy/" + id);
    EXPECT_EQ(r.body, "true");
    r = co_await call(ctx, "PUT", "/v1/session/destroy/" + id);
    EXPECT_EQ(r.body, "true");  // idempotent
    r = co_await call(ctx, "GET", "/v1/session/info/" + id);
    EXPECT_EQ(r.body, "[]");
}

task<void> contention_body(const api::context* ctx) {
    std::string a = co_await create(ctx, R"({"LockDelay":"1s"})");
    std::string b = co_await create(ctx, "{}");
    auto r = co_await call(ctx, "PUT", "/v1/kv/lead?acquire=" + a, "A");
    EXPECT_EQ(r.body, "true");
    r = co_await call_on(1, ctx, "PUT", "/v1/kv/lead?acquire=" + b, "B");
    EXPECT_EQ(r.body, "false");
    r = co_await call(ctx, "GET", "/v1/kv/lead");
    EXPECT_NE(r.body.find("\"LockIndex\":1,\"Key\":\"lead\",\"Flags\":0,\"Value\":\"QQ==\",\"Session\":\"" + a + "\""),
              std::string::npos)
        << r.body;
    r = co_await call(ctx, "PUT", "/v1/kv/lead?release=" + b);
    EXPECT_EQ(r.body, "false");
    // Destroying the holder releases the key; lock-delay (1 s) holds b off.
    r = co_await call(ctx, "PUT", "/v1/session/destroy/" + a);
    r = co_await call(ctx, "GET", "/v1/kv/lead");
    EXPECT_EQ(r.body.find("Session"), std::string::npos);
    EXPECT_NE(r.body.find("QQ=="), std::string::npos);  // release keeps the value
    r = co_await call(ctx, "PUT", "/v1/kv/lead?acquire=" + b, "B");
    EXPECT_EQ(r.body, "false");
    co_await sleep_for(1s);
    r = co_await call(ctx, "PUT", "/v1/kv/lead?acquire=" + b, "B");
    EXPECT_EQ(r.body, "true");
    r = co_await call(ctx, "GET", "/v1/kv/lead");
    EXPECT_NE(r.body.find("\"LockIndex\":2"), std::string::npos);
    r = co_await call(ctx, "PUT", "/v1/kv/lead?release=" + b, "done");
    EXPECT_EQ(r.body, "true");
}

// The key's holder, after `d`.
task<http::response> get_after(const api::context* ctx, clock::duration d, std::string target) {
    co_await sleep_for(d);
    co_return co_await call(ctx, "GET", std::move(target));
}

task<void> expiry_body(const api::context* ctx) {
    std::string rel = co_await create(ctx, R"({"TTL":"10s","LockDelay":"0s"})");
    std::string del = co_await create(ctx, R"({"TTL":"10s","Behavior":"delete"})");
    auto r = co_await call(ctx, "PUT", "/v1/kv/r?acquire=" + rel, "x");
    EXPECT_EQ(r.body, "true");
    r = co_await call(ctx, "PUT", "/v1/kv/d?acquire=" + del, "y");
    EXPECT_EQ(r.body, "true");
    auto start = clock::now();
    // Renew `rel` every 8 s for 40 s: it outlives its TTL; `del` is not renewed.
    for (int i = 0; i < 5; ++i) {
        co_await sleep_for(8s);
        r = co_await call_on(1, ctx, "PUT", "/v1/session/renew/" + rel);
        EXPECT_EQ(r.status, 200u) << "renew " << i;
    }
    r = co_await call(ctx, "GET", "/v1/kv/d");
    EXPECT_EQ(r.status, 404u);  // deleted at 2×TTL = 20 s
    r = co_await call(ctx, "GET", "/v1/session/info/" + del);
    EXPECT_EQ(r.body, "[]");
    r = co_await call(ctx, "GET", "/v1/kv/r");
    EXPECT_NE(r.body.find(rel), std::string::npos);
    // A blocking read on the key wakes when `rel` expires (2×TTL after the last renew).
    uint64_t idx = std::stoull(header(r, "X-Consul-Index"));
    auto renewed = clock::now();
    r = co_await call_on(1, ctx, "GET", "/v1/kv/r?index=" + std::to_string(idx) + "&wait=5m");
    auto took = clock::now() - renewed;
    EXPECT_GE(took, 20s);
    EXPECT_LE(took, 21s);
    EXPECT_EQ(r.body.find("Session"), std::string::npos);
    EXPECT_NE(r.body.find("eA=="), std::string::npos);
    r = co_await call(ctx, "GET", "/v1/session/list");
    EXPECT_EQ(r.body, "[]");
    (void)start;
}

task<void> blocking_body(const api::context* ctx) {
    auto r = co_await call(ctx, "GET", "/v1/session/list");
    std::string idx = header(r, "X-Consul-Index");
    std::vector<task<apitest::timed>> both;
    both.push_back(apitest::timed_get(ctx, "/v1/session/list?index=" + idx + "&wait=1m"));
    both.push_back(apitest::put_at(ctx, 5s, "/v1/session/create", ""));
    auto res = co_await when_all(std::move(both));
    EXPECT_EQ(res[0].took, 5s);
    EXPECT_NE(res[0].r.body, "[]");
    EXPECT_GT(std::stoull(header(res[0].r, "X-Consul-Index")), std::stoull(idx));
    // A KV write does not wake a session watcher: it waits out its time.
    idx = header(res[0].r, "X-Consul-Index");
    std::vector<task<apitest::timed>> again;
    again.push_back(apitest::timed_get(ctx, "/v1/session/list?index=" + idx + "&wait=10s"));
    again.push_back(apitest::put_at(ctx, 2s, "/v1/kv/unrelated", "x"));
    res = co_await when_all(std::move(again));
    EXPECT_GE(res[0].took, 10s);
}

task<void> critical_check_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/agent/check/register", R"({"Name":"db","TTL":"30s","Status":"passing"})");
    EXPECT_EQ(r.status, 200u) << r.body;
    std::string s = co_await create(ctx, R"({"NodeChecks":["serfHealth","db"],"LockDelay":"0s"})");
    r = co_await call(ctx, "PUT", "/v1/kv/svc/leader?acquire=" + s, "me");
    EXPECT_EQ(r.body, "true");
    r = co_await call(ctx, "PUT", "/v1/agent/check/fail/db");
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "GET", "/v1/session/info/" + s);
    EXPECT_EQ(r.body, "[]");
    r = co_await call(ctx, "GET", "/v1/kv/svc/leader");
    EXPECT_EQ(r.body.find("Session"), std::string::npos);
    // A session cannot be made on a critical check.
    r = co_await call(ctx, "PUT", "/v1/session/create", R"({"NodeChecks":["db"]})");
    EXPECT_EQ(r.body, "Check 'db' is in critical state");
}

}  // namespace

PHAROS_CORO_TEST(session_api, sessions_have_consuls_json_defaults_and_errors) { co_await apitest::with_api(&shapes_body); }
PHAROS_MANUAL_CLOCK_TEST(session_api, two_sessions_contend_and_lock_delay_holds_off_the_loser) {
    co_await apitest::with_api(&contention_body);
}
PHAROS_MANUAL_CLOCK_TEST(session_api, ttl_expiry_releases_or_deletes_keys_and_renew_keeps_a_session) {
    co_await apitest::with_api(&expiry_body);
}
PHAROS_MANUAL_CLOCK_TEST(session_api, session_queries_block_on_the_sessions_table) {
    co_await apitest::with_api(&blocking_body);
}
PHAROS_MANUAL_CLOCK_TEST(session_api, a_critical_check_invalidates_its_sessions) {
    co_await apitest::with_api(&critical_check_body);
}
