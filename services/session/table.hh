// session::table: Consul's sessions as replicated state-machine data, plus the
// two tables the lock rules need: which keys each session holds, and the
// lock-delay deadline of keys whose holder was invalidated. Plain data like
// kv::store: writes are stamped with the log index the owner assigns; copying
// a table is O(1) (persistent maps), so it lives in every published snapshot.
//
// Time: lock-delay deadlines are nanoseconds on the owner's clock as stamped
// into the log entry that set them (see state::fsm::apply), never read from a
// clock here, so replaying the same entries gives the same table.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/json/writer.hh"
#include "services/state/pmap.hh"

namespace pharos::state {
struct snapshot_codec;
}

namespace pharos::session {

enum class keys_behavior : uint8_t { release, remove };  // Consul's "release" | "delete"

struct service_check {
    std::string id;
    std::string ns;  // Namespace (enterprise; kept and echoed)
};

// structs.Session.
struct session {
    std::string id;  // UUID chosen before the create command is logged
    std::string name;
    std::string node;
    std::vector<std::string> node_checks;
    bool node_checks_null = false;  // written as null (Consul's nil slice)
    std::vector<service_check> service_checks;
    bool service_checks_null = true;
    std::vector<std::string> checks;  // deprecated "Checks", omitted when empty
    int64_t lock_delay_ns = 15'000'000'000;
    keys_behavior behavior = keys_behavior::release;
    std::string ttl;  // as given ("30s"); empty: no TTL
    uint64_t create_index = 0;
    uint64_t modify_index = 0;

    // Every check the session depends on (Checks, NodeChecks, ServiceChecks), on its node.
    std::vector<std::string> check_ids() const;
};

inline constexpr int64_t max_lock_delay_ns = 60'000'000'000;  // structs.MaxLockDelay

class table {
public:
    // --- reads ---
    const session* get(std::string_view id) const;
    // All sessions, sorted by ID.
    template <class F>
    void for_each(F&& fn) const {
        by_id_.for_each_prefix("", [&](const std::string&, const std::shared_ptr<const session>& s) { fn(*s); });
    }
    // Sessions on `node`, sorted by ID.
    template <class F>
    void for_each_on_node(std::string_view node, F&& fn) const {
        by_node_.for_each_prefix(node_prefix(node),
                                 [&](const std::string&, const std::shared_ptr<const session>& s) { fn(*s); });
    }
    // Keys that `id` may hold (verify against the KV entry: a deleted or
    // re-taken key stays listed until the session goes).
    std::vector<std::string> held_keys(std::string_view id) const;
    // The lock-delay deadline of `key` (0: none).
    int64_t lock_delay_until(std::string_view key) const;
    // The sessions table index (highest create or destroy).
    uint64_t index() const noexcept { return index_; }
    size_t size() const noexcept { return by_id_.size(); }

    // --- writes; `index` must grow ---
    void insert(session s, uint64_t index);
    // Removes `id`; returns the removed row (null if unknown).
    std::shared_ptr<const session> erase(std::string_view id, uint64_t index);
    void add_held(std::string_view id, std::string_view key);
    void drop_held(std::string_view id, std::string_view key);
    void set_lock_delay(std::string_view key, int64_t until_ns);

private:
    friend struct state::snapshot_codec;  // state/codec.cc: encodes and restores every table
    static std::string node_prefix(std::string_view node);
    static std::string pair_key(std::string_view a, std::string_view b);

    state::pmap<std::shared_ptr<const session>> by_id_;
    state::pmap<std::shared_ptr<const session>> by_node_;  // node\0id
    state::pmap<uint8_t> held_;                             // session\0key
    state::pmap<int64_t> delays_;                           // key -> deadline (ns)
    uint64_t index_ = 0;
};

// Consul's JSON for a list of sessions (structs.Sessions).
void write_sessions(json::writer& w, const std::vector<const session*>& l);

}  // namespace pharos::session
