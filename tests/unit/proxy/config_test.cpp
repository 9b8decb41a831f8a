// The cluster and broadcast variables of Config::from_env() (docs/configuration.md "Cluster").

#include "proxy/config.hpp"

#include <cstdlib>
#include <map>
#include <string>

#include <gtest/gtest.h>

namespace spawn::proxy {
namespace {

/// Sets variables for one test and removes them afterwards.
class ScopedEnv {
public:
  explicit ScopedEnv(std::map<std::string, std::string> values) : values_(std::move(values)) {
    for (const auto& [name, value] : values_) {
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }

  ~ScopedEnv() {
    for (const auto& [name, value] : values_) {
      ::unsetenv(name.c_str());
    }
  }

  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
  std::map<std::string, std::string> values_;
};

TEST(ClusterConfigTest, WithoutInternalNatsTheProxyRunsAlone) {
  auto config = Config::from_env();
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_FALSE(config->cluster);
  EXPECT_FALSE(config->pubsub_nats);
}

TEST(ClusterConfigTest, HostsAreSplitAndGetTheNatsScheme) {
  ScopedEnv env({{"SPAWN_USE_INTERNAL_NATS", "true"},
                 {"SPAWN_INTERNAL_NATS_HOSTS", "10.0.0.1:4222, nats://10.0.0.2:4223,"},
                 {"SPAWN_PROXY_NODE", "pod/7"}});
  auto config = Config::from_env();
  ASSERT_TRUE(config) << config.error().message;
  ASSERT_TRUE(config->cluster);
  EXPECT_EQ(config->cluster->nats.servers,
            (std::vector<std::string>{"nats://10.0.0.1:4222", "nats://10.0.0.2:4223"}));
  EXPECT_EQ(config->cluster->heartbeat.count(), 1000);
  EXPECT_EQ(config->cluster->node_timeout.count(), 3000);
  EXPECT_EQ(config->cluster->node.rfind("pod_7-", 0), 0U) << config->cluster->node;
  EXPECT_EQ(config->cluster->placement, cluster::ClusterSettings::Placement::kRoundRobin);
}

TEST(ClusterConfigTest, BroadcastsOverNatsDefaultToTheClustersServers) {
  ScopedEnv env(
      {{"SPAWN_PUBSUB_ADAPTER", "nats"}, {"SPAWN_INTERNAL_NATS_HOSTS", "nats://10.0.0.9:4222"}});
  auto config = Config::from_env();
  ASSERT_TRUE(config) << config.error().message;
  ASSERT_TRUE(config->pubsub_nats);
  EXPECT_EQ(config->pubsub_nats->servers, std::vector<std::string>{"nats://10.0.0.9:4222"});
}

TEST(ClusterConfigTest, AuthenticationTakesSpawnsVariables) {
  ScopedEnv env({{"SPAWN_USE_INTERNAL_NATS", "true"},
                 {"SPAWN_INTERNAL_NATS_AUTH", "true"},
                 {"SPAWN_INTERNAL_NATS_AUTH_USER", "spawn"},
                 {"SPAWN_INTERNAL_NATS_AUTH_PASS", "secret"},
                 {"SPAWN_INTERNAL_NATS_TLS", "true"}});
  auto config = Config::from_env();
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->cluster->nats.auth_type, "simple");
  EXPECT_EQ(config->cluster->nats.user, "spawn");
  EXPECT_EQ(config->cluster->nats.password, "secret");
  EXPECT_TRUE(config->cluster->nats.tls);
}

struct BadValue {
  std::map<std::string, std::string> env;
  std::string names;
};

class ClusterConfigErrorTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(ClusterConfigErrorTest, IsAConfigErrorNamingTheVariable) {
  ScopedEnv env(GetParam().env);
  auto config = Config::from_env();
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code, ErrorCode::kConfig);
  EXPECT_NE(config.error().message.find(GetParam().names), std::string::npos)
      << config.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Values, ClusterConfigErrorTest,
    ::testing::Values(
        BadValue{{{"SPAWN_USE_INTERNAL_NATS", "true"}, {"SPAWN_CLUSTER_PLACEMENT", "nearest"}},
                 "SPAWN_CLUSTER_PLACEMENT"},
        BadValue{{{"SPAWN_PUBSUB_ADAPTER", "kafka"}}, "SPAWN_PUBSUB_ADAPTER"},
        BadValue{{{"SPAWN_USE_INTERNAL_NATS", "true"}, {"SPAWN_INTERNAL_NATS_HOSTS", " , "}},
                 "SPAWN_INTERNAL_NATS_HOSTS"},
        BadValue{{{"SPAWN_USE_INTERNAL_NATS", "true"},
                  {"SPAWN_INTERNAL_NATS_AUTH", "true"},
                  {"SPAWN_INTERNAL_NATS_AUTH_TYPE", "jwt"}},
                 "SPAWN_INTERNAL_NATS_AUTH_JWT"},
        BadValue{
            {{"SPAWN_USE_INTERNAL_NATS", "true"}, {"SPAWN_CLUSTER_HEARTBEAT_INTERVAL", "soon"}},
            "SPAWN_CLUSTER_HEARTBEAT_INTERVAL"}));

}  // namespace
}  // namespace spawn::proxy
