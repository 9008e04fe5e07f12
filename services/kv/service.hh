// kv::service: the KV store behind the HTTP API. One instance per shard
// (sharded<kv::service>); the instance on shard 0 owns the store and applies
// every write, the others only route to it with submit_to. Blocking queries
// (?index=N) wait on shard 0 until the watched key or prefix changes past N or
// their deadline passes.
//
// With -dev there is no log yet: shard 0 assigns each write the next index.
// Durability and Raft come with their issues and will replace that counter.
#pragma once
#include <list>
#include <string>

#include "engine/io.hh"
#include "engine/task.hh"
#include "protocols/json/writer.hh"
#include "services/kv/store.hh"

namespace pharos::kv {

enum class read_mode { single, recurse, keys };

struct query {
    std::string key;  // or prefix
    read_mode mode = read_mode::single;
    std::string separator;   // keys only
    bool raw = false;        // single only: the value's bytes, not JSON
    uint64_t min_index = 0;  // > 0: block until the index passes it
};

struct read_result {
    uint64_t index = 0;
    bool found = false;
    std::string body;  // JSON, or the raw value
};

enum class write_kind { set, cas, acquire, release, remove, remove_cas, remove_tree };

struct write_op {
    write_kind kind = write_kind::set;
    std::string key;
    std::string value;
    uint64_t flags = 0;
    uint64_t cas = 0;
    std::string session;
};

struct write_result {
    bool ok = false;
    uint64_t index = 0;
    std::string error;  // non-empty: the request is refused (500, Consul's text)
};

class service {
public:
    // Runs on the shard that owns the store (shard 0). Blocks while min_index is
    // not passed, until `dl`. Cancel safety: nothing changes; the waiter is removed.
    engine::task<read_result> read(query q, engine::deadline dl);
    // Runs on shard 0.
    write_result write(write_op op);
    uint64_t last_index() const noexcept { return index_; }

    engine::task<void> stop();

private:
    struct waiter {
        std::string key;
        bool prefix = false;
        engine::wait_slot slot;
    };
    read_result answer(const query& q) const;
    uint64_t index_of(const query& q) const;
    void wake(std::string_view key, bool tree);

    store store_;
    uint64_t index_ = 1;  // Consul never reports 0; the first user write gets 2
    bool stopping_ = false;
    std::list<waiter> waiters_;
};

}  // namespace pharos::kv
