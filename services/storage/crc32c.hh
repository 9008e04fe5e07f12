// CRC-32C (Castagnoli), the checksum of WAL records and snapshots: SSE4.2's
// crc32 instruction when the CPU has it, else a table. Any shard.
#pragma once
#include <cstdint>
#include <string_view>

namespace pharos::storage {

// Extends `crc` (0 to start) over `data`.
uint32_t crc32c(std::string_view data, uint32_t crc = 0) noexcept;

}  // namespace pharos::storage
