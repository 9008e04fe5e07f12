// /v1/catalog and /v1/health through api::handle on 2 shards (no sockets):
// each endpoint's answers as Consul gives them, blocking queries woken by a
// relevant write and not by an unrelated one (manual clock), X-Consul-Index
// never 0 nor backwards, and bad bodies refused with nothing written.
#include <cctype>

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

std::string enc(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(char(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

uint64_t index_of(const http::response& r) {
    std::string h = header(r, "X-Consul-Index");
    return h.empty() ? 0 : std::stoull(h);
}

const char* n2_web1 = R"({"Node":"n2","Address":"10.0.0.2","NodeMeta":{"env":"prod","rack":"r1"},
  "Service":{"ID":"web1","Service":"web","Tags":["a","b"],"Port":80,"Meta":{"version":"1"}},
  "Checks":[{"CheckID":"serfHealth","Name":"Serf Health Status","Status":"passing"},
            {"CheckID":"web1-http","Name":"web1 http","Status":"passing","ServiceID":"web1"}]})";
const char* n3_web2 = R"({"Node":"n3","Address":"10.0.0.3","NodeMeta":{"env":"dev"},
  "Service":{"ID":"web2","Service":"web","Tags":["a"],"Port":81},
  "Checks":[{"CheckID":"serfHealth","Name":"Serf Health Status","Status":"passing"},
            {"CheckID":"web2-http","Name":"web2 http","Status":"warning","ServiceID":"web2"}]})";
const char* n3_db1 = R"({"Node":"n3","Address":"10.0.0.3","NodeMeta":{"env":"dev"},
  "Service":{"ID":"db1","Service":"db","Port":5432},
  "Check":{"CheckID":"db1-tcp","Name":"db tcp","Status":"passing","ServiceID":"db1"}})";

task<void> populate(const api::context* ctx) {
    auto r = co_await call(ctx, "PUT", "/v1/catalog/register", n2_web1);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.body, "true");
    r = co_await call(ctx, "PUT", "/v1/catalog/register", n3_web2);
    EXPECT_EQ(r.body, "true");
    r = co_await call(ctx, "PUT", "/v1/catalog/register", n3_db1);
    EXPECT_EQ(r.body, "true");
}

