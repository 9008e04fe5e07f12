// The state machine behind the API: KV and catalog tables, the numbered
// commands that change them, and the sharded service that applies commands on
// the owner shard and publishes snapshots to all shards.
//
// Data flow (shared/spec/consistency.md): a write becomes a `command`; the
// owner (shard 0) assigns it the next log index and applies it to the `fsm`,
// deterministically (same commands in the same order give the same tables);
// then it publishes the new tables as an immutable `snapshot` (O(1): the tables
// are persistent maps) and sends the change set to every shard's watch_hub.
// The write's response is sent only after the publish, so a write is visible on
// every shard before it is acknowledged. Reads never leave their shard: they
// read the published snapshot without locks.
//
// The index is a counter (Raft later assigns it). With a data dir the owner
// also logs every command (durable.hh): it applies at once, but publishes and
// answers only after the WAL batch holding the command is fsynced, so no write
// is visible anywhere, or acknowledged, before it is durable. -dev keeps
// everything in memory and publishes at once.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "engine/gate.hh"
#include "engine/smp.hh"
#include "engine/snapshot.hh"
#include "services/catalog/store.hh"
#include "services/kv/store.hh"
#include "services/session/table.hh"
#include "services/state/watch.hh"
#include "services/txn/txn.hh"

namespace pharos::state {

// Everything a read sees, at one log index.
struct snapshot {
    uint64_t index = 1;  // the last applied command that changed a table; never 0
    kv::store kv;
    catalog::store catalog;
    session::table sessions;
};

// --- commands ---
enum class kv_verb : uint8_t { set, cas, lock, unlock, remove, remove_cas, remove_tree };

struct kv_op {
    kv_verb verb = kv_verb::set;
    std::string key;
    std::string value;
    uint64_t flags = 0;
    uint64_t cas = 0;
    std::string session;
};

// A check's status and output changed (TTL updates, probe results).
struct check_update {
    std::string node;
    std::string check_id;
    std::string status;
    std::string output;
};

// A new session; the ID (a UUID) is chosen before the command is logged, so
// applying it is deterministic. TTL and Behavior are validated by the caller.
struct session_create {
    session::session s;
};

// Destroys a session (explicitly or at TTL expiry) and applies its Behavior to its locks.
struct session_destroy {
    std::string id;
};

// Many check updates in one command (one index, one publish): probe results
// batched per shard. Updates of checks that no longer exist are skipped.
struct check_updates {
    std::vector<check_update> updates;
};

using command = std::variant<kv_op, catalog::register_request, catalog::deregister_request, check_update,
                             session_create, session_destroy, txn::request, check_updates>;

struct result {
    bool ok = false;     // KV: the `true`/`false` Consul answers
    uint64_t index = 0;  // the command's log index
    std::string error;   // non-empty: refused, with Consul's text (nothing changed)
    std::shared_ptr<const txn::response> txn;  // txn::request: results or errors
};

// The deterministic state machine. Plain data; the owner drives it.
class fsm {
public:
    fsm() = default;
    explicit fsm(snapshot s) : s_(std::move(s)) {}  // recovery
    // Applies `c` at `index` (which must grow); fills `changes` with what it touched.
    // `now_ns` is the owner's clock when it logged the entry (engine::clock, ns):
    // the only time the fsm sees (lock-delay), so a log entry is (index, now_ns,
    // command) and replaying entries gives the same tables.
    result apply(const command& c, uint64_t index, change_set& changes, int64_t now_ns = 0);
    const snapshot& tables() const noexcept { return s_; }

private:
    result apply_kv(const kv_op& op, uint64_t index, int64_t now_ns, change_set& changes);
    snapshot s_;
};

class service;
class durable_log;

// The sharded state service. On shard 0, create the published snapshot, then
// sharded<service>::start(&group, &published[, &durable]) where `group` is the
// sharded<service> itself. The shard that created `published` owns the fsm.
// With `durable` (opened on that shard), the fsm starts from its recovered
// tables and every write is logged. Stop the group before destroying
// `published` and stopping `durable`.
class service {
public:
    service(engine::sharded<service>* group, engine::published<snapshot>* pub, durable_log* durable = nullptr);
    engine::task<void> stop();
    // Shutdown has begun: blocked queries answer now with what they have.
    void begin_stop() {
        stopping_ = true;
        hub_.notify_all();
    }

    // Any shard: the current snapshot. Valid until the caller next suspends.
    const snapshot& read() const noexcept { return *pub_->read(); }
    // Any shard: applies `c` on the owner and returns once every shard can see it
    // (with a data dir: once it is durable; if storage failed, an error result
    // and nothing visible). Cancel safety: once sent, the command is applied
    // (and logged) even if the caller goes away.
    engine::task<result> write(command c);
    // This shard's hub, for blocking queries.
    watch_hub& hub() noexcept { return hub_; }
    bool stopping() const noexcept { return stopping_; }

    unsigned owner() const noexcept { return pub_->owner(); }

private:
    result apply_on_owner(command c);
    engine::task<result> write_durable(command c);
    void publish(std::unique_ptr<snapshot> s, std::vector<std::shared_ptr<const change_set>> changes);
    void deliver(std::shared_ptr<const change_set> cs);
    durable_log* durable_ = nullptr;
    engine::sharded<service>* group_;
    engine::published<snapshot>* pub_;
    std::unique_ptr<fsm> fsm_;  // owner only
    uint64_t next_index_ = 2;   // owner only; Consul's first user write gets 2
    watch_hub hub_;
    engine::gate deliveries_;  // owner: change sets on their way to other shards
    bool stopping_ = false;
};

}  // namespace pharos::state
