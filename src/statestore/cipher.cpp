#include "statestore/cipher.hpp"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "statestore/base64.hpp"

namespace spawn::statestore {

namespace {

// Cloak's tag header: a type byte that is always 1, then the tag's length and the tag itself.
constexpr unsigned char kTagType = 0x01;
constexpr std::string_view kGcmTag = "AES.GCM.V1";
constexpr std::string_view kCtrTag = "AES.CTR.V1";
// Cloak's AES.GCM keeps 16-byte IVs for backward compatibility (GCM's usual size is 12).
constexpr std::size_t kIvBytes = 16;
constexpr std::size_t kGcmTagBytes = 16;
constexpr std::string_view kGcmAad = "AES256GCM";
// EVP_*Update take an int length; larger inputs go in chunks of this size.
constexpr std::size_t kMaxChunk = std::size_t{1} << 30;

constexpr std::string_view kKeyHint = "create one with: openssl rand -base64 32";

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};

using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

[[noreturn]] void die(std::string_view what) {
  spdlog::critical("statestore cipher: {} failed; refusing to store state unencrypted", what);
  std::abort();
}

unsigned char* bytes(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Runs EVP_{En,De}cryptUpdate over `in` in int-sized chunks, writing to `out` (same length: both
// GCM and CTR are stream modes). Returns false when OpenSSL fails.
template <class UpdateFn>
bool update_all(UpdateFn update, EVP_CIPHER_CTX* ctx, unsigned char* out, std::string_view in) {
  std::size_t done = 0;
  while (done < in.size()) {
    const std::size_t chunk = std::min(kMaxChunk, in.size() - done);
    int written = 0;
    if (update(ctx, out + done, &written, bytes(in) + done, static_cast<int>(chunk)) != 1
        || static_cast<std::size_t>(written) != chunk) {
      return false;
    }
    done += chunk;
  }
  return true;
}

Error data_loss(std::string message) {
  return fail(ErrorCode::kDataLoss, "decrypt: " + std::move(message));
}

}  // namespace

// How many IVs one RAND_bytes call draws: the call costs far more than the bytes (OpenSSL's
// DRBG locks, reseeds when due and runs its update step around every request), so one call per
// this many encryptions instead of one each.
constexpr std::size_t kIvsPerDraw = 64;

/// An encryption context and random bytes drawn ahead for its next IVs. Each IV is handed out
/// once: the bytes live only here, and an encryptor belongs to one call at a time. IVs are
/// written in clear beside the ciphertext, so drawing them early reveals nothing.
struct Encryptor {
  CtxPtr ctx;
  std::array<unsigned char, kIvBytes * kIvsPerDraw> ivs{};
  std::size_t used = kIvsPerDraw;

  /// Writes the next fresh IV to `iv`; false when the random source fails.
  bool next_iv(unsigned char* iv) {
    if (used == kIvsPerDraw) {
      if (RAND_bytes(ivs.data(), static_cast<int>(ivs.size())) != 1) {
        return false;
      }
      used = 0;
    }
    std::memcpy(iv, ivs.data() + used * kIvBytes, kIvBytes);
    ++used;
    return true;
  }
};

/// AES-256-GCM contexts set up with one key, one free list per direction. A context is taken for
/// one call and given back after it; each call sets a fresh IV, which restarts GCM but keeps the
/// key schedule. A context that failed is dropped, not reused.
class Cipher::Contexts {
public:
  explicit Contexts(const std::array<unsigned char, kKeyBytes>& key)
      : key_(key), gcm_(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr)) {}

  Contexts(const Contexts&) = delete;
  Contexts& operator=(const Contexts&) = delete;

  ~Contexts() {
    OPENSSL_cleanse(key_.data(), key_.size());
    EVP_CIPHER_free(gcm_);
  }

  /// An encryptor, keyed, waiting for its IV; null when OpenSSL fails.
  std::unique_ptr<Encryptor> take_encryptor() {
    if (std::unique_ptr<Encryptor> pooled = take_free(encryptors_)) {
      return pooled;
    }
    CtxPtr ctx = new_context(/*encrypt=*/true);
    if (!ctx) {
      return nullptr;
    }
    auto encryptor = std::make_unique<Encryptor>();
    encryptor->ctx = std::move(ctx);
    return encryptor;
  }

  /// A decryption context, keyed, waiting for its IV; null when OpenSSL fails.
  CtxPtr take_decryptor() {
    if (CtxPtr pooled = take_free(decryptors_)) {
      return pooled;
    }
    return new_context(/*encrypt=*/false);
  }

  /// Give back what completed its call.
  void give_back(std::unique_ptr<Encryptor> encryptor) {
    give_back_free(encryptors_, std::move(encryptor));
  }

  void give_back(CtxPtr decryptor) { give_back_free(decryptors_, std::move(decryptor)); }

private:
  static constexpr std::size_t kMaxFree = 64;

  CtxPtr new_context(bool encrypt) {
    CtxPtr ctx(EVP_CIPHER_CTX_new());
    const int enc = encrypt ? 1 : 0;
    // The fetched cipher, not EVP_aes_256_gcm(): OpenSSL 3 fetches the implementation of a
    // built-in one again at every EVP_*Init_ex, which each call makes to set its IV.
    const EVP_CIPHER* cipher = gcm_ != nullptr ? gcm_ : EVP_aes_256_gcm();
    if (!ctx || EVP_CipherInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr, enc) != 1
        || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kIvBytes),
                               nullptr)
               != 1
        || EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key_.data(), nullptr, enc) != 1) {
      return nullptr;
    }
    return ctx;
  }

  template <class Ptr>
  Ptr take_free(std::vector<Ptr>& free) {
    const std::lock_guard lock(mutex_);
    if (free.empty()) {
      return nullptr;
    }
    Ptr taken = std::move(free.back());
    free.pop_back();
    return taken;
  }

  template <class Ptr>
  void give_back_free(std::vector<Ptr>& free, Ptr ptr) {
    const std::lock_guard lock(mutex_);
    // More than this are only kept after a burst of calls from many threads at once.
    if (free.size() < kMaxFree) {
      free.push_back(std::move(ptr));
    }
  }

  std::array<unsigned char, kKeyBytes> key_;
  /// AES-256-GCM from the default provider; null if the fetch failed (then the built-in one).
  EVP_CIPHER* gcm_;
  std::mutex mutex_;  // guards encryptors_ and decryptors_
  std::vector<std::unique_ptr<Encryptor>> encryptors_;
  std::vector<CtxPtr> decryptors_;
};

