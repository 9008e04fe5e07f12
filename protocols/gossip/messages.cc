// Encoders and decoders of memberlist's message bodies; see messages.hh.
#include "protocols/gossip/messages.hh"

namespace pharos::gossip {

namespace {

void type(std::string& out, msg_type t) { out.push_back(char(t)); }

}  // namespace

void encode(const ping& m, std::string& out) {
    type(out, msg_type::ping);
    msgpack::writer w(out);
    bool addr = !m.source_addr.empty(), port = m.source_port != 0, node = !m.source_node.empty();
    w.map(2 + addr + port + node);
    w.key("Node"), w.str(m.node);
    w.key("SeqNo"), w.uint(m.seq_no);
    if (addr) w.key("SourceAddr"), w.bytes(m.source_addr);
    if (node) w.key("SourceNode"), w.str(m.source_node);
    if (port) w.key("SourcePort"), w.uint(m.source_port);
}

void encode(const indirect_ping& m, std::string& out) {
    type(out, msg_type::indirect_ping);
    msgpack::writer w(out);
    bool addr = !m.source_addr.empty(), port = m.source_port != 0, node = !m.source_node.empty();
    w.map(5 + addr + port + node);
    w.key("Nack"), w.boolean(m.nack);
    w.key("Node"), w.str(m.node);
    w.key("Port"), w.uint(m.port);
    w.key("SeqNo"), w.uint(m.seq_no);
    if (addr) w.key("SourceAddr"), w.bytes(m.source_addr);
    if (node) w.key("SourceNode"), w.str(m.source_node);
    if (port) w.key("SourcePort"), w.uint(m.source_port);
    w.key("Target"), w.bytes(m.target);
}

void encode(const ack_resp& m, std::string& out) {
    type(out, msg_type::ack);
    msgpack::writer w(out);
    w.map(2);
    w.key("Payload"), w.bytes(m.payload);
    w.key("SeqNo"), w.uint(m.seq_no);
}

void encode(const nack_resp& m, std::string& out) {
    type(out, msg_type::nack);
    msgpack::writer w(out);
    w.map(1);
    w.key("SeqNo"), w.uint(m.seq_no);
}

void encode(const err_resp& m, std::string& out) {
    type(out, msg_type::err);
    msgpack::writer w(out);
    w.map(1);
    w.key("Error"), w.str(m.error);
}

namespace {
template <class M>
void encode_accusation(msg_type t, const M& m, std::string& out) {
    type(out, t);
    msgpack::writer w(out);
    w.map(3);
    w.key("From"), w.str(m.from);
    w.key("Incarnation"), w.uint(m.incarnation);
    w.key("Node"), w.str(m.node);
}
template <class M>
bool decode_accusation(msgpack::reader& r, M& m) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "From") return r.str(m.from);
        if (k == "Incarnation") return r.uint_as(m.incarnation);
        if (k == "Node") return r.str(m.node);
        return r.skip();
    });
}
}  // namespace

void encode(const suspect& m, std::string& out) { encode_accusation(msg_type::suspect, m, out); }
void encode(const dead& m, std::string& out) { encode_accusation(msg_type::dead, m, out); }

void encode(const alive& m, std::string& out) {
    type(out, msg_type::alive);
    msgpack::writer w(out);
    w.map(6);
    w.key("Addr"), w.bytes(m.addr);
    w.key("Incarnation"), w.uint(m.incarnation);
    w.key("Meta"), w.bytes(m.meta);
    w.key("Node"), w.str(m.node);
    w.key("Port"), w.uint(m.port);
    w.key("Vsn"), w.bytes(m.vsn);
}

void encode(const compress_body& m, std::string& out) {
    type(out, msg_type::compress);
    msgpack::writer w(out);
    w.map(2);
    w.key("Algo"), w.uint(m.algo);
    w.key("Buf"), w.bytes(m.buf);
}

void encode(const push_pull_header& m, std::string& out) {
    type(out, msg_type::push_pull);
    msgpack::writer w(out);
    w.map(3);
    w.key("Join"), w.boolean(m.join);
    w.key("Nodes"), w.sint(m.nodes);
    w.key("UserStateLen"), w.sint(m.user_state_len);
}

