#include "statestore/cipher.hpp"

#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "statestore/base64.hpp"

namespace spawn::statestore {
namespace {

using namespace std::string_literals;

std::string random_bytes(std::size_t n) {
  std::string bytes(n, '\0');
  EXPECT_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)), 1);
  return bytes;
}

Cipher make_cipher(const std::string& raw_key) {
  Result<Cipher> cipher = Cipher::from_base64_key(base64_encode(raw_key));
  EXPECT_TRUE(cipher) << cipher.error().message;
  return *cipher;
}

// A Cloak AES.CTR.V1 blob, built with OpenSSL directly as Elixir's vault would.
std::string ctr_blob(const std::string& raw_key, const std::string& plaintext) {
  const std::string iv = random_bytes(16);
  std::string ciphertext(plaintext.size(), '\0');
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      &EVP_CIPHER_CTX_free);
  int len = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_ctr(), nullptr,
                               reinterpret_cast<const unsigned char*>(raw_key.data()),
                               reinterpret_cast<const unsigned char*>(iv.data())),
            1);
  EXPECT_EQ(EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(ciphertext.data()), &len,
                              reinterpret_cast<const unsigned char*>(plaintext.data()),
                              static_cast<int>(plaintext.size())),
            1);
  return "\x01\x0a"s + "AES.CTR.V1" + iv + ciphertext;
}

class CipherTest : public ::testing::Test {
protected:
  std::string raw_key_ = random_bytes(32);
  Cipher cipher_ = make_cipher(raw_key_);
};

TEST_F(CipherTest, RoundTripsBinaryPlaintext) {
  const std::string plaintext = "state\0with\0NULs\xff\x80"s;
  Result<std::string> decrypted = cipher_.decrypt(cipher_.encrypt(plaintext));
  ASSERT_TRUE(decrypted) << decrypted.error().message;
  EXPECT_EQ(*decrypted, plaintext);
}

TEST_F(CipherTest, RoundTripsEmptyPlaintext) {
  Result<std::string> decrypted = cipher_.decrypt(cipher_.encrypt(""));
  ASSERT_TRUE(decrypted) << decrypted.error().message;
  EXPECT_EQ(*decrypted, "");
}

TEST_F(CipherTest, WritesCloakGcmLayout) {
  const std::string plaintext = "hello, actor";
  const std::string blob = cipher_.encrypt(plaintext);
  ASSERT_EQ(blob.size(), 1 + 1 + 10 + 16 + 16 + plaintext.size());
  EXPECT_EQ(blob[0], '\x01');
  EXPECT_EQ(blob[1], '\x0a');
  EXPECT_EQ(blob.substr(2, 10), "AES.GCM.V1");
  EXPECT_EQ(blob.find(plaintext), std::string::npos);
}

TEST_F(CipherTest, EncryptsUnderAFreshIvEachTime) {
  const std::string first = cipher_.encrypt("same");
  const std::string second = cipher_.encrypt("same");
  EXPECT_NE(first.substr(12, 16), second.substr(12, 16));
  EXPECT_NE(first, second);
}

// IVs are drawn from the random source in batches, one batch per pooled context: however the
// calls spread over threads and contexts, no IV is handed out twice.
TEST_F(CipherTest, NeverRepeatsAnIvAcrossThreadsAndBatches) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;  // many batches per context
  std::vector<std::vector<std::string>> ivs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, &ivs, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string blob = cipher_.encrypt("same");
        ivs[t].push_back(blob.substr(12, 16));
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  std::set<std::string> distinct;
  for (const std::vector<std::string>& of_thread : ivs) {
    distinct.insert(of_thread.begin(), of_thread.end());
  }
  EXPECT_EQ(distinct.size(), std::size_t{kThreads * kPerThread});
}

TEST_F(CipherTest, RejectsBlobWrittenUnderAnotherKey) {
  const Cipher other = make_cipher(random_bytes(32));
  Result<std::string> decrypted = other.decrypt(cipher_.encrypt("secret"));
  ASSERT_FALSE(decrypted);
  EXPECT_EQ(decrypted.error().code, ErrorCode::kDataLoss) << decrypted.error().message;
  EXPECT_EQ(decrypted.error().message,
            "decrypt: authentication failed (state written under another SPAWN_STATESTORE_KEY?)");
}

TEST_F(CipherTest, RejectsEveryAlteredByte) {
  const std::string blob = cipher_.encrypt("some state");
  for (std::size_t i = 0; i < blob.size(); ++i) {
    std::string altered = blob;
    altered[i] = static_cast<char>(altered[i] ^ 0x01);
    Result<std::string> decrypted = cipher_.decrypt(altered);
    ASSERT_FALSE(decrypted) << "byte " << i;
    EXPECT_EQ(decrypted.error().code, ErrorCode::kDataLoss) << decrypted.error().message;
  }
}