task<void> catalog_reads_body(const api::context* ctx) {
    co_await populate(ctx);
    auto r = co_await call(ctx, "GET", "/v1/catalog/datacenters");
    EXPECT_EQ(r.body, R"(["dc1"])");

    r = co_await call(ctx, "GET", "/v1/catalog/nodes");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(json_size(r.body), 3);
    EXPECT_EQ(json_at(r.body, "/0/Node"), "n2");  // sorted by name: n2, n3, node1
    EXPECT_EQ(json_at(r.body, "/0/Meta/env"), "prod");
    EXPECT_EQ(json_at(r.body, "/0/Datacenter"), "dc1");
    EXPECT_EQ(json_at(r.body, "/2/Node"), "node1");
    r = co_await call(ctx, "GET", "/v1/catalog/nodes?node-meta=env:prod");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/Node"), "n2");
    r = co_await call(ctx, "GET", "/v1/catalog/nodes?node-meta=env:prod&node-meta=rack:r2");
    EXPECT_EQ(r.body, "[]");
    r = co_await call(ctx, "GET", "/v1/catalog/nodes?filter=" + enc("Meta.env == dev"));
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/Node"), "n3");

    r = co_await call(ctx, "GET", "/v1/catalog/services");
    EXPECT_EQ(r.body, R"({"consul":[],"db":[],"web":["a","b"]})");
    r = co_await call(ctx, "GET", "/v1/catalog/services?node-meta=env:dev");
    EXPECT_EQ(r.body, R"({"db":[],"web":["a"]})");

    r = co_await call(ctx, "GET", "/v1/catalog/service/web");
    EXPECT_EQ(json_size(r.body), 2);
    EXPECT_EQ(json_at(r.body, "/0/ServiceID"), "web1");
    EXPECT_EQ(json_at(r.body, "/0/Node"), "n2");
    EXPECT_EQ(json_at(r.body, "/0/Address"), "10.0.0.2");
    EXPECT_EQ(json_at(r.body, "/0/ServicePort"), "80");
    EXPECT_EQ(json_at(r.body, "/0/NodeMeta/env"), "prod");
    EXPECT_EQ(json_at(r.body, "/0/ServiceMeta/version"), "1");
    EXPECT_EQ(json_at(r.body, "/1/ServiceID"), "web2");
    EXPECT_NE(header(r, "X-Consul-Index"), "");
    // tag is repeatable and every tag must match.
    r = co_await call(ctx, "GET", "/v1/catalog/service/web?tag=a");
    EXPECT_EQ(json_size(r.body), 2);
    r = co_await call(ctx, "GET", "/v1/catalog/service/web?tag=a&tag=b");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/ServiceID"), "web1");
    r = co_await call(ctx, "GET", "/v1/catalog/service/web?tag=b&tag=c");
    EXPECT_EQ(r.body, "[]");
    r = co_await call(ctx, "GET", "/v1/catalog/service/web?node-meta=env:dev");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/ServiceID"), "web2");
    // filter: ==, in, contains.
    r = co_await call(ctx, "GET", "/v1/catalog/service/web?filter=" + enc("ServicePort == 81"));
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/ServiceID"), "web2");
    r = co_await call(ctx, "GET", "/v1/catalog/service/web?filter=" + enc("b in ServiceTags"));
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/ServiceID"), "web1");
    r = co_await call(ctx, "GET", "/v1/catalog/service/web?filter=" + enc("ServiceTags contains \"a\""));
    EXPECT_EQ(json_size(r.body), 2);
    r = co_await call(ctx, "GET", "/v1/catalog/service/web?filter=" + enc("NodeMeta.env == prod and b in ServiceTags"));
    EXPECT_EQ(json_size(r.body), 1);
    r = co_await call(ctx, "GET", "/v1/catalog/service/web?filter=" + enc("ServicePort =="));
    EXPECT_EQ(r.status, 400u);
    r = co_await call(ctx, "GET", "/v1/catalog/service/nosuch");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "[]");
    EXPECT_NE(header(r, "X-Consul-Index"), "0");

    // node/:node: the node and its services keyed by ID; unknown → null.
    r = co_await call(ctx, "GET", "/v1/catalog/node/n3");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(json_at(r.body, "/Node/Node"), "n3");
    EXPECT_EQ(json_size(r.body, "/Services"), 2);
    EXPECT_EQ(json_at(r.body, "/Services/db1/Service"), "db");
    EXPECT_EQ(json_at(r.body, "/Services/web2/Port"), "81");
    r = co_await call(ctx, "GET", "/v1/catalog/node/n3?filter=" + enc("Service == db"));
    EXPECT_EQ(json_size(r.body, "/Services"), 1);
    r = co_await call(ctx, "GET", "/v1/catalog/node/nosuch");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(r.body, "null");
    EXPECT_NE(header(r, "X-Consul-Index"), "");
    // node-services/:node: the services as a list.
    r = co_await call(ctx, "GET", "/v1/catalog/node-services/n3");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(json_size(r.body, "/Services"), 2);
    EXPECT_EQ(json_at(r.body, "/Services/0/ID"), "db1");
    EXPECT_EQ(json_at(r.body, "/Node/Address"), "10.0.0.3");
}

