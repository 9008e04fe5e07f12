// catalog::store: Consul's catalog tables (nodes, service instances, health
// checks) as a deterministic state machine, like kv::store: plain data, writes
// stamped with the log index the caller assigns, reads const.
//
// Tables are persistent maps (state/pmap.hh), so copying a store is O(1) and
// the owner publishes copies as immutable snapshots. Rows are shared_ptr to
// const, so a path copy never copies a row; a check's definition is shared
// too, so a status change copies only the small part of its row.
//
// Keys: nodes by name; services and checks by "<node>\0<id>", so a node's rows
// are one prefix scan; `by_name_` indexes instances by "<service>\0<node>\0<id>".
//
// Index rules: each table has its index (highest write including deletes); each
// service name and each node name has its own index, raised by every write that
// can change a per-service or per-node query (instances, their checks, the
// node's checks and the node row itself), and kept after deletes so that
// blocking indexes never go backwards.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "services/catalog/cstr.hh"
#include "services/state/pmap.hh"

namespace pharos::state {
struct snapshot_codec;
}

namespace pharos::catalog {

using str_map = std::vector<std::pair<std::string, std::string>>;  // sorted by key, as Go marshals maps

struct node {
    std::string id;  // UUID, may be empty
    std::string name;
    std::string address;
    std::string datacenter;
    str_map tagged_addresses;
    str_map meta;
    uint64_t create_index = 0;
    uint64_t modify_index = 0;
};

struct service_address {
    std::string address;
    int port = 0;
};

struct service {
    std::string node;
    std::string id;
    std::string name;
    std::string kind;  // "" for a typical service
    std::vector<std::string> tags;
    std::string address;
    std::vector<std::pair<std::string, service_address>> tagged_addresses;  // sorted by key
    str_map meta;
    int port = 0;
    int weight_passing = 1;
    int weight_warning = 1;
    bool enable_tag_override = false;
    uint64_t create_index = 0;
    uint64_t modify_index = 0;
};

// A check's definition. Mostly empty (one of HTTP/TCP/UDP/GRPC/OSService and
// the durations), so its strings are cstr: 8 bytes each when empty.
struct check_definition {
    cstr http;
    std::vector<std::pair<std::string, std::vector<std::string>>> header;
    cstr method;
    cstr body;
    cstr tls_server_name;
    bool tls_skip_verify = false;
    cstr tcp;
    cstr udp;
    cstr grpc;
    bool grpc_use_tls = false;
    cstr os_service;
    int64_t interval_ns = 0;
    int64_t timeout_ns = 0;
    int64_t deregister_critical_service_after_ns = 0;
    bool operator==(const check_definition&) const = default;
};
// The definition every check without one reads (all fields empty).
const check_definition& empty_definition() noexcept;

struct check {
    std::string node;
    std::string check_id;
    std::string name;
    std::string status = "critical";  // passing | warning | critical | maintenance
    cstr notes;  // usually empty
    std::string output;
    std::string service_id;
    std::string service_name;
    std::vector<std::string> service_tags;
    cstr type;  // ttl, http, tcp, script, grpc, alias, "" (catalog-registered)
    int exposed_port = 0;
    // Out of line and immutable: copies of a row (snapshots' path copies, the
    // agent's record, update_check) share one definition. Null when it would
    // be all empty (TTL and catalog-registered checks); read it with def().
    std::shared_ptr<const check_definition> definition;
    uint64_t create_index = 0;
    uint64_t modify_index = 0;

    const check_definition& def() const noexcept { return definition ? *definition : empty_definition(); }
    // Sets the definition, keeping null for an empty one.
    void set_definition(check_definition d);
};

// Equal in every field but the Raft indexes.
bool same_check(const check& a, const check& b);

bool valid_status(std::string_view s);

// An instance's health as /v1/health/service and DNS filter it: the worst
// status among its own checks and its node's node-level checks
// ("maintenance" counts as critical).
enum class health : uint8_t { passing, warning, critical };
health status_health(std::string_view status) noexcept;

// Consul's RegisterRequest: a node, optionally one service, and checks.
struct register_request {
    node n;                  // name and address required
    bool skip_node_update = false;
    std::optional<service> svc;  // node field is overwritten with n.name
    std::vector<check> checks;   // node field is overwritten with n.name
};

// Consul's DeregisterRequest: the whole node, one service (with its checks) or one check.
struct deregister_request {
    std::string node;
    std::string service_id;
    std::string check_id;
};

// What a write touched, for waking blocking queries precisely.
struct touched {
    std::vector<std::string> services;  // service names (may repeat)
    std::vector<std::string> nodes;
    bool nodes_table = false, services_table = false, checks_table = false;
};

class store {
public:
    // --- reads ---
    const node* get_node(std::string_view name) const;
    const service* get_service(std::string_view node, std::string_view id) const;
    const check* get_check(std::string_view node, std::string_view check_id) const;
    // The shared row itself (null if absent), for holders that keep it (the agent).
    std::shared_ptr<const check> check_row(std::string_view node, std::string_view check_id) const;

