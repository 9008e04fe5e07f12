// dns wire codec: query parsing (names, compression pointers, EDNS0, every
// way a packet can be broken) and the response writer (compression, counts).
#include <gtest/gtest.h>

#include <string>

#include "protocols/dns/wire.hh"

using namespace pharos;

namespace {

void put16(std::string& s, uint16_t v) {
    s.push_back(char(v >> 8));
    s.push_back(char(v & 0xFF));
}

std::string wire_name(std::string_view text) {
    dns::name n;
    EXPECT_TRUE(dns::name_from_text(text, n)) << text;
    return std::string(n.wire_view());
}

// A query as dig sends it: RD set, one question, optional OPT.
std::string make_query(uint16_t id, std::string_view qname, uint16_t qtype, int edns_size = -1) {
    std::string p;
    put16(p, id);
    put16(p, dns::flag::rd);
    put16(p, 1);
    put16(p, 0);
    put16(p, 0);
    put16(p, edns_size >= 0 ? 1 : 0);
    p += wire_name(qname);
    put16(p, qtype);
    put16(p, dns::class_in);
    if (edns_size >= 0) {
        p.push_back('\0');
        put16(p, dns::type::OPT);
        put16(p, uint16_t(edns_size));
        put16(p, 0);
        put16(p, 0x8000);  // DO
        put16(p, 0);
    }
    return p;
}

uint16_t get16(std::string_view s, size_t at) { return uint16_t((uint8_t(s[at]) << 8) | uint8_t(s[at + 1])); }

}  // namespace

TEST(dns_wire, parses_a_plain_query_lower_casing_the_name) {
    std::string p = make_query(0x1234, "Web.Service.CONSUL.", dns::type::SRV);
    dns::query q;
    ASSERT_EQ(dns::parse_query(p, q), dns::parse_result::ok);
    EXPECT_EQ(q.id, 0x1234);
    EXPECT_EQ(q.qtype, dns::type::SRV);
    EXPECT_EQ(q.qclass, dns::class_in);
    EXPECT_EQ(q.qname.text(), "web.service.consul");
    ASSERT_EQ(q.qname.labels, 3u);
    EXPECT_EQ(q.qname.label(0), "web");
    EXPECT_EQ(q.qname.label(2), "consul");
    EXPECT_EQ(q.qname.wire_view(), wire_name("Web.Service.CONSUL"));  // case kept for the echo
    EXPECT_FALSE(q.edns);
}

TEST(dns_wire, parses_edns0_size_version_and_do_bit) {
    std::string p = make_query(7, "_web._tcp.service.dc1.consul", dns::type::SRV, 4096);
    dns::query q;
    ASSERT_EQ(dns::parse_query(p, q), dns::parse_result::ok);
    EXPECT_TRUE(q.edns);
    EXPECT_EQ(q.edns_size, 4096);
    EXPECT_EQ(q.edns_version, 0);
    EXPECT_TRUE(q.edns_do);
    EXPECT_EQ(q.qname.labels, 5u);
    EXPECT_EQ(q.qname.label(0), "_web");
}

TEST(dns_wire, parses_the_root_name) {
    std::string p = make_query(7, ".", dns::type::NS);
    dns::query q;
    ASSERT_EQ(dns::parse_query(p, q), dns::parse_result::ok);
    EXPECT_EQ(q.qname.labels, 0u);
    EXPECT_EQ(q.qname.text(), "");
}

TEST(dns_wire, short_packets_and_responses_are_dropped) {
    dns::query q;
    EXPECT_EQ(dns::parse_query("", q), dns::parse_result::drop);
    EXPECT_EQ(dns::parse_query(std::string(11, '\0'), q), dns::parse_result::drop);
    std::string p = make_query(1, "a.consul", dns::type::A);
    p[2] = char(uint8_t(p[2]) | 0x80);  // QR: a response
    EXPECT_EQ(dns::parse_query(p, q), dns::parse_result::drop);
}

TEST(dns_wire, other_opcodes_are_not_implemented) {
    std::string p = make_query(1, "a.consul", dns::type::A);
    p[2] = char(uint8_t(p[2]) | (5 << 3));  // UPDATE
    dns::query q;
    EXPECT_EQ(dns::parse_query(p, q), dns::parse_result::notimp);
}

TEST(dns_wire, truncated_bodies_are_formerr) {
    std::string p = make_query(9, "web.service.consul", dns::type::A, 1232);
    dns::query q;
    for (size_t len = 12; len < p.size(); ++len) {
        auto r = dns::parse_query(std::string_view(p).substr(0, len), q);
        EXPECT_EQ(r, dns::parse_result::formerr) << "length " << len;
        EXPECT_EQ(q.id, 9);
    }
}

