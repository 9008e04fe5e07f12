// /v1/agent, /v1/event, /v1/status and /v1/agent/metrics through api::handle
// on 2 shards (no sockets): registration in the shapes real clients send,
// maintenance, TTL checks expiring on the manual clock, aggregated health,
// hash blocking, identity, events, and Consul's answers to bad requests.
#include "engine/combinators.hh"
#include "services/api/http_api.hh"
#include "tests/support/api_fixture.hh"
#include "tests/support/json_probe.hh"

using namespace pharos;
using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

using apitest::call;
using apitest::get_with_put;
using apitest::header;
using apitest::put_at;
using apitest::timed;
using apitest::timed_get;
using apitest::json_at;
using apitest::json_size;

// python-consul's shape: lowercase and snake_case keys, durations as strings.
const char* python_web1 = R"({"name":"web","id":"web1","tags":["a","b"],"address":"10.0.0.5","port":8080,
  "meta":{"k":"v"},"enable_tag_override":true,"check":{"ttl":"10s"}})";

task<void> register_service_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/agent/service/register", python_web1);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, "");  // agent writes answer 200 with an empty body
    r = co_await call(ctx, "GET", "/v1/agent/services");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(json_size(r.body), 1);  // the server's own "consul" service is not an agent service
    EXPECT_EQ(json_at(r.body, "/web1/ID"), "web1");
    EXPECT_EQ(json_at(r.body, "/web1/Service"), "web");
    EXPECT_EQ(json_at(r.body, "/web1/Tags"), R"(["a","b"])");
    EXPECT_EQ(json_at(r.body, "/web1/Port"), "8080");
    EXPECT_EQ(json_at(r.body, "/web1/Address"), "10.0.0.5");
    EXPECT_EQ(json_at(r.body, "/web1/Meta/k"), "v");
    EXPECT_EQ(json_at(r.body, "/web1/EnableTagOverride"), "true");
    EXPECT_EQ(json_at(r.body, "/web1/Weights"), R"({"Passing":1,"Warning":1})");
    EXPECT_EQ(json_at(r.body, "/web1/Datacenter"), "dc1");
    EXPECT_EQ(header(r, "X-Consul-Index"), "");  // agent-local endpoints carry no index
    r = co_await call(ctx, "GET", "/v1/agent/services?filter=" + std::string("Service%20%3D%3D%20nope"));
    EXPECT_EQ(r.body, "{}");

    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/service:web1/Name"), "Service 'web' check");
    EXPECT_EQ(json_at(r.body, "/service:web1/Status"), "critical");  // new checks start critical
    EXPECT_EQ(json_at(r.body, "/service:web1/ServiceID"), "web1");
    EXPECT_EQ(json_at(r.body, "/service:web1/ServiceName"), "web");
    EXPECT_EQ(json_at(r.body, "/service:web1/ServiceTags"), R"(["a","b"])");
    EXPECT_EQ(json_at(r.body, "/service:web1/Type"), "ttl");
    EXPECT_EQ(json_at(r.body, "/service:web1/Node"), "node1");

    // The catalog and health views follow at once.
    r = co_await call(ctx, "GET", "/v1/catalog/service/web");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/Node"), "node1");
    EXPECT_EQ(json_at(r.body, "/0/ServiceAddress"), "10.0.0.5");
    r = co_await call(ctx, "GET", "/v1/health/service/web");
    EXPECT_EQ(json_size(r.body, "/0/Checks"), 2);
    EXPECT_EQ(json_at(r.body, "/0/Checks/0/CheckID"), "serfHealth");
    EXPECT_EQ(json_at(r.body, "/0/Checks/1/CheckID"), "service:web1");

    // Checks: IDs service:<id>:<n>; durations as integer nanoseconds.
    r = co_await call(ctx, "PUT", "/v1/agent/service/register",
                      R"({"Name":"api","ID":"api1","Port":9000,
                          "Checks":[{"TTL":30000000000},
                                    {"HTTP":"http://127.0.0.1:1/health","Interval":10000000000,"Timeout":"2s"}]})");
    EXPECT_EQ(r.status, 200u) << r.body;
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_size(r.body), 3);
    EXPECT_EQ(json_at(r.body, "/service:api1:1/Type"), "ttl");
    EXPECT_EQ(json_at(r.body, "/service:api1:2/Type"), "http");
    EXPECT_EQ(json_at(r.body, "/service:api1:2/Definition/HTTP"), "http://127.0.0.1:1/health");
    EXPECT_EQ(json_at(r.body, "/service:api1:2/Definition/Interval"), "10s");
    EXPECT_EQ(json_at(r.body, "/service:api1:2/Definition/Timeout"), "2s");
    EXPECT_EQ(json_at(r.body, "/service:api1:2/Name"), "Service 'api' check");
    // An explicit CheckID, Name and Status are kept.
    r = co_await call(
        ctx, "PUT", "/v1/agent/service/register",
        R"({"Name":"db","Check":{"CheckID":"db-alive","Name":"db alive","TTL":"1m","Status":"passing"}})");
    EXPECT_EQ(r.status, 200u) << r.body;
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/db-alive/Status"), "passing");
    EXPECT_EQ(json_at(r.body, "/db-alive/ServiceID"), "db");  // ID defaults to Name
    // Re-registering keeps a check's status unless the request sets one.
    r = co_await call(
        ctx, "PUT", "/v1/agent/service/register",
        R"({"Name":"db","Tags":["primary"],"Check":{"CheckID":"db-alive","Name":"db alive","TTL":"1m"}})");
    EXPECT_EQ(r.status, 200u) << r.body;
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/db-alive/Status"), "passing");
    EXPECT_EQ(json_at(r.body, "/db-alive/ServiceTags"), R"(["primary"])");

    // Refusals.
    r = co_await call(ctx, "PUT", "/v1/agent/service/register", R"({"ID":"noname"})");
    EXPECT_EQ(r.status, 400u);
    r = co_await call(ctx, "PUT", "/v1/agent/service/register", R"({"Name":"x","Check":{"HTTP":"http://x/"}})");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body.rfind("Invalid check: ", 0), 0u) << r.body;
    r = co_await call(ctx, "PUT", "/v1/agent/service/register",
                      R"({"Name":"x","Check":{"Args":["/bin/true"],"Interval":"10s"}})");
    EXPECT_EQ(r.status, 400u);  // script checks are off
    r = co_await call(ctx, "GET", "/v1/agent/services");
    EXPECT_EQ(json_size(r.body), 3);
}

