// PUT /v1/txn through api::handle on 2 shards: atomicity (all or nothing),
// Consul's 409 Errors for each verb's failure, 413 limits, read-only
// transactions served from the local snapshot, and catalog verbs.
#include "protocols/json/writer.hh"
#include "services/api/http_api.hh"
#include "tests/support/api_fixture.hh"

using namespace pharos;
using namespace pharos::engine;

namespace {

using apitest::call;
using apitest::call_on;
using apitest::header;

std::string b64(std::string_view s) { return json::base64_encode(s); }

task<void> atomic_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/kv/k", "old");
    r = co_await call(ctx, "GET", "/v1/kv/k");
    uint64_t k_index = std::stoull(header(r, "X-Consul-Index"));
    // A set followed by a failing cas: nothing applies.
    std::string body = R"([{"KV":{"Verb":"set","Key":"a","Value":")" + b64("1") +
                       R"("}},{"KV":{"Verb":"cas","Key":"k","Value":")" + b64("new") + R"(","Index":1}}])";
    r = co_await call_on(1, ctx, "PUT", "/v1/txn", body);
    EXPECT_EQ(r.status, 409u);
    EXPECT_EQ(r.body, R"({"Results":null,"Errors":[{"OpIndex":1,"What":"failed to set key \"k\", index is stale"}]})");
    r = co_await call(ctx, "GET", "/v1/kv/a");
    EXPECT_EQ(r.status, 404u);
    // With the right index both apply, at one index; results carry no values.
    body = R"([{"KV":{"Verb":"set","Key":"a","Value":")" + b64("1") +
           R"(","Flags":7}},{"KV":{"Verb":"cas","Key":"k","Value":")" + b64("new") + R"(","Index":)" +
           std::to_string(k_index) + R"(}},{"KV":{"Verb":"get","Key":"k"}},{"KV":{"Verb":"delete","Key":"zz"}}])";
    r = co_await call_on(1, ctx, "PUT", "/v1/txn", body);
    EXPECT_EQ(r.status, 200u) << r.body;
    std::string i = std::to_string(k_index + 2);  // the failed txn took a log entry too
    EXPECT_EQ(r.body, R"({"Results":[{"KV":{"LockIndex":0,"Key":"a","Flags":7,"Value":null,"CreateIndex":)" + i +
                          R"(,"ModifyIndex":)" + i +
                          R"(}},{"KV":{"LockIndex":0,"Key":"k","Flags":0,"Value":null,"CreateIndex":)" +
                          std::to_string(k_index) + R"(,"ModifyIndex":)" + i +
                          R"(}},{"KV":{"LockIndex":0,"Key":"k","Flags":0,"Value":")" + b64("new") +
                          R"(","CreateIndex":)" + std::to_string(k_index) + R"(,"ModifyIndex":)" + i +
                          R"(}}],"Errors":null})");
    r = co_await call_on(1, ctx, "GET", "/v1/kv/a?raw");
    EXPECT_EQ(r.body, "1");
}

