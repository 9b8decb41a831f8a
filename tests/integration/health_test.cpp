// PROTOCOL.md §3 and §5.10: health endpoints and graceful shutdown.

#include <csignal>
#include <string>

#include <nlohmann/json.hpp>

#include "integration/proxy_fixture.hpp"

namespace spawn::integration {
namespace {

class ProxyHealthTest : public ProxyTest {
protected:
  /// GETs `path` on the main proxy; a transport failure yields status 0.
  testing::HttpClient::Response get(const std::string& path) {
    auto response = client_->http().request("GET", path, {}, std::nullopt);
    if (!response) {
      return {};
    }
    return std::move(*response);
  }

  /// Succeeds when `body` is JSON with "status" equal to `expected`.
  ::testing::AssertionResult json_status(const std::string& body, const std::string& expected) {
    const auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object() || !json.contains("status")
        || json["status"] != expected) {
      return ::testing::AssertionFailure()
             << "body '" << body << "' is not {\"status\":\"" << expected << "\"}" << log();
    }
    return ::testing::AssertionSuccess();
  }
};

TEST_F(ProxyHealthTest, HealthAnswersUp) {
  start_proxy();

  const auto response = get("/health");

  EXPECT_EQ(response.status, 200u) << log();
  EXPECT_TRUE(json_status(response.body, "up"));
}

TEST_F(ProxyHealthTest, LivenessAnswersUp) {
  start_proxy();

  const auto response = get("/health/liveness");

  EXPECT_EQ(response.status, 200u) << log();
  EXPECT_TRUE(json_status(response.body, "up"));
}

TEST_F(ProxyHealthTest, ReadinessAnswersUpWhileServing) {
  start_proxy();

  const auto response = get("/health/readiness");

  EXPECT_EQ(response.status, 200u) << log();
  EXPECT_TRUE(json_status(response.body, "up"));
}

TEST_F(ProxyHealthTest, MetricsAnswerPrometheusText) {
  start_proxy();

  const auto response = get("/metrics");

  EXPECT_EQ(response.status, 200u) << log();
  const auto type = response.headers.find("content-type");
  ASSERT_NE(type, response.headers.end());
  EXPECT_EQ(type->second.rfind("text/plain", 0), 0u) << type->second;
}

TEST_F(ProxyHealthTest, SigtermExitsWithCodeZero) {
  start_proxy();

  EXPECT_EQ(stop_proxy(SIGTERM), 0) << log();
}

TEST_F(ProxyHealthTest, ReadinessAnswers503DuringTheDrainAfterSigtermThenExitsZero) {
  start_proxy({{"SPAWN_PROXY_SHUTDOWN_DRAIN_MS", "1500"}});
  ASSERT_EQ(get("/health/readiness").status, 200u) << log();

  ASSERT_EQ(::kill(proxy_->pid(), SIGTERM), 0);
  testing::HttpClient::Response readiness;
  const bool draining = testing::TestHost::wait_for([&] {
    readiness = get("/health/readiness");
    return readiness.status == 503;
  });

  EXPECT_TRUE(draining) << "last readiness: HTTP " << readiness.status << log();
  EXPECT_TRUE(json_status(readiness.body, "down"));
  EXPECT_EQ(get("/health/liveness").status, 200u) << "liveness stays up while draining";
  EXPECT_EQ(proxy_->wait(), 0) << log();
}

TEST_F(ProxyHealthTest, InvocationsDuringTheDrainAnswer503Error) {
  start_proxy({{"SPAWN_PROXY_SHUTDOWN_DRAIN_MS", "1500"}});
  ASSERT_TRUE(register_actors({{.name = "late", .actions = {"hello"}, .stateful = false}}));

  ASSERT_EQ(::kill(proxy_->pid(), SIGTERM), 0);
  ASSERT_TRUE(testing::TestHost::wait_for([&] { return get("/health/readiness").status == 503; }))
      << log();
  const auto response = invoke("late", "hello");

  EXPECT_EQ(last_status(), 503u);
  EXPECT_TRUE(is_error(response));
  EXPECT_EQ(proxy_->wait(), 0) << log();
}

TEST_F(ProxyHealthTest, RegistrationDuringTheDrainIsRefused) {
  start_proxy({{"SPAWN_PROXY_SHUTDOWN_DRAIN_MS", "1500"}});

  ASSERT_EQ(::kill(proxy_->pid(), SIGTERM), 0);
  ASSERT_TRUE(testing::TestHost::wait_for([&] { return get("/health/readiness").status == 503; }))
      << log();
  auto response = client_->register_system(
      make_registration({{.name = "late", .actions = {"hello"}, .stateful = false}}));

  ASSERT_TRUE(response) << response.error().message << log();
  EXPECT_EQ(response->status().status(), pb::ERROR) << log();
  EXPECT_EQ(proxy_->wait(), 0) << log();
}

}  // namespace
}  // namespace spawn::integration