task<void> deregister_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/agent/service/register", python_web1);
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "PUT", "/v1/agent/service/deregister/web1");
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, "");
    r = co_await call(ctx, "GET", "/v1/agent/services");
    EXPECT_EQ(r.body, "{}");
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(r.body, "{}");
    r = co_await call(ctx, "GET", "/v1/catalog/service/web");
    EXPECT_EQ(r.body, "[]");
    r = co_await call(ctx, "GET", "/v1/health/checks/web");
    EXPECT_EQ(r.body, "[]");
    // Consul: deregistering an unknown service is a no-op, 200.
    r = co_await call(ctx, "PUT", "/v1/agent/service/deregister/nosuch");
    EXPECT_EQ(r.status, 200u) << r.body;
    r = co_await call(ctx, "GET", "/v1/agent/service/deregister/web1");
    EXPECT_EQ(r.status, 405u);
}

task<void> maintenance_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/agent/service/register", python_web1);
    r = co_await call(ctx, "PUT", "/v1/agent/service/maintenance/web1");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body, "Missing value for enable");
    r = co_await call(ctx, "PUT", "/v1/agent/service/maintenance/web1?enable=maybe");
    EXPECT_EQ(r.status, 400u);
    r = co_await call(ctx, "PUT", "/v1/agent/service/maintenance/nosuch?enable=true");
    EXPECT_EQ(r.status, 404u);
    r = co_await call(ctx, "PUT", "/v1/agent/service/maintenance/web1?enable=true&reason=upgrading");
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, "");
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/_service_maintenance:web1/Status"), "critical");
    EXPECT_EQ(json_at(r.body, "/_service_maintenance:web1/Notes"), "upgrading");
    EXPECT_EQ(json_at(r.body, "/_service_maintenance:web1/ServiceID"), "web1");
    r = co_await call(ctx, "GET", "/v1/health/service/web");
    EXPECT_EQ(json_size(r.body, "/0/Checks"), 3);
    r = co_await call(ctx, "GET", "/v1/agent/health/service/id/web1");
    EXPECT_EQ(r.status, 503u);
    EXPECT_EQ(json_at(r.body, "/AggregatedStatus"), "maintenance");
    r = co_await call(ctx, "PUT", "/v1/agent/service/maintenance/web1?enable=true");  // again: no-op
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "PUT", "/v1/agent/service/maintenance/web1?enable=false");
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/_service_maintenance:web1"), "<missing>");
    r = co_await call(ctx, "GET", "/v1/health/service/web");
    EXPECT_EQ(json_size(r.body, "/0/Checks"), 2);

    // Node maintenance.
    r = co_await call(ctx, "PUT", "/v1/agent/maintenance");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body, "Missing value for enable");
    r = co_await call(ctx, "PUT", "/v1/agent/maintenance?enable=true");
    EXPECT_EQ(r.status, 200u) << r.body;
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/_node_maintenance/Status"), "critical");
    EXPECT_EQ(json_at(r.body, "/_node_maintenance/Notes").rfind("Maintenance mode is enabled for this node", 0), 0u);
    EXPECT_EQ(json_at(r.body, "/_node_maintenance/ServiceID"), "");
    r = co_await call(ctx, "GET", "/v1/health/node/node1");
    EXPECT_NE(r.body.find("_node_maintenance"), std::string::npos);
    r = co_await call(ctx, "GET", "/v1/health/service/web");  // a node check: every service sees it
    EXPECT_NE(r.body.find("_node_maintenance"), std::string::npos);
    r = co_await call(ctx, "GET", "/v1/health/service/consul?passing");
    EXPECT_EQ(r.body, "[]");
    r = co_await call(ctx, "PUT", "/v1/agent/maintenance?enable=false");
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "GET", "/v1/health/node/node1");
    EXPECT_EQ(r.body.find("_node_maintenance"), std::string::npos);
    r = co_await call(ctx, "GET", "/v1/agent/maintenance?enable=true");
    EXPECT_EQ(r.status, 405u);
}