task<void> catalog_writes_body(const api::context* ctx) {
    co_await populate(ctx);
    // Deregister one check.
    auto r = co_await call(ctx, "PUT", "/v1/catalog/deregister", R"({"Node":"n2","CheckID":"web1-http"})");
    EXPECT_EQ(r.body, "true");
    r = co_await call(ctx, "GET", "/v1/health/checks/web");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/CheckID"), "web2-http");
    // Deregister one service: its checks go with it.
    r = co_await call(ctx, "PUT", "/v1/catalog/deregister", R"({"Node":"n3","ServiceID":"web2"})");
    EXPECT_EQ(r.body, "true");
    r = co_await call(ctx, "GET", "/v1/catalog/service/web");
    EXPECT_EQ(json_size(r.body), 1);
    r = co_await call(ctx, "GET", "/v1/health/node/n3");
    EXPECT_EQ(json_size(r.body), 2);  // serfHealth and db1-tcp
    // Deregister the node: everything of it goes.
    r = co_await call(ctx, "PUT", "/v1/catalog/deregister", R"({"Node":"n3"})");
    EXPECT_EQ(r.body, "true");
    r = co_await call(ctx, "GET", "/v1/catalog/services");
    EXPECT_EQ(r.body, R"({"consul":[],"web":["a","b"]})");
    r = co_await call(ctx, "GET", "/v1/health/node/n3");
    EXPECT_EQ(r.body, "[]");
    r = co_await call(ctx, "GET", "/v1/catalog/nodes");
    EXPECT_EQ(json_size(r.body), 2);
    // Unknown things deregister fine.
    r = co_await call(ctx, "PUT", "/v1/catalog/deregister", R"({"Node":"nosuch"})");
    EXPECT_EQ(r.body, "true");
    // Missing node.
    r = co_await call(ctx, "PUT", "/v1/catalog/deregister", R"({"ServiceID":"x"})");
    EXPECT_GE(r.status, 400u);
    // Another datacenter.
    r = co_await call(ctx, "PUT", "/v1/catalog/register", R"({"Node":"x","Address":"1.1.1.1","Datacenter":"dc9"})");
    EXPECT_EQ(r.status, 500u);
    r = co_await call(ctx, "GET", "/v1/catalog/node/x");
    EXPECT_EQ(r.body, "null");
    // Service tags set through the catalog show up on the checks.
    r = co_await call(ctx, "PUT", "/v1/catalog/register",
                      R"({"Node":"n2","Address":"10.0.0.2","NodeMeta":{"env":"prod","rack":"r1"},
                          "Service":{"ID":"web1","Service":"web","Tags":["v2"],"Port":80},
                          "Check":{"CheckID":"web1-http","Name":"h","Status":"passing","ServiceID":"web1"}})");
    EXPECT_EQ(r.body, "true");
    r = co_await call(ctx, "GET", "/v1/health/checks/web");
    EXPECT_EQ(json_at(r.body, "/0/ServiceTags"), R"(["v2"])");
    EXPECT_EQ(json_at(r.body, "/0/ServiceName"), "web");
}

task<void> health_reads_body(const api::context* ctx) {
    co_await populate(ctx);
    auto r = co_await call(ctx, "GET", "/v1/health/service/web");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(json_size(r.body), 2);
    EXPECT_EQ(json_at(r.body, "/0/Node/Node"), "n2");
    EXPECT_EQ(json_at(r.body, "/0/Service/ID"), "web1");
    EXPECT_EQ(json_size(r.body, "/0/Checks"), 2);  // serfHealth (node) and web1-http
    EXPECT_EQ(json_at(r.body, "/0/Checks/0/CheckID"), "serfHealth");
    EXPECT_EQ(json_at(r.body, "/0/Checks/1/CheckID"), "web1-http");
    EXPECT_EQ(json_at(r.body, "/1/Checks/1/Status"), "warning");
    // ?passing drops an instance with any non-passing check, warning included.
    r = co_await call(ctx, "GET", "/v1/health/service/web?passing");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/Service/ID"), "web1");
    r = co_await call(ctx, "GET", "/v1/health/service/web?passing=false");  // presence-only flag
    EXPECT_EQ(json_size(r.body), 1);
    r = co_await call(ctx, "GET", "/v1/health/service/web?tag=b");
    EXPECT_EQ(json_size(r.body), 1);
    r = co_await call(ctx, "GET", "/v1/health/service/web?node-meta=env:dev");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/Service/ID"), "web2");
    r = co_await call(ctx, "GET", "/v1/health/service/web?filter=" + enc("Service.Port == 80"));
    EXPECT_EQ(json_size(r.body), 1);
    r = co_await call(ctx, "GET", "/v1/health/service/web?filter=" + enc("Checks.Status == warning"));
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/Service/ID"), "web2");
    r = co_await call(ctx, "GET", "/v1/health/service/nosuch");
    EXPECT_EQ(r.body, "[]");
    // A node-level check failing fails the instance for ?passing.
    r = co_await call(ctx, "PUT", "/v1/catalog/register",
                      R"({"Node":"n2","Address":"10.0.0.2","NodeMeta":{"env":"prod","rack":"r1"},
                          "Check":{"CheckID":"serfHealth","Name":"Serf Health Status","Status":"critical"}})");
    r = co_await call(ctx, "GET", "/v1/health/service/web?passing");
    EXPECT_EQ(r.body, "[]");

    // checks/:service: that service's checks only.
    r = co_await call(ctx, "GET", "/v1/health/checks/web");
    EXPECT_EQ(json_size(r.body), 2);
    EXPECT_EQ(json_at(r.body, "/0/CheckID"), "web1-http");
    EXPECT_EQ(json_at(r.body, "/0/ServiceName"), "web");
    EXPECT_EQ(json_at(r.body, "/0/ServiceTags"), R"(["a","b"])");
    r = co_await call(ctx, "GET", "/v1/health/checks/web?filter=" + enc("Status == warning"));
    EXPECT_EQ(json_size(r.body), 1);
    // node/:node: node and service checks of that node.
    r = co_await call(ctx, "GET", "/v1/health/node/n3");
    EXPECT_EQ(json_size(r.body), 3);
    r = co_await call(ctx, "GET", "/v1/health/node/nosuch");
    EXPECT_EQ(r.body, "[]");
    // state/:state.
    r = co_await call(ctx, "GET", "/v1/health/state/warning");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/CheckID"), "web2-http");
    r = co_await call(ctx, "GET", "/v1/health/state/critical");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/Node"), "n2");
    r = co_await call(ctx, "GET", "/v1/health/state/any");
    EXPECT_EQ(json_size(r.body), 6);  // node1 serfHealth, n2 x2, n3 x3
    r = co_await call(ctx, "GET", "/v1/health/state/passing");
    EXPECT_EQ(json_size(r.body), 4);
    r = co_await call(ctx, "GET", "/v1/health/state/bogus");
    EXPECT_EQ(r.status, 400u);
    // The agent's own node carries serfHealth.
    r = co_await call(ctx, "GET", "/v1/health/service/consul");
    EXPECT_EQ(json_size(r.body), 1);
    EXPECT_EQ(json_at(r.body, "/0/Checks/0/CheckID"), "serfHealth");
}

