// PROTOCOL.md §5.8 item 3 and §8 item 8: pipe and forward route an action's call to another
// actor; the original caller receives that actor's result.

#include <map>
#include <optional>
#include <string>

#include "integration/workflow_support.hpp"

namespace spawn::integration {
namespace {

using testing::pack_json;

/// What the routing action answers and stores.
constexpr const char* kRouterOutput = "\"router output\"";
constexpr const char* kRouterState = "\"router state\"";

/// Returns metadata `key` of `invocation` ("" when absent).
std::string metadata_of(const pb::ActorInvocation& invocation, const std::string& key) {
  const auto& metadata = invocation.current_context().metadata();
  const auto it = metadata.find(key);
  return it == metadata.end() ? std::string() : it->second;
}

/// Describes a payload: the JSON text of a value, "noop", or "none".
std::string describe_payload(const pb::ActorInvocation& invocation) {
  if (invocation.has_value()) {
    return json_of(invocation.value());
  }
  return invocation.has_noop() ? "noop" : "none";
}

class ProxyPipeForwardTest : public WorkflowTest {
protected:
  void SetUp() override {
    // `route` stores kRouterState, answers kRouterOutput, and pipes or forwards (metadata "route")
    // to metadata "target" / "target_action" (with metadata "target_ref" as register_ref).
    host_.on("route", [](const pb::ActorInvocation& invocation) {
      auto response = testing::echo_response(invocation);
      *response.mutable_updated_context()->mutable_state() = pack_json(kRouterState);
      *response.mutable_value() = pack_json(kRouterOutput);
      auto fill = [&invocation](auto* routed) {
        routed->set_actor(metadata_of(invocation, "target"));
        routed->set_action_name(metadata_of(invocation, "target_action"));
        routed->set_register_ref(metadata_of(invocation, "target_ref"));
      };
      if (metadata_of(invocation, "route") == "forward") {
        fill(response.mutable_workflow()->mutable_forward());
      } else {
        fill(response.mutable_workflow()->mutable_pipe());
      }
      return response;
    });
    // `finish` answers "finished <its input>".
    host_.on("finish", [](const pb::ActorInvocation& invocation) {
      auto response = testing::echo_response(invocation);
      *response.mutable_value() = pack_json("finished " + describe_payload(invocation));
      return response;
    });
    start_proxy();
    ASSERT_TRUE(register_actors({
        {.name = "router", .actions = {"route"}, .stateful = true},
        {.name = "finisher", .actions = {"finish", "broken"}, .stateful = false},
        {.name = "finisher-template",
         .actions = {"finish"},
         .kind = pba::UNNAMED,
         .stateful = false},
    }));
  }

  /// Invokes `route` on the router with `payload`, routing by `route` to `target`.`action`.
  pb::InvocationResponse route(
      const std::string& kind, const std::string& target, const std::string& action,
      std::optional<google::protobuf::Any> payload = pack_json("\"original\""),
      std::map<std::string, std::string> extra_metadata = {}) {
    auto request = make_request("router", "route", std::move(payload));
    auto& metadata = *request.mutable_metadata();
    metadata["route"] = kind;
    metadata["target"] = target;
    metadata["target_action"] = action;
    for (auto& [key, value] : extra_metadata) {
      metadata[key] = value;
    }
    // Keep a wrong retry loop short enough to finish, and visible in the counts.
    metadata["request-timeout"] = "2000";
    return invoke(request);
  }
};

TEST_F(ProxyPipeForwardTest, PipeGivesTheTargetThePipingActionsOutput) {
  ASSERT_TRUE(is_ok(route("pipe", "finisher", "finish")));

  ASSERT_EQ(host_.count("finish"), 1) << log();
  const auto finish = received("finish").front();
  EXPECT_EQ(finish.actor().name(), "finisher");
  EXPECT_EQ(json_of(finish.value()), kRouterOutput) << "pipe passes the action's output";
  EXPECT_EQ(finish.caller().name(), "router") << "the caller is the piping actor";
  EXPECT_EQ(finish.caller().system(), kSystem);
}

TEST_F(ProxyPipeForwardTest, PipeAnswersTheCallerWithTheTargetsResult) {
  const auto response = route("pipe", "finisher", "finish");

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), std::string("finished ") + kRouterOutput) << log();
}