task<void> checks_ttl_body(const api::context* ctx) {
    auto r =
        co_await call(ctx, "PUT", "/v1/agent/check/register", R"({"Name":"mem","ID":"mem","TTL":"10s","Notes":"n"})");
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, "");
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/mem/Status"), "critical");
    EXPECT_EQ(json_at(r.body, "/mem/Notes"), "n");
    EXPECT_EQ(json_at(r.body, "/mem/Type"), "ttl");

    r = co_await call(ctx, "PUT", "/v1/agent/check/pass/mem?note=fine");
    EXPECT_EQ(r.status, 200u) << r.body;
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/mem/Status"), "passing");
    EXPECT_EQ(json_at(r.body, "/mem/Output"), "fine");
    r = co_await call(ctx, "GET", "/v1/health/state/passing");  // the catalog follows
    EXPECT_NE(r.body.find("\"mem\""), std::string::npos);
    r = co_await call(ctx, "PUT", "/v1/agent/check/warn/mem");
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "GET", "/v1/health/state/warning");
    EXPECT_EQ(json_at(r.body, "/0/CheckID"), "mem");
    EXPECT_EQ(json_at(r.body, "/0/Output"), "");
    r = co_await call(ctx, "PUT", "/v1/agent/check/fail/mem?note=bad");
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "GET", "/v1/health/state/critical");
    EXPECT_EQ(json_at(r.body, "/0/Output"), "bad");
    r = co_await call(ctx, "PUT", "/v1/agent/check/update/mem", R"({"Status":"passing","Output":"ok"})");
    EXPECT_EQ(r.status, 200u) << r.body;
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/mem/Status"), "passing");
    EXPECT_EQ(json_at(r.body, "/mem/Output"), "ok");
    r = co_await call(ctx, "PUT", "/v1/agent/check/update/mem", R"({"Status":"bogus"})");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body, "Invalid check status: 'bogus'");
    r = co_await call(ctx, "PUT", "/v1/agent/check/update/mem", R"({"Status":1})");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body.rfind("Request decode failed: ", 0), 0u) << r.body;
    r = co_await call(ctx, "PUT", "/v1/agent/check/update/mem", "{");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body.rfind("Request decode failed: ", 0), 0u) << r.body;

    // Each pass re-arms the TTL: 8 s + 8 s with a pass between stays passing.
    co_await sleep_for(8s);
    r = co_await call(ctx, "PUT", "/v1/agent/check/pass/mem");
    co_await sleep_for(8s);
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/mem/Status"), "passing");
    // Then the TTL runs out: critical, "TTL expired", in the catalog too.
    co_await sleep_for(3s);
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/mem/Status"), "critical");
    EXPECT_EQ(json_at(r.body, "/mem/Output").rfind("TTL expired", 0), 0u) << json_at(r.body, "/mem/Output");
    r = co_await call(ctx, "GET", "/v1/health/state/critical");
    EXPECT_NE(r.body.find("TTL expired"), std::string::npos);

    // A TTL in nanoseconds.
    r = co_await call(ctx, "PUT", "/v1/agent/check/register", R"({"Name":"ns","TTL":5000000000,"Status":"passing"})");
    EXPECT_EQ(r.status, 200u) << r.body;
    co_await sleep_for(6s);
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/ns/Status"), "critical");

    // Refusals.
    r = co_await call(ctx, "PUT", "/v1/agent/check/register", R"({"ID":"x","TTL":"10s"})");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body, "Missing check name");
    r = co_await call(ctx, "PUT", "/v1/agent/check/register", R"({"Name":"x","TTL":"10s","Status":"bogus"})");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body, "Bad check status");
    r = co_await call(ctx, "PUT", "/v1/agent/check/register", R"({"Name":"x","TTL":"10s","ServiceID":"nosuch"})");
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(r.body, "ServiceID \"nosuch\" does not exist");
    r = co_await call(ctx, "PUT", "/v1/agent/check/pass/nosuch");
    EXPECT_EQ(r.status, 404u);
    r = co_await call(ctx, "PUT", "/v1/agent/check/register",
                      R"({"Name":"web","HTTP":"http://127.0.0.1:1/","Interval":"10s"})");
    EXPECT_EQ(r.status, 200u) << r.body;
    r = co_await call(ctx, "PUT", "/v1/agent/check/pass/web");
    EXPECT_EQ(r.status, 500u);  // not a TTL check

    // Deregister.
    r = co_await call(ctx, "PUT", "/v1/agent/check/deregister/mem");
    EXPECT_EQ(r.status, 200u) << r.body;
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(json_at(r.body, "/mem"), "<missing>");
    r = co_await call(ctx, "GET", "/v1/health/node/node1");
    EXPECT_EQ(r.body.find("\"mem\""), std::string::npos);
}