TEST(dns_wire, question_count_other_than_one_is_formerr) {
    std::string p = make_query(9, "web.service.consul", dns::type::A);
    p[5] = 0;  // QDCOUNT 0
    dns::query q;
    EXPECT_EQ(dns::parse_query(p, q), dns::parse_result::formerr);
    p[5] = 2;
    EXPECT_EQ(dns::parse_query(p, q), dns::parse_result::formerr);
}

TEST(dns_wire, compression_pointer_loops_are_refused) {
    // The question name is a pointer to itself.
    std::string p;
    put16(p, 1);
    put16(p, 0);
    put16(p, 1);
    put16(p, 0);
    put16(p, 0);
    put16(p, 0);
    put16(p, 0xC00C);
    put16(p, dns::type::A);
    put16(p, 1);
    dns::query q;
    EXPECT_EQ(dns::parse_query(p, q), dns::parse_result::formerr);

    // Two names pointing at each other (in an additional record).
    std::string r = make_query(2, "a.consul", dns::type::A);
    r[11] = 1;  // ARCOUNT 1
    size_t here = r.size();
    put16(r, uint16_t(0xC000 | (here + 2)));  // forward pointer to the next word
    put16(r, uint16_t(0xC000 | here));        // and back
    put16(r, dns::type::A);
    put16(r, 1);
    put16(r, 0);
    put16(r, 0);
    put16(r, 0);
    EXPECT_EQ(dns::parse_query(r, q), dns::parse_result::formerr);
}

TEST(dns_wire, backward_pointers_are_followed) {
    // An additional record whose owner points at the question name: legal.
    std::string r = make_query(2, "web.service.consul", dns::type::A);
    r[11] = 1;
    put16(r, 0xC00C);
    put16(r, dns::type::TXT);
    put16(r, 1);
    put16(r, 0);
    put16(r, 0);
    put16(r, 0);
    dns::query q;
    EXPECT_EQ(dns::parse_query(r, q), dns::parse_result::ok);
    size_t pos = r.size() - 12;
    dns::name n;
    ASSERT_TRUE(dns::read_name(r, pos, n));
    EXPECT_EQ(n.text(), "web.service.consul");
    EXPECT_EQ(pos, r.size() - 10);
}

TEST(dns_wire, names_longer_than_255_bytes_are_refused) {
    std::string p;
    put16(p, 3);
    put16(p, 0);
    put16(p, 1);
    put16(p, 0);
    put16(p, 0);
    put16(p, 0);
    for (int i = 0; i < 5; ++i) {
        p.push_back(char(60));
        p.append(60, 'a');
    }
    p.push_back('\0');
    put16(p, 1);
    put16(p, 1);
    dns::query q;
    EXPECT_EQ(dns::parse_query(p, q), dns::parse_result::formerr);
    dns::name n;
    EXPECT_FALSE(dns::name_from_text(std::string(300, 'a'), n));
    EXPECT_FALSE(dns::name_from_text(std::string(64, 'a') + ".consul", n));
    EXPECT_FALSE(dns::name_from_text("a..consul", n));
}

TEST(dns_wire, extended_label_types_are_refused) {
    std::string p = make_query(1, "a.consul", dns::type::A);
    p[12] = char(0x41);
    dns::query q;
    EXPECT_EQ(dns::parse_query(p, q), dns::parse_result::formerr);
}

TEST(dns_wire, two_opt_records_are_formerr) {
    std::string p = make_query(1, "a.consul", dns::type::A, 512);
    p[11] = 2;
    p.push_back('\0');
    put16(p, dns::type::OPT);
    put16(p, 512);
    put16(p, 0);
    put16(p, 0);
    put16(p, 0);
    dns::query q;
    EXPECT_EQ(dns::parse_query(p, q), dns::parse_result::formerr);
}

