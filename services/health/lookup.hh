// health::lookup: name resolution for check targets, on the reactor, as Go's
// pure resolver does it: IP literals, "localhost", /etc/hosts, then DNS queries
// (A and AAAA over UDP to the nameservers of /etc/resolv.conf, TCP when the
// answer is truncated), with resolv.conf's `search`, `ndots`, `timeout` and
// `attempts`. Answers are cached per shard for their TTL (negative answers for
// the SOA's negative TTL, when the server gives one). No threads, no getaddrinfo.
//
// Errors are Go's texts: "lookup NAME on IP:53: no such host",
// "... server misbehaving", "... i/o timeout". An IPv4 address is preferred
// when a name has both.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/net.hh"
#include "engine/task.hh"

namespace pharos::health {

struct resolv_conf {
    std::vector<engine::socket_address> nameservers;  // with their ports (53)
    std::vector<std::string> search;                  // domains, without trailing dots
    int ndots = 1;
    int timeout_s = 5;  // per attempt and server (options timeout:N)
    int attempts = 2;   // rounds over the servers (options attempts:N)
};

// resolv.conf's text. No nameserver: 127.0.0.1:53 and [::1]:53, as Go.
resolv_conf parse_resolv_conf(std::string_view text);
// /etc/resolv.conf, read once per process, unless overridden.
const resolv_conf& system_resolv_conf();
// Replaces the configuration every shard uses from now on (tests point it at a
// server of their own); nullopt restores /etc/resolv.conf. Shard caches are
// dropped. Call while no lookup runs.
void set_resolv_conf_override(std::optional<resolv_conf> c);

// Addresses (port 0) of `host`, a name that is not an IP literal, from the
// shard's cache or the nameservers. Empty with `error` set on failure.
// Cancel safety: the query sockets are closed; nothing is cached.
engine::task<std::vector<engine::socket_address>> lookup_host(std::string host, engine::deadline dl,
                                                              std::string* error);

// "host:port" to one address, for dialing: IP literals, "localhost", an empty
// host (the local system) and /etc/hosts names need no query; other names are
// looked up. `error` is Go's dial text: "dial tcp: lookup NAME on IP:53: no
// such host", "dial tcp: address x: missing port in address".
// Cancel safety: as lookup_host.
engine::task<engine::result<engine::socket_address>> resolve_dial(std::string host_port, std::string network,
                                                                  engine::deadline dl, std::string* error);

// Counters of this shard's lookups (for tests and metrics).
struct lookup_stats {
    uint64_t queries = 0;     // datagrams or TCP exchanges sent
    uint64_t cache_hits = 0;
};
const lookup_stats& shard_lookup_stats();

}  // namespace pharos::health
