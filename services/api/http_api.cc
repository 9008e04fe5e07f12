#include "http_api.hh"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace pharos::api {
using namespace engine;

namespace {

// Consul's X-Consul-Index for event lists: the newest event's UUID folded to 64 bits.
uint64_t uuid_index(const std::string& id) {
    std::string hex;
    for (char c : id)
        if (c != '-') hex.push_back(c);
    if (hex.size() != 32) return 1;
    uint64_t hi = std::stoull(hex.substr(0, 16), nullptr, 16), lo = std::stoull(hex.substr(16), nullptr, 16);
    uint64_t v = hi ^ lo;
    return v ? v : 1;
}

void write_event(json::writer& w, const agent::user_event& e) {
    w.begin_object();
    w.key("ID").string(e.id);
    w.key("Name").string(e.name);
    w.key("Payload");
    if (e.payload.empty())
        w.null();
    else
        w.bytes_base64(e.payload);
    w.key("NodeFilter").string(e.node_filter);
    w.key("ServiceFilter").string(e.service_filter);
    w.key("TagFilter").string(e.tag_filter);
    w.key("Version").number(e.version);
    w.key("LTime").number(e.ltime);
    w.end_object();
}

struct event_list {
    uint64_t index = 1;
    std::string body;
};

event_list render_events(const agent::agent& a, const std::string& name) {
    event_list out;
    json::writer w;
    w.begin_array();
    const agent::user_event* last = nullptr;
    for (auto& e : a.events()) {
        if (!name.empty() && e.name != name) continue;
        write_event(w, e);
        last = &e;
    }
    w.end_array();
    out.body = w.take();
    if (last) out.index = uuid_index(last->id);
    return out;
}

task<response> event_fire(const context* ctx, request& r, std::string name) {
    if (name.empty()) co_return consul_error(400, "Missing name");
    agent::user_event e;
    e.name = std::move(name);
    e.payload = std::move(r.body);
    if (auto* v = r.query_param("node")) e.node_filter = *v;
    if (auto* v = r.query_param("service")) e.service_filter = *v;
    if (auto* v = r.query_param("tag")) e.tag_filter = *v;
    auto fn = [e = std::move(e)](agent::agent& a) mutable { return a.fire_event(std::move(e)); };
    agent::agent::fired fired = co_await on_agent(ctx, std::move(fn));
    if (fired.error) co_return consul_error(fired.error->status, fired.error->message);
    // Consul answers with the event as fired: its LTime is Serf's to give, so 0 here.
    fired.event.ltime = 0;
    json::writer w;
    write_event(w, fired.event);
    co_return response::json(w.take());
}

task<response> event_list_endpoint(const context* ctx, request& r) {
    read_options o;
    if (auto bad = parse_read_options(ctx, r, o)) co_return std::move(*bad);
    std::string name = r.query_param("name") ? *r.query_param("name") : "";
    auto render = [name](agent::agent& a) { return render_events(a, name); };
    event_list cur = co_await on_agent(ctx, render);
    // Blocking: the index is opaque (not monotonic); wait while it equals the client's.
    while (o.min_index > 0 && cur.index == o.min_index && clock::now() < o.dl) {
        deadline dl = o.dl;
        auto wait_fn = [dl](agent::agent& a) { return a.wait_event(dl); };
        bool more = co_await on_agent(ctx, wait_fn);
        if (!more) break;  // shutting down
        cur = co_await on_agent(ctx, render);
    }
    response out = response::json(std::move(cur.body));
    index_headers(out, cur.index);
    co_return out;
}

// --- metrics ---

struct agent_counts {
    size_t services = 0, checks = 0, events = 0;
};

double rss_bytes() {
    long pages = 0, rss = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        std::fclose(f);
    }
    return double(rss) * double(sysconf(_SC_PAGESIZE));
}

