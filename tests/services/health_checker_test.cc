// Probing checks through the agent API on the manual clock (2 shards, checks
// spread over both): first results within one interval, status changes
// reaching /v1/health and /v1/agent, flap damping, batched writes (steady
// checks write nothing), DeregisterCriticalServiceAfter, maintenance over
// probe results, and the script-check gate.
#include "engine/combinators.hh"
#include "protocols/http/server.hh"
#include "services/api/http_api.hh"
#include "tests/support/api_fixture.hh"
#include "tests/support/json_probe.hh"

using namespace pharos;
using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

using apitest::call;
using apitest::header;
using apitest::json_at;
using apitest::json_size;

// The target's behaviour, by path: "/t/<n>" answers codes[n] (default 200).
// hits counts the requests per path.
std::map<std::string, unsigned> codes;
std::map<std::string, int> hits;

task<http::response> target(http::request& r) {
    ++hits[r.path];
    unsigned code = 200;
    if (auto it = codes.find(r.path); it != codes.end()) code = it->second;
    co_return http::response::text(code, code == 200 ? "ok" : "bad");
}

http::server* srv = nullptr;

std::string url(const std::string& path) { return "http://127.0.0.1:" + std::to_string(srv->port()) + path; }

uint64_t index_of(const http::response& r) { return std::stoull(std::string(header(r, "X-Consul-Index")).empty() ? "0" : header(r, "X-Consul-Index")); }

task<void> with_target(task<void> (*body)(const api::context*), agent::config cfg = apitest::test_agent_config()) {
    codes.clear();
    http::server_config hc;
    hc.port = 0;
    http::server s(hc, target);
    co_await s.start();
    srv = &s;
    co_await apitest::with_api(body, cfg);
    co_await s.stop();
    srv = nullptr;
}

task<std::string> check_status(const api::context* ctx, std::string id) {
    auto r = co_await call(ctx, "GET", "/v1/agent/checks");
    co_return json_at(r.body, ("/" + id + "/Status").c_str());
}

// Polls (every 50 ms) until check `id` has status `want` or `limit` passed; the time it took.
// (Sockets are real while time is manual, so results are awaited, not sampled at fixed times.)
task<clock::duration> wait_status(const api::context* ctx, std::string id, std::string want, clock::duration limit) {
    auto start = clock::now();
    for (;;) {
        std::string st = co_await check_status(ctx, id);
        if (st == want) break;
        if (clock::now() - start > limit) {
            ADD_FAILURE() << id << " is " << st << ", not " << want;
            break;
        }
        co_await sleep_for(50ms);
    }
    co_return clock::now() - start;
}

