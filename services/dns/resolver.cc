#include "resolver.hh"

#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>
#include <cstring>
#include <ctime>

namespace pharos::dns {

namespace {

constexpr size_t max_udp_datagram = 65535 - 28;  // Consul's maxUDPDatagramSize
constexpr size_t max_udp_answer_limit = 8;       // Consul's maxUDPAnswerLimit
constexpr size_t max_tcp_size = 65523;

enum accept_bits : unsigned { accept_v4 = 1, accept_v6 = 2, accept_any = 4, accept_domain = 8 };

// 4 or 16 bytes, or 0 if `s` is not an IP literal.
int parse_ip(std::string_view s, uint8_t* out) {
    // Dotted quads without a library call (the common case), else inet_pton.
    {
        int part = 0, val = -1, digits = 0;
        bool ok = !s.empty();
        for (size_t i = 0; i < s.size() && ok; ++i) {
            char c = s[i];
            if (c >= '0' && c <= '9') {
                if (digits == 3 || (digits > 0 && val == 0)) ok = false;  // no leading zeros, as Go
                val = (val < 0 ? 0 : val) * 10 + (c - '0');
                ++digits;
                if (val > 255) ok = false;
            } else if (c == '.' && digits > 0 && part < 3) {
                out[part++] = uint8_t(val);
                val = -1;
                digits = 0;
            } else {
                ok = false;
            }
        }
        if (ok && part == 3 && digits > 0) {
            out[3] = uint8_t(val);
            return 4;
        }
        if (s.find(':') == std::string_view::npos) return 0;
    }
    char buf[64];
    if (s.empty() || s.size() >= sizeof buf) return 0;
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = 0;
    if (inet_pton(AF_INET, buf, out) == 1) return 4;
    if (inet_pton(AF_INET6, buf, out) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(out, mapped, 12) == 0) {  // Go's To4(): a v4-mapped address is IPv4
            std::memmove(out, out + 12, 4);
            return 4;
        }
        return 16;
    }
    return 0;
}

std::string_view tagged(const catalog::str_map& m, std::string_view key) {
    for (auto& [k, v] : m)
        if (k == key) return v;
    return {};
}
std::string_view tagged(const std::vector<std::pair<std::string, catalog::service_address>>& m, std::string_view key) {
    for (auto& [k, v] : m)
        if (k == key) return v.address;
    return {};
}

// Consul's translateAddressAccept.
std::string_view translate(unsigned accept, std::string_view def, std::string_view v4, std::string_view v6) {
    if ((accept & accept_v6) && !v6.empty()) return v6;
    if ((accept & accept_v4) && !v4.empty()) return v4;
    if ((accept & accept_any) && !def.empty()) return def;
    uint8_t ip[16];
    int fam = parse_ip(def, ip);
    if (fam == 4 && (accept & accept_v4)) return def;
    if (fam == 16 && (accept & accept_v6)) return def;
    if (fam == 0 && (accept & accept_domain)) return def;
    return {};
}

unsigned accept_for(uint16_t qtype) {
    if (qtype == type::A) return accept_domain | accept_v4;
    if (qtype == type::AAAA) return accept_domain | accept_v6;
    return accept_domain | accept_any;
}

// Consul's makeARecord: which address records a query type may carry.
uint16_t address_type_for(uint16_t qtype, int fam) {
    bool common = qtype == type::SRV || qtype == type::ANY || qtype == type::NS || qtype == type::TXT;
    if (fam == 4 && (common || qtype == type::A)) return type::A;
    if (fam == 16 && (common || qtype == type::AAAA)) return type::AAAA;
    return 0;
}

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

size_t count_labels(std::string_view nodot) {
    if (nodot.empty()) return 0;
    return size_t(std::count(nodot.begin(), nodot.end(), '.')) + 1;
}

std::string lower_fqdn(std::string d) {
    for (auto& c : d)
        if (c >= 'A' && c <= 'Z') c = char(c + 32);
    if (!d.empty() && d.back() != '.') d.push_back('.');
    return d;
}

// RFC 1464 key escaping, as Consul's encodeKVasRFC1464.
void rfc1464(std::string_view key, std::string_view value, std::string& out) {
    out.clear();
    if (key.size() >= 8 && strncasecmp(key.data(), "rfc1035-", 8) == 0) {
        out.append(value);
        return;
    }
    size_t lead = 0;
    while (lead < key.size() && key[lead] == ' ') ++lead;
    size_t trail = 0;
    while (trail < key.size() - lead && key[key.size() - 1 - trail] == ' ') ++trail;
    for (size_t i = 0; i < key.size(); ++i) {
        char c = key[i];
        if (c == '`')
            out.append("``");
        else if (c == '=')
            out.append("`=");
        else if (c == ' ' && (i < lead || i >= key.size() - trail))
            out.append("` ");
        else
            out.push_back(c);
    }
    out.push_back('=');
    for (char c : value) {
        if (c == '`')
            out.append("``");
        else
            out.push_back(c);
    }
}

}  // namespace

