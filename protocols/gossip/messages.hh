// memberlist's messages as values, and their encoding: a type byte followed by
// a msgpack map whose keys are the Go field names in sorted order (see
// /work/shared/spec/memberlist-protocol.md §2-§4). encode_* appends the type
// byte and body to `out`; decode_* reads a body (after the type byte) and
// returns false on malformed or truncated input, never reading past it.
// Unknown keys are skipped, missing keys keep their defaults, as Go does.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/gossip/msgpack.hh"

namespace pharos::gossip {

enum class msg_type : uint8_t {
    ping = 0,
    indirect_ping = 1,
    ack = 2,
    suspect = 3,
    alive = 4,
    dead = 5,
    push_pull = 6,
    compound = 7,
    user = 8,
    compress = 9,
    encrypt = 10,
    nack = 11,
    has_crc = 12,
    err = 13,
    has_label = 244,
};

enum class node_state : uint8_t { alive = 0, suspect = 1, dead = 2, left = 3 };

// Raw IP bytes (4 or 16) as on the wire; `std::string` holds them.
struct ping {
    uint32_t seq_no = 0;
    std::string node;  // intended target; empty = anyone
    std::string source_addr;
    uint16_t source_port = 0;
    std::string source_node;
};

struct indirect_ping {
    uint32_t seq_no = 0;
    std::string target;
    uint16_t port = 0;
    std::string node;
    bool nack = false;
    std::string source_addr;
    uint16_t source_port = 0;
    std::string source_node;
};

struct ack_resp {
    uint32_t seq_no = 0;
    std::string payload;  // empty = nil
};

struct nack_resp {
    uint32_t seq_no = 0;
};

struct err_resp {
    std::string error;
};

struct suspect {
    uint32_t incarnation = 0;
    std::string node;
    std::string from;
};

struct dead {
    uint32_t incarnation = 0;
    std::string node;
    std::string from;  // == node: a graceful leave
};

struct alive {
    uint32_t incarnation = 0;
    std::string node;
    std::string addr;
    uint16_t port = 0;
    std::string meta;
    std::string vsn;  // [PMin, PMax, PCur, DMin, DMax, DCur] as raw bytes
};

struct push_pull_header {
    int64_t nodes = 0;
    int64_t user_state_len = 0;
    bool join = false;
};

struct push_node_state {
    std::string name;
    std::string addr;
    uint16_t port = 0;
    std::string meta;
    uint32_t incarnation = 0;
    node_state state = node_state::alive;
    std::string vsn;
};

struct user_msg_header {
    int64_t user_msg_len = 0;
};

struct compress_body {
    uint8_t algo = 0;  // 0 = LZW, the only one
    std::string buf;
};

void encode(const ping& m, std::string& out);
void encode(const indirect_ping& m, std::string& out);
void encode(const ack_resp& m, std::string& out);
void encode(const nack_resp& m, std::string& out);
void encode(const err_resp& m, std::string& out);
void encode(const suspect& m, std::string& out);
void encode(const dead& m, std::string& out);
void encode(const alive& m, std::string& out);
void encode(const compress_body& m, std::string& out);
// The push/pull header with its type byte; node states and user state follow.
void encode(const push_pull_header& m, std::string& out);
void encode_body(const push_node_state& m, std::string& out);  // no type byte
void encode(const user_msg_header& m, std::string& out);

// Body decoders over a reader, for streams where several values follow each other.
bool decode(msgpack::reader& r, ping& m);
bool decode(msgpack::reader& r, indirect_ping& m);
bool decode(msgpack::reader& r, ack_resp& m);
bool decode(msgpack::reader& r, nack_resp& m);
bool decode(msgpack::reader& r, err_resp& m);
bool decode(msgpack::reader& r, suspect& m);
bool decode(msgpack::reader& r, dead& m);
bool decode(msgpack::reader& r, alive& m);
bool decode(msgpack::reader& r, compress_body& m);
bool decode(msgpack::reader& r, push_pull_header& m);
bool decode(msgpack::reader& r, push_node_state& m);
bool decode(msgpack::reader& r, user_msg_header& m);

template <class M>
bool decode(std::string_view body, M& m) {
    msgpack::reader r(body);
    return decode(r, m);
}

// A whole message: type byte + body, for values with a type byte.
template <class M>
std::string encode_msg(const M& m) {
    std::string out;
    encode(m, out);
    return out;
}

}  // namespace pharos::gossip
