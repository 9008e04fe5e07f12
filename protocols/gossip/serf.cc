// Serf tags, intents, user events and queries; see serf.hh.
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

// ------------------------------------------------------------------ queries

namespace {

bool read_strings(msgpack::reader& r, std::vector<std::string>& out) {
    uint32_t n = 0;
    if (!r.array(n)) return false;
    out.clear();
    for (uint32_t i = 0; i < n; ++i) {
        std::string s;
        if (!r.str(s)) return false;
        out.push_back(std::move(s));
    }
    return true;
}

void write_strings(msgpack::writer& w, const std::vector<std::string>& v) {
    if (v.empty()) return w.nil();  // a Go nil slice
    w.array(uint32_t(v.size()));
    for (const auto& s : v) w.str(s);
}

bool typed(std::string_view msg, message_type t) { return !msg.empty() && uint8_t(msg[0]) == uint8_t(t); }

}  // namespace

std::string encode_query(const query& q) {
    std::string out(1, char(message_type::query));
    msgpack::writer w(out);
    w.map(11);
    w.key("LTime");
    w.uint(q.ltime);
    w.key("ID");
    w.uint(q.id);
    w.key("Addr");
    w.bytes(q.addr);
    w.key("Port");
    w.uint(q.port);
    w.key("SourceNode");
    w.str(q.source_node);
    w.key("Filters");
    if (q.filters.empty()) {
        w.nil();
    } else {
        w.array(uint32_t(q.filters.size()));
        for (const auto& f : q.filters) w.bytes(f);
    }
    w.key("Flags");
    w.uint(q.flags);
    w.key("RelayFactor");
    w.uint(q.relay_factor);
    w.key("Timeout");
    w.go_int(q.timeout_ns);
    w.key("Name");
    w.str(q.name);
    w.key("Payload");
    w.bytes(q.payload);
    return out;
}

std::optional<query> decode_query(std::string_view msg) {
    if (!typed(msg, message_type::query)) return std::nullopt;
    msgpack::reader r(msg.substr(1));
    query q;
    bool ok = msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "LTime") return r.u64(q.ltime);
        if (k == "ID") return r.uint_as(q.id);
        if (k == "Addr") return r.str(q.addr);
        if (k == "Port") return r.uint_as(q.port);
        if (k == "SourceNode") return r.str(q.source_node);
        if (k == "Filters") return read_strings(r, q.filters);
        if (k == "Flags") return r.uint_as(q.flags);
        if (k == "RelayFactor") return r.uint_as(q.relay_factor);
        if (k == "Timeout") return r.i64(q.timeout_ns);
        if (k == "Name") return r.str(q.name);
        if (k == "Payload") return r.str(q.payload);
        return r.skip();
    });
    if (!ok) return std::nullopt;
    return q;
}

std::string encode_query_response(const query_response& q) {
    std::string out(1, char(message_type::query_response));
    msgpack::writer w(out);
    w.map(5);
    w.key("LTime");
    w.uint(q.ltime);
    w.key("ID");
    w.uint(q.id);
    w.key("From");
    w.str(q.from);
    w.key("Flags");
    w.uint(q.flags);
    w.key("Payload");
    w.bytes(q.payload);
    return out;
}

std::optional<query_response> decode_query_response(std::string_view msg) {
    if (!typed(msg, message_type::query_response)) return std::nullopt;
    msgpack::reader r(msg.substr(1));
    query_response q;
    bool ok = msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "LTime") return r.u64(q.ltime);
        if (k == "ID") return r.uint_as(q.id);
        if (k == "From") return r.str(q.from);
        if (k == "Flags") return r.uint_as(q.flags);
        if (k == "Payload") return r.str(q.payload);
        return r.skip();
    });
    if (!ok) return std::nullopt;
    return q;
}

std::string encode_user_event(const user_event& e) {
    std::string out(1, char(message_type::user_event));
    msgpack::writer w(out);
    w.map(4);
    w.key("LTime");
    w.uint(e.ltime);
    w.key("Name");
    w.str(e.name);
    w.key("Payload");
    w.bytes(e.payload);
    w.key("CC");
    w.boolean(e.coalesce);
    return out;
}

std::optional<user_event> decode_user_event(std::string_view msg) {
    if (!typed(msg, message_type::user_event)) return std::nullopt;
    msgpack::reader r(msg.substr(1));
    user_event e;
    bool ok = msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "LTime") return r.u64(e.ltime);
        if (k == "Name") return r.str(e.name);
        if (k == "Payload") return r.str(e.payload);
        if (k == "CC") return r.boolean(e.coalesce);
        return r.skip();
    });
    if (!ok) return std::nullopt;
    return e;
}

std::string encode_push_pull_state(const push_pull_state& p) {
    std::string out(1, char(message_type::push_pull));
    msgpack::writer w(out);
    w.map(6);
    w.key("LTime");
    w.uint(p.ltime);
    w.key("StatusLTimes");
    w.map(uint32_t(p.status_ltimes.size()));
    for (const auto& [node, lt] : p.status_ltimes) {
        w.str(node);
        w.uint(lt);
    }
    w.key("LeftMembers");
    w.array(uint32_t(p.left_members.size()));  // Go makes the slice: never nil
    for (const auto& n : p.left_members) w.str(n);
    w.key("EventLTime");
    w.uint(p.event_ltime);
    w.key("Events");
    w.array(uint32_t(p.events.size()));
    for (const auto& at : p.events) {
        w.map(2);
        w.key("LTime");
        w.uint(at.ltime);
        w.key("Events");
        if (at.events.empty()) {
            w.nil();
        } else {
            w.array(uint32_t(at.events.size()));
            for (const auto& [name, payload] : at.events) {
                w.map(2);
                w.key("Name");
                w.str(name);
                w.key("Payload");
                w.bytes(payload);
            }
        }
    }
    w.key("QueryLTime");
    w.uint(p.query_ltime);
    return out;
}