task<void> status_follows_target_body(const api::context* ctx) {
    std::string body = R"({"Name":"web","ID":"web1","Port":80,"Check":{"HTTP":")" + url("/t/1") +
                       R"(","Interval":"2s"}})";
    auto r = co_await call(ctx, "PUT", "/v1/agent/service/register", body);
    CO_ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(co_await check_status(ctx, "service:web1"), "critical");  // until the first probe
    auto took = co_await wait_status(ctx, "service:web1", "passing", 10s);
    EXPECT_LE(took, 2s + 100ms);  // the first run is within one interval (plus the flush window)
    r = co_await call(ctx, "GET", "/v1/health/service/web");
    EXPECT_EQ(json_at(r.body, "/0/Checks/1/Status"), "passing");
    EXPECT_EQ(json_at(r.body, "/0/Checks/1/Output"), "HTTP GET " + url("/t/1") + ": 200 OK Output: ok");
    EXPECT_NE(json_at(r.body, "/0/Checks/1/ModifyIndex"), "0");
    // The agent shares the catalog's row but shows its local form: no Raft indexes.
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/service:web1/Output"), "HTTP GET " + url("/t/1") + ": 200 OK Output: ok");
    EXPECT_EQ(json_at(r.body, "/service:web1/CreateIndex"), "0");
    EXPECT_EQ(json_at(r.body, "/service:web1/ModifyIndex"), "0");
    EXPECT_EQ(json_at(r.body, "/service:web1/Definition/HTTP"), url("/t/1"));
    r = co_await call(ctx, "GET", "/v1/agent/health/service/id/web1");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(json_at(r.body, "/AggregatedStatus"), "passing");

    codes["/t/1"] = 503;
    took = co_await wait_status(ctx, "service:web1", "critical", 10s);
    EXPECT_LE(took, 2s + 150ms);  // within Interval (+ the flush window and the polling step)
    r = co_await call(ctx, "GET", "/v1/health/service/web?passing");
    EXPECT_EQ(r.body, "[]");
    r = co_await call(ctx, "GET", "/v1/agent/health/service/id/web1");
    EXPECT_EQ(r.status, 503u);
    codes["/t/1"] = 429;
    co_await wait_status(ctx, "service:web1", "warning", 10s);
    r = co_await call(ctx, "GET", "/v1/agent/health/service/id/web1");
    EXPECT_EQ(r.status, 429u);

    // Maintenance wins over the probe's result; disabling it brings the probe's status back.
    codes["/t/1"] = 200;
    co_await wait_status(ctx, "service:web1", "passing", 10s);
    r = co_await call(ctx, "PUT", "/v1/agent/service/maintenance/web1?enable=true");
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "GET", "/v1/agent/health/service/id/web1");
    EXPECT_EQ(r.status, 503u);
    EXPECT_EQ(json_at(r.body, "/AggregatedStatus"), "maintenance");
    co_await sleep_for(4s);
    r = co_await call(ctx, "GET", "/v1/health/service/web?passing");
    EXPECT_EQ(r.body, "[]");
    r = co_await call(ctx, "PUT", "/v1/agent/service/maintenance/web1?enable=false");
    r = co_await call(ctx, "GET", "/v1/health/service/web?passing");
    EXPECT_EQ(json_size(r.body), 1);

    // Deregistering stops the probe: its results no longer arrive.
    r = co_await call(ctx, "PUT", "/v1/agent/service/deregister/web1");
    EXPECT_EQ(r.status, 200u);
    co_await sleep_for(5s);
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(r.body, "{}");
}

PHAROS_MANUAL_CLOCK_TEST(health_checker, http_check_status_follows_the_target) {
    co_await with_target(status_follows_target_body);
}

task<void> damping_body(const api::context* ctx) {
    std::string body = R"({"Name":"d","ID":"d1","HTTP":")" + url("/t/d") +
                       R"(","Interval":"1s","Timeout":"30s","Status":"passing","SuccessBeforePassing":2,"FailuresBeforeWarning":1,"FailuresBeforeCritical":3})";
    auto r = co_await call(ctx, "PUT", "/v1/agent/check/register", body);
    CO_ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(co_await check_status(ctx, "d1"), "passing");  // Status given at registration
    co_await sleep_for(1500ms);
    EXPECT_EQ(co_await check_status(ctx, "d1"), "passing");  // one success: below SuccessBeforePassing, no write
    // Failures: 1 and 2 give warning, the 3rd critical. A result is counted at
    // the target before the agent can see it, so the status never runs ahead.
    codes["/t/d"] = 500;
    int base = hits["/t/d"];
    bool saw_warning = false;
    for (int i = 0; i < 200; ++i) {
        std::string st = co_await check_status(ctx, "d1");
        int failures = hits["/t/d"] - base;
        if (st == "critical") {
            EXPECT_GE(failures, 3);
            break;
        }
        if (st == "warning") {
            saw_warning = true;
            EXPECT_GE(failures, 1);
        }
        co_await sleep_for(50ms);
    }
    EXPECT_TRUE(saw_warning);
    EXPECT_EQ(co_await check_status(ctx, "d1"), "critical");
    codes["/t/d"] = 200;
    base = hits["/t/d"];
    for (int i = 0; i < 200; ++i) {
        std::string st = co_await check_status(ctx, "d1");
        int successes = hits["/t/d"] - base;
        if (st == "passing") {
            EXPECT_GE(successes, 2);
            break;
        }
        EXPECT_EQ(st, "critical");
        co_await sleep_for(50ms);
    }
    EXPECT_EQ(co_await check_status(ctx, "d1"), "passing");
}

