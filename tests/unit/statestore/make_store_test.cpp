#include "statestore/make_store.hpp"

#include <filesystem>

#include <gtest/gtest.h>

#include "statestore/base64.hpp"
#include "store_test_util.hpp"

namespace spawn::statestore {
namespace {

using testing::TempDir;

StoreConfig config(std::string type, std::string name = "",
                   std::optional<std::string> key_b64 = std::nullopt) {
  StoreConfig config;
  config.type = std::move(type);
  config.name = std::move(name);
  config.key_b64 = std::move(key_b64);
  return config;
}

const std::string kKey = base64_encode(std::string(32, 'k'));

TEST(MakeStoreTest, SqliteWithoutKeyIsConfigError) {
  TempDir dir;
  Result<std::unique_ptr<Store>> store =
      make_store(config("sqlite", (dir.path() / "s.db").string()));
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig);
  EXPECT_EQ(store.error().message,
            "SPAWN_STATESTORE_KEY is not set; the sqlite statestore encrypts state at rest. "
            "Create a key with: openssl rand -base64 32");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "s.db"));
}

TEST(MakeStoreTest, SqliteWithMalformedKeyIsConfigErrorAndCreatesNoFile) {
  TempDir dir;
  Result<std::unique_ptr<Store>> store =
      make_store(config("sqlite", (dir.path() / "s.db").string(), "c2hvcnQ="));
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig) << store.error().message;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "s.db"));
}

TEST(MakeStoreTest, SqliteWithoutFileNameIsConfigError) {
  Result<std::unique_ptr<Store>> store = make_store(config("sqlite", "", kKey));
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig) << store.error().message;
}

TEST(MakeStoreTest, SqliteWithKeyOpens) {
  TempDir dir;
  Result<std::unique_ptr<Store>> store =
      make_store(config("sqlite", (dir.path() / "nested" / "s.db").string(), kKey));
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "nested" / "s.db"));
}

TEST(MakeStoreTest, MemoryNeedsNoKey) {
  Result<std::unique_ptr<Store>> store = make_store(config("memory"));
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_NE(*store, nullptr);
}

TEST(MakeStoreTest, UnknownTypeListsSupportedTypes) {
  Result<std::unique_ptr<Store>> store = make_store(config("cassandra"));
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig);
  EXPECT_EQ(store.error().message,
            "unknown statestore type 'cassandra' (supported: sqlite, memory; postgres and mysql "
            "arrive later)");
}

}  // namespace
}  // namespace spawn::statestore