resolver_config resolver_config_from(const agent::config& c) {
    resolver_config r;
    r.domain = lower_fqdn(c.domain.empty() ? "consul." : c.domain);
    r.alt_domain = c.alt_domain.empty() ? "" : lower_fqdn(c.alt_domain);
    r.datacenter = c.datacenter;
    r.s = c.dns;
    r.recursors = !c.recursors.empty();
    return r;
}

resolver::resolver(resolver_config cfg) : cfg_(std::move(cfg)) {
    domain_nodot_ = cfg_.domain.substr(0, cfg_.domain.size() - (cfg_.domain.empty() ? 0 : 1));
    if (!cfg_.alt_domain.empty()) alt_nodot_ = cfg_.alt_domain.substr(0, cfg_.alt_domain.size() - 1);
    for (auto& [k, v] : cfg_.s.service_ttl_s)
        if (!k.empty() && k.back() == '*') ttl_prefixes_.emplace_back(k.substr(0, k.size() - 1), uint32_t(v));
    std::sort(ttl_prefixes_.begin(), ttl_prefixes_.end(),
              [](auto& a, auto& b) { return a.first.size() > b.first.size(); });
    arena_.reserve(4096);
    recs_.reserve(64);
    cands_.reserve(64);
}

uint64_t resolver::next_random() noexcept {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
}

resolver::span resolver::put(std::string_view s) {
    span r{uint32_t(arena_.size()), uint32_t(s.size())};
    arena_.append(s);
    return r;
}

resolver::span resolver::put_fqdn(std::string_view a, std::string_view b, std::string_view c, std::string_view d) {
    span r{uint32_t(arena_.size()), 0};
    arena_.append(a);
    arena_.append(b);
    arena_.append(c);
    arena_.append(d);
    for (size_t i = r.off; i < arena_.size(); ++i)
        if (arena_[i] >= 'A' && arena_[i] <= 'Z') arena_[i] = char(arena_[i] + 32);
    if (arena_.empty() || arena_.back() != '.') arena_.push_back('.');
    r.len = uint32_t(arena_.size() - r.off);
    return r;
}

uint32_t resolver::service_ttl(std::string_view service) const {
    auto it = cfg_.s.service_ttl_s.find(std::string(service));
    if (it != cfg_.s.service_ttl_s.end()) return uint32_t(it->second);
    for (auto& [p, v] : ttl_prefixes_)
        if (starts_with(service, p)) return v;
    return 0;
}

bool resolver::in_domain(const name& n, const std::string& nodot, size_t& labels) const {
    if (nodot.empty()) return false;
    std::string_view t = n.text();
    size_t dl = count_labels(nodot);
    if (t == nodot) {
        labels = 0;
        return true;
    }
    if (t.size() > nodot.size() && t[t.size() - nodot.size() - 1] == '.' && ends_with(t, nodot)) {
        labels = n.labels - dl;
        return true;
    }
    return false;
}

bool resolver::servfail(std::string_view pkt, std::string& out) {
    if (parse_query(pkt, q_) != parse_result::ok) return false;
    writer& w = w_;
    w.begin(out, q_, flag::ra, !cfg_.s.disable_compression);
    w.set_rcode(rcode::servfail);
    if (q_.edns) w.opt(q_.edns_size);
    return true;
}

