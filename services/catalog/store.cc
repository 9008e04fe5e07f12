#include "store.hh"

namespace pharos::catalog {

bool valid_status(std::string_view s) {
    return s == "passing" || s == "warning" || s == "critical" || s == "maintenance";
}

health status_health(std::string_view s) noexcept {
    if (s == "passing") return health::passing;
    if (s == "warning") return health::warning;
    return health::critical;
}

const check_definition& empty_definition() noexcept {
    static const check_definition empty;
    return empty;
}

void check::set_definition(check_definition d) {
    if (d == empty_definition())
        definition.reset();
    else
        definition = std::make_shared<const check_definition>(std::move(d));
}

bool same_check(const check& a, const check& b) {
    return a.node == b.node && a.check_id == b.check_id && a.name == b.name && a.status == b.status &&
           a.notes == b.notes && a.output == b.output && a.service_id == b.service_id &&
           a.service_name == b.service_name && a.service_tags == b.service_tags && a.type == b.type &&
           a.exposed_port == b.exposed_port && (a.definition == b.definition || a.def() == b.def());
}

namespace {

bool same_node(const node& a, const node& b) {
    return a.id == b.id && a.name == b.name && a.address == b.address && a.datacenter == b.datacenter &&
           a.tagged_addresses == b.tagged_addresses && a.meta == b.meta;
}

bool same_addr(const std::vector<std::pair<std::string, service_address>>& a,
               const std::vector<std::pair<std::string, service_address>>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].first != b[i].first || a[i].second.address != b[i].second.address ||
            a[i].second.port != b[i].second.port)
            return false;
    return true;
}

bool same_service(const service& a, const service& b) {
    return a.node == b.node && a.id == b.id && a.name == b.name && a.kind == b.kind && a.tags == b.tags &&
           a.address == b.address && same_addr(a.tagged_addresses, b.tagged_addresses) && a.meta == b.meta &&
           a.port == b.port && a.weight_passing == b.weight_passing && a.weight_warning == b.weight_warning &&
           a.enable_tag_override == b.enable_tag_override;
}

void raise(uint64_t& i, uint64_t index) {
    if (index > i) i = index;
}

}  // namespace

std::string store::row_prefix(std::string_view node) {
    std::string k(node);
    k.push_back('\0');
    return k;
}

std::string store::row_key(std::string_view node, std::string_view id) {
    std::string k = row_prefix(node);
    k.append(id);
    return k;
}

std::string store::name_key(std::string_view name, std::string_view node, std::string_view id) {
    std::string k(name);
    k.push_back('\0');
    k.append(node);
    k.push_back('\0');
    k.append(id);
    return k;
}

const node* store::get_node(std::string_view name) const {
    auto* p = nodes_.find(name);
    return p ? p->get() : nullptr;
}

const service* store::get_service(std::string_view node, std::string_view id) const {
    auto* p = services_.find(row_key(node, id));
    return p ? p->get() : nullptr;
}

const check* store::get_check(std::string_view node, std::string_view check_id) const {
    auto* p = checks_.find(row_key(node, check_id));
    return p ? p->get() : nullptr;
}

std::shared_ptr<const check> store::check_row(std::string_view node, std::string_view check_id) const {
    auto* p = checks_.find(row_key(node, check_id));
    return p ? *p : nullptr;
}

uint64_t store::service_index(std::string_view name) const {
    auto* p = service_idx_.find(name);
    return p ? *p : 0;
}

uint64_t store::node_index(std::string_view name) const {
    auto* p = node_idx_.find(name);
    return p ? *p : 0;
}

void store::touch_service(std::string_view name, uint64_t index, touched* t) {
    service_idx_.set(name, index);
    if (t) t->services.emplace_back(name);
}

void store::touch_node(std::string_view name, uint64_t index, touched* t) {
    node_idx_.set(name, index);
    if (t) t->nodes.emplace_back(name);
}