    // All nodes, sorted by name.
    template <class F>
    void for_each_node(F&& fn) const {
        nodes_.for_each_prefix("", [&](const std::string&, const std::shared_ptr<const node>& n) { fn(*n); });
    }
    // Instances of service `name`, sorted by node then ID.
    template <class F>
    void for_each_instance(std::string_view name, F&& fn) const {
        std::string p(name);
        p.push_back('\0');
        by_name_.for_each_prefix(p, [&](const std::string&, const std::shared_ptr<const service>& s) { fn(*s); });
    }
    // Every instance, sorted by service name, node, ID.
    template <class F>
    void for_each_instance(F&& fn) const {
        by_name_.for_each_prefix("", [&](const std::string&, const std::shared_ptr<const service>& s) { fn(*s); });
    }
    // Services of one node, sorted by ID.
    template <class F>
    void for_each_node_service(std::string_view node, F&& fn) const {
        services_.for_each_prefix(row_prefix(node), [&](const std::string&, const std::shared_ptr<const service>& s) {
            fn(*s);
        });
    }
    // Checks of one node (node-level and service-level), sorted by check ID.
    template <class F>
    void for_each_node_check(std::string_view node, F&& fn) const {
        checks_.for_each_prefix(row_prefix(node), [&](const std::string&, const std::shared_ptr<const check>& c) {
            fn(*c);
        });
    }
    // Every check, sorted by node then check ID.
    template <class F>
    void for_each_check(F&& fn) const {
        checks_.for_each_prefix("", [&](const std::string&, const std::shared_ptr<const check>& c) { fn(*c); });
    }

    // The checks that decide an instance's health: its node's node-level checks
    // and the instance's own, sorted by check ID.
    template <class F>
    void for_each_instance_check(const service& s, F&& fn) const {
        for_each_node_check(s.node, [&](const check& c) {
            if (c.service_id.empty() || c.service_id == s.id) fn(c);
        });
    }
    health instance_health(const service& s) const {
        health h = health::passing;
        for_each_instance_check(s, [&](const check& c) {
            health ch = status_health(c.status);
            if (ch > h) h = ch;
        });
        return h;
    }

    size_t node_count() const noexcept { return nodes_.size(); }
    size_t service_count() const noexcept { return services_.size(); }
    size_t check_count() const noexcept { return checks_.size(); }

    uint64_t nodes_index() const noexcept { return nodes_index_; }
    uint64_t services_index() const noexcept { return services_index_; }
    uint64_t checks_index() const noexcept { return checks_index_; }
    // Per-name indexes; 0 if the name was never written. Queries fall back to a table index.
    uint64_t service_index(std::string_view name) const;
    uint64_t node_index(std::string_view name) const;

    // --- writes; `index` must grow. Errors are Consul's texts; on error nothing changed. ---
    std::optional<std::string> register_(const register_request& req, uint64_t index, touched* t = nullptr);
    std::optional<std::string> deregister(const deregister_request& req, uint64_t index, touched* t = nullptr);
    // Sets a check's status and output (the agent's TTL and probe results).
    // No-op (no index bump) when nothing changes. Error if the check is unknown.
    std::optional<std::string> update_check(std::string_view node, std::string_view check_id, std::string_view status,
                                            std::string_view output, uint64_t index, touched* t = nullptr);

private:
    friend struct state::snapshot_codec;  // state/codec.cc: encodes and restores every table
    static std::string row_prefix(std::string_view node);
    static std::string row_key(std::string_view node, std::string_view id);
    static std::string name_key(std::string_view name, std::string_view node, std::string_view id);

    void put_node(node n, uint64_t index, touched* t);
    void put_service(service s, uint64_t index, touched* t);
    void put_check(check c, uint64_t index, touched* t);
    void delete_service(const service& s, uint64_t index, touched* t);
    void delete_check(const check& c, uint64_t index, touched* t);
    // Raises the index of every service on `node` (a node-level change).
    void touch_node_services(std::string_view node, uint64_t index, touched* t);
    void touch_service(std::string_view name, uint64_t index, touched* t);
    void touch_node(std::string_view name, uint64_t index, touched* t);

    state::pmap<std::shared_ptr<const node>> nodes_;
    state::pmap<std::shared_ptr<const service>> services_;  // node\0id
    state::pmap<std::shared_ptr<const service>> by_name_;   // name\0node\0id
    state::pmap<std::shared_ptr<const check>> checks_;      // node\0check_id
    state::pmap<uint64_t> service_idx_;                     // service name -> index
    state::pmap<uint64_t> node_idx_;                        // node name -> index
    uint64_t nodes_index_ = 0, services_index_ = 0, checks_index_ = 0;
};

}  // namespace pharos::catalog
