#include "common.hh"

#include <charconv>
#include <random>

#include "protocols/json/duration.hh"

namespace pharos::api {
using namespace engine;

response consul_error(unsigned status, std::string msg) { return response::text(status, std::move(msg)); }

response method_not_allowed(const request& r, std::string_view allow) {
    response out = consul_error(405, "method " + r.method + " not allowed");
    out.with_header("Allow", "OPTIONS," + std::string(allow));
    return out;
}

response empty_ok() {
    response r;
    r.status = 200;
    return r;
}

void index_headers(response& r, uint64_t index) {
    r.with_header("X-Consul-Index", std::to_string(index ? index : 1));
    r.with_header("X-Consul-Knownleader", "true");
    r.with_header("X-Consul-Lastcontact", "0");
    r.with_header("X-Consul-Effective-Consistency", "leader");
}

bool parse_u64(std::string_view s, uint64_t& out) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::optional<std::string> path_tail(const std::string& path, std::string_view prefix) {
    if (path.rfind(prefix, 0) != 0) return std::nullopt;
    return path.substr(prefix.size());
}

std::optional<response> parse_read_options(const context* ctx, const request& r, read_options& o) {
    o.shape = response_shape::of(r);
    if (r.has_query("stale") && r.has_query("consistent"))
        return consul_error(400, "Cannot specify ?stale with ?consistent, conflicting semantics.");
    if (r.has_query("cached") && r.has_query("consistent"))
        return consul_error(400, "Cannot specify ?cached with ?consistent, conflicting semantics.");
    if (auto* dc = r.query_param("dc"); dc && !dc->empty() && *dc != ctx->datacenter)
        return consul_error(500, "No path to datacenter");
    o.min_index = 0;
    o.dl = no_deadline;
    if (auto* s = r.query_param("index"); s && !s->empty()) {
        if (!parse_u64(*s, o.min_index)) return consul_error(400, "Invalid index");
    }
    std::chrono::nanoseconds wait = ctx->default_query_time;
    if (auto* s = r.query_param("wait"); s && !s->empty()) {
        auto d = json::parse_go_duration(*s);
        if (!d || d->count() < 0) return consul_error(400, "Invalid wait time");
        if (d->count() > 0) wait = *d;
    }
    if (o.min_index > 0) {
        if (wait > ctx->max_query_time) wait = ctx->max_query_time;
        static thread_local std::mt19937_64 rng{std::random_device{}()};
        int64_t span = wait.count() / 16;
        auto jitter = std::chrono::nanoseconds(span > 0 ? int64_t(rng() % uint64_t(span)) : 0);
        o.dl = clock::now() + std::chrono::duration_cast<clock::duration>(wait + jitter);
    }
    if (auto* f = r.query_param("filter"); f && !f->empty()) {
        auto parsed = filter::parse(*f);
        if (auto* err = std::get_if<std::string>(&parsed)) return consul_error(400, *err);
        o.flt = std::get<filter>(std::move(parsed));
    }
    for (auto& [k, v] : r.query) {
        if (k == "tag") o.tags.push_back(v);
        if (k == "node-meta") {
            auto c = v.find(':');
            if (c == std::string::npos) return consul_error(400, "Invalid node-meta: " + v);
            o.node_meta.emplace_back(v.substr(0, c), v.substr(c + 1));
        }
    }
    return std::nullopt;
}

namespace {
// Recent renders on this shard, keyed by the whole query and the snapshot's
// index: a repeated read of an unchanged state, or many watchers woken by one
// write, render once. Exact: any write makes a new snapshot index.
struct render_cache {
    static constexpr size_t slots = 8;
    struct entry {
        std::string key;
        uint64_t snapshot_index = 0;
        rendered result;
    };
    entry e[slots];
    size_t next = 0;
};
thread_local render_cache cache;
}  // namespace

const rendered* cached_render(const std::string& key, uint64_t snapshot_index) {
    for (auto& e : cache.e)
        if (e.snapshot_index == snapshot_index && e.key == key) return &e.result;
    return nullptr;
}

void remember_render(const std::string& key, uint64_t snapshot_index, const rendered& r) {
    auto& e = cache.e[cache.next++ % render_cache::slots];
    e.key = key;
    e.snapshot_index = snapshot_index;
    e.result = r;
}

namespace {
rendered render_cached(const std::string& key, const state::snapshot& s, const render_fn& render) {
    if (key.empty()) return render(s);
    if (const rendered* hit = cached_render(key, s.index)) return *hit;
    rendered r = render(s);
    remember_render(key, s.index, r);
    return r;
}
}  // namespace

namespace {
// Go's json.Indent with a 4-space indent, as Consul's ?pretty.
std::string indent_json(std::string_view in) {
    std::string out;
    out.reserve(in.size() * 2);
    int depth = 0;
    bool in_string = false, escaped = false;
    auto newline = [&] {
        out.push_back('\n');
        out.append(size_t(depth) * 4, ' ');
    };
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (in_string) {
            out.push_back(c);
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
            case '"':
                in_string = true;
                out.push_back(c);
                break;
            case '{':
            case '[':
                out.push_back(c);
                if (i + 1 < in.size() && (in[i + 1] == '}' || in[i + 1] == ']')) {
                    out.push_back(in[++i]);
                    break;
                }
                ++depth;
                newline();
                break;
            case '}':
            case ']':
                --depth;
                newline();
                out.push_back(c);
                break;
            case ',':
                out.push_back(c);
                newline();
                break;
            case ':':
                out += ": ";
                break;
            default:
                out.push_back(c);
        }
    }
    return out;
}

}  // namespace

