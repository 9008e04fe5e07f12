// watch_hub: where blocking queries wait on one shard. Every shard has one.
// A watcher names one topic (a KV key, a KV prefix, a service name, a node
// name or a whole table); the state owner sends each applied write's change
// set to every shard's hub, which wakes exactly the watchers whose topic the
// write touched. A woken query re-reads the published snapshot and decides
// whether its result moved past the client's index.
//
// Cost: a watcher is one small object linked into its topic's list (no thread,
// no timer unless it has a deadline), so a hundred thousand are cheap. Waking
// for a KV key looks up the key and each of its prefixes: O(length of key).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/io.hh"

namespace pharos::state {

enum class topic : uint8_t { kv_key, kv_prefix, service, node, nodes_table, services_table, checks_table, sessions_table,
                           count };

// What one applied write changed (names may repeat).
struct change_set {
    uint64_t index = 0;
    std::vector<std::string> kv_keys;
    std::vector<std::string> services;
    std::vector<std::string> nodes;
    bool nodes_table = false, services_table = false, checks_table = false, sessions_table = false;
    bool empty() const noexcept {
        return kv_keys.empty() && services.empty() && nodes.empty() && !nodes_table && !services_table &&
               !checks_table && !sessions_table;
    }
};

class watch_hub;

// One waiting query. Register with a hub, wait on `slot`, and it unlinks itself
// when destroyed. Lives on the hub's shard.
class watcher {
public:
    watcher(watch_hub& hub, topic t, std::string_view name);
    watcher(const watcher&) = delete;
    ~watcher();
    // 0 when the topic was touched, -ETIMEDOUT or -ECANCELED.
    // Cancel safety: nothing is lost; a later touch is seen by the next wait.
    auto wait(engine::deadline dl) { return slot_.wait(dl); }

private:
    friend class watch_hub;
    struct list;
    watch_hub& hub_;
    list* list_ = nullptr;
    watcher* prev_ = nullptr;
    watcher* next_ = nullptr;
    engine::wait_slot slot_;
};

class watch_hub {
public:
    watch_hub() = default;
    watch_hub(const watch_hub&) = delete;
    ~watch_hub();

    // Wakes the watchers `cs` touched.
    void notify(const change_set& cs);
    // Wakes everyone (shutdown).
    void notify_all();
    size_t size() const noexcept { return count_; }

private:
    friend class watcher;
    struct hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using table = std::unordered_map<std::string, watcher::list*, hash, std::equal_to<>>;
    void wake(topic t, std::string_view name);
    table tables_[size_t(topic::count)];
    size_t count_ = 0;
};

}  // namespace pharos::state