task<std::vector<metrics_sample>> gather(const context* ctx) {
    std::vector<metrics_sample> m;
    const state::snapshot& s = ctx->state->local().read();
    auto add = [&](const char* name, double v, bool counter, const char* help) {
        metrics_sample x;
        x.name = name;
        x.value = v;
        x.counter = counter;
        x.help = help;
        m.push_back(std::move(x));
    };
    add("consul.kv.entries", double(s.kv.size()), false, "KV entries in the state store");
    add("consul.catalog.nodes", double(s.catalog.node_count()), false, "Nodes in the catalog");
    add("consul.catalog.service_instances", double(s.catalog.service_count()), false, "Service instances in the catalog");
    add("consul.catalog.checks", double(s.catalog.check_count()), false, "Health checks in the catalog");
    add("consul.state.index", double(s.index), false, "Index of the last write that changed the state");
    auto counts_fn = [](agent::agent& a) {
        agent_counts c;
        c.services = a.services().size();
        c.checks = a.checks().size();
        c.events = a.events().size();
        return c;
    };
    agent_counts c = co_await on_agent(ctx, counts_fn);
    add("consul.agent.services", double(c.services), false, "Services registered with this agent");
    add("consul.agent.checks", double(c.checks), false, "Checks registered with this agent");
    add("consul.runtime.rss_bytes", rss_bytes(), false, "Resident memory of the agent process");
    // Probing checks: counters summed over every shard's checker, and the lag
    // between a probe's scheduled and actual start as cumulative buckets
    // (pharos.health.probe_lag_us_le_<bound>; only buckets with probes appear).
    auto health_fn = [](agent::agent& a) { return a.health_stats(); };
    health::checker_stats hs = co_await on_agent(ctx, health_fn);
    add("pharos.health.checks", double(hs.checks), false, "Probing checks running on this agent");
    add("pharos.health.probes", double(hs.probes), true, "Probes started");
    add("pharos.health.changes", double(hs.changes), true, "Probe results that changed a check's status or output");
    add("pharos.health.batches", double(hs.batches), true, "Batches of check changes written to the state");
    uint64_t cum = 0;
    for (int i = 0; i < health::lag_histogram::buckets; ++i) {
        if (!hs.lag.count[i]) continue;
        cum += hs.lag.count[i];
        char name[80];
        std::snprintf(name, sizeof name, "pharos.health.probe_lag_us_le_%.0f", i == 0 ? 1.0 : std::exp2(double(i) / 4.0));
        add(name, double(cum), true, "Probes that started at most this many microseconds after their scheduled time");
    }
    add("consul.runtime.uptime_seconds",
        std::chrono::duration<double>(std::chrono::system_clock::now() - ctx->agent->started()).count(), false,
        "Seconds since the agent started");
    if (ctx->extra_metrics) {
        auto more = co_await ctx->extra_metrics();
        for (auto& x : more) m.push_back(std::move(x));
    }
    co_return m;
}

std::string prometheus_name(const std::string& n) {
    std::string out = n;
    for (char& ch : out)
        if (ch == '.' || ch == '-') ch = '_';
    return out;
}

task<response> metrics(const context* ctx, request& r) {
    auto m = co_await gather(ctx);
    bool prom = (r.query_param("format") && *r.query_param("format") == "prometheus") ||
                r.header("Accept").find("text/plain") != std::string_view::npos;
    if (prom) {
        std::string out;
        char num[64];
        for (auto& x : m) {
            std::string n = prometheus_name(x.name);
            out += "# HELP " + n + " " + x.help + "\n# TYPE " + n + (x.counter ? " counter\n" : " gauge\n");
            std::snprintf(num, sizeof num, "%.17g", x.value);
            out += n + " " + num + "\n";
        }
        response res = response::text(200, std::move(out));
        res.headers.clear();
        res.with_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        co_return res;
    }
    json::writer w;
    w.begin_object();
    std::time_t now = std::time(nullptr);
    char ts[64];
    std::strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S +0000 UTC", std::gmtime(&now));
    w.key("Timestamp").string(ts);
    w.key("Gauges").begin_array();
    for (auto& x : m)
        if (!x.counter) w.begin_object().key("Name").string(x.name).key("Value").number(x.value).key("Labels").begin_object().end_object().end_object();
    w.end_array();
    w.key("Points").begin_array().end_array();
    w.key("Counters").begin_array();
    for (auto& x : m)
        if (x.counter)
            w.begin_object()
                .key("Name").string(x.name)
                .key("Count").number(x.value)
                .key("Rate").number(0.0)
                .key("Sum").number(x.value)
                .key("Min").number(x.value)
                .key("Max").number(x.value)
                .key("Mean").number(x.value)
                .key("Stddev").number(0.0)
                .key("Labels").begin_object().end_object()
                .end_object();
    w.end_array();
    w.key("Samples").begin_array().end_array();
    w.end_object();
    co_return response::json(w.take());
}

}  // namespace

