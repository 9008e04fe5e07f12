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

namespace {

// Serf's messageLeave and messageJoin: the type byte, then a msgpack map of
// LTime, Node and (leave only) Prune.
std::string encode_intent(message_type type, uint64_t ltime, const std::string& node, const bool* prune) {
    std::string out(1, char(type));
    msgpack::writer w(out);
    w.map(prune ? 3 : 2);
    w.key("LTime");
    w.uint(ltime);
    w.key("Node");
    w.str(node);
    if (prune) {
        w.key("Prune");
        w.boolean(*prune);
    }
    return out;
}

// False unless `msg` is an intent of `type` with a Node; unknown keys are skipped
// (and Prune where `prune` is null).
bool decode_intent(std::string_view msg, message_type type, uint64_t& ltime, std::string& node, bool* prune) {
    if (msg.empty() || uint8_t(msg[0]) != uint8_t(type)) return false;
    msgpack::reader r(msg.substr(1));
    uint32_t n = 0;
    if (!r.map(n)) return false;
    bool have_node = false;
    for (uint32_t i = 0; i < n; ++i) {
        std::string k;
        if (!r.str(k)) return false;
        bool ok;
        if (k == "LTime")
            ok = r.u64(ltime);
        else if (k == "Node")
            ok = have_node = r.str(node);
        else if (k == "Prune" && prune)
            ok = r.boolean(*prune);
        else
            ok = r.skip();
        if (!ok) return false;
    }
    return have_node;
}

}  // namespace

std::string encode_leave(const leave_intent& l) {
    return encode_intent(message_type::leave, l.ltime, l.node, &l.prune);
}

std::optional<leave_intent> decode_leave(std::string_view msg) {
    leave_intent l;
    if (!decode_intent(msg, message_type::leave, l.ltime, l.node, &l.prune)) return std::nullopt;
    return l;
}

std::string encode_join(const join_intent& j) { return encode_intent(message_type::join, j.ltime, j.node, nullptr); }

std::optional<join_intent> decode_join(std::string_view msg) {
    join_intent j;
    if (!decode_intent(msg, message_type::join, j.ltime, j.node, nullptr)) return std::nullopt;
    return j;
}

}  // namespace pharos::gossip::serf