verdict resolver::answer(std::string_view pkt, const state::snapshot& snap, bool udp, std::string& out) {
    ++stats_.queries;
    parse_result pr = parse_query(pkt, q_);
    if (pr == parse_result::drop) {
        ++stats_.dropped;
        return verdict::drop;
    }
    if (pr == parse_result::formerr) {
        ++stats_.formerr;
        write_error(q_, false, rcode::formerr, out);
        return verdict::reply;
    }
    if (pr == parse_result::notimp) {
        write_error(q_, false, rcode::notimp, out);
        return verdict::reply;
    }
    arena_.clear();
    recs_.clear();
    const query& q = q_;
    size_t labels = 0;
    const std::string* resp_domain = nullptr;
    // The longer of domain and alt_domain first, as Consul's trimDomain.
    bool alt_first = alt_nodot_.size() > domain_nodot_.size();
    if (alt_first && in_domain(q.qname, alt_nodot_, labels))
        resp_domain = &cfg_.alt_domain;
    else if (in_domain(q.qname, domain_nodot_, labels))
        resp_domain = &cfg_.domain;
    else if (!alt_first && in_domain(q.qname, alt_nodot_, labels))
        resp_domain = &cfg_.alt_domain;

    if (resp_domain) {
        if (&snap != cache_snap_ || snap.index != cache_index_ || cache_.size() >= 16384) {
            cache_.clear();
            cache_snap_ = &snap;
            cache_index_ = snap.index;
        }
        key_.clear();
        key_.push_back(char(q.qtype >> 8));
        key_.push_back(char(q.qtype & 0xFF));
        key_.append(q.qname.text());
        auto hit = cache_.find(key_);
        if (hit != cache_.end()) {
            ++cache_hits_;
            const cached& c = hit->second;
            recs_.assign(c.recs.begin(), c.recs.end());
            arena_.assign(c.arena);
            if (c.shuffle) {
                // Fisher-Yates over the answer records, in place among their positions.
                kept_.clear();
                for (uint32_t i = 0; i < recs_.size(); ++i)
                    if (recs_[i].section == uint8_t(writer::section::answer)) kept_.push_back(i);
                for (size_t i = kept_.size(); i > 1; --i)
                    std::swap(recs_[kept_[i - 1]], recs_[kept_[next_random() % i]]);
            }
            if (c.rc == rcode::nxdomain) ++stats_.nxdomain;
            finish(out, q, c.rc, udp);
            return verdict::reply;
        }
        shuffled_ = false;
        uint8_t rc = rcode::noerror;
        if (q.qtype == type::SOA) {
            add_soa(uint8_t(writer::section::answer), *resp_domain);
            add_nameservers(*resp_domain, snap, false);
        } else if (q.qtype == type::NS) {
            add_nameservers(*resp_domain, snap, true);
        } else if (q.qtype == type::AXFR) {
            rc = rcode::notimp;
        } else {
            outcome o = dispatch_domain(q, labels, *resp_domain, snap);
            if (o == outcome::nxdomain) {
                rc = rcode::nxdomain;
                ++stats_.nxdomain;
                add_soa(uint8_t(writer::section::authority), *resp_domain);
            } else if (o == outcome::nodata) {
                add_soa(uint8_t(writer::section::authority), *resp_domain);
            } else if (o == outcome::servfail) {
                rc = rcode::servfail;
            }
        }
        cached& c = cache_[key_];
        c.rc = rc;
        c.shuffle = shuffled_;
        c.recs.assign(recs_.begin(), recs_.end());
        c.arena.assign(arena_);
        finish(out, q, rc, udp);
        return verdict::reply;
    }
    std::string_view t = q.qname.text();
    if (t == "in-addr.arpa" || t == "ip6.arpa" || ends_with(t, ".in-addr.arpa") || ends_with(t, ".ip6.arpa")) {
        if (q.qtype == type::SOA) add_soa(uint8_t(writer::section::authority), cfg_.domain);
        ptr_lookup(q, snap);
        bool found = false;
        for (auto& r : recs_)
            if (r.section == uint8_t(writer::section::answer)) found = true;
        if (found) {
            finish(out, q, rcode::noerror, udp);
            return verdict::reply;
        }
    }
    if (cfg_.recursors) {
        ++stats_.forwarded;
        return verdict::forward;
    }
    // No recursors: Consul's mux has no handler for other names (REFUSED); a
    // PTR it cannot answer goes to the (empty) recursor list: SERVFAIL.
    bool ptr = ends_with(t, "arpa");
    w_.begin(out, q, ptr ? flag::ra : 0, true);
    w_.set_rcode(ptr ? rcode::servfail : rcode::refused);
    if (q.edns) w_.opt(q.edns_size);
    return verdict::reply;
}