// --- blocking queries on the manual clock ---

const char* n9_other = R"({"Node":"n9","Address":"10.0.0.9","Service":{"ID":"other1","Service":"other"},
  "Check":{"CheckID":"other-check","Name":"o","Status":"passing","ServiceID":"other1"}})";
const char* n9_other_critical = R"({"Node":"n9","Address":"10.0.0.9","Service":{"ID":"other1","Service":"other"},
  "Check":{"CheckID":"other-check","Name":"o","Status":"critical","ServiceID":"other1"}})";
const char* n3_web2_critical = R"({"Node":"n3","Address":"10.0.0.3","NodeMeta":{"env":"dev"},
  "Service":{"ID":"web2","Service":"web","Tags":["a"],"Port":81},
  "Check":{"CheckID":"web2-http","Name":"web2 http","Status":"critical","ServiceID":"web2"}})";
const char* n3_serf_critical = R"({"Node":"n3","Address":"10.0.0.3","NodeMeta":{"env":"dev"},
  "Check":{"CheckID":"serfHealth","Name":"Serf Health Status","Status":"critical"}})";

task<void> blocking_health_body(const api::context* ctx) {
    co_await populate(ctx);
    co_await call(ctx, "PUT", "/v1/catalog/register", n9_other);
    auto r = co_await call(ctx, "GET", "/v1/health/service/web");
    uint64_t idx = index_of(r);
    std::string q = "/v1/health/service/web?index=" + std::to_string(idx) + "&wait=1m";

    // Unrelated writes (a KV key, another service's check) leave the query waiting its full minute.
    auto t = co_await get_with_put(ctx, q, "/v1/kv/web", "x");
    EXPECT_GE(t.took, 1min);
    EXPECT_LE(t.took, 63750ms);  // wait/16 of jitter at most
    EXPECT_EQ(index_of(t.r), idx);
    t = co_await get_with_put(ctx, q, "/v1/catalog/register", n9_other_critical);
    EXPECT_GE(t.took, 1min);
    EXPECT_EQ(index_of(t.r), idx);
    t = co_await get_with_put(ctx, q, "/v1/catalog/register", n9_other);
    EXPECT_GE(t.took, 1min);
    // An identical re-registration of web changes nothing: it keeps waiting too.
    t = co_await get_with_put(ctx, q, "/v1/catalog/register", n2_web1);
    EXPECT_GE(t.took, 1min);
    EXPECT_EQ(index_of(t.r), idx);

    // A web check changing wakes it at once.
    t = co_await get_with_put(ctx, q, "/v1/catalog/register", n3_web2_critical);
    EXPECT_EQ(t.took, 5s);
    EXPECT_GT(index_of(t.r), idx);
    EXPECT_NE(t.r.body.find("\"critical\""), std::string::npos);
    idx = index_of(t.r);
    // So does a node-level check on a node running web.
    q = "/v1/health/service/web?index=" + std::to_string(idx) + "&wait=1m";
    t = co_await get_with_put(ctx, q, "/v1/catalog/register", n3_serf_critical);
    EXPECT_EQ(t.took, 5s);
    EXPECT_GT(index_of(t.r), idx);
    idx = index_of(t.r);
    // And a deregistration of an instance.
    q = "/v1/health/service/web?index=" + std::to_string(idx) + "&wait=1m";
    t = co_await get_with_put(ctx, q, "/v1/catalog/deregister", R"({"Node":"n3","ServiceID":"web2"})");
    EXPECT_EQ(t.took, 5s);
    EXPECT_GT(index_of(t.r), idx);
    EXPECT_EQ(json_size(t.r.body), 1);
}

