// dns::resolver: Consul's DNS interface (agent/dns.go) over the catalog
// snapshot. One per shard, owned by that shard's dns::server; answer() runs
// on the shard that received the query, reads the snapshot it is given without
// locks and writes the response into a caller-owned buffer. Scratch vectors
// and strings live in the resolver and keep their capacity, so a steady
// stream of queries does not allocate.
//
// Names (under `domain` or `alt_domain`, parsed right to left as Consul does):
//   [<tag>.]<service>.service[.<dc>[.dc]].<domain>          A, AAAA, ANY, SRV, TXT (A records)
//   _<service>._<tag|tcp>[.service][.<dc>].<domain>         SRV (RFC 2782; "service" optional)
//   <node>.node[.<dc>].<domain>                              A, AAAA, ANY, TXT (node meta)
//   <hex>.addr[.<dc>].<domain>                               A (8 hex digits), AAAA (32)
//   any name in the domain, type SOA or NS                   SOA / NS with glue
//   <reversed ip>.in-addr.arpa, .ip6.arpa                     PTR to a node, else a service
// Anything else in the domain is NXDOMAIN with the SOA in Authority; names
// outside it are forwarded to the recursors (verdict::forward) or REFUSED.
// Other datacenters are NXDOMAIN (no WAN federation here, Consul's "no path").
//
// Size rules (Consul's trimUDPResponse/trimTCPResponse): over UDP without
// EDNS answers are first cut to min(8, udp_answer_limit) and sized
// uncompressed; then answers are removed until the message fits 512 bytes or
// the EDNS size (capped at 65507); the additional section follows the
// surviving SRV targets. TC only if something was cut and enable_truncate.
// TCP answers are cut to fit 64 KiB.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocols/dns/wire.hh"
#include "services/agent/config.hh"
#include "services/state/state.hh"

namespace pharos::dns {

struct resolver_config {
    std::string domain = "consul.";  // lower case, with the trailing dot
    std::string alt_domain;          // "" or lower case with the trailing dot
    std::string datacenter = "dc1";
    agent::dns_settings s;
    bool recursors = false;  // some are configured: RA set, other names forwarded
};

resolver_config resolver_config_from(const agent::config& c);

enum class verdict : uint8_t {
    reply,    // `out` holds the response
    drop,     // no response (unparseable, or a response packet)
    forward,  // not ours: send the query to the recursors
};

struct resolver_stats {
    uint64_t queries = 0;
    uint64_t dropped = 0;   // packets too broken to answer
    uint64_t formerr = 0;   // answered FORMERR
    uint64_t nxdomain = 0;
    uint64_t forwarded = 0;
    uint64_t truncated = 0;  // answers trimmed to fit
};

class resolver {
public:
    explicit resolver(resolver_config cfg);

    // Answers the query in `pkt` from `snap`; `udp` selects the UDP size rules.
    verdict answer(std::string_view pkt, const state::snapshot& snap, bool udp, std::string& out);
    // SERVFAIL for `pkt` (all recursors failed); false if `pkt` is not a query.
    bool servfail(std::string_view pkt, std::string& out);

    const resolver_stats& stats() const noexcept { return stats_; }
    uint64_t cache_hits() const noexcept { return cache_hits_; }
    const resolver_config& config() const noexcept { return cfg_; }
    // Seeds the shuffle (tests).
    void seed(uint64_t s) noexcept { rng_ = s ? s : 1; }

    // A record before encoding. Names are spans of `arena_`.
    struct span {
        uint32_t off = 0;
        uint32_t len = 0;
    };
    struct record {
        uint16_t type = 0;
        uint8_t section = 0;  // writer::section
        bool owner_is_qname = false;
        bool meta = false;  // a node-meta TXT in Additional: dropped when the answer is trimmed
        uint32_t ttl = 0;
        span owner;
        span target;  // SRV/NS/PTR/CNAME target, TXT text, SOA mname
        span target2;  // SOA rname
        uint8_t ip[16]{};
        uint16_t prio = 0, weight = 0, port = 0;
        uint32_t soa[5]{};
    };

private:
    enum class outcome : uint8_t { ok, nodata, nxdomain, servfail, empty };
    struct candidate {
        const catalog::service* svc;
        const catalog::node* n;
        catalog::health h;
    };

    outcome dispatch_domain(const query& q, size_t domain_labels, const std::string& resp_domain,
                            const state::snapshot& snap);
    outcome service_lookup(const query& q, std::string_view service, std::string_view tag, const std::string& dc,
                           const std::string& resp_domain, const state::snapshot& snap);
    outcome node_lookup(const query& q, size_t first, size_t last, const std::string& resp_domain,
                        const state::snapshot& snap);
    outcome addr_lookup(const query& q, std::string_view hex);
    outcome ptr_lookup(const query& q, const state::snapshot& snap);
    void add_soa(uint8_t section, const std::string& resp_domain);
    void add_nameservers(const std::string& resp_domain, const state::snapshot& snap, bool as_answer);
    void add_node_meta(uint8_t section, bool qname_owner, span owner, const catalog::node& n, uint32_t ttl);
    uint32_t service_ttl(std::string_view service) const;
    bool in_domain(const name& n, const std::string& domain, size_t& labels) const;

    span put(std::string_view s);
    span put_fqdn(std::string_view a, std::string_view b, std::string_view c, std::string_view d);
    std::string_view view(span s) const noexcept { return {arena_.data() + s.off, s.len}; }
    uint64_t next_random() noexcept;

    // Encodes the first `answers` answer records (and the rest) into `out`;
    // `sync`: the additional section keeps only the address records of the
    // surviving SRV targets. Returns the size.
    size_t encode(std::string& out, const query& q, uint8_t rc, size_t answers, bool sync, bool compress,
                  bool keep_authority);
    size_t finish(std::string& out, const query& q, uint8_t rc, bool udp);

    resolver_config cfg_;
    std::string domain_nodot_, alt_nodot_;
    std::vector<std::pair<std::string, uint32_t>> ttl_prefixes_;  // longest first
    resolver_stats stats_;
    uint64_t rng_ = 0x9E3779B97F4A7C15ull;

    // Answers in the domain depend only on (type, name, snapshot): their records
    // are kept until the snapshot changes and re-shuffled and re-encoded per query.
    struct cached {
        uint8_t rc = 0;
        bool shuffle = false;
        std::vector<record> recs;
        std::string arena;
    };
    std::unordered_map<std::string, cached> cache_;
    const state::snapshot* cache_snap_ = nullptr;
    uint64_t cache_index_ = 0;
    uint64_t cache_hits_ = 0;
    std::string key_;
    bool shuffled_ = false;  // the current lookup shuffled its answers

    // Per-query scratch.
    query q_;
    writer w_;
    std::string arena_;
    std::vector<record> recs_;
    std::vector<candidate> cands_;
    std::vector<const catalog::service*> seen_;
    std::string tmp_, tmp2_;
    std::vector<uint32_t> kept_;
};

}  // namespace pharos::dns