void encode_body(const push_node_state& m, std::string& out) {
    msgpack::writer w(out);
    w.map(7);
    w.key("Addr"), w.bytes(m.addr);
    w.key("Incarnation"), w.uint(m.incarnation);
    w.key("Meta"), w.bytes(m.meta);
    w.key("Name"), w.str(m.name);
    w.key("Port"), w.uint(m.port);
    w.key("State"), w.sint(int64_t(m.state));
    w.key("Vsn"), w.bytes(m.vsn);
}

void encode(const user_msg_header& m, std::string& out) {
    type(out, msg_type::user);
    msgpack::writer w(out);
    w.map(1);
    w.key("UserMsgLen"), w.sint(m.user_msg_len);
}

bool decode(msgpack::reader& r, ping& m) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "Node") return r.str(m.node);
        if (k == "SeqNo") return r.uint_as(m.seq_no);
        if (k == "SourceAddr") return r.str(m.source_addr);
        if (k == "SourceNode") return r.str(m.source_node);
        if (k == "SourcePort") return r.uint_as(m.source_port);
        return r.skip();
    });
}

bool decode(msgpack::reader& r, indirect_ping& m) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "Nack") return r.boolean(m.nack);
        if (k == "Node") return r.str(m.node);
        if (k == "Port") return r.uint_as(m.port);
        if (k == "SeqNo") return r.uint_as(m.seq_no);
        if (k == "SourceAddr") return r.str(m.source_addr);
        if (k == "SourceNode") return r.str(m.source_node);
        if (k == "SourcePort") return r.uint_as(m.source_port);
        if (k == "Target") return r.str(m.target);
        return r.skip();
    });
}

bool decode(msgpack::reader& r, ack_resp& m) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "Payload") return r.str(m.payload);
        if (k == "SeqNo") return r.uint_as(m.seq_no);
        return r.skip();
    });
}

bool decode(msgpack::reader& r, nack_resp& m) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "SeqNo") return r.uint_as(m.seq_no);
        return r.skip();
    });
}

bool decode(msgpack::reader& r, err_resp& m) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "Error") return r.str(m.error);
        return r.skip();
    });
}

bool decode(msgpack::reader& r, suspect& m) { return decode_accusation(r, m); }
bool decode(msgpack::reader& r, dead& m) { return decode_accusation(r, m); }

bool decode(msgpack::reader& r, alive& m) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "Addr") return r.str(m.addr);
        if (k == "Incarnation") return r.uint_as(m.incarnation);
        if (k == "Meta") return r.str(m.meta);
        if (k == "Node") return r.str(m.node);
        if (k == "Port") return r.uint_as(m.port);
        if (k == "Vsn") return r.str(m.vsn);
        return r.skip();
    });
}

bool decode(msgpack::reader& r, compress_body& m) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "Algo") return r.uint_as(m.algo);
        if (k == "Buf") return r.str(m.buf);
        return r.skip();
    });
}

bool decode(msgpack::reader& r, push_pull_header& m) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "Join") return r.boolean(m.join);
        if (k == "Nodes") return r.i64(m.nodes);
        if (k == "UserStateLen") return r.i64(m.user_state_len);
        return r.skip();
    });
}

bool decode(msgpack::reader& r, push_node_state& m) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "Addr") return r.str(m.addr);
        if (k == "Incarnation") return r.uint_as(m.incarnation);
        if (k == "Meta") return r.str(m.meta);
        if (k == "Name") return r.str(m.name);
        if (k == "Port") return r.uint_as(m.port);
        if (k == "State") {
            int64_t s;
            if (!r.i64(s) || s < 0 || s > 3) return false;
            m.state = node_state(s);
            return true;
        }
        if (k == "Vsn") return r.str(m.vsn);
        return r.skip();
    });
}

bool decode(msgpack::reader& r, user_msg_header& m) {
    return msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "UserMsgLen") return r.i64(m.user_msg_len);
        return r.skip();
    });
}

}  // namespace pharos::gossip