resolver::outcome resolver::dispatch_domain(const query& q, size_t n, const std::string& resp_domain,
                                            const state::snapshot& snap) {
    const name& nm = q.qname;
    enum kind_t { none, service, connect, virt, ingress, node, pquery, addr } kind = none;
    size_t parts = 0;  // labels [0, parts) are the query parts; [suffix, n) the suffixes
    size_t suffix = 0;
    for (size_t i = n; i-- > 0 && kind == none;) {
        std::string_view l = nm.label(i);
        kind_t k = none;
        if (l == "service")
            k = service;
        else if (l == "connect")
            k = connect;
        else if (l == "virtual")
            k = virt;
        else if (l == "ingress")
            k = ingress;
        else if (l == "node")
            k = node;
        else if (l == "query")
            k = pquery;
        else if (l == "addr")
            k = addr;
        if (k != none) {
            kind = k;
            parts = i;
            suffix = i + 1;
        } else if (q.qtype == type::SRV && !l.empty() && l[0] == '_') {
            kind = service;
            parts = i + 1;
            suffix = i + 1;
        }
    }
    if (kind == none) return outcome::nxdomain;
    // Datacenter: none, "<dc>" or "<dc>.dc".
    std::string_view dc = cfg_.datacenter;
    size_t ns = n - suffix;
    if (kind != addr) {
        if (ns == 1)
            dc = nm.label(suffix);
        else if (ns == 2 && nm.label(suffix + 1) == "dc")
            dc = nm.label(suffix);
        else if (ns != 0)
            return outcome::nxdomain;
    }
    switch (kind) {
    case service: {
        if (parts < 1) return outcome::nxdomain;
        if (dc != cfg_.datacenter) return outcome::nxdomain;  // no WAN federation: Consul's "no path to datacenter"
        std::string_view svc, tag;
        if (parts == 2 && nm.label(0).substr(0, 1) == "_" && nm.label(1).substr(0, 1) == "_") {
            tag = nm.label(1).substr(1);
            if (tag == "tcp") tag = {};
            svc = nm.label(0).substr(1);
        } else {
            if (parts >= 2) {
                size_t from = nm.label_off[0];
                size_t to = nm.label_off[parts - 2] + nm.label_len[parts - 2];
                tag = nm.text().substr(from, to - from);
            }
            svc = nm.label(parts - 1);
        }
        return service_lookup(q, svc, tag, cfg_.datacenter, resp_domain, snap);
    }
    case node:
        if (parts < 1) return outcome::nxdomain;
        if (dc != cfg_.datacenter) return outcome::nxdomain;
        return node_lookup(q, 0, parts, resp_domain, snap);
    case addr:
        if (parts != 1) return outcome::nxdomain;
        return addr_lookup(q, nm.label(0));
    default:
        // connect, virtual, ingress, prepared queries: not implemented here (no
        // mesh, no prepared queries): nothing by those names exists.
        return outcome::nxdomain;
    }
}

