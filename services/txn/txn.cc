#include "txn.hh"

#include <cstdio>

#include "services/catalog/json.hh"
#include "services/session/rules.hh"
#include "services/state/state.hh"

namespace pharos::txn {

namespace {

// Go's %q for the strings Consul's errors quote.
std::string q(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(char(c));
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out.push_back(char(c));
        }
    }
    out.push_back('"');
    return out;
}

bool kv_write(std::string_view v) {
    return v == "set" || v == "delete" || v == "delete-cas" || v == "delete-tree" || v == "cas" || v == "lock" ||
           v == "unlock";
}

kv::entry result_entry(const kv::entry& e, bool keep_value) {
    kv::entry c = e;
    if (!keep_value) c.value.clear();
    return c;
}

using error = std::optional<std::string>;

struct ctx {
    state::snapshot* mut;  // null: read-only
    const state::snapshot& ro;
    uint64_t index;
    int64_t now_ns;
    state::change_set* cs;
    std::vector<row>& out;
};

error run_kv(ctx& c, const kv_op& op) {
    const std::string& v = op.verb;
    if (kv_write(v) && !c.mut) return "cannot apply write " + q(v) + " in a read-only transaction";
    const kv::entry* e = nullptr;
    bool keep_value = false;
    if (v == "set") {
        c.mut->kv.set(op.key, op.value, op.flags, c.index);
        c.cs->kv_keys.push_back(op.key);
        e = c.mut->kv.get(op.key);
    } else if (v == "cas") {
        if (!c.mut->kv.set_cas(op.key, op.value, op.flags, op.index, c.index))
            return "failed to set key " + q(op.key) + ", index is stale";
        c.cs->kv_keys.push_back(op.key);
        e = c.mut->kv.get(op.key);
    } else if (v == "lock") {
        auto r = session::lock(*c.mut, op.key, op.value, op.flags, op.session, c.index, c.now_ns, false, *c.cs);
        if (!r.error.empty()) return r.error;
        if (!r.ok) return "failed to lock key " + q(op.key) + ", lock is already held";
        e = c.mut->kv.get(op.key);
    } else if (v == "unlock") {
        auto r = session::unlock(*c.mut, op.key, op.value, op.flags, op.session, c.index, *c.cs);
        if (!r.error.empty()) return r.error;
        if (!r.ok) return "failed to unlock key " + q(op.key) + ", lock isn't held, or is held by another session";
        e = c.mut->kv.get(op.key);
    } else if (v == "delete") {
        uint64_t before = c.mut->kv.table_index();
        c.mut->kv.remove(op.key, c.index);
        if (c.mut->kv.table_index() != before) c.cs->kv_keys.push_back(op.key);
        return std::nullopt;
    } else if (v == "delete-cas") {
        if (!c.mut->kv.remove_cas(op.key, op.index, c.index))
            return "failed to delete key " + q(op.key) + ", index is stale";
        c.cs->kv_keys.push_back(op.key);
        return std::nullopt;
    } else if (v == "delete-tree") {
        c.mut->kv.remove_tree(op.key, c.index, &c.cs->kv_keys);
        return std::nullopt;
    } else if (v == "get") {
        e = c.ro.kv.get(op.key);
        if (!e) return "key " + q(op.key) + " doesn't exist";
        keep_value = true;
    } else if (v == "get-or-empty") {
        e = c.ro.kv.get(op.key);
        if (!e) {
            kv::entry empty;
            empty.key = op.key;
            empty.flags = op.flags;
            empty.session = op.session;
            empty.modify_index = op.index;
            c.out.push_back(empty);
            return std::nullopt;
        }
        keep_value = true;
    } else if (v == "get-tree") {
        for (const kv::entry* x : c.ro.kv.list(op.key)) c.out.push_back(*x);
        return std::nullopt;
    } else if (v == "check-session") {
        e = c.ro.kv.get(op.key);
        if (!e) return "failed to check session, key " + q(op.key) + " doesn't exist";
        if (e->session != op.session)
            return "failed session check for key " + q(op.key) + ", current session " + q(e->session) +
                   " != " + q(op.session);
    } else if (v == "check-index") {
        e = c.ro.kv.get(op.key);
        if (!e) return "failed to check index, key " + q(op.key) + " doesn't exist";
        if (e->modify_index != op.index)
            return "failed index check for key " + q(op.key) + ", current modify index " +
                   std::to_string(e->modify_index) + " != " + std::to_string(op.index);
    } else if (v == "check-not-exists") {
        if (c.ro.kv.get(op.key)) return "key " + q(op.key) + " exists";
        return std::nullopt;
    } else {
        return "unknown KV verb " + q(v);
    }
    if (e) c.out.push_back(result_entry(*e, keep_value));
    return std::nullopt;
}

