// memberlist's AES-GCM encryption: a keyring of 16/24/32-byte keys, the first
// one primary (it encrypts; every key is tried to decrypt). A blob is
// [version][12-byte nonce][ciphertext ‖ 16-byte tag]; version 1 seals the
// plaintext as is, version 0 first pads it PKCS#7-style to 16 bytes. Uses
// OpenSSL's libcrypto. A value owned by whoever configures it (the membership
// shard); not thread-safe.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pharos::gossip {

class keyring {
public:
    // Keys must be 16, 24 or 32 bytes; returns false (ring unchanged) otherwise.
    bool add_key(std::string key);
    bool use_key(std::string_view key);     // makes an installed key primary
    bool remove_key(std::string_view key);  // the primary cannot be removed
    const std::vector<std::string>& keys() const { return keys_; }
    bool empty() const { return keys_.empty(); }

    // Encrypts with the primary key and a random nonce. `aad` is the GCM additional data.
    std::string encrypt(uint8_t version, std::string_view plain, std::string_view aad) const;
    // nullopt when no key opens the blob, or it is malformed.
    std::optional<std::string> decrypt(std::string_view blob, std::string_view aad) const;

    static size_t overhead(uint8_t version) { return version == 0 ? 45 : 29; }

private:
    std::vector<std::string> keys_;
};

// With an explicit nonce (12 bytes): deterministic, for tests.
std::string seal(uint8_t version, std::string_view key, std::string_view nonce, std::string_view plain,
                 std::string_view aad);
std::optional<std::string> open(std::string_view key, std::string_view blob, std::string_view aad);

}  // namespace pharos::gossip
