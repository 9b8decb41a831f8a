// PROTOCOL.md §5.3 and §6: state persisted in a real SQLite file, encrypted, revisioned.

#include <algorithm>
#include <cctype>
#include <csignal>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "integration/proxy_fixture.hpp"

namespace spawn::integration {
namespace {

using testing::pack_json;

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

class ProxyPersistenceTest : public ProxyTest {
protected:
  void SetUp() override {
    host_.on("inc", increment_handler());
    host_.on("inc_checkpoint", increment_handler(/*checkpoint=*/true));
    host_.on("set", set_state_handler());
    host_.on("set_checkpoint", set_state_handler(/*checkpoint=*/true));
    host_.on("retag", [](const pb::ActorInvocation& invocation) {
      auto response = testing::echo_response(invocation);
      auto* tags = response.mutable_updated_context()->mutable_tags();
      tags->clear();
      (*tags)["color"] = "blue";
      return response;
    });
    start_proxy();
  }

  static ActorSpec durable(std::string name, std::int64_t deactivation_ms = 0) {
    return {.name = std::move(name),
            .actions = {"init", "inc", "inc_checkpoint", "set", "set_checkpoint", "retag"},
            .stateful = true,
            .deactivation_ms = deactivation_ms};
  }

  /// Restarts the main proxy on the same file (after `signal`) and registers `actors` again.
  void restart(int signal, const std::vector<ActorSpec>& actors, const Env& overrides = {}) {
    const int code = stop_proxy(signal);
    if (signal == SIGTERM) {
      EXPECT_EQ(code, 0) << "SIGTERM must end the proxy with exit code 0" << log();
    }
    start_proxy(overrides);
    ASSERT_TRUE(register_actors(actors));
  }

  /// Returns every file in the data dir whose bytes contain `needle`.
  std::vector<std::string> files_containing(const std::string& needle) const {
    std::vector<std::string> hits;
    for (const auto& entry : std::filesystem::directory_iterator(data_dir())) {
      if (read_file(entry.path()).find(needle) != std::string::npos) {
        hits.push_back(entry.path().filename().string());
      }
    }
    return hits;
  }
};

TEST_F(ProxyPersistenceTest, StateSurvivesAGracefulRestart) {
  ASSERT_TRUE(register_actors({durable("durable")}));
  ASSERT_TRUE(is_ok(invoke("durable", "inc")));
  ASSERT_TRUE(is_ok(invoke("durable", "inc")));
  ASSERT_TRUE(is_ok(invoke("durable", "inc")));

  restart(SIGTERM, {durable("durable")});
  const auto state = invoke("durable", "get");

  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "3") << log();
}

TEST_F(ProxyPersistenceTest, CtrlCTogetherWithSigtermStillSavesEverything) {
  ASSERT_TRUE(register_actors({durable("durable")}));
  ASSERT_TRUE(is_ok(invoke("durable", "set", pack_json("42"))));
  // A terminal's Ctrl-C reaches the whole process group while a supervisor sends SIGTERM.
  ::kill(proxy_->pid(), SIGINT);
  restart(SIGTERM, {durable("durable")});
  EXPECT_EQ(json_of(invoke("durable", "get").value()), "42") << log();
}

TEST_F(ProxyPersistenceTest, SigtermSavesEveryActiveStatefulActor) {
  ASSERT_TRUE(register_actors({durable("one"), durable("two"), durable("three")}));
  ASSERT_TRUE(is_ok(invoke("one", "set", pack_json("1"))));
  ASSERT_TRUE(is_ok(invoke("two", "set", pack_json("2"))));
  ASSERT_TRUE(is_ok(invoke("three", "set", pack_json("3"))));

  restart(SIGTERM, {durable("one"), durable("two"), durable("three")});

  EXPECT_EQ(json_of(invoke("one", "get").value()), "1") << log();
  EXPECT_EQ(json_of(invoke("two", "get").value()), "2") << log();
  EXPECT_EQ(json_of(invoke("three", "get").value()), "3") << log();
}

TEST_F(ProxyPersistenceTest, TagsArePersisted) {
  ASSERT_TRUE(register_actors({durable("tagged")}));
  ASSERT_TRUE(is_ok(invoke("tagged", "set", pack_json("1"))));
  ASSERT_TRUE(is_ok(invoke("tagged", "retag")));

  restart(SIGTERM, {durable("tagged")});
  ASSERT_TRUE(is_ok(invoke("tagged", "inc")));

  const auto received = host_.received();
  std::string seen;  // what the host saw, for the failure message
  for (const auto& invocation : received) {
    seen += invocation.action_name() + "{";
    for (const auto& [key, value] : invocation.current_context().tags()) {
      seen += key + "=" + value + " ";
    }
    seen += "} ";
  }
  const auto& tags = received.back().current_context().tags();
  ASSERT_EQ(tags.count("color"), 1u) << "tags the host saw, in order: " << seen << log();
  EXPECT_EQ(tags.at("color"), "blue");
  EXPECT_EQ(tags.size(), 1u);
}

TEST_F(ProxyPersistenceTest, StoredStateReachesInitAfterRestart) {
  ASSERT_TRUE(register_actors({durable("reloaded")}));
  ASSERT_TRUE(is_ok(invoke("reloaded", "set", pack_json("\"saved\""))));
  const int inits_before = host_.count("init");

  restart(SIGTERM, {durable("reloaded")});
  ASSERT_TRUE(is_ok(invoke("reloaded", "get")));  // activated (with init) before it is served

  ASSERT_GT(host_.count("init"), inits_before) << log();
  const auto received = host_.received();
  const auto init = std::find_if(received.rbegin(), received.rend(),
                                 [](const auto& i) { return i.action_name() == "init"; });
  EXPECT_EQ(state_of(init->current_context()), "\"saved\"") << log();
}

TEST_F(ProxyPersistenceTest, CheckpointSurvivesKill9) {
  ASSERT_TRUE(register_actors({durable("checkpointed")}));
  ASSERT_TRUE(is_ok(invoke("checkpointed", "inc_checkpoint")));
  ASSERT_TRUE(is_ok(invoke("checkpointed", "inc_checkpoint")));

  restart(SIGKILL, {durable("checkpointed")});
  const auto state = invoke("checkpointed", "get");

  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "2") << log();
}

