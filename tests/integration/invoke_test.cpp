// PROTOCOL.md §5.3–§5.5, §5.9 and §8 items 2, 3, 5, 6 and 11: invoking actions end to end.

#include <chrono>
#include <string>
#include <vector>

#include "integration/proxy_fixture.hpp"

namespace spawn::integration {
namespace {

using testing::pack_json;

class ProxyInvokeTest : public ProxyTest {
protected:
  void SetUp() override {
    host_.on("inc", increment_handler());
    host_.on("set", set_state_handler());
    start_proxy();
  }
};

// --- default actions (§5.4 step 3, §8 item 2) ---------------------------------------------------

class ProxyDefaultActionTest : public ProxyInvokeTest,
                               public ::testing::WithParamInterface<std::string> {};

TEST_P(ProxyDefaultActionTest, AnswersRegisteredInitialStateWithoutCallingHost) {
  ASSERT_TRUE(register_actors(
      {{.name = "fresh", .actions = {"inc"}, .stateful = false, .initial_state = "41"}}));

  const auto response = invoke("fresh", GetParam());

  ASSERT_TRUE(is_ok(response));
  ASSERT_TRUE(response.has_value()) << "the default action must answer the state as value" << log();
  EXPECT_EQ(json_of(response.value()), "41");
  EXPECT_TRUE(host_.received().empty())
      << "the host was called for '" << host_.received().front().action_name() << "'";
}

TEST_P(ProxyDefaultActionTest, AnswersCurrentStateAfterAChange) {
  ASSERT_TRUE(register_actors(
      {{.name = "changed", .actions = {"inc"}, .stateful = false, .initial_state = "41"}}));
  ASSERT_TRUE(is_ok(invoke("changed", "inc")));

  const auto response = invoke("changed", GetParam());

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), "42") << log();
  EXPECT_EQ(host_.count(GetParam()), 0);
}

INSTANTIATE_TEST_SUITE_P(AllFiveNames, ProxyDefaultActionTest,
                         ::testing::Values("get", "Get", "get_state", "getState", "GetState"),
                         [](const auto& name) { return std::string(name.param); });

TEST_F(ProxyInvokeTest, DefaultGetIsForwardedWhenTheActorRegistersIt) {
  host_.on("get", [](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    *response.mutable_value() = pack_json("\"from host\"");
    return response;
  });
  ASSERT_TRUE(register_actors(
      {{.name = "custom-get", .actions = {"get"}, .stateful = false, .initial_state = "1"}}));

  const auto response = invoke("custom-get", "get");

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(host_.count("get"), 1);
  EXPECT_EQ(json_of(response.value()), "\"from host\"") << log();
}

TEST_F(ProxyInvokeTest, AllDefaultNamesAreForwardedWhenTheActorRegistersAnyOfThem) {
  // Quirk of interface/http.ex (§5.4): registering one of the five forwards all five.
  ASSERT_TRUE(register_actors({{.name = "quirk", .actions = {"getState"}, .stateful = false}}));

  ASSERT_TRUE(is_ok(invoke("quirk", "get")));

  EXPECT_EQ(host_.count("get"), 1) << log();
}

TEST_F(ProxyInvokeTest, DefaultGetOfActorWithoutStateAnswersOkWithoutPayload) {
  ASSERT_TRUE(register_actors({{.name = "stateless", .actions = {"inc"}, .stateful = false}}));

  const auto response = invoke("stateless", "get");

  ASSERT_TRUE(is_ok(response));
  EXPECT_FALSE(response.has_value()) << log();
  EXPECT_TRUE(host_.received().empty());
}

// --- init / setup (§5.3, §8 item 3)
// ---------------------------------------------------------------

