// The real proxy on each SQL database server (PROTOCOL.md §6, §7): state written through
// PROXY_DATABASE_TYPE=postgres|cockroachdb|mariadb survives a restart and a kill -9, and a wrong
// password stops start-up with one line that names the database but not the secret.
//
// The servers come from scripts/start-databases.sh: SPAWN_TEST_POSTGRES / SPAWN_TEST_MYSQL hold
// "host=... port=... user=... password=... dbname=..." (dbname: a database the proxy may create
// its tables in). Unset: the tests skip, or fail when CI=true (STYLE.md §6). No CockroachDB server
// runs here, so "cockroachdb" (its dialect) runs against PostgreSQL.

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>

#include "integration/proxy_fixture.hpp"

namespace spawn::integration {
namespace {

struct SqlServer {
  /// PROXY_DATABASE_TYPE.
  std::string type;
  /// The environment variable with the test server's settings.
  std::string variable;
};

void PrintTo(const SqlServer& server, std::ostream* out) {
  *out << server.type;
}

// Reads "key=value ..." from `variable` into the proxy's PROXY_DATABASE_* variables.
std::optional<Env> database_env(const SqlServer& server) {
  const char* raw = std::getenv(server.variable.c_str());
  if (raw == nullptr || *raw == '\0') {
    return std::nullopt;
  }
  Env env{{"PROXY_DATABASE_TYPE", server.type}};
  std::istringstream words(raw);
  std::string word;
  while (words >> word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    const std::string key = word.substr(0, eq);
    const std::string value = word.substr(eq + 1);
    if (key == "host") {
      env["PROXY_DATABASE_HOST"] = value;
    } else if (key == "port") {
      env["PROXY_DATABASE_PORT"] = value;
    } else if (key == "user") {
      env["PROXY_DATABASE_USERNAME"] = value;
    } else if (key == "password") {
      env["PROXY_DATABASE_SECRET"] = value;
    } else if (key == "dbname") {
      env["PROXY_DATABASE_NAME"] = value;
    }
  }
  if (env.count("PROXY_DATABASE_NAME") == 0) {
    env["PROXY_DATABASE_NAME"] = "spawn_it";
  }
  return env;
}

class ProxySqlStatestoreTest : public ProxyTest, public ::testing::WithParamInterface<SqlServer> {
protected:
  void SetUp() override {
    std::optional<Env> env = database_env(GetParam());
    if (!env) {
      const std::string why =
          GetParam().variable + " is not set; run: eval \"$(scripts/start-databases.sh)\"";
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") {
        FAIL() << "CI=true and the database server is missing: " << why;
      }
      GTEST_SKIP() << why;
    }
    database_ = std::move(*env);
    host_.on("inc", increment_handler(/*checkpoint=*/true));
    // The database is shared by every run: actors get names of their own.
    std::random_device random;
    suffix_ = std::to_string(random()) + std::to_string(random());
  }

  Env with(const Env& more = {}) const {
    Env env = database_;
    for (const auto& [name, value] : more) {
      env[name] = value;
    }
    return env;
  }

  ActorSpec durable(const std::string& name) const {
    return {.name = name + "-" + suffix_, .actions = {"init", "inc"}, .stateful = true};
  }

  std::string actor(const std::string& name) const { return name + "-" + suffix_; }

  Env database_;
  std::string suffix_;
};

TEST_P(ProxySqlStatestoreTest, StateSurvivesRestartAndKill) {
  start_proxy(with());
  ASSERT_TRUE(register_actors({durable("counter")}));
  ASSERT_TRUE(is_ok(invoke(actor("counter"), "inc")));
  ASSERT_TRUE(is_ok(invoke(actor("counter"), "inc")));

  ASSERT_EQ(stop_proxy(SIGTERM), 0) << log();
  start_proxy(with());
  ASSERT_TRUE(register_actors({durable("counter")}));
  ASSERT_TRUE(is_ok(invoke(actor("counter"), "inc")));  // checkpointed: durable before the reply

  stop_proxy(SIGKILL);
  start_proxy(with());
  ASSERT_TRUE(register_actors({durable("counter")}));
  const auto state = invoke(actor("counter"), "get");

  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "3") << log();
}

TEST_P(ProxySqlStatestoreTest, WrongPasswordStopsStartupWithOneLineWithoutTheSecret) {
  const std::string secret = "wrong-secret-" + suffix_;
  auto proxy = launch_proxy(with({{"PROXY_DATABASE_SECRET", secret}}), /*wait_ready=*/false);
  const int code = proxy->wait(std::chrono::seconds(20));
  const std::string output = proxy->log();

  EXPECT_NE(code, 0) << output;
  EXPECT_NE(code, -1) << "the proxy kept running\n" << output;
  const std::string address = database_.at("PROXY_DATABASE_HOST") + ":"
                              + database_.at("PROXY_DATABASE_PORT") + "/"
                              + database_.at("PROXY_DATABASE_NAME");
  EXPECT_NE(output.find(address), std::string::npos) << output;
  EXPECT_EQ(output.find(secret), std::string::npos) << output;
}

TEST_P(ProxySqlStatestoreTest, UnreachableDatabaseStopsStartupNamingTheAddress) {
  auto proxy = launch_proxy(with({{"PROXY_DATABASE_PORT", "1"}}), /*wait_ready=*/false);
  const int code = proxy->wait(std::chrono::seconds(20));
  const std::string output = proxy->log();

  EXPECT_NE(code, 0) << output;
  EXPECT_NE(code, -1) << "the proxy kept running\n" << output;
  EXPECT_NE(output.find(":1/" + database_.at("PROXY_DATABASE_NAME")), std::string::npos) << output;
}

INSTANTIATE_TEST_SUITE_P(Databases, ProxySqlStatestoreTest,
                         ::testing::Values(SqlServer{"postgres", "SPAWN_TEST_POSTGRES"},
                                           SqlServer{"cockroachdb", "SPAWN_TEST_POSTGRES"},
                                           SqlServer{"mariadb", "SPAWN_TEST_MYSQL"}),
                         [](const ::testing::TestParamInfo<SqlServer>& server) {
                           return server.param.type;
                         });

}  // namespace
}  // namespace spawn::integration