task<void> errors_body(const api::context* ctx) {
    co_await call(ctx, "PUT", "/v1/kv/held", "x");
    auto r = co_await call(ctx, "PUT", "/v1/session/create");
    std::string s = r.body.substr(7, 36);
    r = co_await call(ctx, "PUT", "/v1/kv/locked?acquire=" + s, "x");
    EXPECT_EQ(r.body, "true");
    // Every op runs; every failure is reported with its index.
    std::string body = std::string("[") + R"({"KV":{"Verb":"get","Key":"missing"}},)" +
                       R"({"KV":{"Verb":"check-index","Key":"held","Index":1}},)" +
                       R"({"KV":{"Verb":"check-index","Key":"missing","Index":1}},)" +
                       R"({"KV":{"Verb":"check-session","Key":"locked","Session":"other"}},)" +
                       R"({"KV":{"Verb":"check-not-exists","Key":"held"}},)" +
                       R"({"KV":{"Verb":"lock","Key":"locked","Session":"nosuch"}},)" +
                       R"({"KV":{"Verb":"unlock","Key":"held","Session":")" + s + R"("}},)" +
                       R"({"KV":{"Verb":"delete-cas","Key":"held","Index":1}},)" +
                       R"({"KV":{"Verb":"frobnicate","Key":"held"}},)" +
                       R"({"Node":{"Verb":"get","Node":{"Node":"ghost"}}},)" +
                       R"({"Service":{"Verb":"get","Node":"node1","Service":{"ID":"nope"}}},)" +
                       R"({"Check":{"Verb":"get","Check":{"Node":"node1","CheckID":"nope"}}},)" +
                       R"({"KV":{"Verb":"lock","Key":"locked","Session":")" + s + R"("}},)" +
                       R"({"KV":{"Verb":"set","Key":"n"}}])";
    r = co_await call(ctx, "PUT", "/v1/txn", body);
    EXPECT_EQ(r.status, 409u);
    auto what = [&](int op, const std::string& w) {
        return R"({"OpIndex":)" + std::to_string(op) + R"(,"What":")" + w + "\"}";
    };
    EXPECT_NE(r.body.find(what(0, R"(key \"missing\" doesn't exist)")), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"(failed index check for key \"held\", current modify index )"), std::string::npos);
    EXPECT_NE(r.body.find(what(2, R"(failed to check index, key \"missing\" doesn't exist)")), std::string::npos);
    EXPECT_NE(r.body.find(what(3, R"(failed session check for key \"locked\", current session \")" + s +
                                      R"(\" != \"other\")")),
              std::string::npos);
    EXPECT_NE(r.body.find(what(4, R"(key \"held\" exists)")), std::string::npos);
    EXPECT_NE(r.body.find(what(5, R"(invalid session \"nosuch\")")), std::string::npos);
    EXPECT_NE(r.body.find(what(6, R"(failed to unlock key \"held\", lock isn't held, or is held by another session)")),
              std::string::npos);
    EXPECT_NE(r.body.find(what(7, R"(failed to delete key \"held\", index is stale)")), std::string::npos);
    EXPECT_NE(r.body.find(what(8, R"(unknown KV verb \"frobnicate\")")), std::string::npos);
    EXPECT_NE(r.body.find(what(9, R"(node \"ghost\" doesn't exist)")), std::string::npos);
    EXPECT_NE(r.body.find(what(10, R"(service \"nope\" on node \"node1\" doesn't exist)")), std::string::npos);
    EXPECT_NE(r.body.find(what(11, R"(check \"nope\" on node \"node1\" doesn't exist)")), std::string::npos);
    EXPECT_EQ(r.body.find(R"("OpIndex":12)"), std::string::npos);  // the holder re-locking is fine
    EXPECT_EQ(r.body.rfind(R"({"Results":null,"Errors":[)", 0), 0u);
    r = co_await call(ctx, "GET", "/v1/kv/n");
    EXPECT_EQ(r.status, 404u);
    // Limits and bad bodies.
    std::string many = "[";
    for (int i = 0; i < 129; ++i) many += std::string(i ? "," : "") + R"({"KV":{"Verb":"get","Key":"a"}})";
    many += "]";
    r = co_await call(ctx, "PUT", "/v1/txn", many);
    EXPECT_EQ(r.status, 413u);
    EXPECT_EQ(r.body, "Transaction contains too many operations (129 > 128)");
    r = co_await call(ctx, "PUT", "/v1/txn", "{nope");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body.rfind("Failed to parse body: ", 0), 0u);
    r = co_await call(ctx, "PUT", "/v1/txn", R"([{"KV":{"Verb":"set","Key":"a","Value":"***"}}])");
    EXPECT_EQ(r.status, 400u);
    r = co_await call(ctx, "PUT", "/v1/txn", std::string(600 * 1024, ' '));
    EXPECT_EQ(r.status, 413u);
    EXPECT_EQ(r.body, "Request body too large, max size: 524288 bytes");
    r = co_await call(ctx, "GET", "/v1/txn");
    EXPECT_EQ(r.status, 405u);
}