resolver::outcome resolver::service_lookup(const query& q, std::string_view service, std::string_view tag,
                                           const std::string& dc, const std::string& resp_domain,
                                           const state::snapshot& snap) {
    const catalog::store& c = snap.catalog;
    cands_.clear();
    const bool only_passing = cfg_.s.only_passing;
    const bool srv = q.qtype == type::SRV;
    auto gather = [&](std::string_view name) {
        size_t run_start = 0;
        const catalog::node* run_node = nullptr;
        c.for_each_instance(name, [&](const catalog::service& s) {
            if (!tag.empty()) {
                bool has = false;
                for (auto& t : s.tags)
                    if (iequal(t, tag)) {
                        has = true;
                        break;
                    }
                if (!has) return;
            }
            const catalog::node* n = (run_node && run_node->name == s.node) ? run_node : c.get_node(s.node);
            if (!n) return;
            if (n != run_node) {
                run_node = n;
                run_start = cands_.size();
            }
            catalog::health h = c.instance_health(s);
            if (h == catalog::health::critical) return;
            if (only_passing && h != catalog::health::passing) return;
            if (srv) {  // one SRV per node:address:port (Consul's tuple); same-node instances are adjacent
                for (size_t i = run_start; i < cands_.size(); ++i)
                    if (cands_[i].svc->address == s.address && cands_[i].svc->port == s.port) return;
            }
            cands_.push_back(candidate{&s, n, h});
        });
    };
    gather(service);
    if (cands_.empty()) {
        // Catalog names are case-sensitive here; try the name as the client wrote it.
        size_t at = size_t(service.data() - q.qname.lower.data());
        std::string_view orig(reinterpret_cast<const char*>(q.qname.wire.data()) + at + 1, service.size());
        if (orig != service) gather(orig);
    }
    if (cands_.empty()) return outcome::nxdomain;
    for (size_t i = cands_.size(); i > 1; --i) std::swap(cands_[i - 1], cands_[next_random() % i]);
    shuffled_ = true;

    const uint32_t ttl = service_ttl(service);
    const uint8_t ans = uint8_t(writer::section::answer), add = uint8_t(writer::section::additional);
    const size_t limit = cands_.size();
    if (srv) {
        seen_.clear();
        for (size_t i = 0; i < limit; ++i) {
            const candidate& cd = cands_[i];
            const catalog::service& s = *cd.svc;
            const catalog::node& n = *cd.n;
            record r;
            r.type = type::SRV;
            r.section = ans;
            r.owner_is_qname = true;
            r.ttl = ttl;
            r.prio = 1;
            r.weight = uint16_t(cd.h == catalog::health::passing ? s.weight_passing : s.weight_warning);
            r.port = uint16_t(s.port);
            uint8_t ip[16];
            int fam = 0;
            span node_fqdn = put_fqdn(n.name, ".node.", dc, "." + resp_domain);
            bool node_target = s.address.empty() || s.address == n.address;
            if (node_target) {
                fam = parse_ip(n.address, ip);
                r.target = fam ? node_fqdn : put_fqdn(n.address, "", "", "");
            } else {
                fam = parse_ip(s.address, ip);
                if (fam) {
                    char hex[33];
                    static const char* digits = "0123456789abcdef";
                    for (int b = 0; b < fam; ++b) {
                        hex[2 * b] = digits[ip[b] >> 4];
                        hex[2 * b + 1] = digits[ip[b] & 15];
                    }
                    r.target = put_fqdn(std::string_view(hex, size_t(2 * fam)), ".addr.", dc, "." + resp_domain);
                } else {
                    r.target = put_fqdn(s.address, "", "", "");
                }
            }
            recs_.push_back(r);
            if (fam) {
                record a;
                a.type = fam == 4 ? type::A : type::AAAA;
                a.section = add;
                a.ttl = ttl;
                a.owner = r.target;
                std::memcpy(a.ip, ip, size_t(fam));
                recs_.push_back(a);
            }
            if (cfg_.s.enable_additional_node_meta_txt && !n.meta.empty()) {
                bool done = false;
                for (auto* p : seen_)
                    if (p->node == s.node) done = true;
                if (!done) {
                    seen_.push_back(&s);
                    add_node_meta(add, false, node_fqdn, n, ttl);
                }
            }
        }
    } else {
        const unsigned accept = accept_for(q.qtype);
        size_t count = 0;
        int cname_at = -1;  // the first CNAME, answered only if no address record is
        for (size_t i = 0; i < limit; ++i) {
            const candidate& cd = cands_[i];
            const catalog::service& s = *cd.svc;
            const catalog::node& n = *cd.n;
            std::string_view saddr = translate(accept, s.address, tagged(s.tagged_addresses, "lan_ipv4"),
                                               tagged(s.tagged_addresses, "lan_ipv6"));
            std::string_view naddr = translate(accept, n.address, tagged(n.tagged_addresses, "lan_ipv4"),
                                               tagged(n.tagged_addresses, "lan_ipv6"));
            if (saddr.empty() && naddr.empty()) continue;
            uint8_t ip[16];
            int fam = 0;
            std::string_view cname;
            if (saddr.empty()) {
                fam = parse_ip(naddr, ip);
                if (!fam) cname = naddr;
            } else {
                fam = parse_ip(saddr, ip);
                if (!fam) {
                    // A service address naming the question itself: use the node's address.
                    std::string_view sa = saddr;
                    if (!sa.empty() && sa.back() == '.') sa.remove_suffix(1);
                    if (iequal(sa, q.qname.text()) && (fam = parse_ip(naddr, ip)) != 0) {
                    } else {
                        cname = saddr;
                    }
                }
            }
            if (!fam) {
                if (cname_at < 0) {
                    record r;
                    r.type = type::CNAME;
                    r.section = ans;
                    r.owner_is_qname = true;
                    r.ttl = ttl;
                    r.target = put_fqdn(cname, "", "", "");
                    cname_at = int(recs_.size());
                    recs_.push_back(r);
                }
                continue;
            }
            uint16_t t = address_type_for(q.qtype, fam);
            if (!t) continue;
            bool dup = false;
            for (auto& r : recs_) {
                if (r.type != t) continue;
                bool same = true;
                for (int b = 0; b < fam && same; ++b) same = r.ip[b] == ip[b];
                if (same) {
                    dup = true;
                    break;
                }
            }
            if (dup) continue;
            record r;
            r.type = t;
            r.section = ans;
            r.owner_is_qname = true;
            r.ttl = ttl;
            std::memcpy(r.ip, ip, size_t(fam));
            recs_.push_back(r);
            if (++count == size_t(cfg_.s.a_record_limit)) break;
        }
        if (cname_at >= 0 && count > 0) recs_.erase(recs_.begin() + cname_at);
    }
    for (auto& r : recs_)
        if (r.section == ans) return outcome::ok;
    return outcome::nodata;
}

void resolver::add_node_meta(uint8_t section, bool qname_owner, span owner, const catalog::node& n, uint32_t ttl) {
    for (auto& [k, v] : n.meta) {
        rfc1464(k, v, tmp_);
        record r;
        r.type = type::TXT;
        r.section = section;
        r.owner_is_qname = qname_owner;
        r.owner = owner;
        r.meta = section == uint8_t(writer::section::additional);
        r.ttl = ttl;
        r.target = put(tmp_);
        recs_.push_back(r);
    }
}