task<void> agent_health_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/agent/service/register",
                           R"({"Name":"web","ID":"web1","Check":{"CheckID":"t1","Name":"t1","TTL":"1h"}})");
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "PUT", "/v1/agent/service/register",
                      R"({"Name":"web","ID":"web2","Check":{"CheckID":"t2","Name":"t2","TTL":"1h"}})");
    EXPECT_EQ(r.status, 200u);
    co_await call(ctx, "PUT", "/v1/agent/check/pass/t1");
    co_await call(ctx, "PUT", "/v1/agent/check/pass/t2");

    r = co_await call(ctx, "GET", "/v1/agent/health/service/id/web1");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(json_at(r.body, "/AggregatedStatus"), "passing");
    EXPECT_EQ(json_at(r.body, "/Service/ID"), "web1");
    EXPECT_EQ(json_size(r.body, "/Checks"), 1);
    r = co_await call(ctx, "GET", "/v1/agent/health/service/id/web1?format=text");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "passing");
    co_await call(ctx, "PUT", "/v1/agent/check/warn/t1");
    r = co_await call(ctx, "GET", "/v1/agent/health/service/id/web1");
    EXPECT_EQ(r.status, 429u);
    EXPECT_EQ(json_at(r.body, "/AggregatedStatus"), "warning");
    r = co_await call(ctx, "GET", "/v1/agent/health/service/name/web?format=text");
    EXPECT_EQ(r.status, 429u);
    EXPECT_EQ(r.body, "warning");
    co_await call(ctx, "PUT", "/v1/agent/check/fail/t2");
    r = co_await call(ctx, "GET", "/v1/agent/health/service/name/web");
    EXPECT_EQ(r.status, 503u);
    EXPECT_EQ(json_size(r.body), 2);
    EXPECT_EQ(json_at(r.body, "/1/AggregatedStatus"), "critical");
    r = co_await call(ctx, "GET", "/v1/agent/health/service/id/web2?format=text");
    EXPECT_EQ(r.status, 503u);
    EXPECT_EQ(r.body, "critical");
    r = co_await call(ctx, "GET", "/v1/agent/health/service/id/nosuch");
    EXPECT_EQ(r.status, 404u);
    r = co_await call(ctx, "GET", "/v1/agent/health/service/name/nosuch");
    EXPECT_EQ(r.status, 404u);
    r = co_await call(ctx, "GET", "/v1/agent/health/service/name/nosuch?format=text");
    EXPECT_EQ(r.status, 404u);
}

