#include "hpack.hh"

#include <map>

#include "services/health/hpack_huffman.hh"

namespace pharos::health {

namespace {
struct static_entry {
    const char* name;
    const char* value;
};
// RFC 7541 Appendix A.
constexpr static_entry static_table[61] = {
    {":authority", ""}, {":method", "GET"}, {":method", "POST"}, {":path", "/"}, {":path", "/index.html"},
    {":scheme", "http"}, {":scheme", "https"}, {":status", "200"}, {":status", "204"}, {":status", "206"},
    {":status", "304"}, {":status", "400"}, {":status", "404"}, {":status", "500"}, {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"}, {"accept-language", ""}, {"accept-ranges", ""}, {"accept", ""},
    {"access-control-allow-origin", ""}, {"age", ""}, {"allow", ""}, {"authorization", ""}, {"cache-control", ""},
    {"content-disposition", ""}, {"content-encoding", ""}, {"content-language", ""}, {"content-length", ""},
    {"content-location", ""}, {"content-range", ""}, {"content-type", ""}, {"cookie", ""}, {"date", ""},
    {"etag", ""}, {"expect", ""}, {"expires", ""}, {"from", ""}, {"host", ""}, {"if-match", ""},
    {"if-modified-since", ""}, {"if-none-match", ""}, {"if-range", ""}, {"if-unmodified-since", ""},
    {"last-modified", ""}, {"link", ""}, {"location", ""}, {"max-forwards", ""}, {"proxy-authenticate", ""},
    {"proxy-authorization", ""}, {"range", ""}, {"referer", ""}, {"refresh", ""}, {"retry-after", ""},
    {"server", ""}, {"set-cookie", ""}, {"strict-transport-security", ""}, {"transfer-encoding", ""},
    {"user-agent", ""}, {"vary", ""}, {"via", ""}, {"www-authenticate", ""},
};

// (bits, code) -> symbol, built once.
const std::map<std::pair<uint8_t, uint32_t>, int>& huffman_index() {
    static const auto* m = [] {
        auto* r = new std::map<std::pair<uint8_t, uint32_t>, int>;
        for (int i = 0; i < 257; ++i) (*r)[{hpack_tables::huffman[i].bits, hpack_tables::huffman[i].code}] = i;
        return r;
    }();
    return *m;
}

bool read_int(std::string_view& in, int prefix_bits, uint64_t& v) {
    if (in.empty()) return false;
    uint64_t mask = (1u << prefix_bits) - 1;
    v = uint8_t(in[0]) & mask;
    in.remove_prefix(1);
    if (v < mask) return true;
    int shift = 0;
    for (;;) {
        if (in.empty() || shift > 56) return false;
        uint8_t b = uint8_t(in[0]);
        in.remove_prefix(1);
        v += uint64_t(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) return true;
    }
}

bool read_string(std::string_view& in, std::string& out) {
    if (in.empty()) return false;
    bool huff = uint8_t(in[0]) & 0x80;
    uint64_t len;
    if (!read_int(in, 7, len) || len > in.size()) return false;
    std::string_view raw = in.substr(0, size_t(len));
    in.remove_prefix(size_t(len));
    if (!huff) {
        out.assign(raw);
        return true;
    }
    out.clear();
    return huffman_decode(raw, out);
}
}  // namespace

bool huffman_decode(std::string_view in, std::string& out) {
    const auto& idx = huffman_index();
    uint32_t acc = 0;
    uint8_t n = 0;
    for (unsigned char byte : in) {
        for (int b = 7; b >= 0; --b) {
            acc = (acc << 1) | ((byte >> b) & 1);
            ++n;
            if (n < 5) continue;
            auto it = idx.find({n, acc});
            if (it != idx.end()) {
                if (it->second == 256) return false;  // EOS inside a string
                out.push_back(char(it->second));
                acc = 0;
                n = 0;
            } else if (n >= 30) {
                return false;
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (a prefix of EOS).
    return n < 8 && acc == (1u << n) - 1;
}

bool hpack_decoder::lookup(uint64_t index, std::string& name, std::string& value) const {
    if (index == 0) return false;
    if (index <= 61) {
        name = static_table[index - 1].name;
        value = static_table[index - 1].value;
        return true;
    }
    size_t d = size_t(index - 62);
    if (d >= dyn_.size()) return false;
    name = dyn_[d].first;
    value = dyn_[d].second;
    return true;
}

void hpack_decoder::insert(std::string name, std::string value) {
    size_t sz = name.size() + value.size() + 32;
    while (!dyn_.empty() && size_ + sz > max_) {
        size_ -= dyn_.back().first.size() + dyn_.back().second.size() + 32;
        dyn_.pop_back();
    }
    if (sz > max_) return;  // larger than the table: it empties the table and is not added
    size_ += sz;
    dyn_.emplace_front(std::move(name), std::move(value));
}

bool hpack_decoder::decode(std::string_view in, header_pairs& out) {
    while (!in.empty()) {
        uint8_t b = uint8_t(in[0]);
        std::string name, value;
        if (b & 0x80) {  // indexed field
            uint64_t i;
            if (!read_int(in, 7, i) || !lookup(i, name, value)) return false;
            out.emplace_back(std::move(name), std::move(value));
            continue;
        }
        if ((b & 0xe0) == 0x20) {  // dynamic table size update
            uint64_t sz;
            if (!read_int(in, 5, sz)) return false;
            max_ = size_t(sz);
            while (!dyn_.empty() && size_ > max_) {
                size_ -= dyn_.back().first.size() + dyn_.back().second.size() + 32;
                dyn_.pop_back();
            }
            continue;
        }
        bool incremental = (b & 0xc0) == 0x40;
        uint64_t i;
        if (!read_int(in, incremental ? 6 : 4, i)) return false;
        if (i) {
            std::string ignored;
            if (!lookup(i, name, ignored)) return false;
        } else if (!read_string(in, name)) {
            return false;
        }
        if (!read_string(in, value)) return false;
        if (incremental) insert(name, value);
        out.emplace_back(std::move(name), std::move(value));
    }
    return true;
}

}  // namespace pharos::health
