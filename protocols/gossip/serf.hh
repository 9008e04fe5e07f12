// Serf's pieces carried over memberlist, as HashiCorp serf (protocol >= 3)
// puts them on the wire, so pharos agents and Serf-aware peers read each other:
//
// - Member tags in memberlist's Meta: the byte 0xff followed by a msgpack map of
//   string to string (go-msgpack: raw-str family). Go writes the map in random
//   order; we write keys sorted. Meta is at most 512 bytes (memberlist's limit).
//   Decoding follows serf's decodeTags: empty Meta gives no tags, Meta that does
//   not start with 0xff is the protocol-2 form (the whole Meta is the "role"
//   tag), and a malformed map gives whatever was read before the error.
// - The leave intent (serf messageLeave, type 0): [0x00] + msgpack
//   {LTime, Node, Prune}, and the join intent (messageJoin, type 1): [0x01] +
//   msgpack {LTime, Node}, sent as memberlist user messages. A graceful leave
//   and a force-leave broadcast a leave intent (alive → leaving, failed → left,
//   Prune erases); a node that hears a leave intent about itself refutes it
//   with a join intent (leaving → alive).
//
// Values only: no shard state.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace pharos::gossip::serf {

using tags = std::map<std::string, std::string>;

constexpr uint8_t tag_magic = 0xff;
constexpr size_t meta_max = 512;

// nullopt when the encoding is longer than meta_max.
std::optional<std::string> encode_tags(const tags& t);
tags decode_tags(std::string_view meta);

// Serf's message types (the first byte of a Serf user message).
enum class message_type : uint8_t {
    leave = 0,
    join = 1,
    push_pull = 2,
    user_event = 3,
    query = 4,
    query_response = 5,
    conflict_response = 6,
    key_request = 7,
    key_response = 8,
    relay = 9,
};

struct leave_intent {
    uint64_t ltime = 0;
    std::string node;
    bool prune = false;
};

struct join_intent {
    uint64_t ltime = 0;
    std::string node;
};

std::string encode_leave(const leave_intent& l);
// The message with its type byte; nullopt if it is not a well-formed leave intent.
std::optional<leave_intent> decode_leave(std::string_view msg);
std::string encode_join(const join_intent& j);
std::optional<join_intent> decode_join(std::string_view msg);

}  // namespace pharos::gossip::serf
