// /v1/session: create, destroy and renew go through the state owner (renew
// only touches the owner's TTL timers); info, node and list read this shard's
// snapshot and block on the sessions table.
#include "common.hh"
#include "protocols/json/duration.hh"
#include "services/session/ttl.hh"

namespace pharos::api {
using namespace engine;

namespace {

constexpr int64_t max_session_ttl_ns = 24LL * 3600 * 1'000'000'000;  // structs.SessionTTLMax
constexpr int64_t lock_delay_min_threshold = 1000;                  // below: seconds, as Consul

std::string render_one_list(const std::vector<const session::session*>& l) {
    json::writer w;
    session::write_sessions(w, l);
    return w.take();
}

// The body of PUT /v1/session/create over Consul's defaults; a returned string is a 400.
std::optional<std::string> decode_session(const request& r, session::session& s, std::string& behavior) {
    json::document doc;
    json::object o;
    if (auto err = doc.parse(r.body)) return err;
    if (auto err = doc.root_object(o)) return err;
    if (auto e = o.get_string("Name", s.name)) return e;
    if (auto e = o.get_string("Node", s.node)) return e;
    if (auto v = o.find("LockDelay")) {
        int64_t d = 0;
        if (v->is_string()) {
            std::string text;
            if (auto e = v->get(text)) return e;
            auto parsed = json::parse_go_duration(text);
            if (!parsed) return "time: invalid duration \"" + text + "\"";
            d = parsed->count();
        } else if (v->is_number()) {
            double x = 0;
            if (auto e = v->get(x)) return e;
            d = int64_t(x);
        } else {
            return v->type_error("time.Duration");
        }
        if (d < lock_delay_min_threshold) d *= 1'000'000'000;
        s.lock_delay_ns = d;
    }
    if (auto e = o.get_strings("Checks", s.checks)) return e;
    if (auto e = o.get_strings("NodeChecks", s.node_checks)) return e;
    json::array sc;
    if (auto e = o.get_array("ServiceChecks", sc)) return e;
    if (o.has("ServiceChecks")) {
        s.service_checks_null = false;
        for (const json::value& v : sc) {
            json::object c;
            if (auto e = v.get(c)) return e;
            session::service_check x;
            if (auto e = c.get_string("ID", x.id)) return e;
            if (auto e = c.get_string("Namespace", x.ns)) return e;
            s.service_checks.push_back(std::move(x));
        }
    }
    if (auto e = o.get_string("Behavior", behavior)) return e;
    if (auto e = o.get_string("TTL", s.ttl)) return e;
    return std::nullopt;
}

task<response> session_create(const context* ctx, request& r) {
    if (auto* dc = r.query_param("dc"); dc && !dc->empty() && *dc != ctx->datacenter)
        co_return consul_error(500, "No path to datacenter");
    session::session s;
    s.node = ctx->agent->cfg().node_name;
    s.node_checks.push_back("serfHealth");
    s.checks.push_back("serfHealth");
    std::string behavior;
    if (!r.body.empty()) {
        if (auto err = decode_session(r, s, behavior)) co_return consul_error(400, "Request decode failed: " + *err);
    }
    // Consul's fixupEmptySessionChecks.
    if (s.checks.empty())
        s.node_checks.clear();
    else if (s.checks.size() == 1 && s.checks[0] == "serfHealth")
        s.checks.clear();
    else if (s.node_checks.empty())
        s.checks.clear();
    if (s.node.empty()) co_return consul_error(500, "Must provide Node");
    if (behavior == "delete")
        s.behavior = session::keys_behavior::remove;
    else if (behavior != "release" && !behavior.empty())
        co_return consul_error(500, "Invalid Behavior setting '" + behavior + "'");
    if (!s.ttl.empty()) {
        auto ttl = json::parse_go_duration(s.ttl);
        if (!ttl) co_return consul_error(500, "Session TTL '" + s.ttl + "' invalid: time: invalid duration \"" + s.ttl + "\"");
        int64_t min = ctx->agent->cfg().session_ttl_min.count();
        if (ttl->count() != 0 && (ttl->count() < min || ttl->count() > max_session_ttl_ns))
            co_return consul_error(500, "Invalid Session TTL '" + std::to_string(ttl->count()) + "', must be between [" +
                                            json::format_go_duration(std::chrono::nanoseconds(min)) + "=" +
                                            json::format_go_duration(std::chrono::nanoseconds(max_session_ttl_ns)) +
                                            "]");
    }
    state::result res;
    for (int attempt = 0; attempt < 3; ++attempt) {
        state::session_create c;
        c.s = s;
        c.s.id = agent::random_uuid_v4();
        std::string id = c.s.id;
        res = co_await ctx->state->local().write(state::command(std::move(c)));
        if (res.error.empty()) {
            s.id = id;
            break;
        }
        if (res.error.find("duplicate session ID") == std::string::npos) break;
    }
    if (!res.error.empty()) co_return consul_error(500, res.error);
    if (int64_t ttl = session::ttl_ns(s); ttl > 0 && ctx->session_timers) {
        session::ttl_timers* t = ctx->session_timers;
        std::string id = s.id;
        auto fn = [t, id, ttl]() { t->reset(id, ttl); };
        co_await submit_to(ctx->state->local().owner(), std::move(fn));
    }
    json::writer w;
    w.begin_object().key("ID").string(s.id).end_object();
    co_return response::json(w.take());
}

task<response> session_destroy(const context* ctx, std::string id) {
    if (id.empty()) co_return consul_error(400, "Missing session");
    state::session_destroy d;
    d.id = id;
    auto res = co_await ctx->state->local().write(state::command(std::move(d)));
    if (!res.error.empty()) co_return consul_error(500, res.error);
    if (ctx->session_timers) {
        session::ttl_timers* t = ctx->session_timers;
        auto fn = [t, id]() { t->clear(id); };
        co_await submit_to(ctx->state->local().owner(), std::move(fn));
    }
    co_return response::json("true");
}

task<response> session_renew(const context* ctx, std::string id) {
    if (id.empty()) co_return consul_error(400, "Missing session");
    if (!ctx->session_timers) co_return consul_error(500, "session timers are not running");
    session::ttl_timers* t = ctx->session_timers;
    auto fn = [t, id]() { return t->renew(id); };
    std::optional<session::session> s = co_await submit_to(ctx->state->local().owner(), std::move(fn));
    if (!s) co_return consul_error(404, "Session id '" + id + "' not found");
    std::vector<const session::session*> l;
    l.push_back(&*s);
    co_return response::json(render_one_list(l));
}

enum class list_kind { info, node, all };

rendered render_sessions(list_kind k, const std::string& arg, const state::snapshot& st) {
    rendered out;
    out.index = st.sessions.index() ? st.sessions.index() : 1;
    std::vector<const session::session*> l;
    if (k == list_kind::info) {
        if (const session::session* s = st.sessions.get(arg)) l.push_back(s);
    } else if (k == list_kind::node) {
        st.sessions.for_each_on_node(arg, [&](const session::session& s) { l.push_back(&s); });
    } else {
        st.sessions.for_each([&](const session::session& s) { l.push_back(&s); });
    }
    out.body = render_one_list(l);
    return out;
}

task<response> session_read(const context* ctx, request& r, list_kind k, std::string arg) {
    if (k == list_kind::info && arg.empty()) co_return consul_error(400, "Missing session");
    if (k == list_kind::node && arg.empty()) co_return consul_error(400, "Missing node name");
    read_options o;
    if (auto bad = parse_read_options(ctx, r, o)) co_return std::move(*bad);
    render_fn fn = [k, arg](const state::snapshot& s) { return render_sessions(k, arg, s); };
    std::string key = "session" + std::to_string(int(k));
    key.push_back('\0');
    key += arg;
    co_return blocking_read(ctx, o, state::topic::sessions_table, "", std::move(fn), std::move(key), to_response);
}

}  // namespace

task<std::optional<response>> session_routes(const context* ctx, request& r) {
    const std::string& p = r.path;
    if (p.rfind("/v1/session/", 0) != 0) co_return std::nullopt;
    if (p == "/v1/session/create") {
        if (r.method != "PUT") co_return method_not_allowed(r, "PUT");
        co_return co_await session_create(ctx, r);
    }
    if (auto id = path_tail(p, "/v1/session/destroy/")) {
        if (r.method != "PUT") co_return method_not_allowed(r, "PUT");
        co_return co_await session_destroy(ctx, *id);
    }
    if (auto id = path_tail(p, "/v1/session/renew/")) {
        if (r.method != "PUT") co_return method_not_allowed(r, "PUT");
        co_return co_await session_renew(ctx, *id);
    }
    if (auto id = path_tail(p, "/v1/session/info/")) {
        if (r.method != "GET") co_return method_not_allowed(r, "GET");
        co_return co_await session_read(ctx, r, list_kind::info, *id);
    }
    if (auto node = path_tail(p, "/v1/session/node/")) {
        if (r.method != "GET") co_return method_not_allowed(r, "GET");
        co_return co_await session_read(ctx, r, list_kind::node, *node);
    }
    if (p == "/v1/session/list") {
        if (r.method != "GET") co_return method_not_allowed(r, "GET");
        co_return co_await session_read(ctx, r, list_kind::all, "");
    }
    co_return std::nullopt;
}

}  // namespace pharos::api
