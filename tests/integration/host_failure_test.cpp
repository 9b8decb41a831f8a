// PROTOCOL.md §4 and §5.10: a host that is down, slow or answers nonsense fails one request with a
// readable ERROR; the actor's state is unchanged and the proxy keeps serving.

#include <chrono>
#include <string>
#include <thread>

#include "integration/proxy_fixture.hpp"

namespace spawn::integration {
namespace {

using namespace std::chrono_literals;

class ProxyHostFailureTest : public ProxyTest {
protected:
  void SetUp() override {
    host_.on("inc", increment_handler());
    start_proxy({{"SPAWN_PROXY_HOST_TIMEOUT_MS", "300"}});
    ASSERT_TRUE(register_actors({{.name = "counter",
                                  .actions = {"inc", "broken"},
                                  .stateful = false,
                                  .initial_state = "0"}}));
    // Activate first, so that the failure hits an invocation (not the activation).
    ASSERT_TRUE(is_ok(invoke("counter", "inc")));
  }

  /// Invokes `action` on the counter with a short retry window (metadata request-timeout).
  pb::InvocationResponse invoke_briefly(const std::string& action) {
    auto request = make_request("counter", action);
    (*request.mutable_metadata())["request-timeout"] = "300";
    return invoke(request);
  }

  /// Succeeds when the next `inc` answers 2: the failed call changed nothing.
  ::testing::AssertionResult state_unchanged_and_serving() {
    const auto response = invoke("counter", "inc");
    if (response.status().status() != pb::OK) {
      return is_ok(response);
    }
    if (json_of(response.value()) != "2") {
      return ::testing::AssertionFailure() << "state after the failure is "
                                           << json_of(response.value()) << ", expected 2" << log();
    }
    return ::testing::AssertionSuccess();
  }

  static ::testing::AssertionResult contains(const std::string& text, const std::string& part) {
    if (text.find(part) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
  }
};

TEST_F(ProxyHostFailureTest, HostDownAnswersErrorUnreachable) {
  host_.stop();

  const auto response = invoke_briefly("inc");

  host_.start();
  ASSERT_TRUE(is_error(response));
  EXPECT_EQ(last_status(), 500u);
  EXPECT_TRUE(contains(response.status().message(), "unreachable"));
  EXPECT_TRUE(state_unchanged_and_serving());
}

TEST_F(ProxyHostFailureTest, HostBackWithinTheRetryWindowServesTheCall) {
  host_.stop();
  auto request = make_request("counter", "inc");
  (*request.mutable_metadata())["request-timeout"] = "5000";
  std::thread restarter([&] {
    std::this_thread::sleep_for(300ms);
    host_.start();
  });

  const auto response = invoke(request);

  restarter.join();
  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(json_of(response.value()), "2") << log();
}

TEST_F(ProxyHostFailureTest, HostAnsweringAnEmptyBodyAnswersError) {
  host_.on_raw("broken", [](const pb::ActorInvocation&) {
    return testing::HostReply{.http_status = 200, .body = ""};
  });

  const auto response = invoke_briefly("broken");

  ASSERT_TRUE(is_error(response));
  EXPECT_TRUE(contains(response.status().message(), "empty body"));
  EXPECT_TRUE(state_unchanged_and_serving());
}

TEST_F(ProxyHostFailureTest, HostAnswering400WithEmptyBodyAnswersError) {
  // What the Node host does when the user callback throws (§4).
  host_.on_raw("broken", [](const pb::ActorInvocation&) {
    return testing::HostReply{.http_status = 400, .body = ""};
  });

  const auto response = invoke_briefly("broken");

  ASSERT_TRUE(is_error(response));
  EXPECT_TRUE(contains(response.status().message(), "empty body"));
  EXPECT_TRUE(state_unchanged_and_serving());
}

TEST_F(ProxyHostFailureTest, HostAnsweringGarbageAnswersError) {
  host_.on_raw("broken", [](const pb::ActorInvocation&) {
    return testing::HostReply{.http_status = 200, .body = "\xff\xff\xff\xff garbage"};
  });

  const auto response = invoke_briefly("broken");

  ASSERT_TRUE(is_error(response));
  EXPECT_TRUE(contains(response.status().message(), "not an ActorInvocationResponse"));
  EXPECT_TRUE(state_unchanged_and_serving());
}

TEST_F(ProxyHostFailureTest, HostAnsweringWithoutUpdatedContextAnswersError) {
  host_.on("broken", [](const pb::ActorInvocation&) {
    pb::ActorInvocationResponse response;
    *response.mutable_value() = testing::pack_json("\"no context\"");
    return response;
  });

  const auto response = invoke_briefly("broken");

  ASSERT_TRUE(is_error(response));
  EXPECT_TRUE(state_unchanged_and_serving());
}

TEST_F(ProxyHostFailureTest, HostSlowerThanTheTimeoutAnswersError) {
  host_.on_raw("broken", [](const pb::ActorInvocation& invocation) {
    return testing::HostReply{
        .http_status = 200, .body = encode(testing::echo_response(invocation)), .delay = 1500ms};
  });

  const auto response = invoke_briefly("broken");

  ASSERT_TRUE(is_error(response));
  EXPECT_TRUE(state_unchanged_and_serving());
}

TEST_F(ProxyHostFailureTest, HostDroppingTheConnectionAnswersError) {
  host_.on_raw("broken", [](const pb::ActorInvocation&) {
    return testing::HostReply{.body = {}, .close = true, .drop = true};
  });

  const auto response = invoke_briefly("broken");

  ASSERT_TRUE(is_error(response));
  EXPECT_TRUE(state_unchanged_and_serving());
}

TEST_F(ProxyHostFailureTest, HostFailureDuringActivationDoesNotBreakTheActor) {
  // A host down during init is logged; the actor stays usable (§5.10).
  ASSERT_TRUE(register_actors({{.name = "late", .actions = {"init", "inc"}, .stateful = false}}));
  host_.on_raw("init", [](const pb::ActorInvocation&) {
    return testing::HostReply{.http_status = 400, .body = ""};
  });

  const auto response = invoke("late", "inc");

  EXPECT_TRUE(is_ok(response));
  EXPECT_GE(host_.count("init"), 1);
}

}  // namespace
}  // namespace spawn::integration