task<void> read_only_body(const api::context* ctx) {
    co_await call(ctx, "PUT", "/v1/kv/t/1", "one");
    co_await call(ctx, "PUT", "/v1/kv/t/2", "two");
    auto before = co_await call(ctx, "GET", "/v1/kv/?recurse");
    std::string body = R"([{"KV":{"Verb":"get-tree","Key":"t/"}},{"KV":{"Verb":"check-not-exists","Key":"t/3"}}])";
    auto r = co_await call_on(1, ctx, "PUT", "/v1/txn", body);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_NE(r.body.find(b64("one")), std::string::npos);
    EXPECT_NE(r.body.find(b64("two")), std::string::npos);
    EXPECT_NE(r.body.find(R"("Errors":null,"Index":0,"LastContact":0,"KnownLeader":true)"), std::string::npos);
    EXPECT_EQ(header(r, "X-Consul-Knownleader"), "true");
    // No write happened: the state index did not move.
    auto after = co_await call(ctx, "GET", "/v1/kv/?recurse");
    EXPECT_EQ(header(after, "X-Consul-Index"), header(before, "X-Consul-Index"));
}

task<void> catalog_body(const api::context* ctx) {
    std::string body = std::string("[") +
                       R"({"Node":{"Verb":"set","Node":{"Node":"web1","Address":"10.1.1.1","Meta":{"r":"a"}}}},)" +
                       R"({"Service":{"Verb":"set","Node":"web1","Service":{"ID":"w1","Service":"web","Port":80}}},)" +
                       R"({"Check":{"Verb":"set","Check":{"Node":"web1","CheckID":"c1","Name":"c1","Status":"passing","ServiceID":"w1"}}}])";
    auto r = co_await call_on(1, ctx, "PUT", "/v1/txn", body);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_NE(r.body.find(R"({"Node":{"ID":"","Node":"web1","Address":"10.1.1.1","Datacenter":"dc1")"),
              std::string::npos)
        << r.body;
    EXPECT_NE(r.body.find(R"({"Service":{)"), std::string::npos);
    EXPECT_NE(r.body.find(R"({"Check":{"Node":"web1","CheckID":"c1")"), std::string::npos);
    r = co_await call(ctx, "GET", "/v1/health/service/web?passing");
    EXPECT_NE(r.body.find("\"w1\""), std::string::npos);
    r = co_await call(ctx, "GET", "/v1/catalog/node/web1");
    std::string idx = header(r, "X-Consul-Index");
    // A stale cas fails the whole txn; the node stays.
    body = R"([{"Node":{"Verb":"delete-cas","Node":{"Node":"web1","ModifyIndex":1}}}])";
    r = co_await call(ctx, "PUT", "/v1/txn", body);
    EXPECT_EQ(r.status, 409u);
    EXPECT_NE(r.body.find(R"(failed to delete node \"web1\", index is stale)"), std::string::npos);
    body = R"([{"Service":{"Verb":"set","Node":"ghost","Service":{"ID":"x","Service":"x"}}}])";
    r = co_await call(ctx, "PUT", "/v1/txn", body);
    EXPECT_NE(r.body.find("Missing node registration"), std::string::npos);
    // A session on the node dies with a txn that deletes its check.
    r = co_await call(ctx, "PUT", "/v1/session/create", R"({"Node":"web1","NodeChecks":[],"ServiceChecks":[{"ID":"c1"}]})");
    EXPECT_EQ(r.status, 200u) << r.body;
    std::string s = r.body.substr(7, 36);
    body = R"([{"Check":{"Verb":"delete","Check":{"Node":"web1","CheckID":"c1"}}}])";
    r = co_await call(ctx, "PUT", "/v1/txn", body);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, R"({"Results":[],"Errors":null})");
    r = co_await call(ctx, "GET", "/v1/session/info/" + s);
    EXPECT_EQ(r.body, "[]");
    body = R"([{"Node":{"Verb":"delete","Node":{"Node":"web1"}}}])";
    r = co_await call(ctx, "PUT", "/v1/txn", body);
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "GET", "/v1/catalog/node/web1");
    EXPECT_EQ(r.body, "null");
}

}  // namespace

PHAROS_CORO_TEST(txn_api, a_transaction_applies_all_or_nothing) { co_await apitest::with_api(&atomic_body); }
PHAROS_CORO_TEST(txn_api, every_failed_op_is_reported_with_consuls_text) { co_await apitest::with_api(&errors_body); }
PHAROS_CORO_TEST(txn_api, read_only_transactions_do_not_write) { co_await apitest::with_api(&read_only_body); }
PHAROS_CORO_TEST(txn_api, catalog_verbs_and_session_invalidation) { co_await apitest::with_api(&catalog_body); }
