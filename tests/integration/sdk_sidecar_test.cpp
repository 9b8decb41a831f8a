// The SDK scenario suite in sidecar mode, against the real spawn-proxy (tests/unit/sdk/
// sdk_scenarios.cpp), and what only sidecar mode has: registration retries, an unreachable
// proxy, concurrent calls, and the host's answers on the wire.

#include <chrono>
#include <csignal>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "spawn/spawn.hpp"

#include "protocol/messages.hpp"
#include "sdk_test_messages.pb.h"
#include "support/http_client.hpp"
#include "support/proxy_process.hpp"
#include "unit/sdk/sdk_scenarios.hpp"

namespace spawn::sdk_test {
namespace {

using namespace std::chrono_literals;

// base64 of the 32 bytes "0123456789abcdef0123456789abcdef".
constexpr const char* kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A proxy on SQLite in a temp dir that calls back to `host_port`.
std::map<std::string, std::string> proxy_env(const testing::TempDir& dir, std::uint16_t host_port,
                                             std::uint16_t proxy_port = 0) {
  std::map<std::string, std::string> env = {
      {"PROXY_DATABASE_TYPE", "sqlite"},
      {"PROXY_DATABASE_NAME", (dir.path() / "state.db").string()},
      {"SPAWN_STATESTORE_KEY", kKey},
      {"USER_FUNCTION_HOST", "127.0.0.1"},
      {"USER_FUNCTION_PORT", std::to_string(host_port)},
      {"SPAWN_PROXY_SHARDS", "2"},
      {"SPAWN_PROXY_LOGGER_LEVEL", "warning"},
  };
  if (proxy_port != 0) {
    env["PROXY_HTTP_PORT"] = std::to_string(proxy_port);
  }
  return env;
}

SidecarOptions sidecar_options(std::uint16_t proxy_port, std::uint16_t host_port) {
  SidecarOptions options;
  options.proxy_host = "127.0.0.1";
  options.proxy_port = proxy_port;
  options.bind_address = "127.0.0.1";
  options.port = host_port;
  options.threads = 2;
  options.registration_attempts = 20;
  options.registration_interval = 100ms;
  options.request_timeout = 20s;
  return options;
}

class SidecarHarness final : public NodeHarness {
public:
  SidecarHarness()
      : host_port_(testing::free_port()),
        proxy_(std::make_unique<testing::ProxyProcess>(proxy_env(dir_, host_port_))) {}

  Result<Node> start(const ActorSystem& system) override {
    return Node::sidecar(system, sidecar_options(proxy_->port(), host_port_));
  }

  void crash_backend() override {
    const std::uint16_t port = proxy_->port();
    proxy_->stop(SIGKILL);
    proxy_ = std::make_unique<testing::ProxyProcess>(proxy_env(dir_, host_port_, port));
  }

private:
  testing::TempDir dir_;
  std::uint16_t host_port_;
  std::unique_ptr<testing::ProxyProcess> proxy_;
};

INSTANTIATE_TEST_SUITE_P(Sidecar, SdkScenarioTest,
                         ::testing::Values(Mode{"Sidecar",
                                                [] {
                                                  return std::make_unique<SidecarHarness>();
                                                }}),
                         mode_name);

ActorSystem slow_system() {
  ActorSystem system("slow");
  for (const char* name : {"slow-a", "slow-b"}) {
    system.actor(name)
        .action("wait",
                [](Context<NoState>& ctx) {
                  std::this_thread::sleep_for(300ms);
                  return ctx.value();
                })
        .action("boom", [](Context<NoState>&) -> Value<> { throw std::runtime_error("boom"); });
  }
  return system;
}

TEST(SdkSidecarTest, UnreachableProxyIsAClearErrorAfterTheLastAttempt) {
  auto options = sidecar_options(testing::free_port(), testing::free_port());
  options.registration_attempts = 2;
  options.registration_interval = 50ms;
  auto node = Node::sidecar(slow_system(), options);
  ASSERT_FALSE(node);
  EXPECT_EQ(node.error().code, ErrorCode::kUnavailable) << node.error().message;
  EXPECT_NE(node.error().message.find("no answer after 2 attempt(s)"), std::string::npos)
      << node.error().message;
  EXPECT_NE(node.error().message.find("connection refused"), std::string::npos)
      << node.error().message;
}

TEST(SdkSidecarTest, RegistrationIsRetriedUntilTheProxyAnswers) {
  testing::TempDir dir;
  const std::uint16_t host_port = testing::free_port();
  const std::uint16_t proxy_port = testing::free_port();
  auto system = slow_system();
  auto starting = std::async(std::launch::async, [&] {
    return Node::sidecar(system, sidecar_options(proxy_port, host_port));
  });
  std::this_thread::sleep_for(300ms);  // the first attempts find no proxy
  testing::ProxyProcess proxy(proxy_env(dir, host_port, proxy_port));
  auto node = starting.get();
  ASSERT_TRUE(node) << node.error().message;
  EXPECT_TRUE(node->client().actor("slow-a").invoke("wait"));
}

TEST(SdkSidecarTest, ProxyGoneAfterStartIsUnavailable) {
  testing::TempDir dir;
  const std::uint16_t host_port = testing::free_port();
  auto proxy = std::make_unique<testing::ProxyProcess>(proxy_env(dir, host_port));
  auto node = Node::sidecar(slow_system(), sidecar_options(proxy->port(), host_port));
  ASSERT_TRUE(node) << node.error().message;
  proxy->stop(SIGKILL);
  auto failed = node->client().actor("slow-a").invoke("wait");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kUnavailable) << failed.error().message;
  EXPECT_NE(failed.error().message.find("proxy"), std::string::npos) << failed.error().message;
}

TEST(SdkSidecarTest, ClientOutlivingItsNodeIsRefused) {
  testing::TempDir dir;
  const std::uint16_t host_port = testing::free_port();
  testing::ProxyProcess proxy(proxy_env(dir, host_port));
  std::optional<Client> client;
  {
    auto node = Node::sidecar(slow_system(), sidecar_options(proxy.port(), host_port));
    ASSERT_TRUE(node) << node.error().message;
    client.emplace(node->client());
  }
  auto refused = client->actor("slow-a").invoke("wait");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kShuttingDown) << refused.error().message;
}

