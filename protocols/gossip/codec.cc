// memberlist packet and stream framing; see codec.hh.
#include "protocols/gossip/codec.hh"

#include <array>

#include "protocols/gossip/lzw.hh"

namespace pharos::gossip {

const char* to_string(errc e) {
    switch (e) {
    case errc::ok: return "ok";
    case errc::need_more: return "need more bytes";
    case errc::empty: return "empty packet";
    case errc::bad_label: return "bad label";
    case errc::decrypt_failed: return "decryption failed";
    case errc::bad_crc: return "bad checksum";
    case errc::truncated: return "truncated";
    case errc::malformed: return "malformed";
    case errc::too_deep: return "nested too deep";
    case errc::too_large: return "too large";
    case errc::unknown_type: return "unknown message type";
    }
    return "?";
}

namespace {
constexpr std::array<uint32_t, 256> crc_table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        t[i] = c;
    }
    return t;
}();

void put_be(std::string& out, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out.push_back(char((v >> (8 * i)) & 0xff));
}
uint32_t get_be(std::string_view s, size_t at, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | uint8_t(s[at + i]);
    return v;
}

errc strip_label(std::string_view& in, const wire_options& o) {
    if (!in.empty() && uint8_t(in[0]) == uint8_t(msg_type::has_label)) {
        if (in.size() < 2) return errc::truncated;
        size_t n = uint8_t(in[1]);
        if (n == 0) return errc::bad_label;
        if (in.size() < 2 + n) return errc::truncated;
        if (in.substr(2, n) != o.label) return errc::bad_label;
        in.remove_prefix(2 + n);
        return errc::ok;
    }
    return o.label.empty() ? errc::ok : errc::bad_label;
}

bool encrypting(const wire_options& o) { return o.keys && !o.keys->empty(); }

std::string label_header(const wire_options& o) {
    std::string h;
    if (!o.label.empty()) {
        h.push_back(char(msg_type::has_label));
        h.push_back(char(o.label.size()));
        h.append(o.label);
    }
    return h;
}
}  // namespace

