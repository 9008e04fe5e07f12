// state::durable_log: the state machine's storage, on the owner shard. At start
// it recovers the tables (newest valid snapshot, then the WAL replayed through
// the fsm); afterwards every command is appended to the WAL (storage/wal.hh)
// and the owner's service acknowledges it only once its group-commit batch is
// durable.
//
// Visibility: the fsm's tables run ahead of the disk (the owner applies a
// command at once, to validate it and answer CAS). What other tasks see is the
// published snapshot, and a batch's tables are published only after its sync:
// when a batch is cut for writing, a copy of the tables (O(1)) and the change
// sets of its commands are set aside; when it is durable they are published and
// the watchers woken, then the writers answered. A failed sync publishes
// nothing: readers stay on the last durable tables, the batch's writers and
// every later one get an error, and the log refuses writes until restart (the
// fsm's tables are then ahead of the disk and are never published again).
//
// Snapshots: after every `snapshot_every` commands made durable, the durable
// tables are encoded (state/codec.hh) and saved (storage/snapshot_store.hh), then
// WAL segments wholly before it are removed. Owned by the caller of open(),
// which must outlive the state service and call stop() after it.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/gate.hh"
#include "services/state/state.hh"
#include "services/storage/wal.hh"

namespace pharos::state {

struct durable_options {
    uint64_t snapshot_every = 16384;       // Consul's raft snapshot_threshold
    uint64_t segment_bytes = 64ull << 20;  // WAL segment size before rolling
};

class durable_log {
public:
    // Recovers from `dir`. On error, `out` stays null and the text says why
    // (corruption in the middle of the WAL, an undecodable record, I/O).
    static engine::task<std::string> open(std::unique_ptr<storage::fs> dir, durable_options opt,
                                          std::unique_ptr<durable_log>& out);
    ~durable_log();

    // The tables after recovery, and the last index they include.
    const snapshot& recovered() const noexcept { return recovered_; }
    uint64_t last_index() const noexcept { return log_->last_index(); }

    // --- owner shard, for state::service ---
    using publish_fn = std::function<void(std::unique_ptr<snapshot>, std::vector<std::shared_ptr<const change_set>>)>;
    void attach(const fsm* m, publish_fn publish);
    bool failed() const noexcept { return log_->failed(); }
    // Logs command `c`, already applied to the fsm at `index` with changes `cs`.
    // False if the log has failed (nothing is logged).
    bool append(uint64_t index, int64_t now_ns, const command& c, std::shared_ptr<const change_set> cs);
    // Returns once `index` is durable and published. Errors: the log failed
    // first. Cancel safety: the command stays logged; only the wait ends.
    engine::task<engine::result<void>> wait_durable(uint64_t index);
    // Waits for the batch and the snapshot in flight.
    engine::task<void> stop();

    uint64_t snapshots_taken() const noexcept { return snapshots_; }
    storage::wal& wal() noexcept { return *log_; }

private:
    durable_log() = default;
    void on_cut(uint64_t last);
    void on_done(uint64_t last, bool ok);
    engine::task<void> take_snapshot(engine::gate::holder g, snapshot s);

    std::unique_ptr<storage::fs> dir_;
    durable_options opt_;
    std::unique_ptr<storage::wal> log_;
    snapshot recovered_;
    const fsm* fsm_ = nullptr;
    publish_fn publish_;
    std::string encoded_;  // scratch for one command
    std::vector<std::shared_ptr<const change_set>> unflushed_;  // appended, not yet cut
    std::unique_ptr<snapshot> batch_tables_;                    // the batch in flight
    std::vector<std::shared_ptr<const change_set>> batch_changes_;
    uint64_t last_snapshot_ = 0;
    bool snapshotting_ = false;
    uint64_t snapshots_ = 0;
    engine::gate snapshot_gate_;
};

}  // namespace pharos::state
