// AES-GCM keyring over OpenSSL EVP; see keyring.hh.
#include "protocols/gossip/keyring.hh"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>

namespace pharos::gossip {

namespace {
constexpr size_t nonce_len = 12, tag_len = 16;

const EVP_CIPHER* cipher_for(size_t key_len) {
    switch (key_len) {
    case 16: return EVP_aes_128_gcm();
    case 24: return EVP_aes_192_gcm();
    case 32: return EVP_aes_256_gcm();
    default: return nullptr;
    }
}

struct ctx_free {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, ctx_free>;

const unsigned char* u(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
}  // namespace

std::string seal(uint8_t version, std::string_view key, std::string_view nonce, std::string_view plain,
                 std::string_view aad) {
    std::string padded;
    if (version == 0) {
        padded.assign(plain);
        size_t pad = 16 - plain.size() % 16;
        padded.append(pad, char(pad));
        plain = padded;
    }
    std::string out;
    out.push_back(char(version));
    out.append(nonce.substr(0, nonce_len));
    size_t head = out.size();
    out.resize(head + plain.size() + tag_len);
    ctx_ptr ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    auto* dst = reinterpret_cast<unsigned char*>(out.data() + head);
    bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), cipher_for(key.size()), nullptr, nullptr, nullptr) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, nonce_len, nullptr) == 1 &&
              EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, u(key), u(nonce)) == 1 &&
              (aad.empty() || EVP_EncryptUpdate(ctx.get(), nullptr, &len, u(aad), int(aad.size())) == 1) &&
              EVP_EncryptUpdate(ctx.get(), dst, &len, u(plain), int(plain.size())) == 1 &&
              EVP_EncryptFinal_ex(ctx.get(), dst + len, &len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_len, dst + plain.size()) == 1;
    if (!ok) return {};
    return out;
}

std::optional<std::string> open(std::string_view key, std::string_view blob, std::string_view aad) {
    if (blob.empty() || uint8_t(blob[0]) > 1 || !cipher_for(key.size())) return std::nullopt;
    uint8_t version = uint8_t(blob[0]);
    if (blob.size() < 1 + nonce_len + tag_len + (version == 0 ? 16 : 0)) return std::nullopt;
    std::string_view nonce = blob.substr(1, nonce_len);
    std::string_view ct = blob.substr(1 + nonce_len, blob.size() - 1 - nonce_len - tag_len);
    std::string tag(blob.substr(blob.size() - tag_len));
    std::string out(ct.size(), '\0');
    ctx_ptr ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    auto* dst = reinterpret_cast<unsigned char*>(out.data());
    bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), cipher_for(key.size()), nullptr, nullptr, nullptr) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, nonce_len, nullptr) == 1 &&
              EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, u(key), u(nonce)) == 1 &&
              (aad.empty() || EVP_DecryptUpdate(ctx.get(), nullptr, &len, u(aad), int(aad.size())) == 1) &&
              EVP_DecryptUpdate(ctx.get(), dst, &len, u(ct), int(ct.size())) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_len, tag.data()) == 1 &&
              EVP_DecryptFinal_ex(ctx.get(), dst + len, &len) == 1;
    if (!ok) return std::nullopt;
    if (version == 0) {
        size_t pad = uint8_t(out.back());
        if (pad == 0 || pad > 16 || pad > out.size()) return std::nullopt;
        out.resize(out.size() - pad);
    }
    return out;
}

bool keyring::add_key(std::string key) {
    if (!cipher_for(key.size())) return false;
    if (std::find(keys_.begin(), keys_.end(), key) == keys_.end()) keys_.push_back(std::move(key));
    return true;
}

bool keyring::use_key(std::string_view key) {
    auto it = std::find(keys_.begin(), keys_.end(), key);
    if (it == keys_.end()) return false;
    std::rotate(keys_.begin(), it, it + 1);
    return true;
}

bool keyring::remove_key(std::string_view key) {
    auto it = std::find(keys_.begin(), keys_.end(), key);
    if (it == keys_.end() || it == keys_.begin()) return false;
    keys_.erase(it);
    return true;
}

std::string keyring::encrypt(uint8_t version, std::string_view plain, std::string_view aad) const {
    if (keys_.empty()) return {};
    unsigned char nonce[nonce_len];
    RAND_bytes(nonce, nonce_len);
    return seal(version, keys_.front(), std::string_view(reinterpret_cast<char*>(nonce), nonce_len), plain, aad);
}

std::optional<std::string> keyring::decrypt(std::string_view blob, std::string_view aad) const {
    for (const auto& k : keys_)
        if (auto r = open(k, blob, aad)) return r;
    return std::nullopt;
}

}  // namespace pharos::gossip