void add_touched(state::change_set& cs, catalog::touched& t) {
    cs.services.insert(cs.services.end(), t.services.begin(), t.services.end());
    cs.nodes.insert(cs.nodes.end(), t.nodes.begin(), t.nodes.end());
    cs.nodes_table |= t.nodes_table;
    cs.services_table |= t.services_table;
    cs.checks_table |= t.checks_table;
}

bool cat_write(std::string_view v) { return v != "get"; }

const catalog::node* find_node(const catalog::store& cat, const catalog::node& want) {
    if (!want.name.empty()) return cat.get_node(want.name);
    const catalog::node* hit = nullptr;
    if (!want.id.empty())
        cat.for_each_node([&](const catalog::node& n) {
            if (!hit && n.id == want.id) hit = &n;
        });
    return hit;
}

error run_node(ctx& c, const node_op& op) {
    const std::string& v = op.verb;
    if (v != "get" && v != "set" && v != "cas" && v != "delete" && v != "delete-cas") return "unknown Node verb " + q(v);
    if (cat_write(v) && !c.mut) return "cannot apply write " + q(v) + " in a read-only transaction";
    if (v == "get") {
        const catalog::node* n = find_node(c.ro.catalog, op.n);
        if (!n) return "node " + q(op.n.name) + " doesn't exist";
        c.out.push_back(*n);
        return std::nullopt;
    }
    catalog::store& cat = c.mut->catalog;
    const catalog::node* cur = cat.get_node(op.n.name);
    catalog::touched t;
    if (v == "set" || v == "cas") {
        if (v == "cas") {
            bool ok = op.n.modify_index == 0 ? !cur : (cur && cur->modify_index == op.n.modify_index);
            if (!ok) return "failed to set node " + q(op.n.name) + ", index is stale";
        }
        catalog::register_request req;
        req.n = op.n;
        if (auto err = cat.register_(req, c.index, &t)) return err;
        add_touched(*c.cs, t);
        if (const catalog::node* n = cat.get_node(op.n.name)) c.out.push_back(*n);
        return std::nullopt;
    }
    if (v == "delete-cas") {
        if (!cur || op.n.modify_index == 0 || cur->modify_index != op.n.modify_index)
            return "failed to delete node " + q(op.n.name) + ", index is stale";
    }
    catalog::deregister_request d;
    d.node = op.n.name;
    if (auto err = cat.deregister(d, c.index, &t)) return err;
    add_touched(*c.cs, t);
    return std::nullopt;
}

error run_service(ctx& c, const service_op& op) {
    const std::string& v = op.verb;
    if (v != "get" && v != "set" && v != "cas" && v != "delete" && v != "delete-cas")
        return "unknown Service verb " + q(v);
    if (cat_write(v) && !c.mut) return "cannot apply write " + q(v) + " in a read-only transaction";
    std::string id = op.s.id.empty() ? op.s.name : op.s.id;
    if (v == "get") {
        const catalog::service* s = c.ro.catalog.get_service(op.node, id);
        if (!s) return "service " + q(id) + " on node " + q(op.node) + " doesn't exist";
        c.out.push_back(*s);
        return std::nullopt;
    }
    catalog::store& cat = c.mut->catalog;
    const catalog::service* cur = cat.get_service(op.node, id);
    catalog::touched t;
    if (v == "set" || v == "cas") {
        if (v == "cas") {
            bool ok = op.s.modify_index == 0 ? !cur : (cur && cur->modify_index == op.s.modify_index);
            if (!ok) return "failed to set service " + q(id) + " on node " + q(op.node) + ", index is stale";
        }
        if (!cat.get_node(op.node)) return std::string("Missing node registration");
        catalog::register_request req;
        req.n.name = op.node;
        req.skip_node_update = true;
        req.svc = op.s;
        if (auto err = cat.register_(req, c.index, &t)) return err;
        add_touched(*c.cs, t);
        if (const catalog::service* s = cat.get_service(op.node, id)) c.out.push_back(*s);
        return std::nullopt;
    }
    if (v == "delete-cas") {
        if (!cur || op.s.modify_index == 0 || cur->modify_index != op.s.modify_index)
            return "failed to delete service " + q(id) + " on node " + q(op.node) + ", index is stale";
    }
    catalog::deregister_request d;
    d.node = op.node;
    d.service_id = id;
    if (auto err = cat.deregister(d, c.index, &t)) return err;
    add_touched(*c.cs, t);
    return std::nullopt;
}

