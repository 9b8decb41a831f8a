// PROTOCOL.md §5.5 and §5.8 item 1, §8 item 9: side effects of an action run in the background
// through the normal invocation path, after the actor's new state is applied.

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "integration/workflow_support.hpp"

namespace spawn::integration {
namespace {

using namespace std::chrono_literals;
using testing::pack_json;

/// An effect request as the Node SDK builds it: system.name, actor {name, system}, caller = the
/// acting actor, async unless asked otherwise.
pb::InvocationRequest effect_request(const pb::ActorInvocation& from, const std::string& actor,
                                     const std::string& action, bool async = true) {
  auto request = make_request(actor, action);
  request.set_async(async);
  *request.mutable_caller() = from.actor();
  request.mutable_caller()->clear_parent();
  return request;
}

/// Host handler: state := `state`, value := `state`, and the effects `make_effects` builds.
testing::TestHost::Handler with_effects(
    std::string state,
    std::function<std::vector<pb::InvocationRequest>(const pb::ActorInvocation&)> make_effects) {
  return [state = std::move(state),
          make_effects = std::move(make_effects)](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    *response.mutable_updated_context()->mutable_state() = pack_json(state);
    *response.mutable_value() = pack_json(state);
    for (auto& request : make_effects(invocation)) {
      *response.mutable_workflow()->add_effects()->mutable_request() = std::move(request);
    }
    return response;
  };
}

class ProxyEffectsTest : public WorkflowTest {
protected:
  void SetUp() override { start_proxy(); }

  static ActorSpec actor(std::string name, std::vector<std::string> actions) {
    return {.name = std::move(name), .actions = std::move(actions), .stateful = false};
  }
};

TEST_F(ProxyEffectsTest, EffectRunsWithItsPayloadAndCaller) {
  google::protobuf::Any payload;
  payload.set_type_url("type.googleapis.com/UserEvent");
  payload.set_value(std::string("\x08\x2a\x00\xff", 4));
  host_.on("trigger", with_effects("\"done\"", [&](const pb::ActorInvocation& invocation) {
             auto request = effect_request(invocation, "target", "work");
             *request.mutable_value() = payload;
             return std::vector<pb::InvocationRequest>{request};
           }));
  ASSERT_TRUE(register_actors({actor("source", {"trigger"}), actor("target", {"work"})}));

  ASSERT_TRUE(is_ok(invoke("source", "trigger")));

  ASSERT_TRUE(wait_for_count("work", 1)) << "the effect never reached the host" << log();
  const auto work = received("work").front();
  EXPECT_EQ(work.actor().name(), "target");
  EXPECT_EQ(work.value().type_url(), payload.type_url());
  EXPECT_EQ(work.value().value(), payload.value()) << "the payload must arrive byte for byte";
  EXPECT_EQ(work.caller().name(), "source") << log();
  EXPECT_EQ(work.current_context().caller().name(), "source");
}

TEST_F(ProxyEffectsTest, EffectSeesTheNewStateOfItsOwnActor) {
  // The effect goes back to the acting actor: it must see the state the action just set.
  host_.on("trigger", with_effects("\"after\"", [](const pb::ActorInvocation& invocation) {
             return std::vector<pb::InvocationRequest>{
                 effect_request(invocation, invocation.actor().name(), "observe")};
           }));
  ASSERT_TRUE(register_actors({{.name = "self-effect",
                                .actions = {"trigger", "observe"},
                                .stateful = false,
                                .initial_state = "\"before\""}}));

  ASSERT_TRUE(is_ok(invoke("self-effect", "trigger")));

  ASSERT_TRUE(wait_for_count("observe", 1)) << log();
  EXPECT_EQ(state_of(received("observe").front().current_context()), "\"after\"") << log();
}

TEST_F(ProxyEffectsTest, CallerReplyDoesNotWaitForTheEffect) {
  // A synchronous effect (async=false) to an action that answers only once the caller has its
  // reply (or after 10 s): a proxy that waited for its effects would answer only after `slow`
  // replied. `slow`'s own effect `done` marks when that happened.
  std::promise<void> caller_answered;
  std::shared_future<void> gate = caller_answered.get_future().share();
  host_.on("trigger", with_effects("\"triggered\"", [](const pb::ActorInvocation& invocation) {
             return std::vector<pb::InvocationRequest>{
                 effect_request(invocation, "slow-target", "slow", /*async=*/false)};
           }));
  host_.on_raw("slow", [gate](const pb::ActorInvocation& invocation) {
    gate.wait_for(10s);
    auto response = with_effects("\"slow done\"", [](const pb::ActorInvocation& slow) {
      return std::vector<pb::InvocationRequest>{effect_request(slow, "marker", "done")};
    })(invocation);
    return testing::HostReply{.body = encode(response)};
  });
  host_.on("done", [this](const pb::ActorInvocation& invocation) {
    events_.record("slow effect finished");
    return testing::echo_response(invocation);
  });
  ASSERT_TRUE(register_actors(
      {actor("source", {"trigger"}), actor("slow-target", {"slow"}), actor("marker", {"done"})}));

  const auto response = invoke("source", "trigger");
  events_.record("caller got the reply");
  caller_answered.set_value();

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), "\"triggered\"") << log();
  ASSERT_TRUE(wait_for_count("done", 1)) << "the slow effect never finished" << log();
  EXPECT_LT(events_.index_of("caller got the reply"), events_.index_of("slow effect finished"))
      << events_.describe() << log();
}