response_shape response_shape::of(const request& r) {
    response_shape s;
    s.consistency = r.has_query("consistent") ? 2 : r.has_query("stale") ? 1 : 0;
    s.pretty = r.has_query("pretty");
    return s;
}

void shape_response(const response_shape& s, response& out) {
    if (s.consistency) {
        for (auto& [k, v] : out.headers)
            if (k == "X-Consul-Effective-Consistency") v = s.consistency == 2 ? "consistent" : "stale";
    }
    if (s.pretty && out.status == 200 && !out.body.empty()) {
        for (auto& [k, v] : out.headers)
            if (k == "Content-Type" && v.rfind("application/json", 0) == 0) {
                out.body = indent_json(out.body);
                break;
            }
    }
}

namespace {
// A blocked query, parked: what it needs to render again and where to wait.
// The handler that made it has returned, so this (plus finish()'s frame) is all
// a watcher costs while it waits.
class blocked_read final : public http::deferred {
public:
    blocked_read(const context* ctx, const read_options& o, state::topic t, std::string name, render_fn render,
                 std::string cache_key, response (*respond)(rendered))
        : ctx_(ctx),
          min_index_(o.min_index),
          dl_(o.dl),
          shape_(o.shape),
          topic_(t),
          name_(std::move(name)),
          render_(std::move(render)),
          cache_key_(std::move(cache_key)),
          respond_(respond) {}

    // Cancel safety: nothing to undo; the watcher unlinks itself.
    engine::task<response> finish() override {
        state::service& st = ctx_->state->local();
        rendered out;
        {
            state::watcher w(st.hub(), topic_, name_);
            for (;;) {
                // Checked before each wait: a write may have landed between the
                // first render and this frame's start, and a stopping node answers now.
                out = render_cached(cache_key_, st.read(), render_);
                if (out.index > min_index_ || st.stopping()) break;
                int r = co_await w.wait(dl_);
                if (r < 0) {
                    out = render_cached(cache_key_, st.read(), render_);
                    break;
                }
            }
        }
        response resp = respond_(std::move(out));
        shape_response(shape_, resp);
        co_return resp;
    }

private:
    const context* ctx_;
    uint64_t min_index_;
    engine::deadline dl_;
    response_shape shape_;
    state::topic topic_;
    std::string name_;
    render_fn render_;
    std::string cache_key_;
    response (*respond_)(rendered);
};
}  // namespace

