// Test helpers for DNS: build a query, and decode a response into plain
// records (names as text, rdata rendered like dig's short form).
#pragma once
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <string>
#include <vector>

#include "protocols/dns/wire.hh"

namespace pharos::dnstest {

inline void put16(std::string& s, uint16_t v) {
    s.push_back(char(v >> 8));
    s.push_back(char(v & 0xFF));
}
inline uint16_t get16(std::string_view s, size_t at) {
    return uint16_t((uint8_t(s[at]) << 8) | uint8_t(s[at + 1]));
}
inline uint32_t get32(std::string_view s, size_t at) { return (uint32_t(get16(s, at)) << 16) | get16(s, at + 2); }

inline std::string make_query(uint16_t id, std::string_view qname, uint16_t qtype, int edns_size = -1) {
    std::string p;
    put16(p, id);
    put16(p, dns::flag::rd);
    put16(p, 1);
    put16(p, 0);
    put16(p, 0);
    put16(p, edns_size >= 0 ? 1 : 0);
    dns::name n;
    EXPECT_TRUE(dns::name_from_text(qname, n)) << qname;
    p.append(n.wire_view());
    put16(p, qtype);
    put16(p, dns::class_in);
    if (edns_size >= 0) {
        p.push_back('\0');
        put16(p, dns::type::OPT);
        put16(p, uint16_t(edns_size));
        put16(p, 0);
        put16(p, 0);
        put16(p, 0);
    }
    return p;
}

struct rr {
    std::string name;
    uint16_t type = 0;
    uint32_t ttl = 0;
    std::string data;  // "10.0.0.1", "1 5 8080 node1.node.dc1.consul.", "\"k=v\"", ...
};

struct message {
    uint16_t id = 0, flags = 0;
    uint8_t rcode = 0;
    bool tc = false, aa = false, ra = false;
    std::vector<rr> answer, authority, additional;
    size_t size = 0;
    bool ok = false;
    uint16_t opt_size = 0;
    bool has_opt = false;
};

inline std::string name_at(std::string_view pkt, size_t& pos) {
    dns::name n;
    if (!dns::read_name(pkt, pos, n)) return "<bad>";
    return std::string(n.text()) + ".";
}

inline message decode(std::string_view pkt) {
    message m;
    m.size = pkt.size();
    if (pkt.size() < 12) return m;
    m.id = get16(pkt, 0);
    m.flags = get16(pkt, 2);
    m.rcode = uint8_t(m.flags & 0xF);
    m.tc = m.flags & dns::flag::tc;
    m.aa = m.flags & dns::flag::aa;
    m.ra = m.flags & dns::flag::ra;
    uint16_t qd = get16(pkt, 4), an = get16(pkt, 6), ns = get16(pkt, 8), ar = get16(pkt, 10);
    size_t pos = 12;
    for (int i = 0; i < qd; ++i) {
        name_at(pkt, pos);
        pos += 4;
    }
    for (int sec = 0; sec < 3; ++sec) {
        int count = sec == 0 ? an : sec == 1 ? ns : ar;
        for (int i = 0; i < count; ++i) {
            rr r;
            r.name = name_at(pkt, pos);
            if (pos + 10 > pkt.size()) return m;
            r.type = get16(pkt, pos);
            uint16_t cls = get16(pkt, pos + 2);
            r.ttl = get32(pkt, pos + 4);
            uint16_t len = get16(pkt, pos + 8);
            pos += 10;
            if (pos + len > pkt.size()) return m;
            size_t rd = pos;
            char buf[64];
            switch (r.type) {
            case dns::type::A: r.data = inet_ntop(AF_INET, pkt.data() + rd, buf, sizeof buf); break;
            case dns::type::AAAA: r.data = inet_ntop(AF_INET6, pkt.data() + rd, buf, sizeof buf); break;
            case dns::type::SRV: {
                size_t p = rd + 6;
                r.data = std::to_string(get16(pkt, rd)) + " " + std::to_string(get16(pkt, rd + 2)) + " " +
                         std::to_string(get16(pkt, rd + 4)) + " " + name_at(pkt, p);
                break;
            }
            case dns::type::NS:
            case dns::type::PTR:
            case dns::type::CNAME: {
                size_t p = rd;
                r.data = name_at(pkt, p);
                break;
            }
            case dns::type::SOA: {
                size_t p = rd;
                r.data = name_at(pkt, p);
                r.data += " " + name_at(pkt, p);
                break;
            }
            case dns::type::TXT: {
                size_t p = rd;
                while (p < rd + len) {
                    uint8_t l = uint8_t(pkt[p]);
                    r.data += "\"" + std::string(pkt.substr(p + 1, l)) + "\"";
                    p += 1 + l;
                }
                break;
            }
            case dns::type::OPT:
                m.has_opt = true;
                m.opt_size = cls;
                break;
            default: break;
            }
            pos += len;
            if (r.type == dns::type::OPT) continue;
            (sec == 0 ? m.answer : sec == 1 ? m.authority : m.additional).push_back(r);
        }
    }
    m.ok = pos == pkt.size();
    return m;
}

}  // namespace pharos::dnstest
