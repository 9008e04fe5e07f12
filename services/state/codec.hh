// The binary encoding of state-machine commands and snapshots: what the WAL
// (services/storage/wal.hh) stores as record payloads and the snapshot store as
// snapshot bodies. Plain functions, no I/O, any shard.
//
// Format (version 1), all integers unsigned LEB128 varints unless noted:
//   command  = u8 version(1), varint tag, fields
//   snapshot = u8 version(1), varint index, kv tables, catalog tables, sessions table
// A command's tag is its alternative's position in `state::command`: append new
// alternatives at the end, never reorder, so old logs keep decoding. Strings
// are varint length + bytes; signed ints are zigzag varints; vectors are a
// count then elements; optionals a presence byte. Every struct is encoded field
// by field through a structured binding of all its members, so adding a member
// to a command or row struct, or an alternative to `command`, fails to compile
// until codec.cc encodes it.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "services/state/state.hh"

namespace pharos::state {

inline constexpr uint8_t codec_version = 1;

// Appends the encoding of `c` to `out`.
void encode_command(const command& c, std::string& out);
// Decodes one command; nullopt if the bytes are not a complete, valid command.
std::optional<command> decode_command(std::string_view bytes);

// A log entry: a command and the owner's clock reading it was applied with
// (fsm::apply's now_ns; lock-delay depends on it, so replay must see the same).
//   entry = u8 version(1), zigzag varint now_ns, varint tag, fields
struct log_entry {
    int64_t now_ns = 0;
    command c;
};
void encode_entry(int64_t now_ns, const command& c, std::string& out);
std::optional<log_entry> decode_entry(std::string_view bytes);

// The whole state machine (index, KV and catalog tables, their indexes and
// tombstones). Restoring gives tables that answer every read as the original.
void encode_snapshot(const snapshot& s, std::string& out);
// Returns an error text, or nullopt with `out` filled.
std::optional<std::string> decode_snapshot(std::string_view bytes, snapshot& out);

}  // namespace pharos::state
