// HPACK (RFC 7541) decoding for the gRPC probe's HTTP/2 responses: the static
// and dynamic tables, integer and string literals, Huffman strings. Plain data,
// used by one probe at a time on one shard.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pharos::health {

using header_pairs = std::vector<std::pair<std::string, std::string>>;

// Decodes a Huffman-coded string; false on a bad code or padding.
bool huffman_decode(std::string_view in, std::string& out);

class hpack_decoder {
public:
    // Appends the fields of one header block to `out`; false if malformed.
    bool decode(std::string_view block, header_pairs& out);

private:
    bool lookup(uint64_t index, std::string& name, std::string& value) const;
    void insert(std::string name, std::string value);
    std::deque<std::pair<std::string, std::string>> dyn_;  // newest first
    size_t size_ = 0, max_ = 4096;
};

}  // namespace pharos::health
