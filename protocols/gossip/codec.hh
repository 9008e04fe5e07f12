// memberlist framing around messages (spec §5, §6, §8, §9):
//  - UDP: [label] → [encryption, no type byte] → [CRC 0c] → message, where a
//    message may be a compound (07) or compress (09) holding more messages;
//  - TCP: [label] → [0a len blob] → [09 compress] → one message, parsed
//    incrementally (Go never half-closes; msgpack and lengths delimit it).
// Every decoder returns an errc instead of throwing or crashing, and never
// reads past its input. Pure functions over values; no shard state.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/gossip/keyring.hh"
#include "protocols/gossip/messages.hh"

namespace pharos::gossip {

enum class errc : uint8_t {
    ok,
    need_more,       // stream parsing only: read more bytes
    empty,
    bad_label,
    decrypt_failed,
    bad_crc,
    truncated,
    malformed,
    too_deep,
    too_large,
    unknown_type,
};
const char* to_string(errc e);

inline constexpr size_t max_nodes = 1u << 20;
inline constexpr size_t max_user_bytes = 20u << 20;
inline constexpr size_t max_decompressed = 40u << 20;
inline constexpr int max_nesting = 4;  // compound/compress levels accepted inside one packet

uint32_t crc32_ieee(std::string_view data);

// Wire options shared by both directions.
struct wire_options {
    const keyring* keys = nullptr;  // encryption when non-null and non-empty
    uint8_t encryption_version = 1;
    bool verify_incoming = true;  // false: accept plaintext when decryption fails
    bool verify_outgoing = true;  // false: send plaintext
    std::string label;            // v0.3.0+ label header; empty = none (Debian 0.2.2 rejects labels)
};

// --- building UDP packets ---
// 07 N len16... parts; parts must number 1..255 and each be < 64 KiB.
std::string make_compound(std::span<const std::string> parts);
// 09 {Algo:0, Buf:LZW(msg)}.
std::string compress_message(std::string_view msg);
// 0c CRC32-BE(msg) msg.
std::string add_crc(std::string_view msg);
// Encryption then label around an already built packet (CRC included).
std::string seal_packet(std::string packet, const wire_options& o);

// --- reading UDP packets ---
// Strips label, decrypts and checks the CRC: the result is one message (maybe compound/compress).
errc open_packet(std::string_view in, const wire_options& o, std::string& out);
// Flattens compound and compress (recursively, up to max_nesting) into plain messages, each a
// type byte + body. Parts after a truncated compound length are dropped and reported as
// `truncated`; earlier parts are kept in `out`.
errc flatten(std::string_view msg, std::vector<std::string>& out, int depth = 0);

// --- TCP streams ---
// One stream message as Go writes it: compressed when `compress` (even when larger), then
// encrypted (0a + length + blob, the 5 header bytes and the label as additional data), then label.
std::string seal_stream(std::string_view msg, bool compress, const wire_options& o);
// Parses one stream message from the start of `buf`. ok: `out` holds the plain message (type
// byte + body + trailing user bytes) and `consumed` how much of buf it used. need_more: buf is a
// prefix of a message. Anything else: the stream is bad.
errc open_stream(std::string_view buf, const wire_options& o, std::string& out, size_t& consumed);
// Length of a complete plain (uncompressed, unencrypted) stream message at the start of buf.
errc plain_stream_length(std::string_view buf, size_t& len);

// A push/pull message, decoded.
struct push_pull {
    push_pull_header header;
    std::vector<push_node_state> nodes;
    std::string user_state;
};
std::string encode_push_pull(const push_pull& p);
errc decode_push_pull(std::string_view msg, push_pull& p);  // msg starts with the 06 type byte

}  // namespace pharos::gossip