void store::touch_node_services(std::string_view node, uint64_t index, touched* t) {
    std::vector<std::string> names;
    for_each_node_service(node, [&](const service& s) { names.push_back(s.name); });
    for (auto& n : names) touch_service(n, index, t);
}

void store::put_node(node n, uint64_t index, touched* t) {
    const node* cur = get_node(n.name);
    if (cur && same_node(*cur, n)) return;
    n.create_index = cur ? cur->create_index : index;
    n.modify_index = index;
    std::string name = n.name;
    nodes_.set(name, std::make_shared<const node>(std::move(n)));
    raise(nodes_index_, index);
    if (t) t->nodes_table = true;
    touch_node(name, index, t);
    // The node's columns are part of its services' answers, and of node-meta
    // filtered service lists (which block on the services table).
    touch_node_services(name, index, t);
    bool has_services = false;
    for_each_node_service(name, [&](const service&) { has_services = true; });
    if (has_services && t) t->services_table = true;
}

void store::put_service(service s, uint64_t index, touched* t) {
    const service* cur = get_service(s.node, s.id);
    if (cur && same_service(*cur, s)) return;
    if (cur && cur->name != s.name) {
        by_name_.erase(name_key(cur->name, cur->node, cur->id));
        touch_service(cur->name, index, t);
    }
    s.create_index = cur ? cur->create_index : index;
    s.modify_index = index;
    auto row = std::make_shared<const service>(std::move(s));
    services_.set(row_key(row->node, row->id), row);
    by_name_.set(name_key(row->name, row->node, row->id), row);
    raise(services_index_, index);
    if (t) t->services_table = true;
    touch_service(row->name, index, t);
    touch_node(row->node, index, t);
    // The service's checks carry its name and tags.
    std::vector<check> refresh;
    for_each_node_check(row->node, [&](const check& c) {
        if (c.service_id == row->id && (c.service_name != row->name || c.service_tags != row->tags)) refresh.push_back(c);
    });
    for (auto& c : refresh) {
        c.service_name = row->name;
        c.service_tags = row->tags;
        put_check(std::move(c), index, t);
    }
}

void store::put_check(check c, uint64_t index, touched* t) {
    const check* cur = get_check(c.node, c.check_id);
    if (cur && same_check(*cur, c)) return;
    // A check that leaves a service (or the node level) changes that answer too.
    bool moved = cur && (cur->service_id != c.service_id || cur->service_name != c.service_name);
    std::string old_service_id = moved ? cur->service_id : std::string();
    std::string old_service_name = moved ? cur->service_name : std::string();
    if (cur && c.definition != cur->definition && c.def() == cur->def()) c.definition = cur->definition;  // one copy
    c.create_index = cur ? cur->create_index : index;
    c.modify_index = index;
    auto row = std::make_shared<const check>(std::move(c));
    checks_.set(row_key(row->node, row->check_id), row);  // `cur` may be gone now
    raise(checks_index_, index);
    if (t) t->checks_table = true;
    touch_node(row->node, index, t);
    if (row->service_id.empty() || (moved && old_service_id.empty())) touch_node_services(row->node, index, t);
    if (!row->service_id.empty()) touch_service(row->service_name, index, t);
    if (moved && !old_service_id.empty() && old_service_name != row->service_name)
        touch_service(old_service_name, index, t);
}

void store::delete_check(const check& c, uint64_t index, touched* t) {
    std::string node = c.node, service_id = c.service_id, service_name = c.service_name;
    checks_.erase(row_key(c.node, c.check_id));  // `c` may be gone now
    raise(checks_index_, index);
    if (t) t->checks_table = true;
    touch_node(node, index, t);
    if (service_id.empty())
        touch_node_services(node, index, t);
    else
        touch_service(service_name, index, t);
}