task<void> blocking_services_body(const api::context* ctx) {
    co_await populate(ctx);
    auto r = co_await call(ctx, "GET", "/v1/catalog/services");
    uint64_t idx = index_of(r);
    std::string q = "/v1/catalog/services?index=" + std::to_string(idx) + "&wait=1m";
    // A KV write and a check status change do not change the service list.
    auto t = co_await get_with_put(ctx, q, "/v1/kv/services", "x");
    EXPECT_GE(t.took, 1min);
    EXPECT_EQ(index_of(t.r), idx);
    t = co_await get_with_put(ctx, q, "/v1/catalog/register", n3_web2_critical);
    EXPECT_GE(t.took, 1min);
    EXPECT_EQ(index_of(t.r), idx);
    // A new service does, at once.
    t = co_await get_with_put(ctx, q, "/v1/catalog/register", n9_other);
    EXPECT_EQ(t.took, 5s);
    EXPECT_GT(index_of(t.r), idx);
    EXPECT_NE(t.r.body.find("\"other\""), std::string::npos);
    idx = index_of(t.r);
    // So does removing one.
    q = "/v1/catalog/services?index=" + std::to_string(idx) + "&wait=1m";
    t = co_await get_with_put(ctx, q, "/v1/catalog/deregister", R"({"Node":"n9"})");
    EXPECT_EQ(t.took, 5s);
    EXPECT_GT(index_of(t.r), idx);
    EXPECT_EQ(t.r.body.find("\"other\""), std::string::npos);
    idx = index_of(t.r);
    // A node's metadata change moves the answer of a node-meta query.
    q = "/v1/catalog/services?node-meta=env:test&index=" + std::to_string(idx) + "&wait=1m";
    t = co_await get_with_put(ctx, q, "/v1/catalog/register",
                                  R"({"Node":"n3","Address":"10.0.0.3","NodeMeta":{"env":"test"}})");
    EXPECT_EQ(t.took, 5s);
    EXPECT_GT(index_of(t.r), idx);
    EXPECT_EQ(t.r.body, R"({"db":[],"web":["a"]})");
}

task<void> blocking_node_body(const api::context* ctx) {
    co_await populate(ctx);
    auto r = co_await call(ctx, "GET", "/v1/catalog/node/n3");
    uint64_t idx = index_of(r);
    std::string q = "/v1/catalog/node/n3?index=" + std::to_string(idx) + "&wait=1m";
    auto t = co_await get_with_put(ctx, q, "/v1/catalog/register", n2_web1);  // n2, identical
    EXPECT_GE(t.took, 1min);
    t = co_await get_with_put(ctx, q, "/v1/catalog/register", n9_other);  // another node
    EXPECT_GE(t.took, 1min);
    t = co_await get_with_put(ctx, q, "/v1/catalog/deregister", R"({"Node":"n3","ServiceID":"db1"})");
    EXPECT_EQ(t.took, 5s);
    EXPECT_EQ(json_size(t.r.body, "/Services"), 1);
    // A query whose index is from the future waits out its time.
    q = "/v1/catalog/nodes?index=999999&wait=30s";
    auto start = clock::now();
    r = co_await call(ctx, "GET", q);
    EXPECT_GE(clock::now() - start, 30s);
}