resolver::outcome resolver::node_lookup(const query& q, size_t first, size_t last, const std::string& resp_domain,
                                        const state::snapshot& snap) {
    (void)resp_domain;
    uint16_t qt = q.qtype;
    if (qt != type::ANY && qt != type::A && qt != type::AAAA && qt != type::TXT) return outcome::ok;
    const name& nm = q.qname;
    size_t from = nm.label_off[first];
    size_t to = nm.label_off[last - 1] + nm.label_len[last - 1];
    std::string_view lname = nm.text().substr(from, to - from);
    const catalog::node* n = snap.catalog.get_node(lname);
    if (!n) {
        // As the client wrote it (node names keep their case in the catalog).
        tmp2_.assign(reinterpret_cast<const char*>(nm.wire.data()) + from + 1, to - from);
        for (size_t i = first + 1; i < last; ++i) tmp2_[nm.label_off[i] - 1 - from] = '.';
        n = snap.catalog.get_node(tmp2_);
    }
    if (!n) {
        // Consul matches node names case-insensitively: a scan, only on a miss.
        snap.catalog.for_each_node([&](const catalog::node& cand) {
            if (!n && iequal(cand.name, lname)) n = &cand;
        });
    }
    if (!n) return outcome::nxdomain;
    const uint32_t ttl = uint32_t(cfg_.s.node_ttl_s);
    const uint8_t ans = uint8_t(writer::section::answer), add = uint8_t(writer::section::additional);
    if (qt != type::TXT) {
        std::string_view addr =
            translate(accept_for(qt), n->address, tagged(n->tagged_addresses, "lan_ipv4"),
                      tagged(n->tagged_addresses, "lan_ipv6"));
        uint8_t ip[16];
        int fam = parse_ip(addr, ip);
        record r;
        r.section = ans;
        r.owner_is_qname = true;
        r.ttl = ttl;
        if (fam) {
            r.type = address_type_for(qt, fam);
            std::memcpy(r.ip, ip, size_t(fam));
            if (r.type) recs_.push_back(r);
        } else if (!addr.empty()) {
            r.type = type::CNAME;
            r.target = put_fqdn(addr, "", "", "");
            recs_.push_back(r);
        }
    }
    if (cfg_.s.enable_additional_node_meta_txt || qt == type::TXT || qt == type::ANY)
        add_node_meta((qt == type::TXT || qt == type::ANY) ? ans : add, true, span{}, *n, ttl);
    return outcome::ok;
}

resolver::outcome resolver::addr_lookup(const query& q, std::string_view hex) {
    size_t bytes = hex.size() / 2;
    if (bytes != 4 && bytes != 16) return outcome::ok;
    if (hex.size() % 2) return outcome::nxdomain;  // Go's hex.DecodeString refuses odd lengths
    uint8_t ip[16];
    for (size_t i = 0; i < bytes; ++i) {
        int v = 0;
        for (int k = 0; k < 2; ++k) {
            char ch = hex[2 * i + size_t(k)];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0) return outcome::nxdomain;
            v = v * 16 + d;
        }
        ip[i] = uint8_t(v);
    }
    record r;
    r.type = bytes == 4 ? type::A : type::AAAA;
    bool in_answer = q.qtype == r.type || q.qtype == type::ANY;
    r.section = uint8_t(in_answer ? writer::section::answer : writer::section::additional);
    r.owner_is_qname = true;
    r.ttl = uint32_t(cfg_.s.node_ttl_s);
    std::memcpy(r.ip, ip, bytes);
    recs_.push_back(r);
    return outcome::ok;
}