error run_check(ctx& c, const check_op& op) {
    const std::string& v = op.verb;
    const catalog::check& want = op.c;
    if (v != "get" && v != "set" && v != "cas" && v != "delete" && v != "delete-cas")
        return "unknown Check verb " + q(v);
    if (cat_write(v) && !c.mut) return "cannot apply write " + q(v) + " in a read-only transaction";
    if (v == "get") {
        const catalog::check* x = c.ro.catalog.get_check(want.node, want.check_id);
        if (!x) return "check " + q(want.check_id) + " on node " + q(want.node) + " doesn't exist";
        c.out.push_back(*x);
        return std::nullopt;
    }
    catalog::store& cat = c.mut->catalog;
    const catalog::check* cur = cat.get_check(want.node, want.check_id);
    catalog::touched t;
    if (v == "set" || v == "cas") {
        if (v == "cas") {
            bool ok = want.modify_index == 0 ? !cur : (cur && cur->modify_index == want.modify_index);
            if (!ok)
                return "failed to set check " + q(want.check_id) + " on node " + q(want.node) + ", index is stale";
        }
        if (!cat.get_node(want.node)) return std::string("Missing node registration");
        if (!want.service_id.empty() && !cat.get_service(want.node, want.service_id))
            return std::string("Missing service registration");
        catalog::register_request req;
        req.n.name = want.node;
        req.skip_node_update = true;
        req.checks.push_back(want);
        if (auto err = cat.register_(req, c.index, &t)) return err;
        add_touched(*c.cs, t);
        if (const catalog::check* x = cat.get_check(want.node, want.check_id)) c.out.push_back(*x);
        return std::nullopt;
    }
    if (v == "delete-cas") {
        if (!cur || want.modify_index == 0 || cur->modify_index != want.modify_index)
            return "failed to delete check " + q(want.check_id) + " on node " + q(want.node) + ", index is stale";
    }
    catalog::deregister_request d;
    d.node = want.node;
    d.check_id = want.check_id;
    if (auto err = cat.deregister(d, c.index, &t)) return err;
    add_touched(*c.cs, t);
    return std::nullopt;
}

template <class... F>
struct overloaded : F... {
    using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

response dispatch(state::snapshot* mut, const state::snapshot& ro, const request& r, uint64_t index, int64_t now_ns,
                  state::change_set* cs) {
    response out;
    ctx c{mut, ro, index, now_ns, cs, out.results};
    for (size_t i = 0; i < r.ops.size(); ++i) {
        auto visitor = overloaded{
            [&](const kv_op& o) { return run_kv(c, o); },
            [&](const node_op& o) { return run_node(c, o); },
            [&](const service_op& o) { return run_service(c, o); },
            [&](const check_op& o) { return run_check(c, o); },
        };
        if (error e = std::visit(visitor, r.ops[i])) out.errors.push_back(op_error{i, std::move(*e)});
    }
    if (!out.errors.empty()) out.results.clear();
    return out;
}

}  // namespace

bool is_write(const op& o) {
    if (auto* k = std::get_if<kv_op>(&o)) return kv_write(k->verb);
    if (auto* n = std::get_if<node_op>(&o)) return cat_write(n->verb);
    if (auto* s = std::get_if<service_op>(&o)) return cat_write(s->verb);
    return cat_write(std::get<check_op>(o).verb);
}

bool is_read_only(const request& r) {
    for (auto& o : r.ops)
        if (is_write(o)) return false;
    return true;
}

response apply(state::snapshot& st, const request& r, uint64_t index, int64_t now_ns, state::change_set& cs) {
    response out = dispatch(&st, st, r, index, now_ns, &cs);
    // Catalog ops may have broken sessions (a node or check gone, a check critical).
    if (out.errors.empty() && !cs.nodes.empty()) session::invalidate_broken(st, cs.nodes, index, now_ns, cs);
    return out;
}

response read(const state::snapshot& st, const request& r) { return dispatch(nullptr, st, r, 0, 0, nullptr); }

void write_response(json::writer& w, const response& r, bool read_only) {
    w.begin_object();
    w.key("Results");
    if (!r.errors.empty()) {
        w.null();
    } else {
        w.begin_array();
        for (auto& x : r.results) {
            w.begin_object();
            if (auto* e = std::get_if<kv::entry>(&x)) {
                w.key("KV");
                kv::write_entry(w, *e);
            } else if (auto* n = std::get_if<catalog::node>(&x)) {
                w.key("Node");
                catalog::write_node(w, *n);
            } else if (auto* s = std::get_if<catalog::service>(&x)) {
                w.key("Service");
                catalog::write_agent_service(w, *s);
            } else if (auto* c = std::get_if<catalog::check>(&x)) {
                w.key("Check");
                catalog::write_check(w, *c);
            }
            w.end_object();
        }
        w.end_array();
    }
    w.key("Errors");
    if (r.errors.empty()) {
        w.null();
    } else {
        w.begin_array();
        for (auto& e : r.errors) w.begin_object().key("OpIndex").number(uint64_t(e.op_index)).key("What").string(e.what).end_object();
        w.end_array();
    }
    if (read_only) {
        w.key("Index").number(uint64_t(0));
        w.key("LastContact").number(uint64_t(0));
        w.key("KnownLeader").boolean(true);
        w.key("ConsistencyLevel").string("leader");
        w.key("NotModified").boolean(false);
        w.key("Backend").number(uint64_t(0));
    }
    w.end_object();
}

}  // namespace pharos::txn