constexpr const char* index_reads[] = {
    "/v1/catalog/nodes",        "/v1/catalog/services",         "/v1/catalog/service/web",
    "/v1/catalog/node/n2",      "/v1/catalog/node-services/n2", "/v1/health/service/web",
    "/v1/health/checks/web",    "/v1/health/node/n2",           "/v1/health/state/any",
    "/v1/health/state/passing", "/v1/catalog/service/nosuch"};

constexpr const char* bad_register_bodies[] = {
    "",
    "{",
    "[1,2]",
    R"({"Node":5,"Address":"1.1.1.1"})",
    R"({"Node":"n2","Address":"10.0.0.2","NodeMeta":"x"})",
    R"({"Node":"n2","Address":"10.0.0.2","Service":"web"})",
    R"({"Node":"n2","Address":"10.0.0.2","Service":{"Service":"web","Port":"80"}})",
    R"({"Node":"n2","Address":"10.0.0.2","Service":{"Service":"web","Tags":"a"}})",
    R"({"Node":"n2","Address":"10.0.0.2","Service":{"ID":"web1","Service":"web"},"Checks":[{"CheckID":"c","Status":5}]})",
    R"({"Node":"n2","Address":"10.0.0.2","Checks":[{"CheckID":"ok","Status":"passing"}, 7]})",
    R"({"Node":"n2","Address":"10.0.0.2","SkipNodeUpdate":"yes"})",
};

constexpr const char* bad_deregister_bodies[] = {"{", R"({"Node":["n2"]})", R"({"Node":"n2","ServiceID":1})"};

// X-Consul-Index: never 0 and never backwards, even after deletes.
task<void> index_monotonic_body(const api::context* ctx) {
    std::vector<uint64_t> last(std::size(index_reads), 0);
    std::vector<std::string> steps;
    steps.push_back(std::string("R") + n2_web1);
    steps.push_back(std::string("R") + n3_web2);
    steps.push_back(std::string("D") + R"({"Node":"n2","CheckID":"web1-http"})");
    steps.push_back(std::string("D") + R"({"Node":"n2","ServiceID":"web1"})");
    steps.push_back(std::string("D") + R"({"Node":"n2"})");
    steps.push_back(std::string("D") + R"({"Node":"n3"})");
    steps.push_back(std::string("R") + n2_web1);
    steps.push_back(std::string("D") + R"({"Node":"n2"})");
    for (size_t i = 0; i <= steps.size(); ++i) {
        for (size_t j = 0; j < std::size(index_reads); ++j) {
            auto r = co_await call(ctx, "GET", index_reads[j]);
            uint64_t idx = index_of(r);
            EXPECT_GE(idx, 1u) << index_reads[j] << " at step " << i;
            EXPECT_GE(idx, last[j]) << index_reads[j] << " went backwards at step " << i;
            last[j] = idx;
        }
        if (i == steps.size()) break;
        std::string target = steps[i][0] == 'R' ? "/v1/catalog/register" : "/v1/catalog/deregister";
        auto w = co_await call(ctx, "PUT", target, steps[i].substr(1));
        EXPECT_EQ(w.body, "true");
    }
}

// Bad bodies and wrong types: 400 "Request decode failed: ...", nothing written.
task<void> bad_bodies_body(const api::context* ctx) {
    co_await populate(ctx);
    auto before_nodes = co_await call(ctx, "GET", "/v1/catalog/nodes");
    auto before_state = co_await call(ctx, "GET", "/v1/health/state/any");
    for (const char* b : bad_register_bodies) {
        auto r = co_await call(ctx, "PUT", "/v1/catalog/register", b);
        EXPECT_EQ(r.status, 400u) << b;
        EXPECT_EQ(r.body.rfind("Request decode failed: ", 0), 0u) << b << " -> " << r.body;
    }
    for (const char* b : bad_deregister_bodies) {
        auto r = co_await call(ctx, "PUT", "/v1/catalog/deregister", b);
        EXPECT_EQ(r.status, 400u) << b;
        EXPECT_EQ(r.body.rfind("Request decode failed: ", 0), 0u) << b << " -> " << r.body;
    }
    // Well-formed but refused by the state machine: also nothing written.
    auto r = co_await call(ctx, "PUT", "/v1/catalog/register", R"({"Node":"n2"})");
    EXPECT_GE(r.status, 400u);
    r = co_await call(ctx, "PUT", "/v1/catalog/register",
                      R"({"Node":"n2","Address":"10.9.9.9","Check":{"CheckID":"c","ServiceID":"nosuch"}})");
    EXPECT_GE(r.status, 400u);
    auto after_nodes = co_await call(ctx, "GET", "/v1/catalog/nodes");
    auto after_state = co_await call(ctx, "GET", "/v1/health/state/any");
    EXPECT_EQ(after_nodes.body, before_nodes.body);
    EXPECT_EQ(header(after_nodes, "X-Consul-Index"), header(before_nodes, "X-Consul-Index"));
    EXPECT_EQ(after_state.body, before_state.body);
    EXPECT_EQ(header(after_state, "X-Consul-Index"), header(before_state, "X-Consul-Index"));
}

