// Serf tags and leave intents; see serf.hh.
#include "protocols/gossip/serf.hh"

#include "protocols/gossip/msgpack.hh"

namespace pharos::gossip::serf {

std::optional<std::string> encode_tags(const tags& t) {
    std::string out(1, char(tag_magic));
    msgpack::writer w(out);
    w.map(uint32_t(t.size()));
    for (const auto& [k, v] : t) {
        w.str(k);
        w.str(v);
    }
    if (out.size() > meta_max) return std::nullopt;
    return out;
}

tags decode_tags(std::string_view meta) {
    tags t;
    if (meta.empty()) return t;
    if (uint8_t(meta[0]) != tag_magic) {
        t["role"] = std::string(meta);  // serf protocol 2: Meta was the role
        return t;
    }
    msgpack::reader r(meta.substr(1));
    uint32_t n = 0;
    if (!r.map(n)) return t;
    for (uint32_t i = 0; i < n; ++i) {
        std::string k, v;
        if (!r.str(k) || !r.str(v)) break;
        t[std::move(k)] = std::move(v);
    }
    return t;
}

std::string encode_leave(const leave_intent& l) {
    std::string out(1, char(message_type::leave));
    msgpack::writer w(out);
    w.map(3);
    w.key("LTime");
    w.uint(l.ltime);
    w.key("Node");
    w.str(l.node);
    w.key("Prune");
    w.boolean(l.prune);
    return out;
}

std::optional<leave_intent> decode_leave(std::string_view msg) {
    if (msg.empty() || uint8_t(msg[0]) != uint8_t(message_type::leave)) return std::nullopt;
    msgpack::reader r(msg.substr(1));
    uint32_t n = 0;
    if (!r.map(n)) return std::nullopt;
    leave_intent l;
    bool have_node = false;
    for (uint32_t i = 0; i < n; ++i) {
        std::string k;
        if (!r.str(k)) return std::nullopt;
        bool ok;
        if (k == "LTime")
            ok = r.u64(l.ltime);
        else if (k == "Node")
            ok = have_node = r.str(l.node);
        else if (k == "Prune")
            ok = r.boolean(l.prune);
        else
            ok = r.skip();
        if (!ok) return std::nullopt;
    }
    if (!have_node) return std::nullopt;
    return l;
}

std::string encode_join(const join_intent& j) {
    std::string out(1, char(message_type::join));
    msgpack::writer w(out);
    w.map(2);
    w.key("LTime");
    w.uint(j.ltime);
    w.key("Node");
    w.str(j.node);
    return out;
}

std::optional<join_intent> decode_join(std::string_view msg) {
    if (msg.empty() || uint8_t(msg[0]) != uint8_t(message_type::join)) return std::nullopt;
    msgpack::reader r(msg.substr(1));
    uint32_t n = 0;
    if (!r.map(n)) return std::nullopt;
    join_intent j;
    bool have_node = false;
    for (uint32_t i = 0; i < n; ++i) {
        std::string k;
        if (!r.str(k)) return std::nullopt;
        bool ok;
        if (k == "LTime")
            ok = r.u64(j.ltime);
        else if (k == "Node")
            ok = have_node = r.str(j.node);
        else
            ok = r.skip();
        if (!ok) return std::nullopt;
    }
    if (!have_node) return std::nullopt;
    return j;
}

}  // namespace pharos::gossip::serf