Result<Cipher> Cipher::from_base64_key(std::string_view key_b64) {
  std::optional<std::string> key = base64_decode(key_b64);
  if (!key) {
    return fail(ErrorCode::kConfig,
                "SPAWN_STATESTORE_KEY is not valid base64; " + std::string(kKeyHint));
  }
  if (key->size() != kKeyBytes) {
    const std::size_t got = key->size();
    OPENSSL_cleanse(key->data(), key->size());
    return fail(ErrorCode::kConfig, "SPAWN_STATESTORE_KEY must be 32 bytes of base64 (got "
                                        + std::to_string(got) + " bytes); "
                                        + std::string(kKeyHint));
  }
  std::array<unsigned char, kKeyBytes> raw{};
  std::memcpy(raw.data(), key->data(), kKeyBytes);
  OPENSSL_cleanse(key->data(), key->size());
  Cipher cipher(raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  return cipher;
}

Cipher::Cipher(const std::array<unsigned char, kKeyBytes>& key)
    : key_(key), contexts_(std::make_shared<Contexts>(key)) {}

Cipher::~Cipher() {
  OPENSSL_cleanse(key_.data(), key_.size());
}

std::string Cipher::encrypt(std::string_view plaintext) const {
  const std::size_t header = 2 + kGcmTag.size();
  std::string blob(header + kIvBytes + kGcmTagBytes + plaintext.size(), '\0');
  blob[0] = static_cast<char>(kTagType);
  blob[1] = static_cast<char>(kGcmTag.size());
  std::memcpy(blob.data() + 2, kGcmTag.data(), kGcmTag.size());
  unsigned char* iv = bytes(blob) + header;
  unsigned char* tag = iv + kIvBytes;
  unsigned char* out = tag + kGcmTagBytes;

  std::unique_ptr<Encryptor> encryptor = contexts_->take_encryptor();
  if (!encryptor) {
    die("AES-256-GCM setup");
  }
  if (!encryptor->next_iv(iv)) {
    die("RAND_bytes");
  }
  EVP_CIPHER_CTX* ctx = encryptor->ctx.get();
  int len = 0;
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv) != 1
      || EVP_EncryptUpdate(ctx, nullptr, &len, bytes(kGcmAad), static_cast<int>(kGcmAad.size()))
             != 1
      || !update_all(EVP_EncryptUpdate, ctx, out, plaintext)
      || EVP_EncryptFinal_ex(ctx, out + plaintext.size(), &len) != 1
      || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmTagBytes), tag) != 1) {
    die("AES-256-GCM encryption");
  }
  contexts_->give_back(std::move(encryptor));
  return blob;
}

