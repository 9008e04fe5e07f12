// PUT /v1/txn: Consul's transaction endpoint. The body is decoded into
// txn::ops (values base64, as Consul); a read-only transaction is answered
// from this shard's snapshot, anything else is one command on the state owner,
// applied all or nothing (200 with Results, or 409 with Errors).
#include "common.hh"

namespace pharos::api {
using namespace engine;

namespace {

#define TRY(expr)                        \
    do {                                 \
        if (auto e_ = (expr)) return e_; \
    } while (0)

// A decode failure: the status (400 or 413) and Consul's text.
struct bad {
    unsigned status;
    std::string text;
};

std::optional<std::string> decode_kv(const json::object& o, txn::kv_op& op) {
    TRY(o.get_string("Verb", op.verb));
    TRY(o.get_string("Key", op.key));
    TRY(o.get_uint("Flags", op.flags));
    TRY(o.get_uint("Index", op.index));
    TRY(o.get_string("Session", op.session));
    if (auto v = o.find("Value")) {
        if (!v->is_string()) return "unexpected value type: " + std::string(v->kind());
        std::string text;
        TRY(v->get(text));
        if (!json::base64_decode(text, op.value)) return std::string("failed to decode value: illegal base64 data");
    }
    return std::nullopt;
}

std::optional<std::string> decode_node(const json::object& o, const context* ctx, txn::node_op& op) {
    TRY(o.get_string("Verb", op.verb));
    json::object n;
    TRY(o.get_object("Node", n));
    catalog::node& row = op.n;
    TRY(n.get_string("ID", row.id));
    TRY(n.get_string("Node", row.name));
    TRY(n.get_string("Address", row.address));
    TRY(n.get_string("Datacenter", row.datacenter));
    if (row.datacenter.empty()) row.datacenter = ctx->datacenter;
    std::map<std::string, std::string> m;
    TRY(n.get("TaggedAddresses", m));
    row.tagged_addresses.assign(m.begin(), m.end());
    m.clear();
    TRY(n.get("Meta", m));
    row.meta.assign(m.begin(), m.end());
    TRY(n.get_uint("ModifyIndex", row.modify_index));
    return std::nullopt;
}

std::optional<std::string> decode_service_op(const json::object& o, txn::service_op& op) {
    TRY(o.get_string("Verb", op.verb));
    TRY(o.get_string("Node", op.node));
    json::object s;
    TRY(o.get_object("Service", s));
    TRY(decode_catalog_service(s, op.s));
    TRY(s.get_uint("ModifyIndex", op.s.modify_index));
    return std::nullopt;
}

std::optional<std::string> decode_check_op(const json::object& o, txn::check_op& op) {
    TRY(o.get_string("Verb", op.verb));
    json::object c;
    TRY(o.get_object("Check", c));
    TRY(decode_catalog_check(c, op.c));
    TRY(c.get_strings("ServiceTags", op.c.service_tags));
    TRY(c.get_string("ServiceName", op.c.service_name));
    TRY(c.get_uint("ModifyIndex", op.c.modify_index));
    return std::nullopt;
}

#undef TRY

std::optional<bad> decode_ops(const context* ctx, const request& r, txn::request& out) {
    json::document doc;
    if (auto err = doc.parse(r.body)) return bad{400, "Failed to parse body: " + *err};
    json::value root = doc.root();
    json::array ops;
    if (root.is_null()) return std::nullopt;
    if (auto err = root.get(ops)) return bad{400, "Failed to parse body: " + *err};
    if (ops.size() > txn::max_ops)
        return bad{413, "Transaction contains too many operations (" + std::to_string(ops.size()) + " > " +
                            std::to_string(txn::max_ops) + ")"};
    for (const json::value& v : ops) {
        json::object o;
        if (auto err = v.get(o)) return bad{400, "Failed to parse body: " + *err};
        json::object kv, node, svc, chk;
        std::optional<std::string> err;
        if (!err) err = o.get_object("KV", kv);
        if (!err) err = o.get_object("Node", node);
        if (!err) err = o.get_object("Service", svc);
        if (!err) err = o.get_object("Check", chk);
        if (err) return bad{400, "Failed to parse body: " + *err};
        if (!kv.empty()) {
            txn::kv_op op;
            if (auto e = decode_kv(kv, op)) return bad{400, "Failed to parse body: " + *e};
            if (op.value.size() > ctx->kv_max_value_size)
                return bad{413, "Value for key \"" + op.key + "\" is too large (" + std::to_string(op.value.size()) +
                                    " > " + std::to_string(ctx->kv_max_value_size) + " bytes)"};
            out.ops.push_back(std::move(op));
        } else if (!node.empty()) {
            txn::node_op op;
            if (auto e = decode_node(node, ctx, op)) return bad{400, "Failed to parse body: " + *e};
            out.ops.push_back(std::move(op));
        } else if (!svc.empty()) {
            txn::service_op op;
            if (auto e = decode_service_op(svc, op)) return bad{400, "Failed to parse body: " + *e};
            out.ops.push_back(std::move(op));
        } else if (!chk.empty()) {
            txn::check_op op;
            if (auto e = decode_check_op(chk, op)) return bad{400, "Failed to parse body: " + *e};
            out.ops.push_back(std::move(op));
        }
        // An op naming none of these is dropped, as Consul's convertOps does.
    }
    return std::nullopt;
}

response txn_answer(const txn::response& res, bool read_only) {
    json::writer w;
    txn::write_response(w, res, read_only);
    response out = response::json(w.take(), res.errors.empty() ? 200 : 409);
    if (read_only) {
        out.with_header("X-Consul-Knownleader", "true");
        out.with_header("X-Consul-Lastcontact", "0");
    }
    return out;
}

task<response> txn_endpoint(const context* ctx, request& r) {
    size_t max_len = std::max(ctx->txn_max_req_len, ctx->kv_max_value_size);
    if (r.body.size() > max_len)
        co_return consul_error(413, "Request body too large, max size: " + std::to_string(max_len) + " bytes");
    if (auto* dc = r.query_param("dc"); dc && !dc->empty() && *dc != ctx->datacenter)
        co_return consul_error(500, "No path to datacenter");
    txn::request req;
    if (auto b = decode_ops(ctx, r, req)) co_return consul_error(b->status, std::move(b->text));
    if (txn::is_read_only(req)) {
        if (r.has_query("stale") && r.has_query("consistent"))
            co_return consul_error(400, "Cannot specify ?stale with ?consistent, conflicting semantics.");
        txn::response res = txn::read(ctx->state->local().read(), req);
        co_return txn_answer(res, true);
    }
    auto out = co_await ctx->state->local().write(state::command(std::move(req)));
    if (!out.error.empty()) co_return consul_error(500, out.error);
    if (!out.txn) co_return consul_error(500, "transaction produced no response");
    co_return txn_answer(*out.txn, false);
}

}  // namespace

task<std::optional<response>> txn_routes(const context* ctx, request& r) {
    if (r.path != "/v1/txn") co_return std::nullopt;
    if (r.method != "PUT") co_return method_not_allowed(r, "PUT");
    co_return co_await txn_endpoint(ctx, r);
}

}  // namespace pharos::api
