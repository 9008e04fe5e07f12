// storage::fs: the small filesystem the WAL and the snapshot store use — one
// flat directory of named files — so tests can make it fail. Two
// implementations: disk_fs (a real directory, data through engine::file, i.e.
// io_uring) and memory_fs (in memory, with injected faults and crashes).
//
// Owned by one shard; every call on that shard. Metadata calls (open, list,
// remove, rename, truncate) are synchronous; data calls are awaitables with an
// absolute deadline. Cancel safety of data calls: as engine::file — an
// operation that has started completes, so after any error the file's
// contents past its last successful sync are unknown, and callers treat the
// file as failed.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/buffer.hh"
#include "engine/clock.hh"
#include "engine/result.hh"
#include "engine/task.hh"

namespace pharos::storage {

using engine::deadline;
using engine::no_deadline;
template <class T>
using result = engine::result<T>;
template <class T>
using task = engine::task<T>;

class file {
public:
    virtual ~file() = default;
    // Appends the concatenation of `bufs` at the end of the file (one write).
    virtual task<result<void>> append(std::vector<engine::buffer> bufs, deadline dl) = 0;
    // Makes everything appended so far durable (fdatasync).
    virtual task<result<void>> sync(deadline dl) = 0;
    // Up to `n` bytes at `offset`; fewer only at end of file.
    virtual task<result<std::string>> read(uint64_t offset, size_t n, deadline dl) = 0;
    virtual uint64_t size() const noexcept = 0;
    // Cuts the file to `n` bytes (durable with the next sync).
    virtual result<void> truncate(uint64_t n) = 0;
};

class fs {
public:
    virtual ~fs() = default;
    // Opens `name`; with `create`, creates it (empty) or truncates it.
    virtual result<std::unique_ptr<file>> open(std::string_view name, bool create) = 0;
    // Every file name in the directory, sorted.
    virtual result<std::vector<std::string>> list() = 0;
    virtual result<void> remove(std::string_view name) = 0;
    // Atomically replaces `to` with `from` (durable with the next sync_dir).
    virtual result<void> rename(std::string_view from, std::string_view to) = 0;
    // Makes creations, renames and removals so far durable (fsync of the directory).
    virtual task<result<void>> sync_dir(deadline dl) = 0;
    // For messages: where the files are.
    virtual std::string where() const = 0;
};

// The real directory `dir`, created if missing (one level). Throws std::system_error if it cannot be.
std::unique_ptr<fs> make_disk_fs(const std::string& dir);

// An in-memory directory for tests, with faults. A file's bytes are split into
// what the last sync made durable and what is only written; the directory
// likewise (entries durable at the last sync_dir). crash() keeps the durable
// state and some of the rest, as a machine that lost power (or a process killed
// between write and sync, when everything written is kept).
class memory_fs final : public fs {
public:
    struct inode {
        std::string data;     // what reads see
        std::string durable;  // what survives a crash for sure
    };
    enum class crash_mode {
        lose_unsynced,  // power loss: only synced bytes and entries survive
        keep_unsynced,  // kill -9: the page cache survives, everything written is kept
        keep_half,      // power loss mid-writeback: half of each file's unsynced tail is kept
    };

    result<std::unique_ptr<file>> open(std::string_view name, bool create) override;
    result<std::vector<std::string>> list() override;
    result<void> remove(std::string_view name) override;
    result<void> rename(std::string_view from, std::string_view to) override;
    task<result<void>> sync_dir(deadline dl) override;
    std::string where() const override { return "memory"; }

    // --- faults ---
    // The next append fails with `err`; with `keep` > 0 its first `keep` bytes land first (a torn write).
    void fail_next_append(int err = 5 /*EIO*/, size_t keep = 0) {
        append_err_ = err;
        append_keep_ = keep;
    }
    // The next file sync fails with `err` and makes nothing durable.
    void fail_next_sync(int err = 5 /*EIO*/) { sync_err_ = err; }
    // Every file sync first sleeps this long (engine clock), to let writers pile up.
    void set_sync_delay(engine::clock::duration d) { sync_delay_ = d; }
    // The machine restarts: handles opened before fail with EIO afterwards.
    void crash(crash_mode m);

    // --- inspection ---
    size_t syncs() const noexcept { return syncs_; }
    size_t appends() const noexcept { return appends_; }
    // The bytes of `name` ("" if absent).
    std::string contents(std::string_view name) const;
    // Replaces the bytes of `name` (created if absent), durably: corruption by hand.
    void set_contents(std::string_view name, std::string bytes);

private:
    friend class memory_file;
    using dir = std::map<std::string, std::shared_ptr<inode>, std::less<>>;
    dir dir_, durable_dir_;
    uint64_t generation_ = 0;
    int append_err_ = 0;
    size_t append_keep_ = 0;
    int sync_err_ = 0;
    engine::clock::duration sync_delay_{};
    size_t syncs_ = 0, appends_ = 0;
};

}  // namespace pharos::storage