response blocking_read(const context* ctx, const read_options& o, state::topic t, std::string name, render_fn render,
                       std::string cache_key, response (*respond)(rendered)) {
    rendered out = render(ctx->state->local().read());
    if (o.min_index == 0 || out.index > o.min_index) return respond(std::move(out));
    response r;
    r.later = std::make_shared<blocked_read>(ctx, o, t, std::move(name), std::move(render), std::move(cache_key),
                                             respond);
    return r;
}

response to_response(rendered r) {
    response out;
    if (r.status == 200 || !r.body.empty())
        out = response::json(std::move(r.body), r.status);
    else
        out.status = r.status;
    index_headers(out, r.index);
    return out;
}

// --- filter resolvers ---
namespace {
fvalue map_value(const catalog::str_map& m, fpath p) {
    if (p.size() == 1) return fvalue::of_map(m);
    if (p.size() != 2) return {};
    for (auto& [k, v] : m)
        if (k == p[1]) return fvalue::of_string(v);
    return {};
}
}  // namespace

fvalue resolve_node(const catalog::node& n, fpath p) {
    if (p.empty()) return {};
    auto f = p[0];
    if (p.size() == 1) {
        if (f == "ID") return fvalue::of_string(n.id);
        if (f == "Node") return fvalue::of_string(n.name);
        if (f == "Address") return fvalue::of_string(n.address);
        if (f == "Datacenter") return fvalue::of_string(n.datacenter);
    }
    if (f == "TaggedAddresses") return map_value(n.tagged_addresses, p);
    if (f == "Meta") return map_value(n.meta, p);
    return {};
}

fvalue resolve_service(const catalog::service& s, fpath p) {
    if (p.empty()) return {};
    auto f = p[0];
    if (p.size() == 1) {
        if (f == "ID") return fvalue::of_string(s.id);
        if (f == "Service") return fvalue::of_string(s.name);
        if (f == "Kind") return fvalue::of_string(s.kind);
        if (f == "Tags") return fvalue::of_list(s.tags);
        if (f == "Address") return fvalue::of_string(s.address);
        if (f == "Port") return fvalue::of_number(s.port);
        if (f == "EnableTagOverride") return fvalue::of_bool(s.enable_tag_override);
    }
    if (f == "Meta") return map_value(s.meta, p);
    if (f == "Weights" && p.size() == 2) {
        if (p[1] == "Passing") return fvalue::of_number(s.weight_passing);
        if (p[1] == "Warning") return fvalue::of_number(s.weight_warning);
    }
    if (f == "TaggedAddresses") {
        if (p.size() == 1) return fvalue::of_map(s.tagged_addresses);
        for (auto& [k, a] : s.tagged_addresses)
            if (k == p[1]) {
                if (p.size() == 3 && p[2] == "Address") return fvalue::of_string(a.address);
                if (p.size() == 3 && p[2] == "Port") return fvalue::of_number(a.port);
            }
    }
    return {};
}

fvalue resolve_catalog_service(const catalog::node& n, const catalog::service& s, fpath p) {
    if (p.empty()) return {};
    auto f = p[0];
    if (f == "ID" || f == "Node" || f == "Address" || f == "Datacenter" || f == "TaggedAddresses")
        return resolve_node(n, p);
    if (f == "NodeMeta") return map_value(n.meta, p);
    if (f.substr(0, 7) == "Service") {
        std::string_view rest = f.substr(7);
        if (rest == "ID") return fvalue::of_string(s.id);
        if (rest == "Name") return fvalue::of_string(s.name);
        if (rest == "Kind") return fvalue::of_string(s.kind);
        if (rest == "Tags" && p.size() == 1) return fvalue::of_list(s.tags);
        if (rest == "Address" && p.size() == 1) return fvalue::of_string(s.address);
        if (rest == "Port" && p.size() == 1) return fvalue::of_number(s.port);
        if (rest == "Meta") return map_value(s.meta, p);
        if (rest == "EnableTagOverride") return fvalue::of_bool(s.enable_tag_override);
        if (rest == "Weights" && p.size() == 2) {
            if (p[1] == "Passing") return fvalue::of_number(s.weight_passing);
            if (p[1] == "Warning") return fvalue::of_number(s.weight_warning);
        }
    }
    return {};
}