void store::delete_service(const service& s, uint64_t index, touched* t) {
    std::string node = s.node, id = s.id, name = s.name;
    std::vector<check> doomed;
    for_each_node_check(node, [&](const check& c) {
        if (c.service_id == id) doomed.push_back(c);
    });
    for (auto& c : doomed) delete_check(c, index, t);
    services_.erase(row_key(node, id));
    by_name_.erase(name_key(name, node, id));
    raise(services_index_, index);
    if (t) t->services_table = true;
    touch_service(name, index, t);
    touch_node(node, index, t);
}

std::optional<std::string> store::register_(const register_request& req, uint64_t index, touched* t) {
    if (req.n.name.empty()) return "Must provide node";
    const node* existing = get_node(req.n.name);
    if (!req.skip_node_update && req.n.address.empty()) return "Must provide address";
    if (req.skip_node_update && !existing) return "Must provide address";
    if (req.svc) {
        if (req.svc->name.empty()) return "Must provide service name";
    }
    for (auto& c : req.checks) {
        if (!c.status.empty() && !valid_status(c.status)) return "Invalid check status: '" + c.status + "'";
        if (c.check_id.empty() && c.name.empty()) return "Missing check ID";
        if (!c.service_id.empty()) {
            bool in_req = req.svc && (req.svc->id.empty() ? req.svc->name : req.svc->id) == c.service_id;
            if (!in_req && !get_service(req.n.name, c.service_id))
                return "Missing service '" + c.service_id + "' registration";
        }
    }
    if (!req.skip_node_update) put_node(req.n, index, t);
    if (req.svc) {
        service s = *req.svc;
        s.node = req.n.name;
        if (s.id.empty()) s.id = s.name;
        put_service(std::move(s), index, t);
    }
    for (auto c : req.checks) {
        c.node = req.n.name;
        if (c.check_id.empty()) c.check_id = c.name;
        if (c.status.empty()) c.status = "critical";
        c.service_name.clear();
        c.service_tags.clear();
        if (!c.service_id.empty()) {
            if (const service* s = get_service(c.node, c.service_id)) {
                c.service_name = s->name;
                c.service_tags = s->tags;
            }
        }
        put_check(std::move(c), index, t);
    }
    return std::nullopt;
}

std::optional<std::string> store::deregister(const deregister_request& req, uint64_t index, touched* t) {
    if (req.node.empty()) return "Must provide node";
    if (!req.service_id.empty()) {
        if (const service* s = get_service(req.node, req.service_id)) delete_service(*s, index, t);
        return std::nullopt;
    }
    if (!req.check_id.empty()) {
        if (const check* c = get_check(req.node, req.check_id)) delete_check(*c, index, t);
        return std::nullopt;
    }
    const node* n = get_node(req.node);
    if (!n) return std::nullopt;
    std::vector<service> svcs;
    for_each_node_service(req.node, [&](const service& s) { svcs.push_back(s); });
    for (auto& s : svcs) delete_service(s, index, t);
    std::vector<check> rest;
    for_each_node_check(req.node, [&](const check& c) { rest.push_back(c); });
    for (auto& c : rest) delete_check(c, index, t);
    std::string name = req.node;
    nodes_.erase(name);
    raise(nodes_index_, index);
    if (t) t->nodes_table = true;
    touch_node(name, index, t);
    return std::nullopt;
}

std::optional<std::string> store::update_check(std::string_view node, std::string_view check_id,
                                               std::string_view status, std::string_view output, uint64_t index,
                                               touched* t) {
    const check* cur = get_check(node, check_id);
    if (!cur) return "Unknown check '" + std::string(check_id) + "'";
    if (!valid_status(status)) return "Invalid check status: '" + std::string(status) + "'";
    if (cur->status == status && cur->output == output) return std::nullopt;
    check c = *cur;
    c.status = std::string(status);
    c.output = std::string(output);
    put_check(std::move(c), index, t);
    return std::nullopt;
}

}  // namespace pharos::catalog
