// Snapshot files: `snapshot-<index, 20 digits>.snap`, a 40-byte header
// ("PHRSSNP1", u64 index, u64 term, u64 body length, u32 CRC-32C of the body,
// u32 CRC-32C of the 36 bytes before it) then the body (state/codec.hh's
// encoding). Written to a .tmp file, fdatasynced, renamed into place, and the
// directory fsynced, so a crash leaves either the old set or the new one.
// Index + term in the header are what Raft's snapshot store needs
// (InstallSnapshot carries a body of the same encoding). Shard: the fs's.
#pragma once
#include <optional>
#include <string>

#include "services/storage/fs.hh"

namespace pharos::storage {

struct snapshot_file {
    uint64_t index = 0;
    uint64_t term = 0;
    std::string body;
};

std::string snapshot_name(uint64_t index);

// Durably writes the snapshot at (index, term), then removes all but the newest
// `keep` snapshots. Errors: the fs's. Cancel safety: none needed, no deadline;
// an interrupted save leaves at most a .tmp file, removed at the next load.
task<result<void>> save_snapshot(fs& dir, uint64_t index, uint64_t term, std::string body, size_t keep = 2);

// The newest snapshot whose checksums hold (damaged ones are logged and
// skipped, older ones tried next); nullopt if there is none. Leftover .tmp
// files are removed. `error` gets I/O errors (then nullopt).
task<std::optional<snapshot_file>> load_newest_snapshot(fs& dir, std::string* error);

}  // namespace pharos::storage