TEST(SdkSidecarTest, CallsToDifferentActorsRunConcurrently) {
  testing::TempDir dir;
  const std::uint16_t host_port = testing::free_port();
  testing::ProxyProcess proxy(proxy_env(dir, host_port));
  auto node = Node::sidecar(slow_system(), sidecar_options(proxy.port(), host_port));
  ASSERT_TRUE(node) << node.error().message;
  auto client = node->client();
  const auto start = std::chrono::steady_clock::now();
  auto a = std::async(std::launch::async, [&] { return client.actor("slow-a").invoke("wait"); });
  auto b = std::async(std::launch::async, [&] { return client.actor("slow-b").invoke("wait"); });
  EXPECT_TRUE(a.get());
  EXPECT_TRUE(b.get());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 550ms);
}

TEST(SdkSidecarTest, CallsBeyondTheConnectionLimitWaitForAConnection) {
  testing::TempDir dir;
  const std::uint16_t host_port = testing::free_port();
  testing::ProxyProcess proxy(proxy_env(dir, host_port));
  auto options = sidecar_options(proxy.port(), host_port);
  options.max_connections = 1;
  auto node = Node::sidecar(slow_system(), options);
  ASSERT_TRUE(node) << node.error().message;
  auto client = node->client();
  std::promise<Result<void>> a_done;
  std::promise<Result<void>> b_done;
  const auto start = std::chrono::steady_clock::now();
  client.actor("slow-a").invoke_then(
      "wait", [&a_done](Result<void> result) { a_done.set_value(std::move(result)); });
  client.actor("slow-b").invoke_then(
      "wait", [&b_done](Result<void> result) { b_done.set_value(std::move(result)); });
  auto a = a_done.get_future().get();
  auto b = b_done.get_future().get();
  EXPECT_TRUE(a) << a.error().message;
  EXPECT_TRUE(b) << b.error().message;
  // One connection: the second call waited for the first (two different actors would
  // otherwise run at once, as CallsToDifferentActorsRunConcurrently shows).
  EXPECT_GE(std::chrono::steady_clock::now() - start, 600ms);
}

TEST(SdkSidecarTest, HostAnswersTheProxyAsDocumented) {
  testing::TempDir dir;
  const std::uint16_t host_port = testing::free_port();
  testing::ProxyProcess proxy(proxy_env(dir, host_port));
  auto node = Node::sidecar(slow_system(), sidecar_options(proxy.port(), host_port));
  ASSERT_TRUE(node) << node.error().message;
  testing::HttpClient http(node->host_port());

  auto call = [&](const std::string& action) {
    protocol::pb::ActorInvocation invocation;
    invocation.mutable_actor()->set_name("slow-a");
    invocation.mutable_actor()->set_system("slow");
    invocation.set_action_name(action);
    return http.request("POST", "/api/v1/actors/actions", invocation.SerializeAsString());
  };
  auto thrown = call("boom");
  ASSERT_TRUE(thrown) << thrown.error().message;
  EXPECT_EQ(thrown->status, 400U);  // as the Node SDK's host, with the reason as text
  EXPECT_NE(thrown->body.find("boom"), std::string::npos) << thrown->body;

  auto unknown = call("no-such-action");
  ASSERT_TRUE(unknown) << unknown.error().message;
  EXPECT_EQ(unknown->status, 404U);
  EXPECT_NE(unknown->body.find("no-such-action"), std::string::npos) << unknown->body;

  auto garbage = http.request("POST", "/api/v1/actors/actions", "\xff\xff not protobuf");
  ASSERT_TRUE(garbage) << garbage.error().message;
  EXPECT_EQ(garbage->status, 400U);

  auto other = http.request("GET", "/elsewhere");
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_EQ(other->status, 404U);
}

}  // namespace
}  // namespace spawn::sdk_test
