// /v1/catalog and /v1/health: reads render from this shard's snapshot and
// block on the service, node or table they read; writes go to the state owner.
#include <map>
#include <set>

#include "common.hh"
#include "services/catalog/json.hh"

namespace pharos::api {
using namespace engine;
using catalog::check;
using catalog::node;
using catalog::service;

namespace {

uint64_t at_least_1(uint64_t i) { return i ? i : 1; }

// The index of a per-service read: the service's own, else the catalog's.
uint64_t service_query_index(const catalog::store& c, std::string_view name) {
    uint64_t i = c.service_index(name);
    return at_least_1(i ? i : std::max(c.services_index(), c.nodes_index()));
}
uint64_t node_query_index(const catalog::store& c, std::string_view name) {
    uint64_t i = c.node_index(name);
    return at_least_1(i ? i : c.nodes_index());
}

// --- catalog reads ---

rendered render_nodes(const read_options& o, const state::snapshot& s) {
    json::writer w;
    w.begin_array();
    s.catalog.for_each_node([&](const node& n) {
        if (!node_meta_matches(n, o)) return;
        if (o.flt && !o.flt->matches([&](fpath p) { return resolve_node(n, p); })) return;
        catalog::write_node(w, n);
    });
    w.end_array();
    return rendered{200, at_least_1(s.catalog.nodes_index()), w.take()};
}

rendered render_services(const read_options& o, const state::snapshot& s) {
    std::map<std::string, std::set<std::string>> out;
    const catalog::store& c = s.catalog;
    c.for_each_instance([&](const service& svc) {
        if (!o.node_meta.empty() || o.flt) {
            const node* n = c.get_node(svc.node);
            if (!n || !node_meta_matches(*n, o)) return;
            if (o.flt && !o.flt->matches([&](fpath p) { return resolve_catalog_service(*n, svc, p); })) return;
        }
        auto& tags = out[svc.name];
        tags.insert(svc.tags.begin(), svc.tags.end());
    });
    json::writer w;
    w.begin_object();
    for (auto& [name, tags] : out) {
        w.key(name).begin_array();
        for (auto& t : tags) w.string(t);
        w.end_array();
    }
    w.end_object();
    return rendered{200, at_least_1(std::max(c.services_index(), c.nodes_index())), w.take()};
}

rendered render_service_nodes(const read_options& o, const std::string& name, const state::snapshot& s) {
    const catalog::store& c = s.catalog;
    json::writer w;
    w.begin_array();
    c.for_each_instance(name, [&](const service& svc) {
        if (!tags_match(svc, o.tags)) return;
        const node* n = c.get_node(svc.node);
        if (!n || !node_meta_matches(*n, o)) return;
        if (o.flt && !o.flt->matches([&](fpath p) { return resolve_catalog_service(*n, svc, p); })) return;
        catalog::write_catalog_service(w, *n, svc);
    });
    w.end_array();
    return rendered{200, service_query_index(c, name), w.take()};
}

rendered render_node(const read_options& o, const std::string& name, bool as_list, const state::snapshot& s) {
    const catalog::store& c = s.catalog;
    rendered r;
    r.index = node_query_index(c, name);
    const node* n = c.get_node(name);
    json::writer w;
    if (!n) {
        // Consul answers null for an unknown node in /catalog/node and 404 for /catalog/node-services.
        if (as_list) {
            r.status = 404;
            return r;
        }
        r.body = "null";
        return r;
    }
    w.begin_object();
    w.key("Node");
    catalog::write_node(w, *n);
    w.key("Services");
    if (as_list)
        w.begin_array();
    else
        w.begin_object();
    c.for_each_node_service(name, [&](const service& svc) {
        if (o.flt && !o.flt->matches([&](fpath p) { return resolve_service(svc, p); })) return;
        if (!as_list) w.key(svc.id);
        catalog::write_agent_service(w, svc);
    });
    if (as_list)
        w.end_array();
    else
        w.end_object();
    w.end_object();
    r.body = w.take();
    return r;
}

// --- health reads ---

bool passing_only(const std::vector<const check*>& checks) {
    for (auto* c : checks)
        if (c->status != "passing") return false;
    return true;
}

// Resolves Checks.<field> over a list of checks (go-bexpr's "any element" rule).
struct checks_view {
    const std::vector<const check*>* list;
    fpath rest;
};
fvalue resolve_checks(const checks_view* v) {
    return fvalue::of_any(v, v->list->size(), [](const void* ctx, size_t i) {
        auto* cv = static_cast<const checks_view*>(ctx);
        return resolve_check(*(*cv->list)[i], cv->rest);
    });
}

rendered render_health_service(const read_options& o, const std::string& name, bool passing,
                               const state::snapshot& s) {
    const catalog::store& c = s.catalog;
    json::writer w;
    w.begin_array();
    std::vector<const check*> checks;
    c.for_each_instance(name, [&](const service& svc) {
        if (!tags_match(svc, o.tags)) return;
        const node* n = c.get_node(svc.node);
        if (!n || !node_meta_matches(*n, o)) return;
        checks.clear();
        c.for_each_instance_check(svc, [&](const check& ch) { checks.push_back(&ch); });
        if (passing && !passing_only(checks)) return;
        if (o.flt) {
            checks_view cv{&checks, {}};
            auto resolve = [&](fpath p) -> fvalue {
                if (p.empty()) return {};
                if (p[0] == "Node") return resolve_node(*n, p.subspan(1));
                if (p[0] == "Service") return resolve_service(svc, p.subspan(1));
                if (p[0] == "Checks") {
                    cv.rest = p.subspan(1);
                    return resolve_checks(&cv);
                }
                return {};
            };
            if (!o.flt->matches(resolve)) return;
        }
        w.begin_object();
        w.key("Node");
        catalog::write_node(w, *n);
        w.key("Service");
        catalog::write_agent_service(w, svc);
        w.key("Checks").begin_array();
        for (auto* ch : checks) catalog::write_check(w, *ch);
        w.end_array();
        w.end_object();
    });
    w.end_array();
    return rendered{200, service_query_index(c, name), w.take()};
}

bool check_passes_filter(const read_options& o, const check& ch) {
    return !o.flt || o.flt->matches([&](fpath p) { return resolve_check(ch, p); });
}

rendered render_service_checks(const read_options& o, const std::string& name, const state::snapshot& s) {
    const catalog::store& c = s.catalog;
    json::writer w;
    w.begin_array();
    c.for_each_instance(name, [&](const service& svc) {
        if (!o.node_meta.empty()) {
            const node* n = c.get_node(svc.node);
            if (!n || !node_meta_matches(*n, o)) return;
        }
        c.for_each_node_check(svc.node, [&](const check& ch) {
            if (ch.service_id == svc.id && check_passes_filter(o, ch)) catalog::write_check(w, ch);
        });
    });
    w.end_array();
    return rendered{200, service_query_index(c, name), w.take()};
}

rendered render_node_checks(const read_options& o, const std::string& name, const state::snapshot& s) {
    json::writer w;
    w.begin_array();
    s.catalog.for_each_node_check(name, [&](const check& ch) {
        if (check_passes_filter(o, ch)) catalog::write_check(w, ch);
    });
    w.end_array();
    return rendered{200, node_query_index(s.catalog, name), w.take()};
}

rendered render_state(const read_options& o, const std::string& st, const state::snapshot& s) {
    const catalog::store& c = s.catalog;
    json::writer w;
    w.begin_array();
    c.for_each_check([&](const check& ch) {
        if (st != "any" && ch.status != st) return;
        if (!o.node_meta.empty()) {
            const node* n = c.get_node(ch.node);
            if (!n || !node_meta_matches(*n, o)) return;
        }
        if (check_passes_filter(o, ch)) catalog::write_check(w, ch);
    });
    w.end_array();
    return rendered{200, at_least_1(c.checks_index()), w.take()};
}

// --- catalog writes ---

task<response> catalog_register(const context* ctx, request& r) {
    json::document doc;
    json::object o;
    if (auto bad = decode_body(r, doc, o)) co_return std::move(*bad);
    catalog::register_request req;
    std::map<std::string, std::string> tagged, meta;
    std::optional<std::string> err;
    if (!err) err = o.get_string("ID", req.n.id);
    if (!err) err = o.get_string("Node", req.n.name);
    if (!err) err = o.get_string("Address", req.n.address);
    if (!err) err = o.get_string("Datacenter", req.n.datacenter);
    if (!err) err = o.get("TaggedAddresses", tagged);
    if (!err) err = o.get("NodeMeta", meta);
    if (!err) err = o.get_bool("SkipNodeUpdate", req.skip_node_update);
    json::object svc, chk;
    json::array chks;
    if (!err) err = o.get_object("Service", svc);
    if (!err) err = o.get_object("Check", chk);
    if (!err) err = o.get_array("Checks", chks);
    if (!err && !svc.empty()) {
        service s;
        err = decode_catalog_service(svc, s);
        req.svc = std::move(s);
    }
    std::vector<json::object> checks;
    if (!chk.empty()) checks.push_back(chk);
    for (const json::value& v : chks) {
        json::object c;
        if (!err) err = v.get(c);
        checks.push_back(c);
    }
    for (auto& c : checks) {
        check row;
        if (!err) err = decode_catalog_check(c, row);
        req.checks.push_back(std::move(row));
    }
    if (err) co_return consul_error(400, "Request decode failed: " + *err);
    if (!req.n.datacenter.empty() && req.n.datacenter != ctx->datacenter)
        co_return consul_error(500, "No path to datacenter");
    req.n.datacenter = ctx->datacenter;
    req.n.tagged_addresses.assign(tagged.begin(), tagged.end());
    req.n.meta.assign(meta.begin(), meta.end());
    auto res = co_await ctx->state->local().write(state::command(std::move(req)));
    if (!res.error.empty()) co_return consul_error(500, res.error);
    co_return response::json("true");
}

task<response> catalog_deregister(const context* ctx, request& r) {
    json::document doc;
    json::object o;
    if (auto bad = decode_body(r, doc, o)) co_return std::move(*bad);
    catalog::deregister_request req;
    std::optional<std::string> err;
    std::string dc;
    if (!err) err = o.get_string("Node", req.node);
    if (!err) err = o.get_string("ServiceID", req.service_id);
    if (!err) err = o.get_string("CheckID", req.check_id);
    if (!err) err = o.get_string("Datacenter", dc);
    if (err) co_return consul_error(400, "Request decode failed: " + *err);
    if (!dc.empty() && dc != ctx->datacenter) co_return consul_error(500, "No path to datacenter");
    auto res = co_await ctx->state->local().write(state::command(std::move(req)));
    if (!res.error.empty()) co_return consul_error(500, res.error);
    co_return response::json("true");
}

task<response> read_with(const context* ctx, request& r, state::topic t, std::string name,
                         rendered (*fn)(const read_options&, const std::string&, const state::snapshot&)) {
    read_options o;
    if (auto bad = parse_read_options(ctx, r, o)) co_return std::move(*bad);
    std::string cache_key = r.path;  // the whole query but its index and wait
    for (auto& [k, v] : r.query)
        if (k != "index" && k != "wait") cache_key += "\n" + k + "=" + v;
    if (o.min_index == 0) {
        auto once = [&](const state::snapshot& s) { return fn(o, name, s); };
        co_return to_response(render_once(cache_key, ctx->state->local().read(), once));
    }
    render_fn render = [o, name, fn](const state::snapshot& s) { return fn(o, name, s); };
    // Table topics have one watch list; per-name topics one per name.
    std::string topic_name = t == state::topic::service || t == state::topic::node ? name : std::string();
    co_return blocking_read(ctx, o, t, std::move(topic_name), std::move(render), std::move(cache_key), to_response);
}

rendered nodes_fn(const read_options& o, const std::string&, const state::snapshot& s) { return render_nodes(o, s); }
rendered services_fn(const read_options& o, const std::string&, const state::snapshot& s) {
    return render_services(o, s);
}
rendered node_fn(const read_options& o, const std::string& n, const state::snapshot& s) {
    return render_node(o, n, false, s);
}
rendered node_services_fn(const read_options& o, const std::string& n, const state::snapshot& s) {
    return render_node(o, n, true, s);
}
rendered health_any_fn(const read_options& o, const std::string& n, const state::snapshot& s) {
    return render_health_service(o, n, false, s);
}
rendered health_passing_fn(const read_options& o, const std::string& n, const state::snapshot& s) {
    return render_health_service(o, n, true, s);
}

}  // namespace

task<std::optional<response>> catalog_routes(const context* ctx, request& r) {
    const std::string& p = r.path;
    if (p.rfind("/v1/catalog/", 0) != 0) co_return std::nullopt;
    bool get = r.method == "GET";
    if (p == "/v1/catalog/register" || p == "/v1/catalog/deregister") {
        if (r.method != "PUT") co_return method_not_allowed(r, "PUT");
        if (p == "/v1/catalog/register") co_return co_await catalog_register(ctx, r);
        co_return co_await catalog_deregister(ctx, r);
    }
    if (p == "/v1/catalog/datacenters") {
        if (!get) co_return method_not_allowed(r, "GET");
        json::writer w;
        w.begin_array().string(ctx->datacenter).end_array();
        co_return response::json(w.take());
    }
    if (p == "/v1/catalog/nodes") {
        if (!get) co_return method_not_allowed(r, "GET");
        co_return co_await read_with(ctx, r, state::topic::nodes_table, "", nodes_fn);
    }
    if (p == "/v1/catalog/services") {
        if (!get) co_return method_not_allowed(r, "GET");
        co_return co_await read_with(ctx, r, state::topic::services_table, "", services_fn);
    }
    if (auto name = path_tail(p, "/v1/catalog/service/")) {
        if (!get) co_return method_not_allowed(r, "GET");
        if (name->empty()) co_return consul_error(400, "Missing service name");
        co_return co_await read_with(ctx, r, state::topic::service, *name, render_service_nodes);
    }
    if (auto name = path_tail(p, "/v1/catalog/node/")) {
        if (!get) co_return method_not_allowed(r, "GET");
        if (name->empty()) co_return consul_error(400, "Missing node name");
        co_return co_await read_with(ctx, r, state::topic::node, *name, node_fn);
    }
    if (auto name = path_tail(p, "/v1/catalog/node-services/")) {
        if (!get) co_return method_not_allowed(r, "GET");
        if (name->empty()) co_return consul_error(400, "Missing node name");
        co_return co_await read_with(ctx, r, state::topic::node, *name, node_services_fn);
    }
    co_return std::nullopt;
}

task<std::optional<response>> health_routes(const context* ctx, request& r) {
    const std::string& p = r.path;
    if (p.rfind("/v1/health/", 0) != 0) co_return std::nullopt;
    if (r.method != "GET") co_return method_not_allowed(r, "GET");
    if (auto name = path_tail(p, "/v1/health/service/")) {
        if (name->empty()) co_return consul_error(400, "Missing service name");
        auto fn = r.has_query("passing") ? health_passing_fn : health_any_fn;
        co_return co_await read_with(ctx, r, state::topic::service, *name, fn);
    }
    if (auto name = path_tail(p, "/v1/health/checks/")) {
        if (name->empty()) co_return consul_error(400, "Missing service name");
        co_return co_await read_with(ctx, r, state::topic::service, *name, render_service_checks);
    }
    if (auto name = path_tail(p, "/v1/health/node/")) {
        if (name->empty()) co_return consul_error(400, "Missing node name");
        co_return co_await read_with(ctx, r, state::topic::node, *name, render_node_checks);
    }
    if (auto st = path_tail(p, "/v1/health/state/")) {
        if (*st != "any" && *st != "passing" && *st != "warning" && *st != "critical")
            co_return consul_error(400, "Invalid state: " + *st);
        co_return co_await read_with(ctx, r, state::topic::checks_table, *st, render_state);
    }
    co_return std::nullopt;
}

}  // namespace pharos::api