// Consul's ACL endpoints (and /v1/agent/token/*) with ACLs off, which is all pharos
// has: 401 "ACL support disabled" after the method check, as Consul's handlers
// answer (python-consul maps it to ACLDisabled). Paths ending in '/' take a tail.
std::optional<response> acl_disabled(const request& r) {
    struct endpoint {
        std::string_view path, methods;
    };
    static constexpr endpoint acl[] = {
        {"/v1/acl/bootstrap", "PUT"},          {"/v1/acl/replication", "GET"},
        {"/v1/acl/policies", "GET"},           {"/v1/acl/policy", "PUT"},
        {"/v1/acl/policy/name/", "GET"},       {"/v1/acl/policy/", "GET,PUT,DELETE"},
        {"/v1/acl/roles", "GET"},              {"/v1/acl/role", "PUT"},
        {"/v1/acl/role/name/", "GET"},         {"/v1/acl/role/", "GET,PUT,DELETE"},
        {"/v1/acl/tokens", "GET"},             {"/v1/acl/token", "PUT"},
        {"/v1/acl/token/self", "GET"},         {"/v1/acl/token/", "GET,PUT,DELETE"},
        {"/v1/acl/binding-rules", "GET"},      {"/v1/acl/binding-rule", "PUT"},
        {"/v1/acl/binding-rule/", "GET,PUT,DELETE"},
        {"/v1/acl/auth-methods", "GET"},       {"/v1/acl/auth-method", "PUT"},
        {"/v1/acl/auth-method/", "GET,PUT,DELETE"},
        {"/v1/acl/login", "POST"},             {"/v1/acl/logout", "POST"},
        {"/v1/acl/templated-policies", "GET"}, {"/v1/acl/templated-policy/name/", "GET"},
        {"/v1/acl/templated-policy/preview/", "POST"},
        {"/v1/acl/authorize", "POST"},         {"/v1/agent/token/", "PUT"},
    };
    std::string_view p = r.path;
    for (const auto& e : acl) {
        bool prefix = e.path.back() == '/';
        if (prefix ? !p.starts_with(e.path) : p != e.path) continue;
        bool allowed = false;
        for (std::string_view m = e.methods; !m.empty();) {
            auto c = m.find(',');
            if (m.substr(0, c) == r.method) allowed = true;
            m = c == std::string_view::npos ? std::string_view() : m.substr(c + 1);
        }
        if (!allowed) return method_not_allowed(r, e.methods);
        response out = response::text(401, "ACL support disabled");
        return out;
    }
    return std::nullopt;
}

task<std::optional<response>> misc_routes(const context* ctx, request& r) {
    const std::string& p = r.path;
    if (p.starts_with("/v1/acl/") || p.starts_with("/v1/agent/token/")) {
        if (auto out = acl_disabled(r)) co_return std::move(*out);
    }
    if (p == "/v1/status/leader" || p == "/v1/status/peers") {
        if (r.method != "GET") co_return method_not_allowed(r, "GET");
        json::writer w;
        if (p == "/v1/status/leader")
            w.string(ctx->server_addr);
        else
            w.begin_array().string(ctx->server_addr).end_array();
        co_return response::json(w.take());
    }
    if (auto name = path_tail(p, "/v1/event/fire/")) {
        if (r.method != "PUT") co_return method_not_allowed(r, "PUT");
        co_return co_await event_fire(ctx, r, *name);
    }
    if (p == "/v1/event/list") {
        if (r.method != "GET") co_return method_not_allowed(r, "GET");
        co_return co_await event_list_endpoint(ctx, r);
    }
    if (p == "/v1/agent/metrics") {
        if (r.method != "GET") co_return method_not_allowed(r, "GET");
        co_return co_await metrics(ctx, r);
    }
    co_return std::nullopt;
}

task<response> handle(const context* ctx, http::request& r) {
    bool options = r.method == "OPTIONS";
    if (options) r.method = "\x01";  // every route answers an unknown method with 405 + Allow
    std::optional<response> out = co_await kv_routes(ctx, r);
    if (!out) out = co_await health_routes(ctx, r);
    if (!out) out = co_await catalog_routes(ctx, r);
    if (!out) out = co_await agent_routes(ctx, r);
    if (!out) out = co_await session_routes(ctx, r);
    if (!out) out = co_await txn_routes(ctx, r);
    if (!out) out = co_await operator_routes(ctx, r);
    if (!out) out = co_await misc_routes(ctx, r);
    if (!out) {
        if (r.path == "/")
            co_return response::text(200,
                                     "Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent "
                                     "configuration and restart.");
        co_return consul_error(404, "Invalid URL path: not a recognized HTTP API endpoint");
    }
    if (options && out->status == 405) {
        out->status = 200;
        out->body.clear();
    } else if (options) {
        r.method = "OPTIONS";
    }
    // A deferred answer (a blocking query) is shaped when it is ready: its read_options carry the shape.
    if (!out->later) shape_response(response_shape::of(r), *out);
    co_return std::move(*out);
}

}  // namespace pharos::api