TEST_F(CipherTest, RejectsEveryTruncation) {
  const std::string blob = cipher_.encrypt("some state");
  for (std::size_t length = 0; length < blob.size(); ++length) {
    Result<std::string> decrypted = cipher_.decrypt(blob.substr(0, length));
    ASSERT_FALSE(decrypted) << "length " << length;
    EXPECT_EQ(decrypted.error().code, ErrorCode::kDataLoss) << decrypted.error().message;
  }
}

TEST_F(CipherTest, ExplainsTruncatedBlob) {
  Result<std::string> decrypted = cipher_.decrypt(cipher_.encrypt("x").substr(0, 20));
  ASSERT_FALSE(decrypted);
  EXPECT_EQ(decrypted.error().message,
            "decrypt: AES.GCM.V1 blob truncated (8 bytes after the cipher tag, need at least 32)");
}

TEST_F(CipherTest, RejectsUnknownCipherTag) {
  std::string blob = cipher_.encrypt("x");
  blob.replace(2, 10, "AES.XYZ.V9");
  Result<std::string> decrypted = cipher_.decrypt(blob);
  ASSERT_FALSE(decrypted);
  EXPECT_EQ(decrypted.error().code, ErrorCode::kDataLoss);
  EXPECT_EQ(decrypted.error().message,
            "decrypt: unknown cipher tag 'AES.XYZ.V9' (supported: AES.GCM.V1, AES.CTR.V1)");
}

// Written by another AES-GCM implementation (key bytes 0..31, IV bytes 100..115, AAD
// "AES256GCM"), so the layout and the AAD are checked against something other than ourselves.
TEST(CipherKnownAnswerTest, DecryptsGcmBlobOfAnotherImplementation) {
  std::string key(32, '\0');
  for (std::size_t i = 0; i < key.size(); ++i) {
    key[i] = static_cast<char>(i);
  }
  const std::string hex =
      "010a4145532e47434d2e56316465666768696a6b6c6d6e6f70717273df6d92f3f6c853b981253f65b84d41a9bb"
      "dc363f907155f8c18dccfd22f7d857";
  std::string blob;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    blob.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  Result<std::string> decrypted = make_cipher(key).decrypt(blob);
  ASSERT_TRUE(decrypted) << decrypted.error().message;
  EXPECT_EQ(*decrypted, "counter state 42");
}

// Contexts are reused from call to call, also after a failed one, and shared by copies.
TEST_F(CipherTest, RoundTripsManyCallsOfEverySizeWithFailuresBetween) {
  const Cipher copy = cipher_;  // NOLINT(performance-unnecessary-copy-initialization): a copy
  std::vector<std::string> plaintexts;
  std::vector<std::string> blobs;
  for (std::size_t size = 0; size < 200; ++size) {
    plaintexts.push_back(random_bytes(size));
    blobs.push_back((size % 2 == 0 ? cipher_ : copy).encrypt(plaintexts.back()));
  }
  for (std::size_t i = blobs.size(); i-- > 0;) {
    std::string altered = blobs[i];
    altered.back() = static_cast<char>(altered.back() ^ 0x01);
    EXPECT_FALSE(cipher_.decrypt(altered)) << "size " << i;
    Result<std::string> decrypted = (i % 3 == 0 ? copy : cipher_).decrypt(blobs[i]);
    ASSERT_TRUE(decrypted) << "size " << i << ": " << decrypted.error().message;
    EXPECT_EQ(*decrypted, plaintexts[i]);
  }
}

TEST_F(CipherTest, DecryptsCloakCtrBlob) {
  const std::string plaintext = "written by an old vault\0!"s;
  Result<std::string> decrypted = cipher_.decrypt(ctr_blob(raw_key_, plaintext));
  ASSERT_TRUE(decrypted) << decrypted.error().message;
  EXPECT_EQ(*decrypted, plaintext);
}

TEST(CipherKeyTest, RejectsKeyThatIsNotBase64) {
  Result<Cipher> cipher = Cipher::from_base64_key("not base64!");
  ASSERT_FALSE(cipher);
  EXPECT_EQ(cipher.error().code, ErrorCode::kConfig);
  EXPECT_EQ(cipher.error().message,
            "SPAWN_STATESTORE_KEY is not valid base64; create one with: openssl rand -base64 32");
}

TEST(CipherKeyTest, RejectsKeyOfWrongLength) {
  Result<Cipher> cipher = Cipher::from_base64_key(base64_encode(std::string(12, 'k')));
  ASSERT_FALSE(cipher);
  EXPECT_EQ(cipher.error().code, ErrorCode::kConfig);
  EXPECT_EQ(cipher.error().message,
            "SPAWN_STATESTORE_KEY must be 32 bytes of base64 (got 12 bytes); create one with: "
            "openssl rand -base64 32");
}

TEST(CipherKeyTest, AcceptsKeyWithTrailingNewline) {
  Result<Cipher> cipher = Cipher::from_base64_key(base64_encode(std::string(32, 'k')) + "\n");
  EXPECT_TRUE(cipher) << cipher.error().message;
}

}  // namespace
}  // namespace spawn::statestore
