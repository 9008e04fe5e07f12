// DNS wire format (RFC 1035, RFC 6891 EDNS0): a query parser and a response
// writer. Knows nothing of Consul; services/dns decides what to answer.
//
// parse_query() reads the header, the one question (decompressing its name with
// bounded, strictly backward pointers, so loops cannot happen), skips the answer
// and authority sections and looks for an OPT record in the additional section.
// It never reads past the packet and never allocates. A packet it cannot parse
// far enough to know the ID is `drop`; one with a readable header but a broken
// body is `formerr` (answer FORMERR with the ID echoed).
//
// writer builds a response into a caller-owned std::string that keeps its
// capacity between queries. Names are given as text ("web.service.consul.")
// or as the question (a pointer to offset 12); with compression on, each name
// is written as its longest suffix already in the message (RFC 1035 §4.1.4).
// SRV targets are never compressed (RFC 2782) but later names may point at them.
// Plain values; one per shard, reused for every query.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace pharos::dns {

namespace type {
inline constexpr uint16_t A = 1, NS = 2, CNAME = 5, SOA = 6, PTR = 12, MX = 15, TXT = 16, AAAA = 28, SRV = 33,
                          OPT = 41, AXFR = 252, ANY = 255;
}
inline constexpr uint16_t class_in = 1;

namespace rcode {
inline constexpr uint8_t noerror = 0, formerr = 1, servfail = 2, nxdomain = 3, notimp = 4, refused = 5;
}

// Header flag bits (the 16-bit word after the ID).
namespace flag {
inline constexpr uint16_t qr = 0x8000, aa = 0x0400, tc = 0x0200, rd = 0x0100, ra = 0x0080, cd = 0x0010;
}

inline constexpr size_t max_name_wire = 255;  // RFC 1035 §3.1, including the root label
inline constexpr size_t max_labels = 127;

// A decoded domain name: its labels in wire order, as the peer wrote them
// (case preserved), and lower-cased.
struct name {
    std::array<uint8_t, max_name_wire> wire{};  // uncompressed wire form, ends with the root label
    std::array<char, max_name_wire> lower{};     // label bytes lower-cased, labels separated by '.', no trailing dot
    size_t wire_len = 0;
    size_t lower_len = 0;
    std::array<uint8_t, max_labels> label_off{};  // offset of each label in `lower`
    std::array<uint8_t, max_labels> label_len{};
    size_t labels = 0;

    std::string_view label(size_t i) const noexcept { return {lower.data() + label_off[i], label_len[i]}; }
    std::string_view text() const noexcept { return {lower.data(), lower_len}; }  // "web.service.consul"
    std::string_view wire_view() const noexcept { return {reinterpret_cast<const char*>(wire.data()), wire_len}; }
};

struct query {
    uint16_t id = 0;
    uint16_t flags = 0;
    uint16_t qtype = 0;
    uint16_t qclass = 0;
    name qname;
    bool edns = false;
    uint16_t edns_size = 0;  // the requester's UDP payload size (as sent; may be < 512)
    uint8_t edns_version = 0;
    bool edns_do = false;
    uint8_t opcode() const noexcept { return uint8_t((flags >> 11) & 0xF); }
};

enum class parse_result : uint8_t {
    ok,
    drop,     // too short for a header, or a response (QR set): no answer
    formerr,  // header readable, body not: answer FORMERR
    notimp,   // an opcode other than QUERY: answer NOTIMP
};

// Parses a query. On ok, `q` is filled; on formerr/notimp, q.id and q.flags are.
parse_result parse_query(std::string_view pkt, query& q) noexcept;

// Decodes the name at `pos` in `pkt` into `out` and advances `pos` past it.
// False on truncation, a pointer that is not strictly backward, a bad label
// type, or more than 255 bytes.
bool read_name(std::string_view pkt, size_t& pos, name& out) noexcept;

// Splits a text name ("a.b.c." or "a.b.c") into `out` (wire form); false if a
// label is empty or longer than 63, or the whole is longer than 255.
bool name_from_text(std::string_view text, name& out) noexcept;

// A header-only response (FORMERR, NOTIMP, REFUSED, SERVFAIL) echoing the ID
// and, if present, the question. `out` is replaced.
void write_error(const query& q, bool with_question, uint8_t rc, std::string& out);

class writer {
public:
    // Starts a response in `out` (cleared, capacity kept): header with the
    // query's ID, opcode, RD and CD bits, QR and the given flags, and the question.
    void begin(std::string& out, const query& q, uint16_t flags, bool compress);
    void set_rcode(uint8_t rc) noexcept;
    void set_flag(uint16_t f, bool on) noexcept;

    enum class section : uint8_t { answer, authority, additional };
    // Starts a record; the owner is the question's name. Finish with end_rr().
    void begin_rr_qname(section s, uint16_t type, uint32_t ttl);
    // Starts a record whose owner is a text name. False if the name is invalid (nothing written).
    bool begin_rr(section s, std::string_view owner, uint16_t type, uint32_t ttl);
    void end_rr();

    // RDATA pieces.
    void u8(uint8_t v) { out_->push_back(char(v)); }
    void u16(uint16_t v);
    void u32(uint32_t v);
    void bytes(std::string_view b) { out_->append(b); }
    // A name inside RDATA; compressed if `compressible` and compression is on.
    // Always registered so that later names can point at it. False if invalid
    // (the record should then be abandoned with cancel_rr()).
    bool rdata_name(std::string_view text, bool compressible);
    // One <character-string> (split into 255-byte pieces if longer).
    void character_strings(std::string_view s);
    void cancel_rr();

    // The OPT pseudo-record (EDNS0) in the additional section.
    void opt(uint16_t udp_size, uint8_t ext_rcode = 0, bool do_bit = false);

    size_t size() const noexcept { return out_->size(); }
    uint16_t count(section s) const noexcept { return counts_[size_t(s)]; }

private:
    bool put_name(std::string_view text, bool compress);
    void remember(size_t offset, uint32_t hash);
    bool wire_equals(size_t off, std::string_view lower_text) const noexcept;
    void bump(section s);

    struct entry {
        uint16_t offset;  // of the suffix's first label in the message
        uint32_t hash;    // of the suffix text, compared first
    };
    std::string* out_ = nullptr;
    bool compress_ = true;
    size_t rr_start_ = 0;
    size_t rdlen_pos_ = 0;
    section cur_ = section::answer;
    std::array<uint16_t, 3> counts_{};
    std::array<entry, 256> table_{};
    size_t entries_ = 0;
    std::array<uint16_t, 512> slots_{};  // open addressing by hash: entry index + 1, 0 = empty
    void index_entry(size_t e);
};

}  // namespace pharos::dns
