#include "http_api.hh"

#include <charconv>
#include <random>

namespace pharos::api {
using namespace engine;
using http::response;

std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view s) {
    if (s.empty()) return std::nullopt;
    bool neg = false;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s == "0") return std::chrono::nanoseconds(0);
    if (s.empty()) return std::nullopt;
    long double total = 0;
    while (!s.empty()) {
        size_t i = 0;
        while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
        if (i == 0) return std::nullopt;
        std::string num(s.substr(0, i));
        if (num == ".") return std::nullopt;
        long double v = std::strtold(num.c_str(), nullptr);
        s.remove_prefix(i);
        size_t u = 0;
        while (u < s.size() && !std::isdigit(static_cast<unsigned char>(s[u])) && s[u] != '.') ++u;
        std::string_view unit = s.substr(0, u);
        s.remove_prefix(u);
        long double mult;
        if (unit == "ns")
            mult = 1;
        else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs")
            mult = 1e3;
        else if (unit == "ms")
            mult = 1e6;
        else if (unit == "s")
            mult = 1e9;
        else if (unit == "m")
            mult = 60e9;
        else if (unit == "h")
            mult = 3600e9;
        else
            return std::nullopt;
        total += v * mult;
    }
    if (total > 9.2e18L) return std::nullopt;
    return std::chrono::nanoseconds(int64_t(neg ? -total : total));
}

namespace {

response consul_error(unsigned status, std::string msg) { return response::text(status, std::move(msg)); }

void index_headers(response& r, uint64_t index) {
    r.with_header("X-Consul-Index", std::to_string(index ? index : 1));
    r.with_header("X-Consul-Knownleader", "true");
    r.with_header("X-Consul-Lastcontact", "0");
    r.with_header("X-Consul-Effective-Consistency", "leader");
}

bool parse_u64(const std::string& s, uint64_t& out) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// Blocking-query parameters: index and wait (clamped to 10 min, default 5 min,
// plus up to wait/16 of jitter as Consul adds).
std::optional<response> parse_blocking(const http::request& r, uint64_t& index, deadline& dl) {
    index = 0;
    dl = no_deadline;
    if (auto* s = r.query_param("index"); s && !s->empty()) {
        if (!parse_u64(*s, index)) return consul_error(400, "Invalid index");
    }
    if (index == 0) return std::nullopt;
    std::chrono::nanoseconds wait = std::chrono::minutes(5);
    if (auto* s = r.query_param("wait"); s && !s->empty()) {
        auto d = parse_go_duration(*s);
        if (!d || d->count() < 0) return consul_error(400, "Invalid wait time");
        wait = *d;
    }
    if (wait > std::chrono::minutes(10)) wait = std::chrono::minutes(10);
    if (wait.count() == 0) wait = std::chrono::minutes(5);
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    auto jitter = std::chrono::nanoseconds(wait.count() / 16 ? rng() % uint64_t(wait.count() / 16) : 0);
    dl = clock::now() + wait + jitter;
    return std::nullopt;
}

task<kv::read_result> kv_read_on_owner(sharded<kv::service>* kv, kv::query q, deadline dl) {
    auto fn = [kv, q = std::move(q), dl]() mutable { return kv->local().read(std::move(q), dl); };
    co_return co_await submit_to(0, std::move(fn));
}

task<kv::write_result> kv_write_on_owner(sharded<kv::service>* kv, kv::write_op op) {
    auto fn = [kv, op = std::move(op)]() mutable { return kv->local().write(std::move(op)); };
    co_return co_await submit_to(0, std::move(fn));
}

task<response> kv_endpoint(const context* ctx, http::request& r, std::string key) {
    if (r.method == "GET") {
        kv::query q;
        q.key = std::move(key);
        bool recurse = r.has_query("recurse"), keys = r.has_query("keys");
        if (keys)
            q.mode = kv::read_mode::keys;
        else if (recurse)
            q.mode = kv::read_mode::recurse;
        if (auto* s = r.query_param("separator"))
            q.separator = *s;
        else if (auto* s2 = r.query_param("seperator"))
            q.separator = *s2;
        q.raw = r.has_query("raw") && q.mode == kv::read_mode::single;
        if (q.mode == kv::read_mode::single && q.key.empty()) co_return consul_error(400, "Missing key name");
        if (r.has_query("stale") && r.has_query("consistent"))
            co_return consul_error(400, "Cannot specify ?stale with ?consistent, conflicting semantics.");
        deadline dl;
        if (auto bad = parse_blocking(r, q.min_index, dl)) co_return std::move(*bad);
        bool raw = q.raw;
        auto res = co_await kv_read_on_owner(ctx->kv, std::move(q), dl);
        response out;
        if (!res.found) {
            out.status = 404;
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
        co_return out;
    }
    if (r.method == "PUT" || r.method == "POST") {
        if (key.empty()) co_return consul_error(400, "Missing key name");
        kv::write_op op;
        op.key = std::move(key);
        if (auto* s = r.query_param("flags"); s && !parse_u64(*s, op.flags))
            co_return consul_error(400, "Invalid flags");
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
            op.kind = kv::write_kind::cas;
        } else if (acq) {
            op.kind = kv::write_kind::acquire;
            op.session = *r.query_param("acquire");
        } else if (rel) {
            op.kind = kv::write_kind::release;
            op.session = *r.query_param("release");
        }
        auto res = co_await kv_write_on_owner(ctx->kv, std::move(op));
        if (!res.error.empty()) co_return consul_error(500, res.error);
        co_return response::json(res.ok ? "true" : "false");
    }
    if (r.method == "DELETE") {
        kv::write_op op;
        op.key = std::move(key);
        bool recurse = r.has_query("recurse");
        if (r.has_query("cas")) {
            if (recurse) co_return consul_error(400, "Conflicting flags: cas and recurse");
            if (!parse_u64(*r.query_param("cas"), op.cas)) co_return consul_error(400, "Invalid cas index");
            op.kind = kv::write_kind::remove_cas;
        } else {
            op.kind = recurse ? kv::write_kind::remove_tree : kv::write_kind::remove;
        }
        if (op.key.empty() && !recurse) co_return consul_error(400, "Missing key name");
        auto res = co_await kv_write_on_owner(ctx->kv, std::move(op));
        co_return response::json(res.ok ? "true" : "false");
    }
    response out = consul_error(405, "method " + r.method + " not allowed");
    out.with_header("Allow", "OPTIONS,GET,PUT,DELETE");
    co_return out;
}

}  // namespace

task<response> handle(const context* ctx, http::request& r) {
    const std::string& p = r.path;
    if (p.rfind("/v1/kv/", 0) == 0) {
        if (r.method == "OPTIONS") {
            response o = response::text(200, "");
            o.with_header("Allow", "OPTIONS,GET,PUT,DELETE");
            co_return o;
        }
        std::string key = p.substr(7);
        co_return co_await kv_endpoint(ctx, r, std::move(key));
    }
    if (p == "/v1/status/leader" || p == "/v1/status/peers") {
        if (r.method != "GET") {
            response out = consul_error(405, "method " + r.method + " not allowed");
            out.with_header("Allow", "OPTIONS,GET");
            co_return out;
        }
        json::writer w;
        if (p == "/v1/status/leader")
            w.string(ctx->server_addr);
        else
            w.begin_array().string(ctx->server_addr).end_array();
        co_return response::json(w.take());
    }
    if (p == "/")
        co_return response::text(
            200,
            "Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart.");
    co_return consul_error(404, "Invalid URL path: not a recognized HTTP API endpoint");
}

}  // namespace pharos::api