TEST_F(ProxyPersistenceTest, NonStatefulActorStartsFromItsInitialStateAfterRestart) {
  const ActorSpec volatile_actor{
      .name = "volatile", .actions = {"inc"}, .stateful = false, .initial_state = "0"};
  ASSERT_TRUE(register_actors({volatile_actor}));
  ASSERT_TRUE(is_ok(invoke("volatile", "inc")));

  restart(SIGTERM, {volatile_actor});
  const auto state = invoke("volatile", "get");

  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "0") << log();
}

TEST_F(ProxyPersistenceTest, DatabaseFilesHoldNoPlaintextOfTheState) {
  std::mt19937_64 random{std::random_device{}()};
  const std::string marker = "PLAINTEXT-MARKER-" + std::to_string(random());
  ASSERT_TRUE(register_actors({durable("secretive")}));
  ASSERT_TRUE(is_ok(invoke("secretive", "set_checkpoint", pack_json("\"" + marker + "\""))));

  EXPECT_TRUE(std::filesystem::exists(db_path())) << "no database at " << db_path() << log();
  EXPECT_EQ(files_containing(marker), std::vector<std::string>{}) << "after the checkpoint";
  ASSERT_EQ(stop_proxy(SIGTERM), 0) << log();
  EXPECT_EQ(files_containing(marker), std::vector<std::string>{}) << "after shutdown" << log();

  // The check is not vacuous: the state is really there and readable with the key.
  start_proxy();
  ASSERT_TRUE(register_actors({durable("secretive")}));
  EXPECT_EQ(json_of(invoke("secretive", "get").value()), "\"" + marker + "\"") << log();
}