PHAROS_MANUAL_CLOCK_TEST(health_checker, flap_damping_counts_consecutive_results) {
    co_await with_target(damping_body);
}

task<void> batching_body(const api::context* ctx) {
    constexpr int n = 300;
    co_await ctx->agent->checkers().invoke_on_all([](health::checker& c) { c.set_flush_window(1s); });
    for (int i = 0; i < n; ++i) {
        std::string body = R"({"Name":"b)" + std::to_string(i) + R"(","HTTP":")" + url("/t/b") + R"(","Interval":"5s","Timeout":"60s"})";
        auto r = co_await call(ctx, "PUT", "/v1/agent/check/register", body);
        CO_ASSERT_EQ(r.status, 200u);
    }
    auto r = co_await call(ctx, "GET", "/v1/health/state/any");
    uint64_t before = index_of(r);
    for (int i = 0; i < 100; ++i) {
        r = co_await call(ctx, "GET", "/v1/health/state/passing");
        if (json_size(r.body) == n + 1) break;  // + serfHealth
        co_await sleep_for(100ms);
    }
    EXPECT_EQ(json_size(r.body), n + 1);
    uint64_t after_first = index_of(r);
    // n changes over one interval, batched per shard per flush window (1 s here):
    // about interval / window writes per shard, far fewer than checks.
    EXPECT_LE(after_first - before, uint64_t(2 * 7));
    // Steady passing checks write nothing.
    co_await sleep_for(15s);
    r = co_await call(ctx, "GET", "/v1/health/state/any");
    EXPECT_EQ(index_of(r), after_first);
    auto stats = co_await ctx->agent->health_stats();
    EXPECT_EQ(stats.checks, uint64_t(n));
    EXPECT_GE(stats.probes, uint64_t(3 * n));
    EXPECT_EQ(stats.changes, uint64_t(n));
    // Both shards run checks.
    auto on1 = co_await ctx->agent->checkers().invoke_on(1, [](health::checker& c) { return c.size(); });
    EXPECT_GT(on1, size_t(n / 4));
    EXPECT_LT(on1, size_t(3 * n / 4));
}

PHAROS_MANUAL_CLOCK_TEST(health_checker, steady_checks_cost_no_writes_and_changes_are_batched) {
    co_await with_target(batching_body);
}

task<void> reaper_body(const api::context* ctx) {
    // Nothing listens on port 1: the TCP check turns critical at its first run.
    auto r = co_await call(ctx, "PUT", "/v1/agent/service/register",
                           R"({"Name":"gone","ID":"gone1","Check":{"TCP":"127.0.0.1:1","Interval":"5s","Status":"passing",
                               "DeregisterCriticalServiceAfter":"10s"}})");
    CO_ASSERT_EQ(r.status, 200u);
    r = co_await call(ctx, "PUT", "/v1/agent/service/register",
                      R"({"Name":"stays","ID":"stays1","Check":{"TCP":"127.0.0.1:1","Interval":"5s"}})");
    co_await wait_status(ctx, "service:gone1", "critical", 10s);
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/service:gone1/Output"), "dial tcp 127.0.0.1:1: connect: connection refused");
    // 10s is raised to Consul's minimum of one minute; the reaper runs every 30 s.
    co_await sleep_for(50s);
    r = co_await call(ctx, "GET", "/v1/agent/services");
    EXPECT_EQ(json_size(r.body), 2);
    co_await sleep_for(40s);
    r = co_await call(ctx, "GET", "/v1/agent/services");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/stays1/ID"), "stays1");
    r = co_await call(ctx, "GET", "/v1/catalog/service/gone");
    EXPECT_EQ(r.body, "[]");
}

PHAROS_MANUAL_CLOCK_TEST(health_checker, deregister_critical_service_after_removes_the_service) {
    co_await with_target(reaper_body);
}

