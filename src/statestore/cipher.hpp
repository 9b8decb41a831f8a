#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "spawn/result.hpp"

namespace spawn::statestore {

/// Encrypts actor state at rest in the format of Elixir Spawn's vault (Cloak), PROTOCOL.md §6.
///
/// `encrypt()` writes AES-256-GCM blobs:
/// `0x01 | tag length (1 byte) | "AES.GCM.V1" | IV (16 bytes) | GCM tag (16 bytes) | ciphertext`,
/// authenticated with the AAD "AES256GCM". `decrypt()` reads those and also Cloak's decrypt-only
/// AES-256-CTR blobs (`0x01 | len | "AES.CTR.V1" | IV (16 bytes) | ciphertext`), both under the
/// same 32-byte key. A `Cipher` may be used from any number of threads at once. It keeps OpenSSL
/// contexts already set up with its key for reuse (shared by its copies), so a call pays for
/// neither a cipher lookup nor a key schedule.
class Cipher {
public:
  /// The key length of AES-256, in bytes.
  static constexpr std::size_t kKeyBytes = 32;

  /// Builds a cipher from `SPAWN_STATESTORE_KEY`'s value: 32 bytes, base64-encoded (surrounding
  /// whitespace is ignored). Fails with kConfig, saying how to create a key, when the text is not
  /// base64 or does not decode to exactly 32 bytes.
  static Result<Cipher> from_base64_key(std::string_view key_b64);

  Cipher(const Cipher&) = default;
  Cipher& operator=(const Cipher&) = default;
  Cipher(Cipher&&) = default;
  Cipher& operator=(Cipher&&) = default;
  /// Wipes the key from memory.
  ~Cipher();

  /// Returns an AES.GCM.V1 blob of `plaintext` under a fresh random IV; 44 bytes longer than
  /// the plaintext. Never fails: a broken OpenSSL or random source aborts the process, since
  /// storing state unencrypted or with a predictable IV would be worse.
  [[nodiscard]] std::string encrypt(std::string_view plaintext) const;

  /// Returns the plaintext of an AES.GCM.V1 or AES.CTR.V1 blob. Fails with kDataLoss when the
  /// blob is truncated, has an unknown cipher tag, or (GCM) does not authenticate under this key,
  /// i.e. it was written under another key or altered. Messages start with "decrypt: ".
  [[nodiscard]] Result<std::string> decrypt(std::string_view blob) const;

private:
  class Contexts;

  explicit Cipher(const std::array<unsigned char, kKeyBytes>& key);

  Result<std::string> decrypt_gcm(std::string_view body) const;
  Result<std::string> decrypt_ctr(std::string_view body) const;

  std::array<unsigned char, kKeyBytes> key_{};
  std::shared_ptr<Contexts> contexts_;
};

}  // namespace spawn::statestore
