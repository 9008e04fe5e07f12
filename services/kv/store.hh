// kv::store: Consul's KV state machine. Plain data, no I/O and no shards: the
// state machine (on its owner shard) applies writes with the log index that the
// write was assigned, so every replica that applies the same writes in the same
// order holds the same store. Reads are const.
//
// The tables are persistent maps (state/pmap.hh): copying a store is O(1) and
// later writes to either copy leave the other unchanged, which is how the owner
// publishes immutable snapshots to the other shards. Entries are held by
// shared_ptr so that a path copy never copies a value.
//
// Index rules (Consul's): a key's ModifyIndex; a missing key, the table's
// highest index including tombstones; a prefix, the highest ModifyIndex or
// tombstone under it. Deletes leave tombstones so prefix indexes never go
// backwards until the tombstones are reaped.
#pragma once
#include "protocols/json/writer.hh"
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/state/pmap.hh"

namespace pharos::state {
struct snapshot_codec;
}

namespace pharos::kv {

struct entry {
    std::string key;
    std::string value;  // empty is reported as null, as Consul does
    uint64_t flags = 0;
    uint64_t create_index = 0;
    uint64_t modify_index = 0;
    uint64_t lock_index = 0;
    std::string session;  // lock holder, empty when unheld
};

class store {
public:
    // --- reads ---
    const entry* get(std::string_view key) const;
    // Entries whose key starts with `prefix`, sorted by key.
    std::vector<const entry*> list(std::string_view prefix) const;
    // Keys under `prefix`; with a separator, each key is cut after the first
    // separator that follows the prefix, and duplicates are dropped.
    std::vector<std::string> keys(std::string_view prefix, std::string_view separator) const;
    // The X-Consul-Index of a single-key read.
    uint64_t key_index(std::string_view key) const;
    // The X-Consul-Index of a prefix read (recurse / keys).
    uint64_t prefix_index(std::string_view prefix) const;
    // The highest index applied to the table, tombstones included.
    uint64_t table_index() const noexcept { return table_index_; }
    size_t size() const noexcept { return entries_.size(); }

    // --- writes; `index` is the write's log index and must grow ---
    void set(std::string_view key, std::string value, uint64_t flags, uint64_t index);
    // Check-and-set: cas 0 creates only if absent; cas N writes only if the
    // key's ModifyIndex is N. Returns whether it wrote.
    bool set_cas(std::string_view key, std::string value, uint64_t flags, uint64_t cas, uint64_t index);
    // Deletes `key` (true even if it did not exist, as Consul).
    bool remove(std::string_view key, uint64_t index);
    // Deletes only if the key exists with ModifyIndex == cas (cas 0 deletes nothing).
    bool remove_cas(std::string_view key, uint64_t cas, uint64_t index);
    // Deletes every key under `prefix`; returns how many.
    // With `removed`, the deleted keys are appended to it.
    size_t remove_tree(std::string_view prefix, uint64_t index, std::vector<std::string>* removed = nullptr);
    // Lock acquire for `session` (validity and lock-delay are the caller's): an
    // unheld or new key is taken and its LockIndex bumped; the holder may update
    // the value without a bump; another holder makes it fail.
    bool acquire(std::string_view key, std::string value, uint64_t flags, std::string_view session, uint64_t index);
    // Lock release: only by the holder; clears Session, keeps LockIndex.
    bool release(std::string_view key, std::string value, uint64_t flags, std::string_view session, uint64_t index);
    // Drops tombstones at or below `index` (the reaper's horizon).
    size_t reap_tombstones(uint64_t index);

private:
    friend struct state::snapshot_codec;  // state/codec.cc: encodes and restores every table
    void bump(uint64_t index) noexcept {
        if (index > table_index_) table_index_ = index;
    }
    // A fresh copy of `key`'s entry (or a new one) stamped with `index`; the
    // caller edits it and stores it with put().
    entry fresh(std::string_view key, uint64_t index) const;
    void put(entry e);
    void tombstone(std::string_view key, uint64_t index);

    state::pmap<std::shared_ptr<const entry>> entries_;
    state::pmap<uint64_t> tombstones_;  // key -> delete index
    uint64_t table_index_ = 0;
};

// Consul's JSON for a list of entries: [{"LockIndex","Key","Flags","Value","Session"?,
// "CreateIndex","ModifyIndex"}], Value base64 or null.
std::string to_json(const std::vector<const entry*>& entries);
// One DirEntry object, as Consul writes it (also a /v1/txn result's "KV").
void write_entry(json::writer& w, const entry& e);

}  // namespace pharos::kv
