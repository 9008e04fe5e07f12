#include "wire.hh"

#include <cstring>

namespace pharos::dns {

namespace {

inline uint16_t get16(std::string_view p, size_t at) noexcept {
    return uint16_t((uint8_t(p[at]) << 8) | uint8_t(p[at + 1]));
}

inline char lower_ascii(uint8_t c) noexcept { return char(c >= 'A' && c <= 'Z' ? c + 32 : c); }

inline void put16(std::string& s, size_t at, uint16_t v) {
    s[at] = char(v >> 8);
    s[at + 1] = char(v & 0xFF);
}

// Skips a resource record at `pos`; false if it runs past the packet.
bool skip_rr(std::string_view pkt, size_t& pos, name& scratch, uint16_t* type_out, size_t* rdata_at,
             uint16_t* rdlen_out, uint16_t* class_out, uint32_t* ttl_out) noexcept {
    if (!read_name(pkt, pos, scratch)) return false;
    if (pos + 10 > pkt.size()) return false;
    uint16_t t = get16(pkt, pos);
    uint16_t c = get16(pkt, pos + 2);
    uint32_t ttl = (uint32_t(get16(pkt, pos + 4)) << 16) | get16(pkt, pos + 6);
    uint16_t rdlen = get16(pkt, pos + 8);
    pos += 10;
    if (pos + rdlen > pkt.size()) return false;
    if (type_out) *type_out = t;
    if (class_out) *class_out = c;
    if (ttl_out) *ttl_out = ttl;
    if (rdata_at) *rdata_at = pos;
    if (rdlen_out) *rdlen_out = rdlen;
    pos += rdlen;
    return true;
}

// A cheap hash of a lower-case suffix (its first 8 bytes and its length): the
// table compares the name itself on a hash match, so this only has to spread.
inline uint32_t suffix_hash(std::string_view t) noexcept {
    uint64_t w = 0;
    std::memcpy(&w, t.data(), t.size() < 8 ? t.size() : 8);
    w ^= uint64_t(t.size()) << 56;
    w *= 0x9E3779B97F4A7C15ull;
    return uint32_t(w >> 32);
}

}  // namespace

bool read_name(std::string_view pkt, size_t& pos, name& out) noexcept {
    out.wire_len = out.lower_len = out.labels = 0;
    size_t at = pos;
    size_t end_pos = 0;    // where the caller continues: after the first pointer or the root label
    bool jumped = false;
    size_t limit = at;      // a pointer must point strictly before the label that holds it
    for (;;) {
        if (at >= pkt.size()) return false;
        uint8_t len = uint8_t(pkt[at]);
        if ((len & 0xC0) == 0xC0) {
            if (at + 1 >= pkt.size()) return false;
            size_t target = size_t(((len & 0x3F) << 8) | uint8_t(pkt[at + 1]));
            if (target >= limit) return false;  // forward or self pointer: would allow loops
            if (!jumped) end_pos = at + 2;
            jumped = true;
            limit = target;
            at = target;
            continue;
        }
        if ((len & 0xC0) != 0) return false;  // 0x40/0x80: extended label types, obsolete
        if (len == 0) {
            if (out.wire_len + 1 > max_name_wire) return false;
            out.wire[out.wire_len++] = 0;
            if (!jumped) end_pos = at + 1;
            break;
        }
        if (at + 1 + len > pkt.size()) return false;
        if (out.wire_len + 1 + len + 1 > max_name_wire) return false;  // room for this label and the root
        if (out.labels >= max_labels) return false;
        out.wire[out.wire_len++] = len;
        if (out.labels > 0) out.lower[out.lower_len++] = '.';
        out.label_off[out.labels] = uint8_t(out.lower_len);
        out.label_len[out.labels] = len;
        ++out.labels;
        for (size_t i = 0; i < len; ++i) {
            uint8_t c = uint8_t(pkt[at + 1 + i]);
            out.wire[out.wire_len++] = c;
            out.lower[out.lower_len++] = lower_ascii(c);
        }
        at += 1 + len;
    }
    pos = end_pos;
    return true;
}

bool name_from_text(std::string_view text, name& out) noexcept {
    out.wire_len = out.lower_len = out.labels = 0;
    if (!text.empty() && text.back() == '.') text.remove_suffix(1);
    if (text.empty()) {
        out.wire[out.wire_len++] = 0;
        return true;
    }
    size_t start = 0;
    while (start <= text.size()) {
        size_t dot = text.find('.', start);
        if (dot == std::string_view::npos) dot = text.size();
        size_t len = dot - start;
        if (len == 0 || len > 63) return false;
        if (out.wire_len + 1 + len + 1 > max_name_wire || out.labels >= max_labels) return false;
        out.wire[out.wire_len++] = uint8_t(len);
        if (out.labels > 0) out.lower[out.lower_len++] = '.';
        out.label_off[out.labels] = uint8_t(out.lower_len);
        out.label_len[out.labels] = uint8_t(len);
        ++out.labels;
        for (size_t i = 0; i < len; ++i) {
            uint8_t c = uint8_t(text[start + i]);
            out.wire[out.wire_len++] = c;
            out.lower[out.lower_len++] = lower_ascii(c);
        }
        start = dot + 1;
    }
    out.wire[out.wire_len++] = 0;
    return true;
}

parse_result parse_query(std::string_view pkt, query& q) noexcept {
    q.edns = false;
    q.edns_size = 0;
    q.edns_version = 0;
    q.edns_do = false;
    q.qtype = q.qclass = 0;
    q.qname.wire_len = q.qname.lower_len = q.qname.labels = 0;
    if (pkt.size() < 12) return parse_result::drop;
    q.id = get16(pkt, 0);
    q.flags = get16(pkt, 2);
    if (q.flags & flag::qr) return parse_result::drop;  // a response: never answer one (reflection loops)
    if (q.opcode() != 0) return parse_result::notimp;
    uint16_t qd = get16(pkt, 4), an = get16(pkt, 6), ns = get16(pkt, 8), ar = get16(pkt, 10);
    if (qd != 1) return parse_result::formerr;
    size_t pos = 12;
    if (!read_name(pkt, pos, q.qname)) return parse_result::formerr;
    if (pos + 4 > pkt.size()) return parse_result::formerr;
    q.qtype = get16(pkt, pos);
    q.qclass = get16(pkt, pos + 2);
    pos += 4;
    name scratch;
    for (uint32_t i = 0; i < uint32_t(an) + ns; ++i)
        if (!skip_rr(pkt, pos, scratch, nullptr, nullptr, nullptr, nullptr, nullptr)) return parse_result::formerr;
    for (uint16_t i = 0; i < ar; ++i) {
        uint16_t t = 0, cls = 0;
        uint32_t ttl = 0;
        if (!skip_rr(pkt, pos, scratch, &t, nullptr, nullptr, &cls, &ttl)) return parse_result::formerr;
        if (t == type::OPT) {
            if (q.edns || scratch.wire_len != 1) return parse_result::formerr;  // RFC 6891: one OPT, owner root
            q.edns = true;
            q.edns_size = cls;
            q.edns_version = uint8_t((ttl >> 16) & 0xFF);
            q.edns_do = (ttl & 0x8000) != 0;
        }
    }
    return parse_result::ok;
}

void write_error(const query& q, bool with_question, uint8_t rc, std::string& out) {
    out.assign(12, '\0');
    put16(out, 0, q.id);
    uint16_t f = uint16_t(flag::qr | (q.flags & (0x7800 | flag::rd | flag::cd)) | rc);
    put16(out, 2, f);
    if (with_question && q.qname.wire_len > 0) {
        put16(out, 4, 1);
        out.append(q.qname.wire_view());
        out.push_back(char(q.qtype >> 8));
        out.push_back(char(q.qtype & 0xFF));
        out.push_back(char(q.qclass >> 8));
        out.push_back(char(q.qclass & 0xFF));
    }
}

// --- writer ---

void writer::begin(std::string& out, const query& q, uint16_t flags, bool compress) {
    out_ = &out;
    compress_ = compress;
    counts_ = {};
    entries_ = 0;
    slots_.fill(0);
    out.assign(12, '\0');
    put16(out, 0, q.id);
    put16(out, 2, uint16_t(flag::qr | (q.flags & (0x7800 | flag::rd | flag::cd)) | flags));
    put16(out, 4, 1);
    out.append(q.qname.wire_view());
    u16(q.qtype);
    u16(q.qclass);
    // Every suffix of the question name is at a known offset.
    size_t off = 12;
    for (size_t i = 0; i < q.qname.labels; ++i) {
        remember(off, suffix_hash(q.qname.text().substr(q.qname.label_off[i])));
        off += 1 + q.qname.label_len[i];
    }
}

void writer::set_rcode(uint8_t rc) noexcept {
    uint16_t f = get16(*out_, 2);
    f = uint16_t((f & ~0xF) | (rc & 0xF));
    put16(*out_, 2, f);
}

void writer::set_flag(uint16_t fl, bool on) noexcept {
    uint16_t f = get16(*out_, 2);
    f = on ? uint16_t(f | fl) : uint16_t(f & ~fl);
    put16(*out_, 2, f);
}

void writer::u16(uint16_t v) {
    const char b[2] = {char(v >> 8), char(v & 0xFF)};
    out_->append(b, 2);
}

void writer::u32(uint32_t v) {
    const char b[4] = {char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
    out_->append(b, 4);
}

void writer::remember(size_t offset, uint32_t hash) {
    if (offset >= 0x3FFF || entries_ >= table_.size()) return;
    table_[entries_] = entry{uint16_t(offset), hash};
    index_entry(entries_);
    ++entries_;
}

// Whether the name at `off` in the message (labels, maybe pointers) spells
// `lower_text` ("a.b.c", lower case), ignoring case in the message.
bool writer::wire_equals(size_t off, std::string_view t) const noexcept {
    const std::string& m = *out_;
    size_t i = 0;
    bool done = false;
    for (int guard = 0; guard < 256 && off < m.size(); ++guard) {
        uint8_t len = uint8_t(m[off]);
        if ((len & 0xC0) == 0xC0) {
            if (off + 1 >= m.size()) return false;
            off = size_t(((len & 0x3F) << 8) | uint8_t(m[off + 1]));
            continue;
        }
        if (len == 0) return done;
        if (done || i + len > t.size()) return false;
        for (size_t k = 0; k < len; ++k)
            if (lower_ascii(uint8_t(m[off + 1 + k])) != t[i + k]) return false;
        i += len;
        if (i == t.size())
            done = true;
        else if (t[i++] != '.')
            return false;
        off += 1 + len;
    }
    return false;
}

void writer::index_entry(size_t e) {
    size_t mask = slots_.size() - 1;
    for (size_t i = table_[e].hash & mask;; i = (i + 1) & mask)
        if (slots_[i] == 0) {
            slots_[i] = uint16_t(e + 1);
            return;
        }
}

// Writes `text` as a name. With `compress`, the longest suffix already in the
// table becomes a pointer. Every new suffix is remembered.
bool writer::put_name(std::string_view text, bool compress) {
    if (!text.empty() && text.back() == '.') text.remove_suffix(1);
    if (text.size() > 253 || (!text.empty() && text.back() == '.')) return false;
    if (text.empty()) {
        out_->push_back('\0');
        return true;
    }
    char low[256];
    for (size_t i = 0; i < text.size(); ++i) low[i] = lower_ascii(uint8_t(text[i]));
    std::string_view lt(low, text.size());
    size_t begin_size = out_->size();
    size_t begin_entries = entries_;
    size_t start = 0;
    bool known = false;
    while (start < lt.size()) {
        std::string_view suffix = lt.substr(start);
        uint32_t h = suffix_hash(suffix);
        if (!known) {
            size_t mask = slots_.size() - 1;
            for (size_t i = h & mask; slots_[i] != 0; i = (i + 1) & mask) {
                const entry& en = table_[slots_[i] - 1];
                if (en.hash == h && wire_equals(en.offset, suffix)) {
                    if (compress) {
                        u16(uint16_t(0xC000 | en.offset));
                        return true;
                    }
                    known = true;  // this suffix (and so every shorter one) is in the table already
                    break;
                }
            }
        }
        const void* dotp = std::memchr(lt.data() + start, '.', lt.size() - start);
        size_t dot = dotp ? size_t(static_cast<const char*>(dotp) - lt.data()) : lt.size();
        size_t len = dot - start;
        if (len == 0 || len > 63) {
            out_->resize(begin_size);
            if (entries_ != begin_entries) {
                entries_ = begin_entries;
                slots_.fill(0);
                for (size_t e = 0; e < entries_; ++e) index_entry(e);
            }
            return false;
        }
        if (!known) remember(out_->size(), h);
        out_->push_back(char(len));
        out_->append(text.substr(start, len));
        start = dot + 1;
    }
    out_->push_back('\0');
    return true;
}

void writer::bump(section s) { ++counts_[size_t(s)]; }

void writer::begin_rr_qname(section s, uint16_t type, uint32_t ttl) {
    cur_ = s;
    rr_start_ = out_->size();
    const char b[12] = {char(0xC0), 0x0C, char(type >> 8), char(type & 0xFF), 0, char(class_in),
                        char(ttl >> 24), char((ttl >> 16) & 0xFF), char((ttl >> 8) & 0xFF), char(ttl & 0xFF), 0, 0};
    out_->append(b, sizeof b);
    rdlen_pos_ = out_->size() - 2;
}

bool writer::begin_rr(section s, std::string_view owner, uint16_t type, uint32_t ttl) {
    cur_ = s;
    rr_start_ = out_->size();
    if (!put_name(owner, compress_)) {
        cancel_rr();
        return false;
    }
    u16(type);
    u16(class_in);
    u32(ttl);
    rdlen_pos_ = out_->size();
    u16(0);
    return true;
}

bool writer::rdata_name(std::string_view text, bool compressible) { return put_name(text, compress_ && compressible); }

void writer::character_strings(std::string_view s) {
    do {
        size_t n = s.size() < 255 ? s.size() : 255;
        u8(uint8_t(n));
        bytes(s.substr(0, n));
        s.remove_prefix(n);
    } while (!s.empty());
}

void writer::end_rr() {
    size_t rdlen = out_->size() - rdlen_pos_ - 2;
    put16(*out_, rdlen_pos_, uint16_t(rdlen));
    bump(cur_);
    static constexpr size_t count_at[3] = {6, 8, 10};
    put16(*out_, count_at[size_t(cur_)], counts_[size_t(cur_)]);
}

void writer::cancel_rr() {
    out_->resize(rr_start_);
    // Forget table entries that point into the abandoned record.
    bool dropped = false;
    while (entries_ > 0 && table_[entries_ - 1].offset >= rr_start_) {
        --entries_;
        dropped = true;
    }
    if (dropped) {
        slots_.fill(0);
        for (size_t e = 0; e < entries_; ++e) index_entry(e);
    }
}

void writer::opt(uint16_t udp_size, uint8_t ext_rcode, bool do_bit) {
    cur_ = section::additional;
    rr_start_ = out_->size();
    out_->push_back('\0');
    u16(type::OPT);
    u16(udp_size);
    u8(ext_rcode);
    u8(0);  // version 0
    u16(do_bit ? 0x8000 : 0);
    rdlen_pos_ = out_->size();
    u16(0);
    end_rr();
}

}  // namespace pharos::dns