TEST_F(ProxyInvokeTest, InitRunsBeforeTheFirstInvocationAndItsStateAndTagsAreApplied) {
  host_.on("init", [](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    *response.mutable_updated_context()->mutable_state() = pack_json("100");
    (*response.mutable_updated_context()->mutable_tags())["phase"] = "init";
    return response;
  });
  ASSERT_TRUE(register_actors({{.name = "initialized",
                                .actions = {"init", "inc"},
                                .stateful = false,
                                .initial_state = "0"}}));

  const auto response = invoke("initialized", "inc");

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), "101") << log();
  const auto received = host_.received();
  ASSERT_EQ(received.size(), 2u) << log();
  EXPECT_EQ(received[0].action_name(), "init");
  EXPECT_EQ(received[1].action_name(), "inc");
  EXPECT_EQ(state_of(received[1].current_context()), "100");
  EXPECT_EQ(received[1].current_context().tags().count("phase"), 1u);
}

TEST_F(ProxyInvokeTest, InitGetsNoopSelfAsCallerAndNoMetadata) {
  ASSERT_TRUE(register_actors({{.name = "init-ctx",
                                .actions = {"init", "hello"},
                                .stateful = false,
                                .initial_state = "7"}}));
  auto request = make_request("init-ctx", "hello");
  (*request.mutable_metadata())["trace"] = "abc";

  ASSERT_TRUE(is_ok(invoke(request)));

  ASSERT_EQ(host_.count("init"), 1) << log();
  const auto init = host_.received().front();
  ASSERT_EQ(init.action_name(), "init");
  EXPECT_TRUE(init.has_noop());
  EXPECT_EQ(init.actor().name(), "init-ctx");
  EXPECT_EQ(init.current_context().self().name(), "init-ctx");
  EXPECT_EQ(init.current_context().caller().name(), "init-ctx");
  EXPECT_EQ(init.caller().name(), "init-ctx");
  EXPECT_TRUE(init.current_context().metadata().empty());
  EXPECT_EQ(state_of(init.current_context()), "7");
}

TEST_F(ProxyInvokeTest, SetupRunsAtActivationWhenTheActorHasNoInit) {
  ASSERT_TRUE(
      register_actors({{.name = "with-setup", .actions = {"setup", "hello"}, .stateful = false}}));

  ASSERT_TRUE(is_ok(invoke("with-setup", "hello")));

  const auto received = host_.received();
  ASSERT_EQ(received.size(), 2u) << log();
  EXPECT_EQ(received[0].action_name(), "setup");
  EXPECT_EQ(received[1].action_name(), "hello");
}

TEST_F(ProxyInvokeTest, InitRunsOnlyOncePerActivation) {
  ASSERT_TRUE(register_actors({{.name = "once", .actions = {"init", "inc"}, .stateful = false}}));

  ASSERT_TRUE(is_ok(invoke("once", "inc")));
  ASSERT_TRUE(is_ok(invoke("once", "inc")));
  ASSERT_TRUE(is_ok(invoke("once", "inc")));

  EXPECT_EQ(host_.count("init"), 1) << log();
}

TEST_F(ProxyInvokeTest, WarmUpActivatesStatefulNamedActorsAfterRegistration) {
  ASSERT_TRUE(register_actors({{.name = "warm", .actions = {"init", "inc"}, .stateful = true}}));

  EXPECT_TRUE(testing::TestHost::wait_for([&] { return host_.count("init") == 1; }))
      << "init was not run by warm-up" << log();
}

// --- state, tags, metadata (§5.4 step 5, §5.9, §8 item 5) ---------------------------------------

TEST_F(ProxyInvokeTest, StateChangeIsVisibleToTheNextInvocation) {
  ASSERT_TRUE(register_actors({{.name = "counter", .actions = {"inc"}, .stateful = false}}));

  ASSERT_TRUE(is_ok(invoke("counter", "inc")));
  const auto second = invoke("counter", "inc");

  ASSERT_TRUE(is_ok(second));
  EXPECT_EQ(json_of(second.value()), "2") << log();
  const auto received = host_.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(state_of(received[1].current_context()), "1");
}