// --- hash blocking (manual clock) ---

task<void> hash_blocking_body(const api::context* ctx) {
    co_await call(ctx, "PUT", "/v1/agent/service/register", python_web1);
    auto r = co_await call(ctx, "GET", "/v1/agent/service/web1");
    EXPECT_EQ(r.status, 200u);
    std::string hash = header(r, "X-Consul-Contenthash");
    EXPECT_FALSE(hash.empty());
    EXPECT_EQ(json_at(r.body, "/ContentHash"), hash);
    EXPECT_EQ(json_at(r.body, "/Service"), "web");
    r = co_await call(ctx, "GET", "/v1/agent/service/nosuch");
    EXPECT_EQ(r.status, 404u);

    // Nothing changes: it waits out ?wait and answers the same hash.
    std::string q = "/v1/agent/service/web1?hash=" + hash + "&wait=30s";
    auto t = co_await timed_get(ctx, q);
    EXPECT_GE(t.took, 30s);
    EXPECT_LE(t.took, 30s + 30s / 16);
    EXPECT_EQ(header(t.r, "X-Consul-Contenthash"), hash);
    // Another service's change does not end it either.
    t = co_await get_with_put(ctx, q, "/v1/agent/service/register", R"({"Name":"other"})");
    EXPECT_GE(t.took, 30s);
    EXPECT_EQ(header(t.r, "X-Consul-Contenthash"), hash);
    // A stale hash answers at once.
    t = co_await timed_get(ctx, "/v1/agent/service/web1?hash=0123&wait=30s");
    EXPECT_EQ(t.took, 0s);
    // A change to the service wakes it.
    t = co_await get_with_put(ctx, q, "/v1/agent/service/register",
                              R"({"name":"web","id":"web1","tags":["a","b"],"address":"10.0.0.5","port":8081,
                                  "meta":{"k":"v"},"enable_tag_override":true,"check":{"ttl":"10s"}})");
    EXPECT_EQ(t.took, 5s);
    EXPECT_NE(header(t.r, "X-Consul-Contenthash"), hash);
    EXPECT_EQ(json_at(t.r.body, "/Port"), "8081");
}

