#include "statestore/make_store.hpp"

#include <filesystem>
#include <string>
#include <vector>

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
  std::string supported = "sqlite";
#if SPAWN_WITH_POSTGRES
  supported += ", postgres, cockroachdb";
#endif
#if SPAWN_WITH_MYSQL
  supported += ", mysql, mariadb";
#endif
  EXPECT_EQ(store.error().message,
            "unknown statestore type 'cassandra' (supported: " + supported + ", memory)");
}

// The server backends: the key is checked before any connection is tried, and an unreachable
// server is a one-line kUnavailable naming host:port/database but never the password.
class MakeServerStoreTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MakeServerStoreTest, WithoutKeyIsConfigErrorBeforeConnecting) {
  StoreConfig server = config(GetParam(), "spawn-db");
  server.port = 1;  // nothing listens there; the key check must come first

  Result<std::unique_ptr<Store>> store = make_store(server);

  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig);
  EXPECT_EQ(store.error().message, "SPAWN_STATESTORE_KEY is not set; the " + GetParam()
                                       + " statestore encrypts state at rest. Create a key "
                                         "with: openssl rand -base64 32");
}

TEST_P(MakeServerStoreTest, UnreachableServerIsUnavailableNamingAddressNotPassword) {
  StoreConfig server = config(GetParam(), "spawn-db", kKey);
  server.port = 1;
  server.password = "s3cret-password";

  Result<std::unique_ptr<Store>> store = make_store(server);

  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable) << store.error().message;
  EXPECT_NE(store.error().message.find("127.0.0.1:1/spawn-db"), std::string::npos)
      << store.error().message;
  EXPECT_EQ(store.error().message.find("s3cret-password"), std::string::npos)
      << store.error().message;
  EXPECT_EQ(store.error().message.find('\n'), std::string::npos) << store.error().message;
}

TEST_P(MakeServerStoreTest, WithoutDatabaseNameIsConfigError) {
  Result<std::unique_ptr<Store>> store = make_store(config(GetParam(), "", kKey));

  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig) << store.error().message;
}

std::vector<std::string> server_types() {
  std::vector<std::string> types;
#if SPAWN_WITH_POSTGRES
  types.insert(types.end(), {"postgres", "cockroachdb"});
#endif
#if SPAWN_WITH_MYSQL
  types.insert(types.end(), {"mysql", "mariadb"});
#endif
  return types;
}

INSTANTIATE_TEST_SUITE_P(Types, MakeServerStoreTest, ::testing::ValuesIn(server_types()));
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(MakeServerStoreTest);

}  // namespace
}  // namespace spawn::statestore
