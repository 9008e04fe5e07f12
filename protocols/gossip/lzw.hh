// LZW exactly as Go's compress/lzw with order LSB and literal width 8, which
// memberlist uses for its compress message: a leading clear code, 9- to 12-bit
// codes packed low bits first, a clear when the table is full, EOF (257) last.
// compress() is byte-identical to Go's Writer; decompress() follows Go's Reader
// and fails (never crashes) on an invalid code, missing EOF, or output above
// `max_out`. Pure functions.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pharos::gossip::lzw {

std::string compress(std::string_view in);
// nullopt on malformed input, input that ends before EOF, or more than max_out bytes out.
std::optional<std::string> decompress(std::string_view in, size_t max_out = 40u << 20);

}  // namespace pharos::gossip::lzw