TEST(dns_wire, writer_compresses_owner_names_and_later_suffixes) {
    std::string p = make_query(0xBEEF, "web.service.consul", dns::type::SRV, 4096);
    dns::query q;
    ASSERT_EQ(dns::parse_query(p, q), dns::parse_result::ok);
    std::string out;
    dns::writer w;
    w.begin(out, q, dns::flag::aa, true);
    size_t after_question = out.size();
    EXPECT_EQ(after_question, 12 + q.qname.wire_len + 4);
    w.begin_rr_qname(dns::writer::section::answer, dns::type::SRV, 30);
    w.u16(1);
    w.u16(5);
    w.u16(8080);
    ASSERT_TRUE(w.rdata_name("node1.node.dc1.consul.", false));  // SRV target: never compressed
    w.end_rr();
    ASSERT_TRUE(w.begin_rr(dns::writer::section::additional, "node1.node.dc1.consul.", dns::type::A, 30));
    w.bytes(std::string("\x0a\x00\x00\x01", 4));
    w.end_rr();
    w.opt(4096);
    EXPECT_EQ(get16(out, 0), 0xBEEF);
    EXPECT_EQ(get16(out, 2) & dns::flag::qr, dns::flag::qr);
    EXPECT_EQ(get16(out, 2) & dns::flag::aa, dns::flag::aa);
    EXPECT_EQ(get16(out, 2) & dns::flag::rd, dns::flag::rd);
    EXPECT_EQ(get16(out, 6), 1);   // ANCOUNT
    EXPECT_EQ(get16(out, 10), 2);  // ARCOUNT: A + OPT
    // The answer's owner is a pointer to the question.
    EXPECT_EQ(get16(out, after_question), 0xC00C);
    // SRV target spelled out: "node1.node.dc1" then a pointer to "consul" would be
    // compression; it must be the full name.
    size_t target_at = after_question + 2 + 10 + 6;
    dns::name t;
    size_t pos = target_at;
    ASSERT_TRUE(dns::read_name(out, pos, t));
    EXPECT_EQ(t.text(), "node1.node.dc1.consul");
    EXPECT_EQ(pos - target_at, t.wire_len);  // no pointer inside
    // The A record's owner points at the SRV target.
    EXPECT_EQ(get16(out, pos), 0xC000 | target_at);
    // And the whole message parses back as a message with valid names.
    dns::name owner;
    size_t p2 = pos;
    ASSERT_TRUE(dns::read_name(out, p2, owner));
    EXPECT_EQ(owner.text(), "node1.node.dc1.consul");
}

TEST(dns_wire, writer_without_compression_spells_every_name) {
    std::string p = make_query(1, "web.service.consul", dns::type::A);
    dns::query q;
    ASSERT_EQ(dns::parse_query(p, q), dns::parse_result::ok);
    std::string a, b;
    dns::writer w;
    w.begin(a, q, 0, true);
    ASSERT_TRUE(w.begin_rr(dns::writer::section::answer, "web.service.consul.", dns::type::A, 0));
    w.bytes(std::string(4, '\1'));
    w.end_rr();
    w.begin(b, q, 0, false);
    ASSERT_TRUE(w.begin_rr(dns::writer::section::answer, "web.service.consul.", dns::type::A, 0));
    w.bytes(std::string(4, '\1'));
    w.end_rr();
    EXPECT_EQ(b.size() - a.size(), q.qname.wire_len - 2);
}

TEST(dns_wire, cancelled_records_leave_nothing_behind) {
    std::string p = make_query(1, "x.consul", dns::type::A);
    dns::query q;
    ASSERT_EQ(dns::parse_query(p, q), dns::parse_result::ok);
    std::string out;
    dns::writer w;
    w.begin(out, q, 0, true);
    size_t before = out.size();
    EXPECT_FALSE(w.begin_rr(dns::writer::section::answer, "bad..name", dns::type::A, 0));
    EXPECT_EQ(out.size(), before);
    w.begin_rr_qname(dns::writer::section::answer, dns::type::CNAME, 0);
    EXPECT_FALSE(w.rdata_name(std::string(70, 'a') + ".consul", true));
    w.cancel_rr();
    EXPECT_EQ(out.size(), before);
    EXPECT_EQ(get16(out, 6), 0);
}

TEST(dns_wire, error_responses_echo_id_and_question) {
    std::string p = make_query(0x4242, "a.consul", dns::type::A);
    dns::query q;
    ASSERT_EQ(dns::parse_query(p, q), dns::parse_result::ok);
    std::string out;
    dns::write_error(q, true, dns::rcode::servfail, out);
    EXPECT_EQ(get16(out, 0), 0x4242);
    EXPECT_EQ(get16(out, 2) & 0xF, dns::rcode::servfail);
    EXPECT_EQ(get16(out, 4), 1);
    dns::query back;
    std::string asq = out;
    asq[2] = char(uint8_t(asq[2]) & 0x7F);  // clear QR to reuse the parser
    ASSERT_EQ(dns::parse_query(asq, back), dns::parse_result::ok);
    EXPECT_EQ(back.qname.text(), "a.consul");
}

TEST(dns_wire, long_txt_strings_are_split_into_255_byte_pieces) {
    std::string p = make_query(1, "n.node.consul", dns::type::TXT);
    dns::query q;
    ASSERT_EQ(dns::parse_query(p, q), dns::parse_result::ok);
    std::string out;
    dns::writer w;
    w.begin(out, q, 0, true);
    w.begin_rr_qname(dns::writer::section::answer, dns::type::TXT, 0);
    size_t rdata = out.size();
    w.character_strings(std::string(300, 'x'));
    w.end_rr();
    EXPECT_EQ(uint8_t(out[rdata]), 255);
    EXPECT_EQ(uint8_t(out[rdata + 256]), 45);
    EXPECT_EQ(get16(out, rdata - 2), 302);
}