task<void> identity_body(const api::context* ctx) {
    auto r = co_await call(ctx, "GET", "/v1/agent/self");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(json_at(r.body, "/Config/NodeName"), "node1");
    EXPECT_EQ(json_at(r.body, "/Config/Datacenter"), "dc1");
    EXPECT_EQ(json_at(r.body, "/Config/Server"), "true");
    EXPECT_EQ(json_at(r.body, "/Config/NodeID"), "11111111-2222-3333-4444-555555555555");
    EXPECT_EQ(json_at(r.body, "/Member/Name"), "node1");
    EXPECT_EQ(json_at(r.body, "/Member/Addr"), "127.0.0.1");
    EXPECT_NE(json_at(r.body, "/DebugConfig/SessionTTLMin"), "<missing>");
    r = co_await call(ctx, "GET", "/v1/agent/members");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/Name"), "node1");
    EXPECT_EQ(json_at(r.body, "/0/Status"), "1");
    EXPECT_EQ(json_at(r.body, "/0/Tags/role"), "consul");
    EXPECT_EQ(json_at(r.body, "/0/Tags/dc"), "dc1");
    // `consul members` asks for every segment; a named segment that does not exist has no members.
    r = co_await call(ctx, "GET", "/v1/agent/members?segment=_all");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/Name"), "node1");
    r = co_await call(ctx, "GET", "/v1/agent/members?segment=alpha");
    EXPECT_EQ(json_size(r.body), 0);

    co_await call(ctx, "PUT", "/v1/kv/a", "1");
    r = co_await call(ctx, "GET", "/v1/agent/metrics");
    EXPECT_EQ(r.status, 200u);
    EXPECT_GT(json_size(r.body, "/Gauges"), 0);
    EXPECT_NE(r.body.find("\"consul.catalog.nodes\""), std::string::npos);
    EXPECT_NE(r.body.find("\"consul.kv.entries\",\"Value\":1"), std::string::npos) << r.body;
    EXPECT_NE(json_at(r.body, "/Counters"), "<missing>");
    r = co_await call(ctx, "GET", "/v1/agent/metrics?format=prometheus");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(header(r, "Content-Type").rfind("text/plain", 0), 0u);
    EXPECT_NE(r.body.find("# TYPE consul_catalog_nodes gauge\nconsul_catalog_nodes 1\n"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("consul_kv_entries 1\n"), std::string::npos);

    r = co_await call(ctx, "GET", "/v1/status/leader");
    EXPECT_EQ(r.body, "\"127.0.0.1:8300\"");
    r = co_await call(ctx, "GET", "/v1/status/peers");
    EXPECT_EQ(r.body, "[\"127.0.0.1:8300\"]");
    r = co_await call(ctx, "GET", "/v1/agent/version");
    EXPECT_EQ(r.status, 200u);
}

task<timed> fire_at(const api::context* ctx, clock::duration d, std::string name) {
    co_await sleep_for(d);
    timed t;
    t.r = co_await call(ctx, "PUT", "/v1/event/fire/" + name, "late");
    co_return t;
}

task<void> events_body(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/agent/service/register", python_web1);  // ?service=web matches it
    EXPECT_EQ(r.status, 200u) << r.body;
    r = co_await call(ctx, "GET", "/v1/event/list");
    EXPECT_EQ(r.body, "[]");
    EXPECT_EQ(header(r, "X-Consul-Index"), "1");
    r = co_await call(ctx, "PUT", "/v1/event/fire/deploy?service=web", "payload");
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(json_at(r.body, "/Name"), "deploy");
    EXPECT_EQ(json_at(r.body, "/Payload"), "cGF5bG9hZA==");
    EXPECT_EQ(json_at(r.body, "/ServiceFilter"), "web");
    EXPECT_EQ(json_at(r.body, "/Version"), "1");
    EXPECT_EQ(json_at(r.body, "/LTime"), "0");  // as Consul's answer: the LTime is in the list
    EXPECT_EQ(json_at(r.body, "/ID").size(), 36u);
    r = co_await call(ctx, "PUT", "/v1/event/fire/empty");
    EXPECT_EQ(json_at(r.body, "/Payload"), "null");
    r = co_await call(ctx, "PUT", "/v1/event/fire/x?tag=t");  // Consul: a 500 from its validation
    EXPECT_EQ(r.status, 500u);
    EXPECT_EQ(r.body, "Cannot provide tag filter without service filter");
    r = co_await call(ctx, "GET", "/v1/event/fire/x");
    EXPECT_EQ(r.status, 405u);
    r = co_await call(ctx, "GET", "/v1/event/list");
    EXPECT_EQ(json_size(r.body), 2);
    r = co_await call(ctx, "GET", "/v1/event/list?name=deploy");
    EXPECT_EQ(json_size(r.body), 1);
    std::string idx = header(r, "X-Consul-Index");
    EXPECT_NE(idx, "1");

    // Blocking: a new event ends the wait at once...
    std::vector<task<timed>> both;
    both.push_back(timed_get(ctx, "/v1/event/list?index=" + idx + "&name=deploy&wait=1m"));
    both.push_back(fire_at(ctx, 5s, "deploy"));
    auto res = co_await when_all(std::move(both));
    EXPECT_EQ(res[0].took, 5s);
    EXPECT_EQ(json_size(res[0].r.body), 2);
    EXPECT_NE(header(res[0].r, "X-Consul-Index"), idx);
    // ...and without one the query waits out its time.
    idx = header(res[0].r, "X-Consul-Index");
    auto t = co_await timed_get(ctx, "/v1/event/list?index=" + idx + "&name=deploy&wait=20s");
    EXPECT_GE(t.took, 20s);
    EXPECT_EQ(header(t.r, "X-Consul-Index"), idx);

    // Consul's filters apply on the firing agent too: fired (200), kept only where they match.
    r = co_await call(ctx, "PUT", "/v1/event/fire/elsewhere?node=^other$");
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "PUT", "/v1/event/fire/tagged?service=^web1$&tag=^b$");
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "PUT", "/v1/event/fire/untagged?service=web&tag=^c$");
    EXPECT_EQ(r.status, 200u);
    r = co_await call(ctx, "GET", "/v1/event/list?name=elsewhere");
    EXPECT_EQ(json_size(r.body), 0);
    r = co_await call(ctx, "GET", "/v1/event/list?name=tagged");
    EXPECT_EQ(json_size(r.body), 1);
    r = co_await call(ctx, "GET", "/v1/event/list?name=untagged");
    EXPECT_EQ(json_size(r.body), 0);
    r = co_await call(ctx, "PUT", "/v1/event/fire/bad?node=(");
    EXPECT_EQ(r.status, 500u);
    EXPECT_EQ(r.body.rfind("Invalid node filter", 0), 0u) << r.body;
}