TEST_F(ProxyInvokeTest, ResponseEchoesSystemAndActor) {
  ASSERT_TRUE(register_actors({{.name = "echoed", .actions = {"inc"}, .stateful = false}}));

  const auto response = invoke("echoed", "inc");

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(response.system().name(), kSystem);
  EXPECT_EQ(response.actor().id().name(), "echoed");
}

TEST_F(ProxyInvokeTest, NothingOfARequestCarriesOverToTheNextOnTheSameConnection) {
  // A connection reuses its memory for each invocation (the server's InvocationScratch): the
  // second request must reach the host and be answered as if it were the first.
  ASSERT_TRUE(register_actors(
      {{.name = "first", .actions = {"inc"}, .stateful = false, .initial_state = "0"},
       {.name = "second", .actions = {"inc"}, .stateful = false, .initial_state = "0"}}));
  auto first = make_request("first", "inc", pack_json("7"));
  (*first.mutable_metadata())["trace-id"] = "abc-123";
  first.mutable_caller()->set_name("the-caller");
  first.mutable_caller()->set_system(kSystem);
  first.mutable_actor()->mutable_id()->set_parent("a-parent");
  first.mutable_system()->mutable_registry();
  first.set_async(true);
  ASSERT_TRUE(is_ok(invoke(first)));
  ASSERT_TRUE(testing::TestHost::wait_for([&] { return host_.count("inc") == 1; })) << log();
  const auto second = make_request("second", "inc");

  // Twice: the shard's messages for the host go round as well.
  for (int round = 1; round <= 2; ++round) {
    const auto response = invoke(second);

    ASSERT_TRUE(is_ok(response));
    ASSERT_TRUE(response.has_value()) << "answered as async" << log();
    EXPECT_EQ(json_of(response.value()), std::to_string(round));
    EXPECT_EQ(response.system().SerializeAsString(), second.system().SerializeAsString());
    EXPECT_EQ(response.actor().SerializeAsString(), second.actor().SerializeAsString());
    const auto received = host_.received();
    ASSERT_EQ(received.size(), static_cast<std::size_t>(round) + 1);
    const auto& invocation = received.back();
    EXPECT_EQ(invocation.actor().name(), "second");
    EXPECT_TRUE(invocation.current_context().metadata().empty());
    EXPECT_FALSE(invocation.has_caller());
    EXPECT_FALSE(invocation.current_context().has_caller());
    EXPECT_TRUE(invocation.has_noop());
  }
}

TEST_F(ProxyInvokeTest, PayloadAndTypeUrlReachTheHostAndComeBackByteForByte) {
  ASSERT_TRUE(register_actors({{.name = "opaque", .actions = {"set"}, .stateful = false}}));
  google::protobuf::Any payload;
  payload.set_type_url("type.googleapis.com/UserState");
  payload.set_value(
      std::string("\x0a\x03"
                  "abc\x00\xff",
                  7));

  const auto response = invoke("opaque", "set", payload);

  ASSERT_TRUE(is_ok(response));
  ASSERT_EQ(host_.count("set"), 1);
  EXPECT_EQ(host_.received().front().value().type_url(), payload.type_url());
  EXPECT_EQ(host_.received().front().value().value(), payload.value());
  EXPECT_EQ(response.value().type_url(), payload.type_url());
  EXPECT_EQ(response.value().value(), payload.value());
  const auto state = invoke("opaque", "get");
  EXPECT_EQ(state.value().value(), payload.value()) << log();
}

TEST_F(ProxyInvokeTest, HostNoopPayloadIsAnsweredAsNoop) {
  host_.on("nothing", [](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    response.mutable_noop();
    return response;
  });
  ASSERT_TRUE(register_actors({{.name = "noop", .actions = {"nothing"}, .stateful = false}}));

  const auto response = invoke("noop", "nothing");

  ASSERT_TRUE(is_ok(response));
  EXPECT_TRUE(response.has_noop()) << log();
}

