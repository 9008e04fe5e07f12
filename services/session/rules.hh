// The session rules of the state machine (Consul's state store SessionCreate,
// deleteSessionTxn, kvsLockTxn/kvsUnlockTxn and the session invalidation done
// by catalog writes), applied to a state::snapshot by state::fsm and by
// transactions. Deterministic: time comes in as the log entry's `now_ns`.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/state/state.hh"

namespace pharos::session {

// Inserts `s` (ID set, Behavior and TTL already validated) at `index`.
// Errors (nothing changed): "Missing session ID", "Missing node registration",
// "Missing check 'x' registration", "Check 'x' is in critical state", a duplicate ID.
std::optional<std::string> create(state::snapshot& st, session s, uint64_t index, state::change_set& cs);

// Destroys `id` (no-op if unknown) and applies its Behavior to the keys it
// holds: release clears Session and keeps the value (ModifyIndex moves), delete
// removes the key; either way the key gets a lock-delay of the session's
// LockDelay (at most 60 s) from `now_ns`. Returns whether a session went.
bool destroy(state::snapshot& st, std::string_view id, uint64_t index, int64_t now_ns, state::change_set& cs);

// Destroys the sessions on `nodes` whose node is gone or one of whose checks
// is gone or critical: run after every catalog write, with the nodes it touched.
void invalidate_broken(state::snapshot& st, const std::vector<std::string>& nodes, uint64_t index, int64_t now_ns,
                       state::change_set& cs);

struct lock_outcome {
    bool ok = false;
    std::string error;  // "missing session", "invalid session \"x\""
};

// ?acquire: the session must exist; with `respect_delay` (the KV endpoint, as
// Consul's kvsPreApply) a key under lock-delay at `now_ns` is refused (false).
lock_outcome lock(state::snapshot& st, std::string_view key, std::string value, uint64_t flags,
                  std::string_view session, uint64_t index, int64_t now_ns, bool respect_delay, state::change_set& cs);
// ?release: only the holder; clears Session, keeps LockIndex, writes the value.
lock_outcome unlock(state::snapshot& st, std::string_view key, std::string value, uint64_t flags,
                    std::string_view session, uint64_t index, state::change_set& cs);

}  // namespace pharos::session