TEST_F(ProxyPipeForwardTest, ForwardGivesTheTargetTheOriginalPayload) {
  ASSERT_TRUE(is_ok(route("forward", "finisher", "finish")));

  ASSERT_EQ(host_.count("finish"), 1) << log();
  const auto finish = received("finish").front();
  EXPECT_EQ(json_of(finish.value()), "\"original\"") << "forward passes the original input";
  EXPECT_EQ(finish.caller().name(), "router");
}

TEST_F(ProxyPipeForwardTest, ForwardAnswersTheCallerWithTheTargetsResult) {
  const auto response = route("forward", "finisher", "finish");

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), "finished \"original\"") << log();
}

TEST_F(ProxyPipeForwardTest, ForwardOfANoopRequestPassesNoop) {
  const auto response = route("forward", "finisher", "finish", std::nullopt);

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), "finished noop") << log();
}

TEST_F(ProxyPipeForwardTest, PipeWithRegisterRefSpawnsTheTarget) {
  const auto response =
      route("pipe", "finisher-9", "finish", pack_json("1"), {{"target_ref", "finisher-template"}});

  ASSERT_TRUE(is_ok(response));
  ASSERT_EQ(host_.count("finish"), 1) << log();
  const auto finish = received("finish").front();
  EXPECT_EQ(finish.actor().name(), "finisher-9");
  EXPECT_EQ(finish.actor().parent(), "finisher-template") << log();
}

class ProxyRoutingTest : public ProxyPipeForwardTest,
                         public ::testing::WithParamInterface<std::string> {};

TEST_P(ProxyRoutingTest, RoutingActorsNewStateIsStored) {
  ASSERT_TRUE(is_ok(route(GetParam(), "finisher", "finish")));

  const auto state = invoke("router", "get");

  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), kRouterState) << log();
}

TEST_P(ProxyRoutingTest, OriginalMetadataReachesTheTarget) {
  ASSERT_TRUE(
      is_ok(route(GetParam(), "finisher", "finish", pack_json("1"), {{"trace-id", "abc-123"}})));

  ASSERT_EQ(host_.count("finish"), 1) << log();
  EXPECT_EQ(metadata_of(received("finish").front(), "trace-id"), "abc-123") << log();
}

TEST_P(ProxyRoutingTest, UnknownTargetActorIsAnErrorForTheCallerAndTheActionRanOnce) {
  const auto response = route(GetParam(), "nobody", "finish");

  EXPECT_TRUE(is_error(response));
  EXPECT_EQ(host_.count("route"), 1) << "the routing action must not run again" << log();
  EXPECT_EQ(host_.count("finish"), 0);
}

TEST_P(ProxyRoutingTest, UnregisteredTargetActionIsAnErrorForTheCallerAndTheActionRanOnce) {
  const auto response = route(GetParam(), "finisher", "missing");

  EXPECT_TRUE(is_error(response));
  EXPECT_EQ(host_.count("route"), 1) << "the routing action must not run again" << log();
  EXPECT_EQ(host_.count("missing"), 0);
}

TEST_P(ProxyRoutingTest, TargetHostFailureIsAnErrorForTheCallerAndEachActionRanOnce) {
  host_.on_raw("broken", [](const pb::ActorInvocation&) {
    return testing::HostReply{.body = "definitely not protobuf \xff\xff\xff"};
  });

  const auto response = route(GetParam(), "finisher", "broken");

  EXPECT_TRUE(is_error(response));
  EXPECT_EQ(host_.count("route"), 1) << "the routing action must not run again" << log();
  EXPECT_EQ(host_.count("broken"), 1) << "a host that answered is not called again" << log();
}

TEST_P(ProxyRoutingTest, RoutingActorsStateIsKeptWhenTheTargetFails) {
  EXPECT_TRUE(is_error(route(GetParam(), "nobody", "finish")));

  const auto state = invoke("router", "get");

  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), kRouterState)
      << "the state change was already committed" << log();
}

INSTANTIATE_TEST_SUITE_P(PipeAndForward, ProxyRoutingTest, ::testing::Values("pipe", "forward"),
                         [](const auto& name) { return name.param; });

}  // namespace
}  // namespace spawn::integration