task<void> script_gate_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/agent/check/register",
                           R"({"Name":"s","Args":["/bin/sh","-c","exit 1"],"Interval":"1s"})");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body,
              "Invalid check: Scripts are disabled on this agent from remote calls; to enable, configure "
              "'enable_script_checks' to true");
}

PHAROS_MANUAL_CLOCK_TEST(health_checker, script_checks_from_the_api_need_enable_script_checks) {
    agent::config c = apitest::test_agent_config();
    c.enable_local_script_checks = true;  // config files only
    co_await with_target(script_gate_body, c);
}

task<void> script_run_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/agent/check/register",
                           R"({"Name":"s","Args":["/bin/sh","-c","echo warn; exit 1"],"Interval":"1s","Timeout":"30s"})");
    CO_ASSERT_EQ(r.status, 200u);
    std::string st;
    for (int i = 0; i < 100 && (st = co_await check_status(ctx, "s")) == "critical"; ++i) co_await sleep_for(100ms);
    EXPECT_EQ(st, "warning");
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/s/Output"), "warn\n");
    EXPECT_EQ(json_at(r.body, "/s/Type"), "script");
}

PHAROS_MANUAL_CLOCK_TEST(health_checker, script_check_runs_when_enabled) {
    agent::config c = apitest::test_agent_config();
    c.enable_script_checks = true;
    co_await with_target(script_run_body, c);
}

}  // namespace

namespace {

task<void> alias_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/agent/service/register",
                           R"({"Name":"web","ID":"web1","Check":{"TTL":"1h"}})");
    CO_ASSERT_EQ(r.status, 200u);
    r = co_await call(ctx, "PUT", "/v1/agent/check/register", R"({"Name":"mirror","AliasService":"web1"})");
    CO_ASSERT_EQ(r.status, 200u);
    r = co_await call(ctx, "PUT", "/v1/agent/check/register", R"({"Name":"node-mirror","AliasNode":"node1"})");
    CO_ASSERT_EQ(r.status, 200u);
    auto output = [](const api::context* ctx, std::string id) -> task<std::string> {
        auto r = co_await call(ctx, "GET", "/v1/agent/checks");
        co_return json_at(r.body, ("/" + id + "/Output").c_str());
    };
    co_await wait_status(ctx, "node-mirror", "passing", 1s);
    EXPECT_EQ(co_await output(ctx, "node-mirror"), "All checks passing.");  // serfHealth
    EXPECT_EQ(co_await check_status(ctx, "mirror"), "critical");  // the TTL check starts critical
    EXPECT_EQ(co_await output(ctx, "mirror"), "Aliased check \"Service 'web' check\" failing: ");
    r = co_await call(ctx, "PUT", "/v1/agent/check/pass/service:web1");
    co_await wait_status(ctx, "mirror", "passing", 1s);
    EXPECT_EQ(co_await output(ctx, "mirror"), "All checks passing.");
    r = co_await call(ctx, "PUT", "/v1/agent/check/warn/service:web1?note=slow");
    co_await wait_status(ctx, "mirror", "warning", 1s);
    EXPECT_EQ(co_await output(ctx, "mirror"), "Aliased check \"Service 'web' check\" failing: slow");
    // Node maintenance is a node-level critical check: both aliases follow.
    r = co_await call(ctx, "PUT", "/v1/agent/maintenance?enable=true&reason=upgrade");
    co_await wait_status(ctx, "mirror", "critical", 1s);
    co_await wait_status(ctx, "node-mirror", "critical", 1s);
    r = co_await call(ctx, "PUT", "/v1/agent/maintenance?enable=false");
    co_await wait_status(ctx, "node-mirror", "passing", 1s);
    r = co_await call(ctx, "PUT", "/v1/agent/service/deregister/web1");
    co_await wait_status(ctx, "mirror", "critical", 1s);
    EXPECT_EQ(co_await output(ctx, "mirror"), "Service web1 could not be found on node node1");
}

PHAROS_MANUAL_CLOCK_TEST(health_checker, alias_checks_mirror_the_aliased_service_and_node) {
    co_await with_target(alias_body);
}

}  // namespace