resolver::outcome resolver::ptr_lookup(const query& q, const state::snapshot& snap) {
    const name& nm = q.qname;
    uint8_t want[16];
    int fam = 0;
    std::string_view t = nm.text();
    if (ends_with(t, ".in-addr.arpa") && nm.labels == 6) {
        for (int i = 0; i < 4; ++i) {
            std::string_view l = nm.label(size_t(3 - i));
            if (l.empty() || l.size() > 3) return outcome::nxdomain;
            int v = 0;
            for (char ch : l) {
                if (ch < '0' || ch > '9') return outcome::nxdomain;
                v = v * 10 + (ch - '0');
            }
            if (v > 255) return outcome::nxdomain;
            want[i] = uint8_t(v);
        }
        fam = 4;
    } else if (ends_with(t, ".ip6.arpa") && nm.labels == 34) {
        for (int i = 0; i < 32; ++i) {
            std::string_view l = nm.label(size_t(31 - i));
            if (l.size() != 1) return outcome::nxdomain;
            char ch = l[0];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0) return outcome::nxdomain;
            if (i % 2 == 0)
                want[i / 2] = uint8_t(d << 4);
            else
                want[i / 2] = uint8_t(want[i / 2] | d);
        }
        fam = 16;
    } else {
        return outcome::nxdomain;
    }
    const uint8_t ans = uint8_t(writer::section::answer);
    bool found = false;
    snap.catalog.for_each_node([&](const catalog::node& n) {
        if (found) return;
        uint8_t ip[16];
        if (parse_ip(n.address, ip) == fam && std::memcmp(ip, want, size_t(fam)) == 0) {
            record r;
            r.type = type::PTR;
            r.section = ans;
            r.owner_is_qname = true;
            r.target = put_fqdn(n.name, ".node.", n.datacenter.empty() ? cfg_.datacenter : n.datacenter,
                                "." + cfg_.domain);
            recs_.push_back(r);
            found = true;
        }
    });
    if (!found) {
        snap.catalog.for_each_instance([&](const catalog::service& s) {
            if (found || s.address.empty()) return;
            uint8_t ip[16];
            if (parse_ip(s.address, ip) == fam && std::memcmp(ip, want, size_t(fam)) == 0) {
                record r;
                r.type = type::PTR;
                r.section = ans;
                r.owner_is_qname = true;
                r.target = put_fqdn(s.name, ".service.", cfg_.datacenter, "." + cfg_.domain);
                recs_.push_back(r);
                found = true;
            }
        });
    }
    return found ? outcome::ok : outcome::nxdomain;
}

void resolver::add_soa(uint8_t section, const std::string& resp_domain) {
    record r;
    r.type = type::SOA;
    r.section = section;
    r.owner = put(resp_domain);
    r.ttl = cfg_.s.soa_min_ttl;
    r.target = put_fqdn("ns.", resp_domain, "", "");
    r.target2 = put_fqdn("hostmaster.", resp_domain, "", "");
    r.soa[1] = cfg_.s.soa_refresh;
    r.soa[2] = cfg_.s.soa_retry;
    r.soa[3] = cfg_.s.soa_expire;
    r.soa[4] = cfg_.s.soa_min_ttl;
    recs_.push_back(r);
}

// Up to three servers (instances of the "consul" service), shuffled: NS
// records and their addresses as glue.
void resolver::add_nameservers(const std::string& resp_domain, const state::snapshot& snap, bool as_answer) {
    const catalog::store& c = snap.catalog;
    cands_.clear();
    c.for_each_instance("consul", [&](const catalog::service& s) {
        const catalog::node* n = c.get_node(s.node);
        if (!n) return;
        catalog::health h = c.instance_health(s);
        if (h == catalog::health::critical || (cfg_.s.only_passing && h != catalog::health::passing)) return;
        cands_.push_back(candidate{&s, n, h});
    });
    for (size_t i = cands_.size(); i > 1; --i) std::swap(cands_[i - 1], cands_[next_random() % i]);
    shuffled_ = true;
    const uint32_t ttl = uint32_t(cfg_.s.node_ttl_s);
    span owner = put(resp_domain);
    size_t done = 0;
    for (auto& cd : cands_) {
        if (done == 3) break;
        const catalog::node& n = *cd.n;
        bool valid = !n.name.empty();
        for (char ch : n.name)
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-'))
                valid = false;  // Consul's InvalidNameRe
        if (!valid) continue;
        record r;
        r.type = type::NS;
        r.section = uint8_t(as_answer ? writer::section::answer : writer::section::authority);
        r.owner = owner;
        r.ttl = ttl;
        r.target = put_fqdn(n.name, ".node.", n.datacenter.empty() ? cfg_.datacenter : n.datacenter,
                            "." + resp_domain);
        recs_.push_back(r);
        uint8_t ip[16];
        int fam = parse_ip(n.address, ip);
        if (fam) {
            record a;
            a.type = fam == 4 ? type::A : type::AAAA;
            a.section = uint8_t(writer::section::additional);
            a.owner = r.target;
            a.ttl = ttl;
            std::memcpy(a.ip, ip, size_t(fam));
            recs_.push_back(a);
        }
        ++done;
    }
}