Result<std::string> Cipher::decrypt(std::string_view blob) const {
  if (blob.size() < 2) {
    return data_loss("blob truncated (" + std::to_string(blob.size())
                     + " bytes, too short for a cipher tag)");
  }
  if (static_cast<unsigned char>(blob[0]) != kTagType) {
    return data_loss("not an encrypted blob (first byte "
                     + std::to_string(static_cast<unsigned char>(blob[0])) + ", expected 1)");
  }
  const std::size_t tag_length = static_cast<unsigned char>(blob[1]);
  if (blob.size() < 2 + tag_length) {
    return data_loss("blob truncated (" + std::to_string(blob.size()) + " bytes, cipher tag needs "
                     + std::to_string(2 + tag_length) + ")");
  }
  const std::string_view tag = blob.substr(2, tag_length);
  const std::string_view body = blob.substr(2 + tag_length);
  if (tag == kGcmTag) {
    return decrypt_gcm(body);
  }
  if (tag == kCtrTag) {
    return decrypt_ctr(body);
  }
  const bool printable =
      std::all_of(tag.begin(), tag.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  return data_loss("unknown cipher tag "
                   + (printable ? "'" + std::string(tag) + "'"
                                : "of " + std::to_string(tag_length) + " binary bytes")
                   + " (supported: AES.GCM.V1, AES.CTR.V1)");
}

Result<std::string> Cipher::decrypt_gcm(std::string_view body) const {
  if (body.size() < kIvBytes + kGcmTagBytes) {
    return data_loss("AES.GCM.V1 blob truncated (" + std::to_string(body.size())
                     + " bytes after the cipher tag, need at least "
                     + std::to_string(kIvBytes + kGcmTagBytes) + ")");
  }
  const std::string_view iv = body.substr(0, kIvBytes);
  // A copy (OpenSSL takes a mutable pointer), in an array: 16 bytes do not fit a string's SSO.
  std::array<unsigned char, kGcmTagBytes> gcm_tag{};
  std::memcpy(gcm_tag.data(), body.data() + kIvBytes, kGcmTagBytes);
  const std::string_view ciphertext = body.substr(kIvBytes + kGcmTagBytes);
  std::string plaintext(ciphertext.size(), '\0');

  CtxPtr ctx = contexts_->take_decryptor();
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, nullptr, bytes(iv)) != 1
      || EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(kGcmAad),
                           static_cast<int>(kGcmAad.size()))
             != 1
      || !update_all(EVP_DecryptUpdate, ctx.get(), bytes(plaintext), ciphertext)
      || EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kGcmTagBytes),
                             gcm_tag.data())
             != 1) {
    return fail(ErrorCode::kInternal, "decrypt: AES-256-GCM setup failed in OpenSSL");
  }
  // The tag is checked here: a wrong key and an altered byte look the same.
  if (EVP_DecryptFinal_ex(ctx.get(), bytes(plaintext) + plaintext.size(), &len) != 1) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return data_loss("authentication failed (state written under another SPAWN_STATESTORE_KEY?)");
  }
  contexts_->give_back(std::move(ctx));
  return plaintext;
}

Result<std::string> Cipher::decrypt_ctr(std::string_view body) const {
  if (body.size() < kIvBytes) {
    return data_loss("AES.CTR.V1 blob truncated (" + std::to_string(body.size())
                     + " bytes after the cipher tag, need at least " + std::to_string(kIvBytes)
                     + ")");
  }
  const std::string_view iv = body.substr(0, kIvBytes);
  const std::string_view ciphertext = body.substr(kIvBytes);
  std::string plaintext(ciphertext.size(), '\0');

  // CTR has no authentication: a wrong key yields garbage, which the caller's parser rejects.
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_ctr(), nullptr, key_.data(), bytes(iv)) != 1
      || !update_all(EVP_DecryptUpdate, ctx.get(), bytes(plaintext), ciphertext)
      || EVP_DecryptFinal_ex(ctx.get(), bytes(plaintext) + plaintext.size(), &len) != 1) {
    return fail(ErrorCode::kInternal, "decrypt: AES-256-CTR failed in OpenSSL");
  }
  return plaintext;
}

}  // namespace spawn::statestore
