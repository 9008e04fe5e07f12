// /v1/kv: reads from this shard's snapshot (blocking on the key or prefix),
// writes through the state owner.
#include "common.hh"

namespace pharos::api {
using namespace engine;

namespace {

enum class read_mode { single, recurse, keys };

struct kv_query {
    std::string key;
    read_mode mode = read_mode::single;
    std::string separator;
    bool raw = false;
};

rendered render_kv(const kv_query& q, const state::snapshot& s) {
    const kv::store& kv = s.kv;
    rendered r;
    switch (q.mode) {
        case read_mode::single: {
            r.index = kv.key_index(q.key);
            const kv::entry* e = kv.get(q.key);
            if (!e) {
                r.status = 404;
                break;
            }
            if (q.raw)
                r.body = e->value;
            else
                r.body = kv::to_json(std::vector<const kv::entry*>{e});
            break;
        }
        case read_mode::recurse: {
            r.index = kv.prefix_index(q.key);
            auto l = kv.list(q.key);
            if (l.empty())
                r.status = 404;
            else
                r.body = kv::to_json(l);
            break;
        }
        case read_mode::keys: {
            r.index = kv.prefix_index(q.key);
            auto keys = kv.keys(q.key, q.separator);
            // Consul (KVSGetKeys): 404 for a prefix with no keys, but [] for the root.
            if (keys.empty() && !q.key.empty()) {
                r.status = 404;
                break;
            }
            json::writer w;
            w.begin_array();
            for (auto& k : keys) w.string(k);
            w.end_array();
            r.body = w.take();
            break;
        }
    }
    if (r.index == 0) r.index = 1;
    return r;
}

response kv_response(rendered res, bool raw) {
    response out;
    if (res.status != 200) {
        out.status = res.status;
    } else if (raw) {
        out = response::text(200, std::move(res.body));
        out.headers.clear();
        out.with_header("Content-Type", "text/plain; charset=utf-8");
        out.with_header("X-Content-Type-Options", "nosniff");
        out.with_header("Content-Security-Policy", "sandbox");
    } else {
        out = response::json(std::move(res.body));
    }
    index_headers(out, res.index);
    return out;
}

response kv_raw_response(rendered res) { return kv_response(std::move(res), true); }
response kv_json_response(rendered res) { return kv_response(std::move(res), false); }

task<response> kv_get(const context* ctx, request& r, std::string key) {
    kv_query q;
    q.key = std::move(key);
    if (r.has_query("keys"))
        q.mode = read_mode::keys;
    else if (r.has_query("recurse"))
        q.mode = read_mode::recurse;
    if (auto* s = r.query_param("separator"))
        q.separator = *s;
    else if (auto* s2 = r.query_param("seperator"))
        q.separator = *s2;
    q.raw = r.has_query("raw") && q.mode == read_mode::single;
    if (q.mode == read_mode::single && q.key.empty()) co_return consul_error(400, "Missing key name");
    read_options o;
    if (auto bad = parse_read_options(ctx, r, o)) co_return std::move(*bad);
    bool raw = q.raw;
    if (o.min_index == 0) co_return kv_response(render_kv(q, ctx->state->local().read()), raw);
    state::topic t = q.mode == read_mode::single ? state::topic::kv_key : state::topic::kv_prefix;
    std::string name = q.key;
    std::string cache_key = std::to_string(int(q.mode)) + (q.raw ? "r" : "j") + q.separator;
    cache_key.push_back('\0');
    cache_key += q.key;
    render_fn fn = [q = std::move(q)](const state::snapshot& s) { return render_kv(q, s); };
    co_return blocking_read(ctx, o, t, std::move(name), std::move(fn), std::move(cache_key),
                            raw ? kv_raw_response : kv_json_response);
}

task<response> kv_write(const context* ctx, state::kv_op op) {
    auto res = co_await ctx->state->local().write(state::command(std::move(op)));
    if (!res.error.empty()) co_return consul_error(500, res.error);
    co_return response::json(res.ok ? "true" : "false");
}

task<response> kv_put(const context* ctx, request& r, std::string key) {
    if (key.empty()) co_return consul_error(400, "Missing key name");
    state::kv_op op;
    op.key = std::move(key);
    if (auto* s = r.query_param("flags"); s && !parse_u64(*s, op.flags)) co_return consul_error(400, "Invalid flags");
    bool has_cas = r.has_query("cas"), acq = r.has_query("acquire"), rel = r.has_query("release");
    if (int(has_cas) + int(acq) + int(rel) > 1)
        co_return consul_error(400, "Conflicting flags: cas, acquire and release are mutually exclusive");
    if (r.body.size() > ctx->kv_max_value_size)
        co_return consul_error(413, "Request body(" + std::to_string(r.body.size()) +
                                        " bytes) too large, max size: " + std::to_string(ctx->kv_max_value_size) +
                                        " bytes. See https://developer.hashicorp.com/consul/docs/agent/"
                                        "config/config-files#kv_max_value_size.");
    op.value = std::move(r.body);
    if (has_cas) {
        if (!parse_u64(*r.query_param("cas"), op.cas)) co_return consul_error(400, "Invalid cas index");
        op.verb = state::kv_verb::cas;
    } else if (acq) {
        op.verb = state::kv_verb::lock;
        op.session = *r.query_param("acquire");
    } else if (rel) {
        op.verb = state::kv_verb::unlock;
        op.session = *r.query_param("release");
    }
    co_return co_await kv_write(ctx, std::move(op));
}

task<response> kv_delete(const context* ctx, request& r, std::string key) {
    state::kv_op op;
    op.key = std::move(key);
    bool recurse = r.has_query("recurse");
    if (r.has_query("cas")) {
        if (recurse) co_return consul_error(400, "Conflicting flags: cas and recurse");
        if (!parse_u64(*r.query_param("cas"), op.cas)) co_return consul_error(400, "Invalid cas index");
        op.verb = state::kv_verb::remove_cas;
    } else {
        op.verb = recurse ? state::kv_verb::remove_tree : state::kv_verb::remove;
    }
    if (op.key.empty() && !recurse) co_return consul_error(400, "Missing key name");
    co_return co_await kv_write(ctx, std::move(op));
}

}  // namespace

task<std::optional<response>> kv_routes(const context* ctx, request& r) {
    const std::string& p = r.path;
    if (p.rfind("/v1/kv/", 0) != 0 && p != "/v1/kv") co_return std::nullopt;
    std::string key = p.size() > 7 ? p.substr(7) : std::string();
    if (r.method == "GET") co_return co_await kv_get(ctx, r, std::move(key));
    if (r.method == "PUT" || r.method == "POST") co_return co_await kv_put(ctx, r, std::move(key));
    if (r.method == "DELETE") co_return co_await kv_delete(ctx, r, std::move(key));
    co_return method_not_allowed(r, "GET,PUT,DELETE");
}

}  // namespace pharos::api
