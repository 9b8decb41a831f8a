// spawnctl, the real binary, against the real proxy and a test host.

#include <array>
#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "proxy_fixture.hpp"

namespace spawn::integration {
namespace {

class SpawnctlTest : public ProxyTest {
protected:
  void SetUp() override {
    start_proxy();
    host_.on("set", set_state_handler());
    ASSERT_TRUE(register_actors({{.name = "notes", .actions = {"set"}},
                                 {.name = "room", .actions = {"set"}, .kind = pba::UNNAMED}}));
  }

  /// Runs spawnctl with `arguments` (shell words) against the proxy.
  CommandRun spawnctl(const std::string& arguments, bool with_proxy = true) const {
    std::string command = std::string(SPAWNCTL_BINARY) + " ";
    if (with_proxy) {
      command += "--proxy 127.0.0.1:" + std::to_string(proxy_->port()) + " ";
    }
    return run_command(command + arguments);
  }

  std::string write_file(const std::string& name, const std::string& text) const {
    auto path = data_dir() / name;
    std::ofstream(path) << text;
    return path.string();
  }
};

TEST_F(SpawnctlTest, InvokesWithAJsonPayloadAndShowsTheState) {
  auto run = spawnctl("invoke it-system notes set --json '{\"text\":\"hello\"}'");
  EXPECT_EQ(run.exit_code, 0) << run.output << log();
  EXPECT_NE(run.output.find(R"({"text":"hello"})"), std::string::npos) << run.output;
  auto state = spawnctl("state it-system notes");
  EXPECT_EQ(state.exit_code, 0) << state.output;
  EXPECT_NE(state.output.find(R"({"text":"hello"})"), std::string::npos) << state.output;
}

TEST_F(SpawnctlTest, PacksAndShowsATypedPayloadFromAProtoFile) {
  auto proto =
      write_file("demo.proto",
                 "syntax = \"proto3\";\npackage demo;\nmessage Deposit { int64 amount = 1; "
                 "string note = 2; }\n");
  auto run = spawnctl("--proto " + proto
                      + " invoke it-system notes set --type demo.Deposit --data "
                        "'{\"amount\": 5, \"note\": \"rent\"}'");
  EXPECT_EQ(run.exit_code, 0) << run.output << log();
  EXPECT_NE(run.output.find(R"("amount":"5")"), std::string::npos) << run.output;
  auto received = host_.received();
  ASSERT_FALSE(received.empty());
  EXPECT_EQ(received.back().value().type_url(), "type.googleapis.com/demo.Deposit");
}

TEST_F(SpawnctlTest, ClusterSaysTheProxyRunsAlone) {
  auto run = spawnctl("cluster");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("runs alone"), std::string::npos) << run.output;
  auto where = spawnctl("where it-system notes");
  EXPECT_EQ(where.exit_code, 1) << where.output;
  EXPECT_NE(where.output.find("not part of a cluster"), std::string::npos) << where.output;
}

TEST_F(SpawnctlTest, RegistersFromJsonSpawnsAndListsActors) {
  auto file = write_file("shop.json", R"({"name": "shop", "registry": {"actors": {
      "cart": {"id": {"name": "cart"}, "settings": {"kind": "UNNAMED"}, "actions": [{"name": "set"}]}
  }}})");
  auto registered = spawnctl("register " + file);
  EXPECT_EQ(registered.exit_code, 0) << registered.output << log();
  auto spawned = spawnctl("spawn shop cart-7 --parent cart");
  EXPECT_EQ(spawned.exit_code, 0) << spawned.output << log();
  auto listed = spawnctl("actors shop");
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find(R"("name":"cart-7")"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find(R"("parent":"cart")"), std::string::npos) << listed.output;
  auto invoked = spawnctl("invoke shop cart-7 set --json '{}'");
  EXPECT_EQ(invoked.exit_code, 0) << invoked.output;
  EXPECT_EQ(host_.received().back().actor().parent(), "cart");
}

TEST_F(SpawnctlTest, LoadReportsRateAndLatencyWithoutErrors) {
  auto run = spawnctl("load it-system notes set --json '{}' -n 300 -c 4");
  EXPECT_EQ(run.exit_code, 0) << run.output << log();
  EXPECT_NE(run.output.find("requests 300  errors 0"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("p99"), std::string::npos) << run.output;
}

TEST_F(SpawnctlTest, ErrorsSayWhatToDoAndUseDistinctExitCodes) {
  auto unknown = spawnctl("invoke it-system notes explode");
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("Action [explode] not found"), std::string::npos);

  auto usage = spawnctl("invoke it-system");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;

  auto bad_type = spawnctl("invoke it-system notes set --type nowhere.Message");
  EXPECT_EQ(bad_type.exit_code, 2) << bad_type.output;
  EXPECT_NE(bad_type.output.find("--proto"), std::string::npos) << bad_type.output;

  auto bad_file = spawnctl("register " + write_file("broken.json", "{not json"));
  EXPECT_EQ(bad_file.exit_code, 2) << bad_file.output;

  auto unreachable = spawnctl("--proxy 127.0.0.1:1 state it-system notes", false);
  EXPECT_EQ(unreachable.exit_code, 3) << unreachable.output;
  EXPECT_NE(unreachable.output.find("is spawn-proxy running"), std::string::npos);
  EXPECT_TRUE(still_serves());
}

}  // namespace
}  // namespace spawn::integration
