// conn_limit: open connections per client IP across every shard of one HTTP
// endpoint (Consul's limits.http_max_conns_per_client). SO_REUSEPORT spreads one
// client's connections over the shards, so no shard sees them all: the count for
// an IP lives on its home shard (hash of the IP modulo the shard count), in that
// shard's table, and every other shard reaches it with one submit_to.
//
// A conn_limit is a small handle (endpoint name and maximum), one per
// http::server instance; the tables are per-shard state owned by this unit, keyed
// by endpoint and IP. Servers built from the same configured "addr:port" share
// counts: that is one sharded<http::server> (with port 0, as in tests, the shards
// listen on different ports but still count together). An entry is erased when
// its count drops to zero, so a table holds only clients with open connections.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "engine/task.hh"

namespace pharos::http {

class conn_limit {
public:
    // max 0: unlimited; acquire() and release() then make no cross-shard call.
    conn_limit(std::string endpoint, size_t max) : endpoint_(std::move(endpoint)), max_(max) {}

    size_t max() const noexcept { return max_; }

    // Reserves a connection slot for `ip`: true if reserved (or unlimited), false if
    // `ip` already holds max() connections. After true, release(ip) must follow
    // exactly once. No deadline: one call to the home shard, which answers at once.
    // Cancel safety: not cancellable; the call always completes, so a caller that
    // was cancelled still learns whether it holds a slot.
    engine::task<bool> acquire(std::string ip) const;
    // Gives back a slot taken by acquire(). Same cancel safety: always completes.
    engine::task<void> release(std::string ip) const;
    // How many connections `ip` holds now (asks its home shard).
    engine::task<size_t> count(std::string ip) const;

    // The shard that counts `ip`'s connections. Call on a shard.
    static unsigned home_shard(std::string_view ip);
    // Client IPs with open connections counted on the calling shard, over every
    // endpoint: this shard's share of the load.
    static size_t tracked_here() noexcept;

private:
    std::string endpoint_;
    size_t max_;
};

}  // namespace pharos::http