// Methods, unknown paths, and what pharos does not do (ACLs are off: Consul's ACL
// endpoints answer 401 after their method check; an agent without a config to
// read again refuses a reload). Allow and body: checked when set.
struct route_case {
    const char *method, *path;
    unsigned status;
    const char* allow = nullptr;
    const char* body_has = nullptr;
};
constexpr route_case route_cases[] = {
    {"GET", "/v1/agent/service/register", 405, "OPTIONS,PUT"},
    {"PUT", "/v1/agent/services", 405, "OPTIONS,GET"},
    {"OPTIONS", "/v1/agent/self", 200, "OPTIONS,GET"},
    {"OPTIONS", "/v1/agent/check/pass/x", 200, "OPTIONS,PUT"},
    {"GET", "/v1/agent/check/pass/x", 405},
    {"DELETE", "/v1/status/leader", 405, "OPTIONS,GET"},
    {"OPTIONS", "/v1/status/peers", 200},
    {"POST", "/v1/agent/metrics", 405},
    {"GET", "/v1/agent/bogus", 404, nullptr, "Invalid URL path: not a recognized HTTP API endpoint"},
    {"GET", "/v1/bogus", 404},
    {"OPTIONS", "/v1/bogus", 404},
    {"GET", "/v1/acl/tokens", 401, nullptr, "ACL support disabled"},
    {"GET", "/v1/acl/token/self", 401},
    {"DELETE", "/v1/acl/policy/123", 401},
    {"PUT", "/v1/agent/token/default", 401},
    {"GET", "/v1/acl/bootstrap", 405, "OPTIONS,PUT"},
    {"GET", "/v1/acl/bogus", 404},
    {"PUT", "/v1/agent/reload", 500, nullptr, "Failed to reload configs: this agent cannot reload"},
};

task<void> methods_body(const api::context* ctx) {
    for (const route_case& c : route_cases) {
        auto r = co_await call(ctx, c.method, c.path);
        EXPECT_EQ(r.status, c.status) << c.method << " " << c.path;
        if (c.allow) {
            EXPECT_EQ(header(r, "Allow"), c.allow) << c.method << " " << c.path;
        }
        if (c.body_has) {
            EXPECT_NE(r.body.find(c.body_has), std::string::npos) << c.path << ": " << r.body;
        }
    }
}

// Bad JSON and wrong types: 400 "Request decode failed: ...", and nothing written.
constexpr const char* bad_service_bodies[] = {
    "{",
    "[]",
    "\"web\"",
    R"({"Name":5})",
    R"({"Name":"x","Port":"80"})",
    R"({"Name":"x","Tags":"a"})",
    R"({"Name":"x","Meta":[1]})",
    R"({"Name":"x","Weights":{"Passing":"1"}})",
    R"({"Name":"x","Check":"ttl"})",
    R"({"Name":"x","Checks":[5]})",
};
constexpr const char* bad_check_bodies[] = {"{", "[1]", "null x"};
// Wrong types inside a check definition: Consul decodes the whole body first,
// so these are "Request decode failed: ..." too (see the DISABLED_ test below).
constexpr const char* bad_service_check_bodies[] = {
    R"({"Name":"x","Check":{"TTL":true}})",
    R"({"Name":"x","Checks":[{"TTL":"10s","Status":1}]})",
};
constexpr const char* bad_check_field_bodies[] = {
    R"({"Name":5,"TTL":"10s"})",
    R"({"Name":"c","TTL":true})",
    R"({"Name":"c","TTL":"ten seconds"})",
    R"({"Name":"c","HTTP":"http://x/","Interval":"10s","Header":{"a":"b"}})",
};