TEST_F(ProxyInvokeTest, TagsAreReplacedByUpdatedContextTags) {
  host_.on("retag", [](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    auto* tags = response.mutable_updated_context()->mutable_tags();
    tags->clear();
    (*tags)["color"] = "blue";
    return response;
  });
  ASSERT_TRUE(register_actors({{.name = "tagged",
                                .actions = {"retag", "hello"},
                                .stateful = false,
                                .tags = {{"initial", "yes"}}}}));

  ASSERT_TRUE(is_ok(invoke("tagged", "retag")));
  ASSERT_TRUE(is_ok(invoke("tagged", "hello")));

  const auto received = host_.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].current_context().tags().count("initial"), 1u)
      << "registered tags must reach the host";
  const auto& tags = received[1].current_context().tags();
  EXPECT_EQ(tags.size(), 1u);
  ASSERT_EQ(tags.count("color"), 1u) << log();
  EXPECT_EQ(tags.at("color"), "blue");
}

TEST_F(ProxyInvokeTest, EmptyUpdatedTagsEraseTheTags) {
  host_.on("untag", [](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    response.mutable_updated_context()->mutable_tags()->clear();
    return response;
  });
  ASSERT_TRUE(register_actors({{.name = "untagged",
                                .actions = {"untag", "hello"},
                                .stateful = false,
                                .tags = {{"initial", "yes"}}}}));

  ASSERT_TRUE(is_ok(invoke("untagged", "untag")));
  ASSERT_TRUE(is_ok(invoke("untagged", "hello")));

  EXPECT_TRUE(host_.received().back().current_context().tags().empty()) << log();
}

TEST_F(ProxyInvokeTest, HostReplyWithoutStateKeepsTheOldState) {
  host_.on("forget", [](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    response.mutable_updated_context()->clear_state();
    return response;
  });
  ASSERT_TRUE(register_actors(
      {{.name = "keeper", .actions = {"forget"}, .stateful = false, .initial_state = "5"}}));

  ASSERT_TRUE(is_ok(invoke("keeper", "forget")));
  const auto state = invoke("keeper", "get");

  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "5") << log();
}

TEST_F(ProxyInvokeTest, MetadataReachesContextMetadataAndIsNotStored) {
  ASSERT_TRUE(register_actors({{.name = "meta", .actions = {"hello"}, .stateful = false}}));
  auto request = make_request("meta", "hello");
  (*request.mutable_metadata())["trace-id"] = "abc-123";
  (*request.mutable_metadata())["user"] = "alice";

  ASSERT_TRUE(is_ok(invoke(request)));
  ASSERT_TRUE(is_ok(invoke("meta", "hello")));

  const auto received = host_.received();
  ASSERT_EQ(received.size(), 2u);
  const auto& metadata = received[0].current_context().metadata();
  ASSERT_EQ(metadata.count("trace-id"), 1u) << log();
  EXPECT_EQ(metadata.at("trace-id"), "abc-123");
  EXPECT_EQ(metadata.at("user"), "alice");
  EXPECT_TRUE(received[1].current_context().metadata().empty());
}

TEST_F(ProxyInvokeTest, HostSeesTargetIdAsActorAndSelf) {
  ASSERT_TRUE(register_actors({{.name = "ident", .actions = {"hello"}, .stateful = false}}));

  ASSERT_TRUE(is_ok(invoke("ident", "hello")));

  const auto invocation = host_.received().front();
  EXPECT_EQ(invocation.actor().name(), "ident");
  EXPECT_EQ(invocation.actor().system(), kSystem);
  EXPECT_EQ(invocation.current_context().self().name(), "ident");
  EXPECT_EQ(invocation.current_context().self().system(), kSystem);
  EXPECT_TRUE(invocation.has_noop());
}

