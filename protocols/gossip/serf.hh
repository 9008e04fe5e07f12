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
// - Queries (messageQuery, type 4): [0x04] + msgpack {LTime, ID, Addr, Port,
//   SourceNode, Filters, Flags, RelayFactor, Timeout, Name, Payload}, gossiped
//   as a memberlist user message; each answer (messageQueryResponse, type 5):
//   [0x05] + msgpack {LTime, ID, From, Flags, Payload}, sent over UDP to
//   Addr:Port. Timeout is a Go time.Duration (nanoseconds), written in the
//   signed int forms go-msgpack v2 uses (as today's Serf does); every reader
//   here takes any int form. A filter is [type] + msgpack: 0 = node names
//   (an array), 1 = {Tag, Expr}.
// - User events (messageUserEvent, type 3): [0x03] + msgpack {LTime, Name,
//   Payload, CC}, gossiped as a memberlist user message; CC ("can coalesce")
//   is false in every event Consul sends.
// - Serf's push/pull state (messagePushPull, type 2), memberlist's user state
//   in every push/pull: [0x02] + msgpack {LTime, StatusLTimes (node → LTime),
//   LeftMembers, EventLTime, Events (the recent-event buffer: a list of
//   {LTime, Events: [{Name, Payload}]}, nil for an empty slot), QueryLTime}.
// - Key queries (_serf_install-key, _serf_use-key, _serf_remove-key,
//   _serf_list-keys): the query payload is keyRequest [0x07] + {Key} (raw key
//   bytes; nil for list), the answer payload nodeKeyResponse [0x08] + {Result,
//   Message, Keys, PrimaryKey} (base64 keys; Keys nil when empty).
//
// Values only: no shard state.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// messageUserEvent.
struct user_event {
    uint64_t ltime = 0;
    std::string name;
    std::string payload;
    bool coalesce = false;  // CC
};
std::string encode_user_event(const user_event& e);
std::optional<user_event> decode_user_event(std::string_view msg);  // with its type byte

// messagePushPull. Events holds only used buffer slots (Go sends every slot, nil when empty; both read alike).
struct push_pull_state {
    struct events_at {
        uint64_t ltime = 0;
        std::vector<std::pair<std::string, std::string>> events;  // (Name, Payload)
    };
    uint64_t ltime = 0;
    std::map<std::string, uint64_t> status_ltimes;
    std::vector<std::string> left_members;
    uint64_t event_ltime = 0;
    std::vector<events_at> events;
    uint64_t query_ltime = 0;
};
std::string encode_push_pull_state(const push_pull_state& p);
std::optional<push_pull_state> decode_push_pull_state(std::string_view msg);  // with its type byte

// Serf's query flags.
constexpr uint32_t query_flag_ack = 1;           // each receiver acks at once
constexpr uint32_t query_flag_no_broadcast = 2;  // receivers do not relay it

struct query {
    uint64_t ltime = 0;
    uint32_t id = 0;
    std::string addr;  // raw IP, 4 or 16 bytes: where answers go
    uint16_t port = 0;
    std::string source_node;
    std::vector<std::string> filters;  // each [filter type] + msgpack
    uint32_t flags = 0;
    uint8_t relay_factor = 0;
    int64_t timeout_ns = 0;
    std::string name;
    std::string payload;
};

struct query_response {
    uint64_t ltime = 0;
    uint32_t id = 0;
    std::string from;
    uint32_t flags = 0;  // query_flag_ack: an ack, not an answer
    std::string payload;
};

std::string encode_query(const query& q);
std::optional<query> decode_query(std::string_view msg);  // with its type byte
std::string encode_query_response(const query_response& r);
std::optional<query_response> decode_query_response(std::string_view msg);

enum class filter_type : uint8_t { node = 0, tag = 1 };
struct filter {
    filter_type type = filter_type::node;
    std::vector<std::string> nodes;  // node
    std::string tag, expr;           // tag: a regular expression on one tag's value
};
std::string encode_filter(const filter& f);
std::optional<filter> decode_filter(std::string_view f);

// keyRequest: `key` is the raw key ("" for list-keys: Key is nil).
std::string encode_key_request(std::string_view key);
// The key of a key query's payload. Like Serf, the type byte is skipped unread.
std::optional<std::string> decode_key_request(std::string_view payload);

struct node_key_response {
    bool result = false;
    std::string message;
    std::vector<std::string> keys;  // base64
    std::string primary_key;        // base64
};
std::string encode_key_response(const node_key_response& r);
// nullopt unless it starts with the key-response type byte and decodes.
std::optional<node_key_response> decode_key_response(std::string_view payload);

}  // namespace pharos::gossip::serf