TEST_F(ProxyPersistenceTest, ProxyWithAnotherKeyCannotReadTheStateAndDoesNotOverwriteIt) {
  ASSERT_TRUE(register_actors({durable("locked")}));
  ASSERT_TRUE(is_ok(invoke("locked", "set_checkpoint", pack_json("\"original\""))));
  ASSERT_EQ(stop_proxy(SIGTERM), 0) << log();

  start_proxy({{"SPAWN_STATESTORE_KEY", make_key()}});
  ASSERT_TRUE(register_actors({durable("locked")}));
  auto get = make_request("locked", "get");
  (*get.mutable_metadata())["request-timeout"] = "300";
  auto overwrite = make_request("locked", "set_checkpoint", pack_json("\"overwritten\""));
  (*overwrite.mutable_metadata())["request-timeout"] = "300";
  EXPECT_TRUE(is_error(invoke(get))) << "the state must not be readable";
  EXPECT_TRUE(is_error(invoke(overwrite)));
  stop_proxy(SIGTERM);

  start_proxy();
  ASSERT_TRUE(register_actors({durable("locked")}));
  const auto state = invoke("locked", "get");
  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "\"original\"") << log();
}

TEST_F(ProxyPersistenceTest, DeactivationSavesStateAndTheNextInvokeReactivatesWithIt) {
  ASSERT_TRUE(register_actors({durable("sleepy", /*deactivation_ms=*/300)}));
  ASSERT_TRUE(is_ok(invoke("sleepy", "set", pack_json("\"before sleep\""))));
  const int inits_before = host_.count("init");
  ASSERT_GE(inits_before, 1) << "init must have run at the first activation" << log();

  const auto state = get_after_reactivation("sleepy", inits_before);

  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "\"before sleep\"") << log();
  const auto received = host_.received();
  const auto init = std::find_if(received.rbegin(), received.rend(),
                                 [](const auto& i) { return i.action_name() == "init"; });
  EXPECT_EQ(state_of(init->current_context()), "\"before sleep\"")
      << "init at reactivation must see the saved state";

  // The deactivation wrote to the file: it survives a kill -9.
  restart(SIGKILL, {durable("sleepy", 300)});
  EXPECT_EQ(json_of(invoke("sleepy", "get").value()), "\"before sleep\"") << log();
}

TEST_F(ProxyPersistenceTest, NonStatefulActorRestartsFromItsInitialStateAfterDeactivation) {
  ASSERT_TRUE(register_actors({{.name = "forgetful",
                                .actions = {"init", "inc"},
                                .stateful = false,
                                .initial_state = "0",
                                .deactivation_ms = 300}}));
  ASSERT_TRUE(is_ok(invoke("forgetful", "inc")));
  const int inits_before = host_.count("init");

  const auto state = get_after_reactivation("forgetful", inits_before);

  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "0") << log();
}

TEST_F(ProxyPersistenceTest, StaleActivationCannotOverwriteNewerState) {
  // Two proxies on the same file both activate the actor at the same revision.
  auto other = launch_proxy();
  testing::ProxyClient other_client(other->port());
  const ActorSpec contended = durable("contended");
  ASSERT_TRUE(register_actors({contended}));
  ASSERT_TRUE(register_on(other_client, {contended}, other->log()));
  ASSERT_TRUE(is_ok(invoke("contended", "get")));
  ASSERT_EQ(invoke_on(other_client, make_request("contended", "get")).status().status(), pb::OK)
      << other->log();

  // A (the main proxy) writes first and saves.
  ASSERT_TRUE(is_ok(invoke("contended", "set_checkpoint", pack_json("\"from A\""))));
  ASSERT_EQ(stop_proxy(SIGTERM), 0) << log();

  // B is stale: its write must be refused, visibly to its caller or in its log.
  const auto b_response =
      invoke_on(other_client, make_request("contended", "set_checkpoint", pack_json("\"from B\"")));
  const int b_exit = other->stop(SIGTERM);
  const std::string b_log = other->log();
  EXPECT_TRUE(b_response.status().status() == pb::ERROR
              || lower(b_log).find("conflict") != std::string::npos)
      << "B answered " << pb::Status_Name(b_response.status().status()) << " '"
      << b_response.status().message() << "' and logged no conflict\n--- B log ---\n"
      << b_log;
  EXPECT_EQ(b_exit, 0) << b_log;

  // A third proxy reads what the file holds: A's state.
  start_proxy();
  ASSERT_TRUE(register_actors({contended}));
  const auto state = invoke("contended", "get");
  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "\"from A\"") << log() << "\n--- B log ---\n" << b_log;
}

}  // namespace
}  // namespace spawn::integration