task<void> methods_body(const api::context* ctx) {
    auto r = co_await call(ctx, "GET", "/v1/catalog/register");
    EXPECT_EQ(r.status, 405u);
    EXPECT_EQ(header(r, "Allow"), "OPTIONS,PUT");
    EXPECT_EQ(r.body, "method GET not allowed");
    r = co_await call(ctx, "PUT", "/v1/catalog/services");
    EXPECT_EQ(r.status, 405u);
    EXPECT_EQ(header(r, "Allow"), "OPTIONS,GET");
    r = co_await call(ctx, "DELETE", "/v1/health/service/web");
    EXPECT_EQ(r.status, 405u);
    EXPECT_EQ(header(r, "Allow"), "OPTIONS,GET");
    r = co_await call(ctx, "OPTIONS", "/v1/catalog/service/web");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(header(r, "Allow"), "OPTIONS,GET");
    EXPECT_EQ(r.body, "");
    r = co_await call(ctx, "OPTIONS", "/v1/catalog/register");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(header(r, "Allow"), "OPTIONS,PUT");
    r = co_await call(ctx, "GET", "/v1/catalog/bogus");
    EXPECT_EQ(r.status, 404u);
    r = co_await call(ctx, "GET", "/v1/health/bogus/web");
    EXPECT_EQ(r.status, 404u);
    r = co_await call(ctx, "GET", "/v1/catalog/service/");
    EXPECT_EQ(r.status, 400u);
    r = co_await call(ctx, "GET", "/v1/catalog/services?stale&consistent");
    EXPECT_EQ(r.status, 400u);
    r = co_await call(ctx, "GET", "/v1/catalog/services?index=x");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.body, "Invalid index");
    // Reads carry Consul's index headers.
    r = co_await call(ctx, "GET", "/v1/catalog/nodes");
    EXPECT_EQ(header(r, "X-Consul-Knownleader"), "true");
    EXPECT_NE(header(r, "X-Consul-Index"), "");
}

}  // namespace

PHAROS_CORO_TEST(catalog_api, reads_list_filter_and_key_as_consul_does) {
    co_await apitest::with_api(&catalog_reads_body);
}
PHAROS_CORO_TEST(catalog_api, deregistration_cascades_and_tags_reach_checks) {
    co_await apitest::with_api(&catalog_writes_body);
}
PHAROS_CORO_TEST(health_api, service_checks_node_and_state_answers) { co_await apitest::with_api(&health_reads_body); }
PHAROS_MANUAL_CLOCK_TEST(health_api, a_blocking_service_query_wakes_only_for_its_service) {
    co_await apitest::with_api(&blocking_health_body);
}
PHAROS_MANUAL_CLOCK_TEST(catalog_api, a_blocking_services_query_wakes_only_when_the_list_can_change) {
    co_await apitest::with_api(&blocking_services_body);
}
PHAROS_MANUAL_CLOCK_TEST(catalog_api, a_blocking_node_query_wakes_only_for_its_node) {
    co_await apitest::with_api(&blocking_node_body);
}
PHAROS_CORO_TEST(catalog_api, x_consul_index_is_never_0_nor_goes_backwards_after_deletes) {
    co_await apitest::with_api(&index_monotonic_body);
}
PHAROS_CORO_TEST(catalog_api, bad_bodies_get_400_and_write_nothing) { co_await apitest::with_api(&bad_bodies_body); }
PHAROS_CORO_TEST(catalog_api, wrong_methods_options_and_unknown_paths) { co_await apitest::with_api(&methods_body); }
