// The DNS fuzz target's body, shared by the libFuzzer-style entry point
// (dns_parse_fuzz.cc) and the unit test that runs it over seeded mutations
// (tests/services/dns_fuzz_test.cc). Feeds one packet to the query parser, to
// read_name at every offset, and to the resolver over UDP and TCP against a
// small catalog, and checks what comes back: a reply must be a well-formed
// message with the query's ID, within the UDP size rules. Aborts on a breach.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "services/dns/resolver.hh"

namespace pharos::dnsfuzz {

inline const state::snapshot& catalog() {
    static const state::snapshot snap = [] {
        state::snapshot s;
        uint64_t index = 1;
        for (int i = 1; i <= 12; ++i) {
            catalog::register_request r;
            r.n.name = "node" + std::to_string(i);
            r.n.address = i % 4 == 0 ? "fd00::" + std::to_string(i) : "10.0.0." + std::to_string(i);
            r.n.datacenter = "dc1";
            r.n.meta = {{"rack", "r" + std::to_string(i % 3)}};
            catalog::service svc;
            svc.id = "web" + std::to_string(i);
            svc.name = i % 2 ? "web" : "db";
            svc.port = 8000 + i;
            svc.tags = {"prod"};
            if (i % 3 == 0) svc.address = "192.168.0." + std::to_string(i);
            r.svc = svc;
            catalog::check c;
            c.check_id = "service:" + svc.id;
            c.status = i % 5 == 0 ? "critical" : "passing";
            c.service_id = svc.id;
            r.checks.push_back(c);
            s.catalog.register_(r, ++index);
        }
        return s;
    }();
    return snap;
}

inline void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "dns fuzz: %s\n", what);
        std::abort();
    }
}

inline int one(const uint8_t* data, size_t size) {
    std::string_view pkt(reinterpret_cast<const char*>(data), size);
    dns::query q;
    dns::parse_result pr = dns::parse_query(pkt, q);
    if (pr == dns::parse_result::ok) check(q.qname.wire_len >= 1 && q.qname.wire_len <= 255, "name length");
    for (size_t at = 0; at < size && at < 600; ++at) {
        size_t pos = at;
        dns::name n;
        if (dns::read_name(pkt, pos, n)) check(pos <= size && n.wire_len <= 255 && n.lower_len < 255, "read_name");
    }
    static dns::resolver plain = [] {
        dns::resolver_config c;
        c.s.enable_truncate = true;
        return dns::resolver(c);
    }();
    static dns::resolver recursing = [] {
        dns::resolver_config c;
        c.recursors = true;
        c.alt_domain = "alt.";
        c.s.only_passing = true;
        c.s.udp_answer_limit = 8;
        return dns::resolver(c);
    }();
    static std::string out;
    for (dns::resolver* r : {&plain, &recursing}) {
        for (bool udp : {true, false}) {
            dns::verdict v = r->answer(pkt, catalog(), udp, out);
            if (v != dns::verdict::reply) continue;
            check(out.size() >= 12, "short reply");
            check(out[0] == pkt[0] && out[1] == pkt[1], "reply ID");
            if (pr == dns::parse_result::ok && udp) {
                size_t limit = q.edns && q.edns_size > 512 ? q.edns_size : 512;
                // A single answer is sent even if larger (Consul does the same).
                uint16_t an = uint16_t((uint8_t(out[6]) << 8) | uint8_t(out[7]));
                check(out.size() <= limit || an <= 1, "UDP reply over the size limit");
            }
            // The reply parses: walk every record.
            size_t pos = 12;
            uint16_t counts[4];
            for (int i = 0; i < 4; ++i) counts[i] = uint16_t((uint8_t(out[4 + 2 * i]) << 8) | uint8_t(out[5 + 2 * i]));
            dns::name n;
            for (int i = 0; i < counts[0]; ++i) {
                check(dns::read_name(out, pos, n), "reply question name");
                pos += 4;
            }
            for (int i = 0; i < counts[1] + counts[2] + counts[3]; ++i) {
                check(dns::read_name(out, pos, n), "reply owner name");
                check(pos + 10 <= out.size(), "reply record header");
                size_t rdlen = size_t((uint8_t(out[pos + 8]) << 8) | uint8_t(out[pos + 9]));
                pos += 10 + rdlen;
                check(pos <= out.size(), "reply rdata");
            }
            check(pos == out.size(), "reply length");
        }
    }
    std::string sf;
    if (recursing.servfail(pkt, sf)) check(sf.size() >= 12, "servfail");
    return 0;
}

// A valid query for one of the names the catalog knows, to mutate.
inline std::string seed_packet(unsigned i) {
    static const char* names[] = {"web.service.consul",      "_web._tcp.service.consul", "prod.db.service.dc1.consul",
                                  "node4.node.consul",       "0a000001.addr.dc1.consul", "consul",
                                  "1.0.0.10.in-addr.arpa",   "nope.service.consul",      "example.com",
                                  "web.service.alt"};
    static const uint16_t types[] = {1, 28, 33, 16, 255, 6, 2, 12};
    std::string p;
    auto put16 = [&](uint16_t v) {
        p.push_back(char(v >> 8));
        p.push_back(char(v & 0xFF));
    };
    put16(uint16_t(i));
    put16(0x0100);
    put16(1);
    put16(0);
    put16(0);
    bool edns = i % 3 == 0;
    put16(edns ? 1 : 0);
    dns::name n;
    dns::name_from_text(names[i % 10], n);
    p.append(n.wire_view());
    put16(types[(i / 10) % 8]);
    put16(1);
    if (edns) {
        p.push_back('\0');
        put16(41);
        put16(uint16_t(512 + (i % 7) * 300));
        put16(0);
        put16(0);
        put16(0);
    }
    return p;
}

// A deterministic mutation of `p`: flip bytes, insert compression pointers,
// truncate, duplicate, change counts.
inline std::string mutate(std::string p, uint64_t& rng) {
    auto next = [&] {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
    };
    int rounds = int(next() % 4) + 1;
    for (int k = 0; k < rounds; ++k) {
        if (p.empty()) p.push_back('\0');
        switch (next() % 7) {
        case 0: p[next() % p.size()] = char(next()); break;
        case 1: {  // a compression pointer anywhere
            size_t at = next() % p.size();
            uint16_t ptr = uint16_t(0xC000 | (next() % (p.size() + 4)));
            p[at] = char(ptr >> 8);
            if (at + 1 < p.size()) p[at + 1] = char(ptr & 0xFF);
            break;
        }
        case 2: p.resize(next() % (p.size() + 1)); break;
        case 3: p.append(p.substr(next() % p.size())); break;
        case 4:
            if (p.size() >= 12) p[4 + 2 * (next() % 4) + 1] = char(next() % 5);
            break;
        case 5: p.insert(next() % p.size(), std::string(1, char(next() % 64))); break;
        case 6:
            if (p.size() > 12) p[12 + next() % (p.size() - 12)] = char(0xC0 | (next() & 0x3F));
            break;
        }
    }
    if (p.size() > 2) p[2] = char(uint8_t(p[2]) & 0x7F);  // keep most packets queries
    return p;
}

}  // namespace pharos::dnsfuzz
