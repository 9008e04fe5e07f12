#include "table.hh"

namespace pharos::session {

std::vector<std::string> session::check_ids() const {
    std::vector<std::string> out = checks;
    out.insert(out.end(), node_checks.begin(), node_checks.end());
    for (auto& c : service_checks) out.push_back(c.id);
    return out;
}

std::string table::node_prefix(std::string_view node) {
    std::string k(node);
    k.push_back('\0');
    return k;
}

std::string table::pair_key(std::string_view a, std::string_view b) {
    std::string k(a);
    k.push_back('\0');
    k.append(b);
    return k;
}

const session* table::get(std::string_view id) const {
    auto* p = by_id_.find(id);
    return p ? p->get() : nullptr;
}

std::vector<std::string> table::held_keys(std::string_view id) const {
    std::vector<std::string> out;
    std::string p = node_prefix(id);
    held_.for_each_prefix(p, [&](const std::string& k, uint8_t) { out.push_back(k.substr(p.size())); });
    return out;
}

int64_t table::lock_delay_until(std::string_view key) const {
    auto* p = delays_.find(key);
    return p ? *p : 0;
}

void table::insert(session s, uint64_t index) {
    s.create_index = s.modify_index = index;
    auto row = std::make_shared<const session>(std::move(s));
    by_id_.set(row->id, row);
    by_node_.set(pair_key(row->node, row->id), row);
    if (index > index_) index_ = index;
}

std::shared_ptr<const session> table::erase(std::string_view id, uint64_t index) {
    auto* p = by_id_.find(id);
    if (!p) return nullptr;
    std::shared_ptr<const session> row = *p;
    by_id_.erase(id);
    by_node_.erase(pair_key(row->node, row->id));
    held_.erase_prefix(node_prefix(id));
    if (index > index_) index_ = index;
    return row;
}

void table::add_held(std::string_view id, std::string_view key) { held_.set(pair_key(id, key), 1); }

void table::drop_held(std::string_view id, std::string_view key) { held_.erase(pair_key(id, key)); }

void table::set_lock_delay(std::string_view key, int64_t until_ns) {
    if (until_ns > 0)
        delays_.set(key, until_ns);
    else
        delays_.erase(key);
}

void write_sessions(json::writer& w, const std::vector<const session*>& l) {
    w.begin_array();
    for (const session* s : l) {
        w.begin_object();
        w.key("ID").string(s->id);
        w.key("Name").string(s->name);
        w.key("Node").string(s->node);
        w.key("LockDelay").number(s->lock_delay_ns);
        w.key("Behavior").string(s->behavior == keys_behavior::remove ? "delete" : "release");
        w.key("TTL").string(s->ttl);
        w.key("NodeChecks");
        if (s->node_checks_null) {
            w.null();
        } else {
            w.begin_array();
            for (auto& c : s->node_checks) w.string(c);
            w.end_array();
        }
        w.key("ServiceChecks");
        if (s->service_checks_null) {
            w.null();
        } else {
            w.begin_array();
            for (auto& c : s->service_checks) w.begin_object().key("ID").string(c.id).key("Namespace").string(c.ns).end_object();
            w.end_array();
        }
        if (!s->checks.empty()) {
            w.key("Checks").begin_array();
            for (auto& c : s->checks) w.string(c);
            w.end_array();
        }
        w.key("CreateIndex").number(s->create_index);
        w.key("ModifyIndex").number(s->modify_index);
        w.end_object();
    }
    w.end_array();
}

}  // namespace pharos::session