TEST_F(ProxyInvokeTest, CallerIsPassedToTheHost) {
  ASSERT_TRUE(register_actors({{.name = "callee", .actions = {"hello"}, .stateful = false}}));
  auto request = make_request("callee", "hello");
  request.mutable_caller()->set_name("the-caller");
  request.mutable_caller()->set_system(kSystem);

  ASSERT_TRUE(is_ok(invoke(request)));

  const auto invocation = host_.received().front();
  EXPECT_EQ(invocation.caller().name(), "the-caller");
  EXPECT_EQ(invocation.current_context().caller().name(), "the-caller");
}

TEST_F(ProxyInvokeTest, EmptyActorIdSystemFallsBackToSystemName) {
  ASSERT_TRUE(register_actors({{.name = "fallback", .actions = {"hello"}, .stateful = false}}));
  auto request = make_request("fallback", "hello");
  request.mutable_actor()->mutable_id()->clear_system();

  EXPECT_TRUE(is_ok(invoke(request)));
}

// --- async (§5.5, §8 item 6) ---------------------------------------------------------------------

TEST_F(ProxyInvokeTest, AsyncInvokeRepliesOkWithoutPayload) {
  ASSERT_TRUE(register_actors({{.name = "async", .actions = {"inc"}, .stateful = false}}));
  auto request = make_request("async", "inc");
  request.set_async(true);

  const auto response = invoke(request);

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(response.payload_case(), pb::InvocationResponse::PAYLOAD_NOT_SET) << log();
  EXPECT_TRUE(testing::TestHost::wait_for([&] { return host_.count("inc") == 1; })) << log();
}

TEST_F(ProxyInvokeTest, SyncCallRightAfterAsyncSeesItsEffect) {
  host_.on_raw("slow_inc", [](const pb::ActorInvocation& invocation) {
    // Slow enough that a proxy which replied before queueing would let the get overtake it.
    return testing::HostReply{.body = encode(increment_handler()(invocation)),
                              .delay = std::chrono::milliseconds(100)};
  });
  ASSERT_TRUE(register_actors(
      {{.name = "ordered", .actions = {"slow_inc"}, .stateful = false, .initial_state = "0"}}));
  auto request = make_request("ordered", "slow_inc");
  request.set_async(true);

  ASSERT_TRUE(is_ok(invoke(request)));
  const auto state = invoke("ordered", "get");

  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "1") << log();
}

TEST_F(ProxyInvokeTest, AsyncInvocationsRunInOrder) {
  ASSERT_TRUE(register_actors(
      {{.name = "fifo", .actions = {"set"}, .stateful = false, .initial_state = "0"}}));
  for (int i = 1; i <= 5; ++i) {
    auto request = make_request("fifo", "set", pack_json(std::to_string(i)));
    request.set_async(true);
    ASSERT_TRUE(is_ok(invoke(request)));
  }

  const auto state = invoke("fifo", "get");

  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "5") << log();
  std::vector<std::string> order;
  for (const auto& invocation : host_.received()) {
    order.push_back(json_of(invocation.value()));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"1", "2", "3", "4", "5"}));
}

// --- host restart (§8 item 11)
// --------------------------------------------------------------------

TEST_F(ProxyInvokeTest, SurvivesTheHostRestartingBetweenCalls) {
  ASSERT_TRUE(register_actors({{.name = "resilient", .actions = {"inc"}, .stateful = false}}));
  ASSERT_TRUE(is_ok(invoke("resilient", "inc")));

  host_.stop();
  host_.start();
  const auto response = invoke("resilient", "inc");

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), "2") << log();
}

TEST_F(ProxyInvokeTest, SurvivesTheHostRestartingTwice) {
  ASSERT_TRUE(register_actors({{.name = "resilient", .actions = {"inc"}, .stateful = false}}));
  for (int round = 1; round <= 3; ++round) {
    const auto response = invoke("resilient", "inc");
    ASSERT_TRUE(is_ok(response)) << "round " << round;
    EXPECT_EQ(json_of(response.value()), std::to_string(round));
    host_.stop();
    host_.start();
  }
}

}  // namespace
}  // namespace spawn::integration