uint32_t crc32_ieee(std::string_view data) {
    uint32_t c = 0xffffffffu;
    for (unsigned char b : data) c = crc_table[(c ^ b) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

std::string make_compound(std::span<const std::string> parts) {
    std::string out;
    out.push_back(char(msg_type::compound));
    out.push_back(char(parts.size()));
    for (const auto& p : parts) put_be(out, p.size(), 2);
    for (const auto& p : parts) out.append(p);
    return out;
}

std::string compress_message(std::string_view msg) {
    compress_body c;
    c.buf = lzw::compress(msg);
    return encode_msg(c);
}

std::string add_crc(std::string_view msg) {
    std::string out;
    out.reserve(msg.size() + 5);
    out.push_back(char(msg_type::has_crc));
    put_be(out, crc32_ieee(msg), 4);
    out.append(msg);
    return out;
}

std::string seal_packet(std::string packet, const wire_options& o) {
    if (encrypting(o) && o.verify_outgoing) packet = o.keys->encrypt(o.encryption_version, packet, o.label);
    if (!o.label.empty()) packet = label_header(o) + packet;
    return packet;
}

errc open_packet(std::string_view in, const wire_options& o, std::string& out) {
    if (in.empty()) return errc::empty;
    if (auto e = strip_label(in, o); e != errc::ok) return e;
    if (encrypting(o)) {
        auto plain = o.keys->decrypt(in, o.label);
        if (plain) {
            out = std::move(*plain);
            in = out;
        } else if (o.verify_incoming) {
            return errc::decrypt_failed;
        }
    }
    if (in.empty()) return errc::empty;
    if (uint8_t(in[0]) == uint8_t(msg_type::has_crc) && in.size() >= 5) {
        if (crc32_ieee(in.substr(5)) != get_be(in, 1, 4)) return errc::bad_crc;
        in.remove_prefix(5);
    }
    if (in.empty()) return errc::empty;
    out = std::string(in);
    return errc::ok;
}

errc flatten(std::string_view msg, std::vector<std::string>& out, int depth) {
    if (msg.empty()) return errc::empty;
    if (depth > max_nesting) return errc::too_deep;
    auto t = msg_type(uint8_t(msg[0]));
    if (t == msg_type::compound) {
        if (msg.size() < 2) return errc::truncated;
        size_t n = uint8_t(msg[1]);
        size_t at = 2 + 2 * n;
        if (msg.size() < at) return errc::truncated;
        errc worst = errc::ok;
        for (size_t i = 0; i < n; ++i) {
            size_t len = get_be(msg, 2 + 2 * i, 2);
            if (at + len > msg.size()) return errc::truncated;
            if (auto e = flatten(msg.substr(at, len), out, depth + 1); e != errc::ok) worst = e;
            at += len;
        }
        return worst;
    }
    if (t == msg_type::compress) {
        compress_body c;
        if (!decode(msg.substr(1), c)) return errc::malformed;
        if (c.algo != 0) return errc::malformed;
        auto plain = lzw::decompress(c.buf, max_decompressed);
        if (!plain) return errc::malformed;
        return flatten(*plain, out, depth + 1);
    }
    out.emplace_back(msg);
    return errc::ok;
}

std::string seal_stream(std::string_view msg, bool compress, const wire_options& o) {
    std::string body = compress ? compress_message(msg) : std::string(msg);
    std::string out = label_header(o);
    if (encrypting(o) && o.verify_outgoing) {
        std::string head;
        head.push_back(char(msg_type::encrypt));
        size_t blob_len = body.size() + (o.encryption_version == 0 ? 16 - body.size() % 16 + 29 : 29);
        put_be(head, blob_len, 4);
        std::string blob = o.keys->encrypt(o.encryption_version, body, head + o.label);
        out += head;
        out += blob;
        return out;
    }
    out += body;
    return out;
}

errc plain_stream_length(std::string_view buf, size_t& len) {
    if (buf.empty()) return errc::need_more;
    msgpack::reader r(buf.substr(1));
    auto status = [&] { return r.state() == msgpack::status::short_input ? errc::need_more : errc::malformed; };
    switch (msg_type(uint8_t(buf[0]))) {
    case msg_type::ping:
    case msg_type::ack:
    case msg_type::err:
    case msg_type::compress:
        if (!r.skip()) return status();
        break;
    case msg_type::push_pull: {
        push_pull_header h;
        if (!decode(r, h)) return status();
        if (h.nodes < 0 || size_t(h.nodes) > max_nodes) return errc::too_large;
        if (h.user_state_len < 0 || size_t(h.user_state_len) > max_user_bytes) return errc::too_large;
        for (int64_t i = 0; i < h.nodes; ++i)
            if (!r.skip()) return status();
        if (r.remaining() < size_t(h.user_state_len)) return errc::need_more;
        len = buf.size() - r.remaining() + size_t(h.user_state_len);
        return errc::ok;
    }
    case msg_type::user: {
        user_msg_header h;
        if (!decode(r, h)) return status();
        if (h.user_msg_len < 0 || size_t(h.user_msg_len) > max_user_bytes) return errc::too_large;
        if (r.remaining() < size_t(h.user_msg_len)) return errc::need_more;
        len = buf.size() - r.remaining() + size_t(h.user_msg_len);
        return errc::ok;
    }
    default: return errc::unknown_type;
    }
    len = buf.size() - r.remaining();
    return errc::ok;
}

errc open_stream(std::string_view buf, const wire_options& o, std::string& out, size_t& consumed) {
    std::string_view in = buf;
    if (!o.label.empty() || (!in.empty() && uint8_t(in[0]) == uint8_t(msg_type::has_label))) {
        if (in.size() < 2 || in.size() < 2 + size_t(uint8_t(in[1]))) return errc::need_more;
        if (auto e = strip_label(in, o); e != errc::ok) return e;
    }
    if (in.empty()) return errc::need_more;
    size_t label_len = buf.size() - in.size();
    std::string plain;
    std::string_view msg;
    if (uint8_t(in[0]) == uint8_t(msg_type::encrypt)) {
        if (!encrypting(o)) return errc::decrypt_failed;
        if (in.size() < 5) return errc::need_more;
        size_t n = get_be(in, 1, 4);
        if (n > max_user_bytes) return errc::too_large;
        if (in.size() < 5 + n) return errc::need_more;
        std::string aad(in.substr(0, 5));
        aad += o.label;
        auto p = o.keys->decrypt(in.substr(5, n), aad);
        if (!p) return errc::decrypt_failed;
        plain = std::move(*p);
        consumed = label_len + 5 + n;
        msg = plain;
        size_t len;
        if (msg.empty()) return errc::empty;
        if (uint8_t(msg[0]) != uint8_t(msg_type::compress)) {
            auto e = plain_stream_length(msg, len);
            if (e == errc::need_more) return errc::truncated;
            if (e != errc::ok) return e;
            out.assign(msg.substr(0, len));
            return errc::ok;
        }
    } else {
        if (encrypting(o) && o.verify_incoming) return errc::decrypt_failed;
        size_t len;
        if (auto e = plain_stream_length(in, len); e != errc::ok) return e;
        msg = in.substr(0, len);
        consumed = label_len + len;
        if (uint8_t(msg[0]) != uint8_t(msg_type::compress)) {
            out.assign(msg);
            return errc::ok;
        }
    }
    // msg is a compress message holding the real one.
    compress_body c;
    if (!decode(msg.substr(1), c) || c.algo != 0) return errc::malformed;
    auto inner = lzw::decompress(c.buf, max_decompressed);
    if (!inner || inner->empty()) return errc::malformed;
    size_t len;
    auto e = plain_stream_length(*inner, len);
    if (e == errc::need_more) return errc::truncated;
    if (e != errc::ok) return e;
    if (uint8_t((*inner)[0]) == uint8_t(msg_type::compress)) return errc::too_deep;
    inner->resize(len);
    out = std::move(*inner);
    return errc::ok;
}

std::string encode_push_pull(const push_pull& p) {
    std::string out;
    push_pull_header h = p.header;
    h.nodes = int64_t(p.nodes.size());
    h.user_state_len = int64_t(p.user_state.size());
    encode(h, out);
    for (const auto& n : p.nodes) encode_body(n, out);
    out += p.user_state;
    return out;
}

errc decode_push_pull(std::string_view msg, push_pull& p) {
    if (msg.empty() || uint8_t(msg[0]) != uint8_t(msg_type::push_pull)) return errc::malformed;
    msgpack::reader r(msg.substr(1));
    if (!decode(r, p.header)) return errc::malformed;
    if (p.header.nodes < 0 || size_t(p.header.nodes) > max_nodes) return errc::too_large;
    if (p.header.user_state_len < 0 || size_t(p.header.user_state_len) > max_user_bytes) return errc::too_large;
    p.nodes.clear();
    for (int64_t i = 0; i < p.header.nodes; ++i) {
        push_node_state s;
        if (!decode(r, s)) return errc::malformed;
        p.nodes.push_back(std::move(s));
    }
    if (r.remaining() < size_t(p.header.user_state_len)) return errc::truncated;
    p.user_state.assign(reinterpret_cast<const char*>(r.pos()), size_t(p.header.user_state_len));
    return errc::ok;
}

}  // namespace pharos::gossip
