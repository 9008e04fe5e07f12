// storage::wal: the write-ahead log. A directory of segments
// `wal-<first index, 20 digits>.log`, each a 16-byte header ("PHRSWAL1", u64
// first index) then records:
//
//   u32 length of payload | u32 CRC-32C of everything after this field |
//   u64 index | u64 term | u8 type | payload
//
// little-endian. Indexes are contiguous across segments and terms never go
// down, so the log can be Raft's log store (index + term per record; see
// README.md for truncate_suffix and snapshots).
//
// Group commit: append() only buffers a record. One flusher writes everything
// buffered as one write followed by one fdatasync; records appended while a
// sync is in flight go into the next batch. wait_durable(i) returns once record
// i is durable.
//
// Failure: a failed write or sync fails every record not yet durable — their
// waiters get an error, never success — and the log refuses all further
// appends: after a failed fdatasync the kernel may have dropped the dirty pages,
// so nothing written since the last good sync can be trusted (as Postgres and
// etcd do, the node must restart and recover from what is on disk).
//
// Owned by one shard (the state owner); every call on it.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/gate.hh"
#include "engine/io.hh"
#include "services/storage/fs.hh"

namespace pharos::storage {

struct wal_record {
    uint64_t index = 0;
    uint64_t term = 0;
    uint8_t type = 0;
    std::string_view payload;
};

struct wal_options {
    uint64_t segment_bytes = 64ull << 20;  // a batch that starts past this size starts a new segment
};

inline constexpr size_t wal_segment_header = 16;
inline constexpr size_t wal_record_header = 25;

// Appends the encoding of one record to `out` (also used by tests to forge logs).
void encode_wal_record(std::string& out, uint64_t index, uint64_t term, uint8_t type, std::string_view payload);
std::string wal_segment_name(uint64_t first_index);
std::string wal_segment_header_bytes(uint64_t first_index);

class wal {
public:
    // Called for each record replayed at open; an error text refuses the open.
    using replay_fn = std::function<std::optional<std::string>(const wal_record&)>;
    struct opened {
        std::unique_ptr<wal> log;  // null on error
        std::string error;
    };

    // Reads every segment, checks every record and replays those with index >
    // `after` (what a snapshot already covers). A torn tail — a short record or
    // a checksum mismatch at the end of the last segment with no valid record
    // after it — is dropped with a log line and cut off the file. Any other
    // damage (a bad record followed by valid ones, a bad record in an older
    // segment, an index gap, a log that starts after `after` + 1) refuses the
    // open with a message naming the file and offset: never silently skipped.
    static task<opened> open(fs& dir, wal_options opt, uint64_t after, replay_fn replay);
    ~wal();  // after close(), with no waiter left

    // Buffers a record for the next batch. `index` must be last_index() + 1.
    // Returns false (and buffers nothing) once the log has failed.
    bool append(uint64_t index, uint64_t term, uint8_t type, std::string_view payload);
    // Waits until record `index` is durable. Errors: EIO if the log failed
    // first. Cancel safety: ending the wait early (deadline, cancel) only
    // stops waiting: the record stays in its batch and may still become durable.
    task<result<void>> wait_durable(uint64_t index, deadline dl);

    uint64_t last_index() const noexcept { return last_; }
    uint64_t durable_index() const noexcept { return durable_; }
    bool failed() const noexcept { return failed_; }
    const std::string& failure() const noexcept { return failure_; }
    size_t segment_count() const noexcept { return segments_.size(); }
    uint64_t batches() const noexcept { return batches_; }

    // Hooks on the owner shard, for the state machine: `on_cut(last)` runs when
    // a batch ending at `last` is taken for writing (nothing else runs between
    // the last append and it); `on_done(last, ok)` when it is durable or failed,
    // before any waiter resumes.
    std::function<void(uint64_t)> on_cut;
    std::function<void(uint64_t, bool)> on_done;

    // The next batch starts a new segment (after a snapshot, so older ones can go).
    void roll() noexcept { roll_ = true; }
    // Removes closed segments whose records are all <= `index`.
    result<void> remove_through(uint64_t index);
    // Waits for the batch in flight; afterwards nothing more is written.
    task<void> close();

private:
    struct segment {
        std::string name;
        uint64_t first = 0;
    };
    struct waiter {
        uint64_t index;
        engine::wait_slot slot;
        int state = 0;  // 0 waiting, 1 durable, -1 failed
    };
    wal(fs& dir, wal_options opt) : dir_(dir), opt_(opt) {}
    task<void> flush_loop(engine::gate::holder g);
    task<result<void>> write_batch(engine::buffer batch, uint64_t first);
    void fail(std::string why);
    void wake(uint64_t upto, int state);
    void start_flusher();

    fs& dir_;
    wal_options opt_;
    std::vector<segment> segments_;
    std::unique_ptr<file> active_;
    bool roll_ = false;
    uint64_t last_ = 0;     // last appended
    uint64_t durable_ = 0;  // last durable
    engine::buffer pending_;
    uint64_t pending_first_ = 0;
    bool flushing_ = false;
    bool failed_ = false;
    std::string failure_;
    uint64_t batches_ = 0;
    std::multimap<uint64_t, waiter*> waiters_;
    engine::gate gate_;
};

}  // namespace pharos::storage
