// /v1/agent: the agent's local state (on the agent's shard), its identity,
// members and metrics.
#include <unistd.h>

#include <fstream>

#include "common.hh"
#include "protocols/json/duration.hh"
#include "services/agent/gossip.hh"
#include "services/catalog/json.hh"

namespace pharos::api {
using namespace engine;

namespace {

constexpr const char* pharos_version = "1.17.0";  // the Consul API level pharos answers as

response from_outcome(const agent::outcome& o) {
    if (!o) return empty_ok();
    return consul_error(o->status, o->message);
}

// A Serf member as Consul's /v1/agent/members shows it.
void write_serf_member(json::writer& w, const agent::serf_member& m) {
    w.begin_object();
    w.key("Name").string(m.name);
    w.key("Addr").string(m.addr);
    w.key("Port").number(m.port);
    w.key("Tags").begin_object();
    for (auto& [k, v] : m.tags) w.key(k).string(v);
    w.end_object();
    w.key("Status").number(int(m.status));
    w.key("ProtocolMin").number(m.vsn[0]);
    w.key("ProtocolMax").number(m.vsn[1]);
    w.key("ProtocolCur").number(m.vsn[2]);
    w.key("DelegateMin").number(m.vsn[3]);
    w.key("DelegateMax").number(m.vsn[4]);
    w.key("DelegateCur").number(m.vsn[5]);
    w.end_object();
}

// The local member: from the gossip pool when there is one, else from the config (gossip disabled).
void write_member(json::writer& w, const agent::agent& a) {
    const agent::config& c = a.cfg();
    if (a.gossip()) {
        if (auto* m = a.gossip()->table().find(c.node_name)) return write_serf_member(w, *m);
    }
    agent::serf_member m;
    m.name = c.node_name;
    m.addr = agent::advertise_address(c);
    m.port = uint16_t(std::max(0, c.ports.serf_lan));
    m.tags = agent::consul_tags(c);
    m.status = a.left() ? agent::member_status::left : agent::member_status::alive;
    write_serf_member(w, m);
}

std::string render_self(const agent::agent& a) {
    const agent::config& c = a.cfg();
    json::writer w;
    w.begin_object();
    w.key("Config").begin_object();
    w.key("Datacenter").string(c.datacenter);
    w.key("PrimaryDatacenter").string(c.primary_datacenter.empty() ? c.datacenter : c.primary_datacenter);
    w.key("NodeName").string(c.node_name);
    w.key("NodeID").string(c.node_id);
    w.key("Revision").string("pharos");
    w.key("Server").boolean(c.server);
    w.key("Version").string(pharos_version);
    w.key("BuildDate").string("2026-11-25T00:00:00Z");
    w.end_object();
    w.key("DebugConfig").begin_object();
    w.key("Bootstrap").boolean(c.bootstrap);
    w.key("BindAddr").string(c.bind_addr);
    w.key("ClientAddrs").begin_array().string(c.client_addr).end_array();
    w.key("DataDir").string(c.data_dir);
    w.key("Datacenter").string(c.datacenter);
    w.key("DevMode").boolean(c.dev);
    w.key("EnableScriptChecks").boolean(c.enable_script_checks);
    w.key("EnableLocalScriptChecks").boolean(c.enable_local_script_checks);
    w.key("HTTPPort").number(c.ports.http);
    w.key("DNSPort").number(c.ports.dns);
    w.key("NodeName").string(c.node_name);
    w.key("ServerMode").boolean(c.server);
    w.key("ServerPort").number(c.ports.server);
    w.key("SerfPortLAN").number(c.ports.serf_lan);
    w.key("SessionTTLMin").string(json::format_go_duration(c.session_ttl_min));
    w.key("KVMaxValueSize").number(uint64_t(c.limits.kv_max_value_size));
    w.key("HTTPMaxConnsPerClient").number(c.limits.http_max_conns_per_client);
    w.end_object();
    w.key("Coord").begin_object();
    w.key("Vec").begin_array();
    for (int i = 0; i < 8; ++i) w.number(0);
    w.end_array();
    w.key("Error").number(1.5);
    w.key("Adjustment").number(0);
    w.key("Height").number(1e-05);
    w.end_object();
    w.key("Member");
    write_member(w, a);
    w.key("Stats").begin_object();
    w.key("agent").begin_object();
    w.key("checks").string(std::to_string(a.checks().size()));
    w.key("services").string(std::to_string(a.services().size()));
    w.end_object();
    w.key("build").begin_object().key("version").string(pharos_version).key("revision").string("pharos").end_object();
    w.end_object();
    w.key("Meta").begin_object();
    w.key("consul-network-segment").string("");
    for (auto& [k, v] : c.node_meta) w.key(k).string(v);
    w.end_object();
    w.end_object();
    return w.take();
}

bool service_filtered_out(const read_options& o, const catalog::service& s) {
    return o.flt && !o.flt->matches([&](fpath p) { return resolve_service(s, p); });
}

std::string render_services(const agent::agent& a, const read_options& o) {
    json::writer w;
    w.begin_object();
    for (auto& [id, s] : a.services()) {
        if (service_filtered_out(o, s)) continue;
        w.key(id);
        catalog::write_agent_service(w, s, a.cfg().datacenter);
    }
    w.end_object();
    return w.take();
}

std::string render_checks(const agent::agent& a, const read_options& o) {
    json::writer w;
    w.begin_object();
    for (auto& [id, c] : a.checks()) {
        if (o.flt && !o.flt->matches([&](fpath p) { return resolve_check(*c.row, p); })) continue;
        w.key(id);
        catalog::write_check(w, *c.row, false);
    }
    w.end_object();
    return w.take();
}

struct one_service {
    bool found = false;
    std::string hash;
    std::string body;
};

one_service render_one_service(const agent::agent& a, const std::string& id) {
    one_service out;
    const catalog::service* s = a.find_service(id);
    if (!s) return out;
    out.found = true;
    out.hash = a.content_hash(*s);
    std::string body;
    {
        json::writer w;
        catalog::write_agent_service(w, *s, a.cfg().datacenter);
        body = w.take();
    }
    // Append ContentHash before the closing brace, as Consul's struct has it.
    body.pop_back();
    body += ",\"ContentHash\":\"" + out.hash + "\"}";
    out.body = std::move(body);
    return out;
}

// Aggregated health of a local service: maintenance > critical > warning > passing.
struct agg_health {
    int status = 0;  // 0 not found
    std::string body;
    std::string text;
};

// Worse statuses rank higher: maintenance > critical > warning > passing.
int status_rank(const std::string& st) {
    return st == "maintenance" ? 3 : st == "critical" ? 2 : st == "warning" ? 1 : 0;
}

std::string aggregate(const agent::agent& a, const catalog::service& s, json::writer* w) {
    std::string worst = "passing";
    std::vector<const catalog::check*> mine;
    for (auto& [id, c] : a.checks()) {
        if (!c.row->service_id.empty() && c.row->service_id != s.id) continue;
        std::string st = c.row->status;
        if (id == "_node_maintenance" || id == "_service_maintenance:" + s.id) st = "maintenance";
        if (status_rank(st) > status_rank(worst)) worst = st;
        mine.push_back(c.row.get());
    }
    if (w) {
        w->begin_object();
        w->key("AggregatedStatus").string(worst);
        w->key("Service");
        catalog::write_agent_service(*w, s, a.cfg().datacenter);
        w->key("Checks").begin_array();
        for (auto* c : mine) catalog::write_check(*w, *c, false);
        w->end_array();
        w->end_object();
    }
    return worst;
}

int http_status_of(const std::string& st) {
    if (st == "passing") return 200;
    if (st == "warning") return 429;
    return 503;
}

agg_health health_by_id(const agent::agent& a, const std::string& id) {
    agg_health h;
    const catalog::service* s = a.find_service(id);
    if (!s) return h;
    json::writer w;
    h.text = aggregate(a, *s, &w);
    h.status = http_status_of(h.text);
    h.body = w.take();
    return h;
}

agg_health health_by_name(const agent::agent& a, const std::string& name) {
    agg_health h;
    json::writer w;
    w.begin_array();
    std::string worst;
    for (auto& [id, s] : a.services()) {
        if (s.name != name) continue;
        std::string st = aggregate(a, s, &w);
        if (worst.empty() || status_rank(st) > status_rank(worst)) worst = st;
    }
    w.end_array();
    if (worst.empty()) return h;
    h.text = worst;
    h.status = http_status_of(worst);
    h.body = w.take();
    return h;
}

// ?wan lists the WAN pool, which pharos does not run: only the local server, as a WAN member
// named node.dc. ?segment names a network segment: only the default one ("") exists.
std::string render_members(const agent::agent& a, bool wan, std::optional<std::string> segment) {
    json::writer w;
    w.begin_array();
    if (wan) {
        if (a.cfg().server) {
            agent::serf_member m;
            m.name = a.cfg().node_name + "." + a.cfg().datacenter;
            m.addr = agent::advertise_address(a.cfg());
            m.port = uint16_t(std::max(0, a.cfg().ports.serf_wan));
            m.tags = agent::consul_tags(a.cfg());
            m.status = a.left() ? agent::member_status::left : agent::member_status::alive;
            write_serf_member(w, m);
        }
    } else if (segment && !segment->empty() && *segment != "_all") {
        // no such segment: nothing (`_all`, which `consul members` sends, is every segment: the one)
    } else if (a.gossip()) {
        for (auto& [name, m] : a.gossip()->table().members()) write_serf_member(w, m);
    } else {
        write_member(w, a);
    }
    w.end_array();
    return w.take();
}

// PUT ?enable=true|false (strconv.ParseBool) and ?reason=.
std::optional<response> parse_enable(const request& r, bool& enable) {
    auto* e = r.query_param("enable");
    if (!e) return consul_error(400, "Missing value for enable");
    const std::string& v = *e;
    if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True")
        enable = true;
    else if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False")
        enable = false;
    else
        return consul_error(400, "Invalid value for enable: \"" + v + "\"");
    return std::nullopt;
}

task<response> register_service(const context* ctx, request& r) {
    json::document doc;
    json::object o;
    if (auto bad = decode_body(r, doc, o)) co_return std::move(*bad);
    catalog::service s;
    std::vector<agent::check_definition> checks;
    if (auto err = decode_service(o, s, checks)) {
        bool invalid_check = err->rfind("Invalid check", 0) == 0 || err->rfind("Validation", 0) == 0;
        co_return consul_error(400, invalid_check ? *err : "Request decode failed: " + *err);
    }
    if (s.name.empty()) co_return consul_error(400, "Validation failed: Missing service name");
    bool replace = r.has_query("replace-existing-checks");
    auto fn = [s = std::move(s), checks = std::move(checks), replace](agent::agent& a) mutable {
        return a.register_service(std::move(s), std::move(checks), replace);
    };
    auto out = co_await on_agent(ctx, std::move(fn));
    co_return from_outcome(out);
}

task<response> register_check(const context* ctx, request& r) {
    json::document doc;
    json::object o;
    if (auto bad = decode_body(r, doc, o)) co_return std::move(*bad);
    agent::check_definition c;
    if (auto err = decode_check(o, c)) {
        bool invalid_check = err->rfind("Invalid check", 0) == 0;
        co_return consul_error(400, invalid_check ? *err : "Request decode failed: " + *err);
    }
    if (c.row.name.empty()) co_return consul_error(400, "Missing check name");
    if (c.status_given && !catalog::valid_status(c.row.status)) co_return consul_error(400, "Bad check status");
    auto fn = [c = std::move(c)](agent::agent& a) mutable { return a.register_check(std::move(c)); };
    auto out = co_await on_agent(ctx, std::move(fn));
    co_return from_outcome(out);
}

task<response> ttl_update(const context* ctx, request& r, std::string id, std::string status) {
    std::string output;
    if (status.empty()) {  // /check/update: {Status, Output}
        json::document doc;
        json::object o;
        if (auto bad = decode_body(r, doc, o)) co_return std::move(*bad);
        std::optional<std::string> err = o.get_string("Status", status);
        if (!err) err = o.get_string("Output", output);
        if (err) co_return consul_error(400, "Request decode failed: " + *err);
        if (status != "passing" && status != "warning" && status != "critical")
            co_return consul_error(400, "Invalid check status: '" + status + "'");
    } else if (auto* note = r.query_param("note")) {
        output = *note;
    }
    auto fn = [id = std::move(id), status = std::move(status), output = std::move(output)](agent::agent& a) mutable {
        return a.update_ttl(std::move(id), std::move(status), std::move(output));
    };
    auto out = co_await on_agent(ctx, std::move(fn));
    co_return from_outcome(out);
}

task<response> agent_service(const context* ctx, request& r, std::string id) {
    // Hash blocking: ?hash=<last> waits until the hash differs or ?wait passes.
    read_options o;
    if (auto bad = parse_read_options(ctx, r, o)) co_return std::move(*bad);
    std::string want;
    if (auto* h = r.query_param("hash")) want = *h;
    deadline dl = no_deadline;
    if (!want.empty()) {
        std::chrono::nanoseconds wait = ctx->default_query_time;
        if (auto* s = r.query_param("wait"); s && !s->empty()) {
            auto d = json::parse_go_duration(*s);
            if (!d || d->count() < 0) co_return consul_error(400, "Invalid wait time");
            if (d->count() > 0) wait = std::min<std::chrono::nanoseconds>(*d, ctx->max_query_time);
        }
        dl = clock::now() + std::chrono::duration_cast<clock::duration>(wait);
    }
    auto render = [id](agent::agent& a) { return render_one_service(a, id); };
    one_service cur = co_await on_agent(ctx, render);
    while (!want.empty() && cur.found && cur.hash == want && clock::now() < dl) {
        auto wait_fn = [dl](agent::agent& a) { return a.wait_local_change(dl); };
        bool more = co_await on_agent(ctx, wait_fn);
        if (!more) break;  // shutting down
        cur = co_await on_agent(ctx, render);
    }
    if (!cur.found) co_return consul_error(404, "unknown service ID: " + id);
    response out = response::json(std::move(cur.body));
    out.with_header("X-Consul-Contenthash", cur.hash);
    co_return out;
}

task<response> agent_health(const context* ctx, request& r, std::string key, bool by_id) {
    auto fn = [key, by_id](agent::agent& a) { return by_id ? health_by_id(a, key) : health_by_name(a, key); };
    agg_health h = co_await on_agent(ctx, fn);
    bool text = (r.query_param("format") && *r.query_param("format") == "text") ||
                r.header("Accept").find("text/plain") != std::string_view::npos;
    if (h.status == 0) {
        if (by_id) co_return consul_error(404, "ServiceId " + key + " not found");
        co_return consul_error(404, "ServiceName " + key + " Not Found");
    }
    if (text) co_return response::text(unsigned(h.status), h.text);
    co_return response::json(std::move(h.body), unsigned(h.status));
}

task<response> agent_leave(const context* ctx) {
    auto fn = [](agent::agent& a) { return a.leave(clock::now() + std::chrono::seconds(5)); };
    co_await on_agent(ctx, fn);
    if (ctx->shutdown) ctx->shutdown();
    co_return empty_ok();
}

// PUT /v1/agent/join/<addr>[?wan]: a push/pull with addr (default port: our serf_lan port).
// On the agent's shard: (nodes contacted, error text).
task<std::pair<int, std::string>> join_on_agent(agent::agent& a, std::string addr) {
    std::pair<int, std::string> out(0, "gossip is disabled (ports.serf_lan = -1)");
    if (!a.gossip()) co_return out;
    std::vector<std::string> addrs;
    addrs.push_back(addr);
    std::string err;
    deadline dl = clock::now() + std::chrono::seconds(10);
    out.first = co_await a.gossip()->join(std::move(addrs), dl, &err);
    out.second = err;
    co_return out;
}

task<response> agent_join(const context* ctx, request& r, std::string addr) {
    if (r.has_query("wan")) co_return consul_error(500, "Failed to join " + addr + ": the WAN pool is not supported");
    auto fn = [addr](agent::agent& a) { return join_on_agent(a, addr); };
    std::pair<int, std::string> res = co_await on_agent(ctx, fn);
    if (res.first == 0) co_return consul_error(500, "1 error occurred:\n\t* Failed to join " + addr + ": " + res.second + "\n\n");
    co_return empty_ok();
}

}  // namespace

task<std::optional<response>> agent_routes(const context* ctx, request& r) {
    const std::string& p = r.path;
    if (p.rfind("/v1/agent/", 0) != 0) co_return std::nullopt;
    bool get = r.method == "GET", put = r.method == "PUT";
    if (p == "/v1/agent/self" || p == "/v1/agent/members" || p == "/v1/agent/services" || p == "/v1/agent/checks" ||
        p == "/v1/agent/version" || p == "/v1/agent/host") {
        if (!get) co_return method_not_allowed(r, "GET");
        read_options o;
        if (auto bad = parse_read_options(ctx, r, o)) co_return std::move(*bad);
        std::string body;
        if (p == "/v1/agent/self") {
            auto fn = [](agent::agent& a) { return render_self(a); };
            body = co_await on_agent(ctx, fn);
        } else if (p == "/v1/agent/members") {
            bool wan = r.has_query("wan");
            std::optional<std::string> segment;
            if (auto* sg = r.query_param("segment")) segment = *sg;
            auto fn = [wan, segment](agent::agent& a) { return render_members(a, wan, segment); };
            body = co_await on_agent(ctx, fn);
        } else if (p == "/v1/agent/services") {
            auto fn = [o](agent::agent& a) { return render_services(a, o); };
            body = co_await on_agent(ctx, fn);
        } else if (p == "/v1/agent/checks") {
            auto fn = [o](agent::agent& a) { return render_checks(a, o); };
            body = co_await on_agent(ctx, fn);
        } else if (p == "/v1/agent/version") {
            body = std::string("{\"SHA\":\"\",\"BuildDate\":\"2026-11-25T00:00:00Z\",\"HumanVersion\":\"") +
                   pharos_version + "\",\"FIPS\":\"\"}";
        } else {
            char host[256] = {0};
            gethostname(host, sizeof host - 1);
            json::writer w;
            w.begin_object().key("Host").begin_object().key("hostname").string(host).end_object().end_object();
            body = w.take();
        }
        co_return response::json(std::move(body));
    }
    if (auto id = path_tail(p, "/v1/agent/service/")) {
        if (*id == "register") {
            if (!put) co_return method_not_allowed(r, "PUT");
            co_return co_await register_service(ctx, r);
        }
        if (auto d = path_tail(p, "/v1/agent/service/deregister/")) {
            if (!put) co_return method_not_allowed(r, "PUT");
            auto fn = [id = *d](agent::agent& a) { return a.deregister_service(id); };
            co_return from_outcome(co_await on_agent(ctx, fn));
        }
        if (auto m = path_tail(p, "/v1/agent/service/maintenance/")) {
            if (!put) co_return method_not_allowed(r, "PUT");
            bool enable = false;
            if (auto bad = parse_enable(r, enable)) co_return std::move(*bad);
            std::string reason = r.query_param("reason") ? *r.query_param("reason") : "";
            auto fn = [id = *m, enable, reason](agent::agent& a) { return a.service_maintenance(id, enable, reason); };
            co_return from_outcome(co_await on_agent(ctx, fn));
        }
        if (!get) co_return method_not_allowed(r, "GET");
        co_return co_await agent_service(ctx, r, *id);
    }
    if (auto rest = path_tail(p, "/v1/agent/check/")) {
        if (!put) co_return method_not_allowed(r, "PUT");
        if (*rest == "register") co_return co_await register_check(ctx, r);
        if (auto id = path_tail(p, "/v1/agent/check/deregister/")) {
            auto fn = [id = *id](agent::agent& a) { return a.deregister_check(id); };
            co_return from_outcome(co_await on_agent(ctx, fn));
        }
        if (auto id = path_tail(p, "/v1/agent/check/pass/")) co_return co_await ttl_update(ctx, r, *id, "passing");
        if (auto id = path_tail(p, "/v1/agent/check/warn/")) co_return co_await ttl_update(ctx, r, *id, "warning");
        if (auto id = path_tail(p, "/v1/agent/check/fail/")) co_return co_await ttl_update(ctx, r, *id, "critical");
        if (auto id = path_tail(p, "/v1/agent/check/update/")) co_return co_await ttl_update(ctx, r, *id, "");
        co_return std::nullopt;
    }
    if (auto id = path_tail(p, "/v1/agent/health/service/id/")) {
        if (!get) co_return method_not_allowed(r, "GET");
        co_return co_await agent_health(ctx, r, *id, true);
    }
    if (auto name = path_tail(p, "/v1/agent/health/service/name/")) {
        if (!get) co_return method_not_allowed(r, "GET");
        co_return co_await agent_health(ctx, r, *name, false);
    }
    if (p == "/v1/agent/maintenance") {
        if (!put) co_return method_not_allowed(r, "PUT");
        bool enable = false;
        if (auto bad = parse_enable(r, enable)) co_return std::move(*bad);
        std::string reason = r.query_param("reason") ? *r.query_param("reason") : "";
        auto fn = [enable, reason](agent::agent& a) { return a.node_maintenance(enable, reason); };
        co_return from_outcome(co_await on_agent(ctx, fn));
    }
    if (p == "/v1/agent/leave") {
        if (!put) co_return method_not_allowed(r, "PUT");
        co_return co_await agent_leave(ctx);
    }
    if (p == "/v1/agent/reload") {
        if (!put) co_return method_not_allowed(r, "PUT");
        if (!ctx->reload) co_return consul_error(500, "Failed to reload configs: this agent cannot reload");
        auto fn = ctx->reload;
        auto run = [fn]() { return fn(); };
        std::optional<std::string> err = co_await engine::submit_to(ctx->agent_shard, std::move(run));
        if (err) co_return consul_error(500, "Failed to reload configs: " + *err);
        co_return empty_ok();
    }
    if (auto addr = path_tail(p, "/v1/agent/join/")) {
        if (!put) co_return method_not_allowed(r, "PUT");
        co_return co_await agent_join(ctx, r, *addr);
    }
    if (auto node = path_tail(p, "/v1/agent/force-leave/")) {
        if (!put) co_return method_not_allowed(r, "PUT");
        bool prune = r.has_query("prune");
        auto fn = [node = *node, prune](agent::agent& a) -> std::optional<std::string> {
            if (node == a.cfg().node_name) return std::string("Cannot force leave the local node");
            if (!a.gossip()) return "agent: No node found with name '" + node + "'";
            return a.gossip()->force_leave(node, prune);
        };
        std::optional<std::string> err = co_await on_agent(ctx, fn);
        if (err) co_return consul_error(500, *err);
        co_return empty_ok();
    }
    if (p == "/v1/agent/metrics") co_return std::nullopt;  // misc_routes
    co_return std::nullopt;
}

}  // namespace pharos::api