TEST_F(ProxyEffectsTest, OriginalMetadataIsMergedIntoTheEffectAndTheEffectsKeysWin) {
  host_.on("trigger", with_effects("1", [](const pb::ActorInvocation& invocation) {
             auto request = effect_request(invocation, "target", "work");
             (*request.mutable_metadata())["shared"] = "from effect";
             (*request.mutable_metadata())["effect-only"] = "e";
             return std::vector<pb::InvocationRequest>{request};
           }));
  ASSERT_TRUE(register_actors({actor("source", {"trigger"}), actor("target", {"work"})}));
  auto request = make_request("source", "trigger");
  (*request.mutable_metadata())["shared"] = "from caller";
  (*request.mutable_metadata())["caller-only"] = "c";

  ASSERT_TRUE(is_ok(invoke(request)));

  ASSERT_TRUE(wait_for_count("work", 1)) << log();
  const auto metadata = received("work").front().current_context().metadata();
  EXPECT_EQ(metadata.size(), 3u) << log();
  ASSERT_EQ(metadata.count("caller-only"), 1u) << "the original metadata must reach the effect";
  EXPECT_EQ(metadata.at("caller-only"), "c");
  ASSERT_EQ(metadata.count("effect-only"), 1u);
  EXPECT_EQ(metadata.at("effect-only"), "e");
  ASSERT_EQ(metadata.count("shared"), 1u);
  EXPECT_EQ(metadata.at("shared"), "from effect") << "the effect's own key must win";
}

TEST_F(ProxyEffectsTest, EffectWithRegisterRefSpawnsAChild) {
  host_.on("trigger", with_effects("1", [](const pb::ActorInvocation& invocation) {
             auto request = effect_request(invocation, "worker-7", "work");
             request.set_register_ref("worker");
             return std::vector<pb::InvocationRequest>{request};
           }));
  ASSERT_TRUE(register_actors(
      {actor("source", {"trigger"}),
       {.name = "worker", .actions = {"work"}, .kind = pba::UNNAMED, .stateful = false}}));

  ASSERT_TRUE(is_ok(invoke("source", "trigger")));

  ASSERT_TRUE(wait_for_count("work", 1)) << "the child was not spawned and invoked" << log();
  const auto work = received("work").front();
  EXPECT_EQ(work.actor().name(), "worker-7");
  EXPECT_EQ(work.actor().parent(), "worker") << log();
  EXPECT_EQ(work.current_context().self().parent(), "worker");
  // The child is now a registered actor: it answers a direct call.
  EXPECT_TRUE(is_ok(invoke("worker-7", "work")));
}