fvalue resolve_check(const catalog::check& c, fpath p) {
    if (p.size() != 1) return {};
    auto f = p[0];
    if (f == "Node") return fvalue::of_string(c.node);
    if (f == "CheckID") return fvalue::of_string(c.check_id);
    if (f == "Name") return fvalue::of_string(c.name);
    if (f == "Status") return fvalue::of_string(c.status);
    if (f == "Notes") return fvalue::of_string(c.notes);
    if (f == "Output") return fvalue::of_string(c.output);
    if (f == "ServiceID") return fvalue::of_string(c.service_id);
    if (f == "ServiceName") return fvalue::of_string(c.service_name);
    if (f == "ServiceTags") return fvalue::of_list(c.service_tags);
    if (f == "Type") return fvalue::of_string(c.type);
    return {};
}

bool node_meta_matches(const catalog::node& n, const read_options& o) {
    for (auto& [k, v] : o.node_meta) {
        bool hit = false;
        for (auto& [nk, nv] : n.meta)
            if (nk == k && nv == v) hit = true;
        if (!hit) return false;
    }
    return true;
}

bool tags_match(const catalog::service& s, const std::vector<std::string>& tags) {
    for (auto& t : tags) {
        bool hit = false;
        for (auto& st : s.tags)
            if (st == t) hit = true;  // Consul compares tags exactly (case-sensitive) since 1.x
        if (!hit) return false;
    }
    return true;
}

// --- request bodies ---
std::optional<response> decode_body(const request& r, json::document& doc, json::object& root) {
    if (auto err = doc.parse(r.body)) return consul_error(400, "Request decode failed: " + *err);
    if (auto err = doc.root_object(root)) return consul_error(400, "Request decode failed: " + *err);
    return std::nullopt;
}

