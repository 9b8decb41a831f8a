// Start-up configuration (PROTOCOL.md §6, §7): a bad statestore key fails fast with a one-line
// reason naming the variable; the memory store needs no key.

#include <chrono>
#include <string>

#include "integration/proxy_fixture.hpp"

namespace spawn::integration {
namespace {

using testing::pack_json;

class ProxyConfigTest : public ProxyTest {
protected:
  /// Starts a proxy with `overrides` that is expected to refuse to start; succeeds when it exits
  /// non-zero and its log names SPAWN_STATESTORE_KEY.
  ::testing::AssertionResult refuses_to_start(const Env& overrides) {
    auto proxy = launch_proxy(overrides, /*wait_ready=*/false);
    const int code = proxy->wait(std::chrono::seconds(10));
    const std::string output = proxy->log();
    if (code == -1) {
      proxy->stop(9);
      return ::testing::AssertionFailure() << "the proxy kept running\n" << output;
    }
    if (code == 0) {
      return ::testing::AssertionFailure() << "the proxy exited with 0\n" << output;
    }
    if (output.find("SPAWN_STATESTORE_KEY") == std::string::npos) {
      return ::testing::AssertionFailure()
             << "exit " << code << " but the log does not name SPAWN_STATESTORE_KEY\n"
             << output;
    }
    return ::testing::AssertionSuccess();
  }
};

TEST_F(ProxyConfigTest, MissingKeyStopsStartupNamingTheVariable) {
  EXPECT_TRUE(refuses_to_start({{"SPAWN_STATESTORE_KEY", ""}}));
}

TEST_F(ProxyConfigTest, KeyThatIsNotBase64StopsStartup) {
  EXPECT_TRUE(refuses_to_start({{"SPAWN_STATESTORE_KEY", "!!!not*base64*at*all!!!"}}));
}

TEST_F(ProxyConfigTest, KeyOfSixteenBytesStopsStartup) {
  EXPECT_TRUE(refuses_to_start({{"SPAWN_STATESTORE_KEY", base64(std::string(16, 'k'))}}));
}

TEST_F(ProxyConfigTest, KeyOfThirtyThreeBytesStopsStartup) {
  EXPECT_TRUE(refuses_to_start({{"SPAWN_STATESTORE_KEY", base64(std::string(33, 'k'))}}));
}

TEST_F(ProxyConfigTest, SqliteIsTheDefaultDatabaseType) {
  start_proxy({{"PROXY_DATABASE_TYPE", ""}});
  host_.on("set", set_state_handler(/*checkpoint=*/true));
  ASSERT_TRUE(register_actors({{.name = "stored", .actions = {"set"}, .stateful = true}}));

  ASSERT_TRUE(is_ok(invoke("stored", "set", pack_json("1"))));

  EXPECT_TRUE(std::filesystem::exists(db_path())) << "no SQLite file at " << db_path() << log();
}

TEST_F(ProxyConfigTest, MemoryStoreNeedsNoKey) {
  start_proxy({{"PROXY_DATABASE_TYPE", "memory"}, {"SPAWN_STATESTORE_KEY", ""}});

  EXPECT_TRUE(still_serves());
  EXPECT_FALSE(std::filesystem::exists(db_path())) << "the memory store wrote a file";
}

TEST_F(ProxyConfigTest, MemoryStoreKeepsStateWhileRunning) {
  start_proxy({{"PROXY_DATABASE_TYPE", "memory"}, {"SPAWN_STATESTORE_KEY", ""}});
  host_.on("inc", increment_handler(/*checkpoint=*/true));
  ASSERT_TRUE(register_actors({{.name = "in-memory", .actions = {"inc"}, .stateful = true}}));

  ASSERT_TRUE(is_ok(invoke("in-memory", "inc")));
  const auto response = invoke("in-memory", "inc");

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), "2") << log();
}

}  // namespace
}  // namespace spawn::integration

namespace spawn::integration {
namespace {

class ProxyPortTest : public ProxyTest {};

TEST_F(ProxyPortTest, SecondProxyOnABusyPortRefusesToStartInsteadOfSharingIt) {
  start_proxy();
  auto second = launch_proxy(
      {{"PROXY_HTTP_PORT", std::to_string(proxy_->port())}, {"PROXY_DATABASE_TYPE", "memory"}},
      /*wait_ready=*/false);
  const int code = second->wait(std::chrono::seconds(10));
  EXPECT_EQ(code, 1) << second->log();
  EXPECT_NE(second->log().find("Address already in use"), std::string::npos) << second->log();
  EXPECT_TRUE(still_serves());
}

}  // namespace
}  // namespace spawn::integration