size_t resolver::encode(std::string& out, const query& q, uint8_t rc, size_t answers, bool sync, bool compress,
                        bool keep_authority) {
    writer& w = w_;
    uint16_t flags = uint16_t(flag::aa | (cfg_.recursors ? flag::ra : 0));
    w.begin(out, q, flags, compress);
    w.set_rcode(rc);
    kept_.clear();
    auto emit = [&](const record& r) {
        auto sec = writer::section(r.section);
        if (r.owner_is_qname)
            w.begin_rr_qname(sec, r.type, r.ttl);
        else if (!w.begin_rr(sec, view(r.owner), r.type, r.ttl))
            return;
        bool ok = true;
        switch (r.type) {
        case type::A: w.bytes(std::string_view(reinterpret_cast<const char*>(r.ip), 4)); break;
        case type::AAAA: w.bytes(std::string_view(reinterpret_cast<const char*>(r.ip), 16)); break;
        case type::SRV:
            w.u16(r.prio);
            w.u16(r.weight);
            w.u16(r.port);
            ok = w.rdata_name(view(r.target), false);
            break;
        case type::NS:
        case type::PTR:
        case type::CNAME: ok = w.rdata_name(view(r.target), true); break;
        case type::TXT: w.character_strings(view(r.target)); break;
        case type::SOA:
            ok = w.rdata_name(view(r.target), true) && w.rdata_name(view(r.target2), true);
            w.u32(uint32_t(std::time(nullptr)));  // serial: now, as Consul
            for (int k = 1; k < 5; ++k) w.u32(r.soa[k]);
            break;
        default: break;
        }
        if (ok)
            w.end_rr();
        else
            w.cancel_rr();
    };
    size_t n = 0;
    for (uint32_t i = 0; i < recs_.size(); ++i) {
        const record& r = recs_[i];
        if (r.section != uint8_t(writer::section::answer)) continue;
        if (n++ >= answers) break;
        emit(r);
        if (sync && r.type == type::SRV) kept_.push_back(i);
    }
    if (keep_authority)
        for (auto& r : recs_)
            if (r.section == uint8_t(writer::section::authority)) emit(r);
    if (sync) {
        // Consul's syncExtra: for each surviving SRV target (once), the first
        // additional record with that name.
        for (size_t k = 0; k < kept_.size(); ++k) {
            std::string_view target = view(recs_[kept_[k]].target);
            bool again = false;
            for (size_t j = 0; j < k; ++j)
                if (iequal(view(recs_[kept_[j]].target), target)) again = true;
            if (again) continue;
            for (auto& r : recs_)
                if (r.section == uint8_t(writer::section::additional) && !r.owner_is_qname &&
                    iequal(view(r.owner), target)) {
                    emit(r);
                    break;
                }
        }
    } else {
        for (auto& r : recs_)
            if (r.section == uint8_t(writer::section::additional)) emit(r);
    }
    if (q.edns) w.opt(q.edns_size);
    return out.size();
}

size_t resolver::finish(std::string& out, const query& q, uint8_t rc, bool udp) {
    size_t total = 0;
    bool has_extra = false;
    for (auto& r : recs_) {
        if (r.section == uint8_t(writer::section::answer)) ++total;
        if (r.section == uint8_t(writer::section::additional)) has_extra = true;
    }
    const bool compress = !cfg_.s.disable_compression;
    size_t n = total;
    bool sync = false, keep_auth = true, size_compress = compress;
    size_t max_size;
    if (udp) {
        max_size = 512;
        if (q.edns && q.edns_size > max_size) max_size = q.edns_size;
        if (max_size > max_udp_datagram) max_size = max_udp_datagram;
        size_t max_answers = std::min<size_t>(max_udp_answer_limit, size_t(std::max(0, cfg_.s.udp_answer_limit)));
        if (max_size == 512 && n > max_answers) {
            size_compress = false;  // sized uncompressed, sent compressed (as Consul)
            n = max_answers;
            sync = has_extra;
        }
    } else {
        max_size = max_tcp_size;
        size_t cap = q.qtype == type::SRV ? 1024 : 4096;
        if (n > cap) {
            n = cap;
            sync = has_extra;
        }
    }
    size_t limit = udp ? max_size - 8 : max_size;
    size_t size = encode(out, q, rc, n, sync, size_compress, keep_auth);
    while (n > 1 && size > limit) {
        keep_auth = false;
        if (size > max_size + 100) {
            size_t lo = 0, hi = n + 1, best = 0;
            bool exact = false;
            while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                size_t s = encode(out, q, rc, mid, has_extra, size_compress, keep_auth);
                if (s <= max_size) {
                    if (max_size - s < 10) {
                        best = mid;
                        exact = true;
                        break;
                    }
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            n = exact ? best : lo;
        } else {
            --n;
        }
        sync = has_extra;
        size = encode(out, q, rc, n, sync, size_compress, keep_auth);
    }
    bool trimmed = n < total;
    if (size_compress != compress) size = encode(out, q, rc, n, sync, compress, keep_auth);
    if (trimmed) {
        ++stats_.truncated;
        if (cfg_.s.enable_truncate) w_.set_flag(flag::tc, true);
    }
    return size;
}

}  // namespace pharos::dns