TEST_F(ProxyEffectsTest, EffectToAnUnknownActorIsLoggedAndLosesNothing) {
  host_.on("trigger", with_effects("\"saved\"", [](const pb::ActorInvocation& invocation) {
             return std::vector<pb::InvocationRequest>{
                 effect_request(invocation, "ghost", "work"),
                 effect_request(invocation, "target", "work")};
           }));
  ASSERT_TRUE(register_actors({actor("source", {"trigger"}), actor("target", {"work"})}));

  const auto response = invoke("source", "trigger");

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), "\"saved\"");
  EXPECT_TRUE(wait_for_count("work", 1)) << "the other effect must still run" << log();
  EXPECT_TRUE(wait_for_log_line("ghost", "failed")) << "the failed effect must be logged" << log();
  const auto state = invoke("source", "get");
  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "\"saved\"") << "the caller's state must be kept" << log();
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyEffectsTest, EveryEffectOfOneActionRuns) {
  host_.on("trigger", with_effects("1", [](const pb::ActorInvocation& invocation) {
             std::vector<pb::InvocationRequest> effects;
             for (int i = 0; i < 5; ++i) {
               effects.push_back(effect_request(invocation, "target-" + std::to_string(i), "work"));
             }
             return effects;
           }));
  std::vector<ActorSpec> actors{actor("source", {"trigger"})};
  for (int i = 0; i < 5; ++i) {
    actors.push_back(actor("target-" + std::to_string(i), {"work"}));
  }
  ASSERT_TRUE(register_actors(actors));

  ASSERT_TRUE(is_ok(invoke("source", "trigger")));

  ASSERT_TRUE(wait_for_count("work", 5)) << log();
  std::vector<std::string> targets;
  for (const auto& work : received("work")) {
    targets.push_back(work.actor().name());
  }
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(targets,
            (std::vector<std::string>{"target-0", "target-1", "target-2", "target-3", "target-4"}));
}

// --- workflows of async invocations (§5.5)
// ---------------------------------------------------------

TEST_F(ProxyEffectsTest, AsyncInvocationStillRunsItsEffectsAndBroadcast) {
  host_.on("trigger", [](const pb::ActorInvocation& invocation) {
    auto response = with_effects("\"async done\"", [](const pb::ActorInvocation& i) {
      return std::vector<pb::InvocationRequest>{effect_request(i, "target", "work")};
    })(invocation);
    response.mutable_workflow()->mutable_broadcast()->set_channel_group("async-news");
    *response.mutable_workflow()->mutable_broadcast()->mutable_value() = pack_json("\"hello\"");
    return response;
  });
  ASSERT_TRUE(register_actors({actor("source", {"trigger"}),
                               actor("target", {"work"}),
                               {.name = "listener",
                                .actions = {"receive"},
                                .stateful = false,
                                .channels = {{.topic = "async-news"}}}}));
  auto request = make_request("source", "trigger");
  request.set_async(true);

  const auto response = invoke(request);

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(response.payload_case(), pb::InvocationResponse::PAYLOAD_NOT_SET);
  EXPECT_TRUE(wait_for_count("work", 1)) << "the effect of an async call did not run" << log();
  EXPECT_TRUE(wait_for_count("receive", 1)) << "the broadcast of an async call was lost" << log();
  const auto state = invoke("source", "get");
  EXPECT_EQ(json_of(state.value()), "\"async done\"") << log();
}

TEST_F(ProxyEffectsTest, AsyncInvocationStillRunsItsPipeAndDropsTheResult) {
  host_.on("trigger", [](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    *response.mutable_value() = pack_json("\"to pipe\"");
    response.mutable_workflow()->mutable_pipe()->set_actor("target");
    response.mutable_workflow()->mutable_pipe()->set_action_name("work");
    return response;
  });
  ASSERT_TRUE(register_actors({actor("source", {"trigger"}), actor("target", {"work"})}));
  auto request = make_request("source", "trigger");
  request.set_async(true);

  const auto response = invoke(request);

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(response.payload_case(), pb::InvocationResponse::PAYLOAD_NOT_SET) << log();
  ASSERT_TRUE(wait_for_count("work", 1)) << "the pipe of an async call did not run" << log();
  EXPECT_EQ(json_of(received("work").front().value()), "\"to pipe\"");
}

}  // namespace
}  // namespace spawn::integration