task<void> expect_decode_failures(const api::context* ctx, const char* target, const char* const* bodies, size_t n,
                                  bool check_text) {
    for (size_t i = 0; i < n; ++i) {
        auto r = co_await call(ctx, "PUT", target, bodies[i]);
        EXPECT_EQ(r.status, 400u) << bodies[i];
        if (check_text) {
            EXPECT_EQ(r.body.rfind("Request decode failed: ", 0), 0u) << bodies[i] << " -> " << r.body;
        }
    }
}

task<void> bad_bodies_body(const api::context* ctx) {
    co_await call(ctx, "PUT", "/v1/agent/service/register", python_web1);
    auto services = co_await call(ctx, "GET", "/v1/agent/services");
    auto checks = co_await call(ctx, "GET", "/v1/agent/checks");
    auto catalog = co_await call(ctx, "GET", "/v1/catalog/services");
    const char* svc = "/v1/agent/service/register";
    const char* chk = "/v1/agent/check/register";
    co_await expect_decode_failures(ctx, svc, bad_service_bodies, std::size(bad_service_bodies), true);
    co_await expect_decode_failures(ctx, chk, bad_check_bodies, std::size(bad_check_bodies), true);
    co_await expect_decode_failures(ctx, svc, bad_service_check_bodies, std::size(bad_service_check_bodies), false);
    co_await expect_decode_failures(ctx, chk, bad_check_field_bodies, std::size(bad_check_field_bodies), false);
    auto r = co_await call(ctx, "GET", "/v1/agent/services");
    EXPECT_EQ(r.body, services.body);
    r = co_await call(ctx, "GET", "/v1/agent/checks");
    EXPECT_EQ(r.body, checks.body);
    r = co_await call(ctx, "GET", "/v1/catalog/services");
    EXPECT_EQ(r.body, catalog.body);
    EXPECT_EQ(header(r, "X-Consul-Index"), header(catalog, "X-Consul-Index"));
}

// Pins a bug in services/api/common.cc: decode_service/decode_check prefix Go
// decoder errors inside a check with "Invalid check: " (a validation answer)
// instead of leaving them to be "Request decode failed: ...". Enable once fixed.
task<void> check_field_decode_body(const api::context* ctx) {
    const char* svc = "/v1/agent/service/register";
    const char* chk = "/v1/agent/check/register";
    co_await expect_decode_failures(ctx, svc, bad_service_check_bodies, std::size(bad_service_check_bodies), true);
    co_await expect_decode_failures(ctx, chk, bad_check_field_bodies, std::size(bad_check_field_bodies), true);
}

}  // namespace

PHAROS_CORO_TEST(agent_api, service_register_takes_the_shapes_clients_send) {
    co_await apitest::with_api(&register_service_body);
}
PHAROS_CORO_TEST(agent_api, service_deregister_removes_checks_and_ignores_unknown_ids) {
    co_await apitest::with_api(&deregister_body);
}
PHAROS_CORO_TEST(agent_api, service_and_node_maintenance) { co_await apitest::with_api(&maintenance_body); }
PHAROS_MANUAL_CLOCK_TEST(agent_api, ttl_checks_update_and_expire_to_critical) {
    co_await apitest::with_api(&checks_ttl_body);
}
PHAROS_CORO_TEST(agent_api, aggregated_service_health_maps_to_200_429_503_404) {
    co_await apitest::with_api(&agent_health_body);
}
PHAROS_MANUAL_CLOCK_TEST(agent_api, service_hash_blocking_wakes_on_change_and_times_out) {
    co_await apitest::with_api(&hash_blocking_body);
}
PHAROS_CORO_TEST(agent_api, self_members_metrics_and_status) { co_await apitest::with_api(&identity_body); }
PHAROS_MANUAL_CLOCK_TEST(agent_api, events_fire_list_and_block_for_a_new_one) {
    co_await apitest::with_api(&events_body);
}
PHAROS_CORO_TEST(agent_api, wrong_methods_options_and_unknown_paths) { co_await apitest::with_api(&methods_body); }
PHAROS_CORO_TEST(agent_api, bad_bodies_get_400_and_write_nothing) { co_await apitest::with_api(&bad_bodies_body); }
PHAROS_CORO_TEST(agent_api, type_errors_inside_a_check_are_request_decode_failures) {
    co_await apitest::with_api(&check_field_decode_body);
}