namespace {
#define TRY(expr)                     \
    do {                              \
        if (auto e_ = (expr)) return e_; \
    } while (0)

std::optional<std::string> get_sorted_map(const json::object& o, std::string_view name, catalog::str_map& out) {
    std::map<std::string, std::string> m;
    TRY(o.get(name, m));
    if (o.has(name)) out.assign(m.begin(), m.end());
    return std::nullopt;
}

std::optional<std::string> get_duration_ns(const json::object& o, std::string_view name, int64_t& out) {
    std::chrono::nanoseconds d(out);
    TRY(o.get_duration(name, d));
    out = d.count();
    return std::nullopt;
}

std::optional<std::string> decode_tagged(const json::object& o, catalog::service& s) {
    json::object t;
    TRY(o.get_object("TaggedAddresses", t));
    std::map<std::string, catalog::service_address> m;
    for (const json::member& mem : t) {
        json::object a;
        TRY(mem.val.get(a));
        catalog::service_address sa;
        TRY(a.get_string("Address", sa.address));
        TRY(a.get("Port", sa.port));
        m[std::string(mem.key)] = sa;
    }
    if (!m.empty()) s.tagged_addresses.assign(m.begin(), m.end());
    return std::nullopt;
}

// A string member into a definition's cstr (left as is when absent).
template <class O>
auto get_cstr(const O& o, std::string_view name, catalog::cstr& out) {
    std::string v;
    auto err = o.get_string(name, v);
    if (!err && !v.empty()) out = std::string_view(v);
    return err;
}

std::optional<std::string> decode_check_type(const json::object& o, agent::check_definition& c) {
    catalog::check& row = c.row;
    catalog::check_definition d;  // row.definition, set at the end
    TRY(o.get_string("CheckID", row.check_id));
    if (row.check_id.empty()) TRY(o.get_string("ID", row.check_id));
    TRY(o.get_string("Name", row.name));
    TRY(get_cstr(o, "Notes", row.notes));
    if (o.has("Status")) {
        TRY(o.get_string("Status", row.status));
        c.status_given = true;
    }
    TRY(o.get_string("ServiceID", row.service_id));
    TRY(o.get_strings("Args", c.args));
    if (c.args.empty()) TRY(o.get_strings("ScriptArgs", c.args));
    TRY(o.get_string("DockerContainerID", c.docker_container_id));
    TRY(o.get_string("Shell", c.shell));
    TRY(get_duration_ns(o, "Interval", d.interval_ns));
    TRY(get_duration_ns(o, "Timeout", d.timeout_ns));
    TRY(get_duration_ns(o, "TTL", c.ttl_ns));
    TRY(get_cstr(o, "HTTP", d.http));
    std::map<std::string, std::vector<std::string>> hdr;
    TRY(o.get_header("Header", hdr));
    d.header.assign(hdr.begin(), hdr.end());
    TRY(get_cstr(o, "Method", d.method));
    TRY(get_cstr(o, "Body", d.body));
    TRY(get_cstr(o, "TCP", d.tcp));
    TRY(get_cstr(o, "UDP", d.udp));
    TRY(get_cstr(o, "GRPC", d.grpc));
    TRY(o.get_bool("GRPCUseTLS", d.grpc_use_tls));
    TRY(get_cstr(o, "OSService", d.os_service));
    TRY(o.get_string("H2PING", c.h2ping));
    TRY(o.get_bool("H2PingUseTLS", c.h2ping_use_tls));
    TRY(get_cstr(o, "TLSServerName", d.tls_server_name));
    TRY(o.get_bool("TLSSkipVerify", d.tls_skip_verify));
    TRY(o.get_string("AliasNode", c.alias_node));
    TRY(o.get_string("AliasService", c.alias_service));
    TRY(o.get("SuccessBeforePassing", c.success_before_passing));
    TRY(o.get("FailuresBeforeWarning", c.failures_before_warning));
    TRY(o.get("FailuresBeforeCritical", c.failures_before_critical));
    TRY(o.get("OutputMaxSize", c.output_max_size));
    TRY(get_duration_ns(o, "DeregisterCriticalServiceAfter", d.deregister_critical_service_after_ns));
    std::string script;
    TRY(o.get_string("Script", script));
    if (!script.empty() && c.args.empty()) c.args = {"/bin/sh", "-c", script};
    // Consul's CheckType.Validate.
    bool interval_check = !c.args.empty() || !d.http.empty() || !d.tcp.empty() || !d.udp.empty() ||
                          !d.grpc.empty() || !c.h2ping.empty() || !d.os_service.empty();
    bool alias = !c.alias_service.empty() || !c.alias_node.empty();
    if (d.interval_ns > 0 && c.ttl_ns > 0) return "Invalid check: Interval and TTL cannot both be specified";
    if (interval_check && d.interval_ns <= 0) return "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks";
    if (interval_check && alias) return "Invalid check: Interval cannot be set for Alias checks";
    if (alias && c.ttl_ns > 0) return "Invalid check: TTL must be not be set for Alias checks";
    if (!interval_check && !alias && c.ttl_ns <= 0) return "Invalid check: TTL must be > 0 for TTL checks";
    if (c.output_max_size < 0) return "Invalid check: MaxOutputMaxSize must be positive";
    if (d.interval_ns > 0 && d.interval_ns < 1'000'000'000) d.interval_ns = 1'000'000'000;  // Consul's minimum
    if (c.ttl_ns > 0)
        row.type = "ttl";
    else if (!d.http.empty())
        row.type = "http";
    else if (!d.tcp.empty())
        row.type = "tcp";
    else if (!d.udp.empty())
        row.type = "udp";
    else if (!d.grpc.empty())
        row.type = "grpc";
    else if (!c.h2ping.empty())
        row.type = "h2ping";
    else if (alias)
        row.type = "alias";
    else if (!c.docker_container_id.empty())
        row.type = "docker";
    else if (!d.os_service.empty())
        row.type = "os_service";
    else if (!c.args.empty())
        row.type = "script";
    row.set_definition(std::move(d));
    return std::nullopt;
}
// The fields AgentServiceRegistration and the catalog's service share; the
// name's key differs ("Name" for the agent, "Service" for the catalog).
std::optional<std::string> decode_service_fields(const json::object& o, std::string_view name_key,
                                                 catalog::service& s) {
    TRY(o.get_string("Kind", s.kind));
    TRY(o.get_string("ID", s.id));
    TRY(o.get_string(name_key, s.name));
    TRY(o.get_strings("Tags", s.tags));
    TRY(o.get("Port", s.port));
    TRY(o.get_string("Address", s.address));
    TRY(decode_tagged(o, s));
    TRY(o.get_bool("EnableTagOverride", s.enable_tag_override));
    TRY(get_sorted_map(o, "Meta", s.meta));
    json::object w;
    TRY(o.get_object("Weights", w));
    if (!w.empty()) {
        TRY(w.get("Passing", s.weight_passing));
        TRY(w.get("Warning", s.weight_warning));
    }
    return std::nullopt;
}
}  // namespace

std::optional<std::string> decode_check(const json::object& o, agent::check_definition& c) {
    return decode_check_type(o, c);  // decoder errors plain, validation errors "Invalid check: ..."
}

std::optional<std::string> decode_service(const json::object& o, catalog::service& s,
                                          std::vector<agent::check_definition>& checks) {
    TRY(decode_service_fields(o, "Name", s));
    if (s.port < 0 || s.port > 65535) return "Validation failed: invalid port";
    if (s.id.empty()) s.id = s.name;
    std::vector<json::object> defs;
    json::object one;
    TRY(o.get_object("Check", one));
    if (!one.empty()) defs.push_back(one);
    json::array many;
    TRY(o.get_array("Checks", many));
    for (const json::value& v : many) {
        json::object c;
        TRY(v.get(c));
        defs.push_back(c);
    }
    for (size_t i = 0; i < defs.size(); ++i) {
        agent::check_definition c;
        if (auto e = decode_check_type(defs[i], c)) return e;
        if (c.row.check_id.empty())
            c.row.check_id = defs.size() == 1 ? "service:" + s.id : "service:" + s.id + ":" + std::to_string(i + 1);
        if (c.row.name.empty()) c.row.name = "Service '" + s.name + "' check";
        c.row.service_id = s.id;
        checks.push_back(std::move(c));
    }
    return std::nullopt;
}

std::optional<std::string> decode_catalog_service(const json::object& o, catalog::service& s) {
    TRY(decode_service_fields(o, "Service", s));
    return std::nullopt;
}

std::optional<std::string> decode_catalog_check(const json::object& o, catalog::check& c) {
    TRY(o.get_string("Node", c.node));
    TRY(o.get_string("CheckID", c.check_id));
    TRY(o.get_string("Name", c.name));
    c.status.clear();
    TRY(o.get_string("Status", c.status));
    TRY(get_cstr(o, "Notes", c.notes));
    TRY(o.get_string("Output", c.output));
    TRY(o.get_string("ServiceID", c.service_id));
    TRY(get_cstr(o, "Type", c.type));
    json::object d;
    TRY(o.get_object("Definition", d));
    if (!d.empty()) {
        catalog::check_definition def;
        TRY(get_cstr(d, "HTTP", def.http));
        TRY(get_cstr(d, "TCP", def.tcp));
        TRY(get_cstr(d, "UDP", def.udp));
        TRY(get_cstr(d, "GRPC", def.grpc));
        TRY(get_cstr(d, "Method", def.method));
        TRY(get_cstr(d, "Body", def.body));
        TRY(get_cstr(d, "TLSServerName", def.tls_server_name));
        TRY(d.get_bool("TLSSkipVerify", def.tls_skip_verify));
        TRY(get_duration_ns(d, "Interval", def.interval_ns));
        TRY(get_duration_ns(d, "Timeout", def.timeout_ns));
        TRY(get_duration_ns(d, "DeregisterCriticalServiceAfter", def.deregister_critical_service_after_ns));
        c.set_definition(std::move(def));
    }
    return std::nullopt;
}

#undef TRY

}  // namespace pharos::api