namespace {

bool peek_nil(msgpack::reader& r) { return r.remaining() > 0 && *r.pos() == 0xc0; }

bool read_events_at(msgpack::reader& r, push_pull_state::events_at& at) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "LTime") return r.u64(at.ltime);
        if (k != "Events") return r.skip();
        uint32_t n = 0;
        if (!r.array(n)) return false;
        for (uint32_t i = 0; i < n; ++i) {
            std::pair<std::string, std::string> e;
            bool ok = msgpack::read_struct(r, [&](const std::string& f) {
                if (f == "Name") return r.str(e.first);
                if (f == "Payload") return r.str(e.second);
                return r.skip();
            });
            if (!ok) return false;
            at.events.push_back(std::move(e));
        }
        return true;
    });
}

}  // namespace

std::optional<push_pull_state> decode_push_pull_state(std::string_view msg) {
    if (!typed(msg, message_type::push_pull)) return std::nullopt;
    msgpack::reader r(msg.substr(1));
    push_pull_state p;
    bool ok = msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "LTime") return r.u64(p.ltime);
        if (k == "EventLTime") return r.u64(p.event_ltime);
        if (k == "QueryLTime") return r.u64(p.query_ltime);
        if (k == "LeftMembers") return read_strings(r, p.left_members);
        if (k == "StatusLTimes") {
            if (peek_nil(r)) return r.skip();
            uint32_t n = 0;
            if (!r.map(n)) return false;
            for (uint32_t i = 0; i < n; ++i) {
                std::string node;
                uint64_t lt = 0;
                if (!r.str(node) || !r.u64(lt)) return false;
                p.status_ltimes[std::move(node)] = lt;
            }
            return true;
        }
        if (k == "Events") {
            uint32_t n = 0;
            if (!r.array(n)) return false;
            for (uint32_t i = 0; i < n; ++i) {
                if (peek_nil(r)) {  // an empty slot of Go's buffer
                    if (!r.skip()) return false;
                    continue;
                }
                push_pull_state::events_at at;
                if (!read_events_at(r, at)) return false;
                p.events.push_back(std::move(at));
            }
            return true;
        }
        return r.skip();
    });
    if (!ok) return std::nullopt;
    return p;
}

std::string encode_filter(const filter& f) {
    std::string out(1, char(f.type));
    msgpack::writer w(out);
    if (f.type == filter_type::node) {
        write_strings(w, f.nodes);
    } else {
        w.map(2);
        w.key("Tag");
        w.str(f.tag);
        w.key("Expr");
        w.str(f.expr);
    }
    return out;
}

std::optional<filter> decode_filter(std::string_view in) {
    if (in.empty()) return std::nullopt;
    filter f;
    msgpack::reader r(in.substr(1));
    bool ok;
    if (uint8_t(in[0]) == uint8_t(filter_type::node)) {
        ok = read_strings(r, f.nodes);
    } else if (uint8_t(in[0]) == uint8_t(filter_type::tag)) {
        f.type = filter_type::tag;
        ok = msgpack::read_struct(r, [&](const std::string& k) {
            if (k == "Tag") return r.str(f.tag);
            if (k == "Expr") return r.str(f.expr);
            return r.skip();
        });
    } else {
        ok = false;
    }
    if (!ok) return std::nullopt;
    return f;
}

std::string encode_key_request(std::string_view key) {
    std::string out(1, char(message_type::key_request));
    msgpack::writer w(out);
    w.map(1);
    w.key("Key");
    w.bytes(key);
    return out;
}

std::optional<std::string> decode_key_request(std::string_view payload) {
    if (payload.empty()) return std::nullopt;
    msgpack::reader r(payload.substr(1));
    std::string key;
    bool ok = msgpack::read_struct(r, [&](const std::string& k) { return k == "Key" ? r.str(key) : r.skip(); });
    if (!ok) return std::nullopt;
    return key;
}

std::string encode_key_response(const node_key_response& k) {
    std::string out(1, char(message_type::key_response));
    msgpack::writer w(out);
    w.map(4);
    w.key("Result");
    w.boolean(k.result);
    w.key("Message");
    w.str(k.message);
    w.key("Keys");
    write_strings(w, k.keys);
    w.key("PrimaryKey");
    w.str(k.primary_key);
    return out;
}

std::optional<node_key_response> decode_key_response(std::string_view payload) {
    if (!typed(payload, message_type::key_response)) return std::nullopt;
    msgpack::reader r(payload.substr(1));
    node_key_response k;
    bool ok = msgpack::read_struct(r, [&](const std::string& key) {
        if (key == "Result") return r.boolean(k.result);
        if (key == "Message") return r.str(k.message);
        if (key == "Keys") return read_strings(r, k.keys);
        if (key == "PrimaryKey") return r.str(k.primary_key);
        return r.skip();
    });
    if (!ok) return std::nullopt;
    return k;
}

}  // namespace pharos::gossip::serf
