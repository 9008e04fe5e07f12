// txn: Consul's /v1/txn operations as state-machine data, and their rules
// (Consul's state store txnKVS/txnNode/txnService/txnCheck). A write
// transaction is one command: the fsm applies every op in order to a copy of
// the tables (O(1): persistent maps) and keeps the copy only if no op failed,
// so a transaction is all or nothing. A read-only one runs on any shard's
// published snapshot without a write.
//
// Verbs stay strings, as Consul logs them: an unknown verb is an op error
// ("unknown KV verb \"x\""), reported with the others, not a decode error.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "protocols/json/writer.hh"
#include "services/catalog/store.hh"
#include "services/kv/store.hh"

namespace pharos::state {
struct snapshot;
struct change_set;
}  // namespace pharos::state

namespace pharos::txn {

inline constexpr size_t max_ops = 128;  // Consul >= 1.14

struct kv_op {
    std::string verb;  // set, cas, lock, unlock, get, get-or-empty, get-tree, check-index,
                       // check-session, check-not-exists, delete, delete-tree, delete-cas
    std::string key;
    std::string value;
    uint64_t flags = 0;
    uint64_t index = 0;  // "Index": the CAS / check-index ModifyIndex
    std::string session;
};

// Node, Service and Check verbs: get, set, cas, delete, delete-cas. The row's
// modify_index carries the request's ModifyIndex (for cas / delete-cas).
struct node_op {
    std::string verb;
    catalog::node n;
};
struct service_op {
    std::string verb;
    std::string node;
    catalog::service s;
};
struct check_op {
    std::string verb;
    catalog::check c;
};

using op = std::variant<kv_op, node_op, service_op, check_op>;

struct request {
    std::vector<op> ops;
};

bool is_write(const op& o);
bool is_read_only(const request& r);

// One result: a copy of the row as the op left it (KV values only for reads).
using row = std::variant<kv::entry, catalog::node, catalog::service, catalog::check>;

struct op_error {
    size_t op_index = 0;
    std::string what;
};

struct response {
    std::vector<row> results;
    std::vector<op_error> errors;  // non-empty: nothing was applied
};

// Applies `r` to `st` at `index` (Consul's txnDispatch: every op runs, every
// error is collected). On errors the caller must discard `st` and `cs`.
response apply(state::snapshot& st, const request& r, uint64_t index, int64_t now_ns, state::change_set& cs);
// A read-only transaction against a published snapshot (touches nothing).
response read(const state::snapshot& st, const request& r);

// Consul's TxnResponse: {"Results":[...]|null,"Errors":[...]|null}; with
// `read_only`, TxnReadResponse's QueryMeta fields follow.
void write_response(json::writer& w, const response& r, bool read_only);

}  // namespace pharos::txn
