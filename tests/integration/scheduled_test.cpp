// PROTOCOL.md §5.6 and §8 item 9: scheduled invocations (`scheduled_to`, Unix epoch ms) answer at
// once with no payload and run at their due time, durably (they survive kill -9 of the proxy).

#include <atomic>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include "integration/workflow_support.hpp"

namespace spawn::integration {
namespace {

using namespace std::chrono_literals;
using testing::pack_json;

/// How early a due invocation may run: the host and the proxy share one clock, so this only
/// absorbs rounding to milliseconds.
constexpr auto kEarlyTolerance = 100ms;

class ProxyScheduledTest : public WorkflowTest {
protected:
  void SetUp() override {
    host_.on("later", [this](const pb::ActorInvocation& invocation) {
      events_.record("later " + describe(invocation));
      events_.record("later");
      return testing::echo_response(invocation);
    });
    start_proxy();
    ASSERT_TRUE(register_actors({delayed()}));
  }

  static ActorSpec delayed() {
    return {.name = "delayed", .actions = {"later"}, .stateful = false};
  }

  static std::string describe(const pb::ActorInvocation& invocation) {
    return invocation.has_value() ? json_of(invocation.value()) : "noop";
  }

  /// A request for `later` on `delayed` due at `due_ms` (epoch ms).
  static pb::InvocationRequest scheduled(std::int64_t due_ms,
                                         std::optional<google::protobuf::Any> payload = {}) {
    auto request = make_request("delayed", "later", std::move(payload));
    request.set_scheduled_to(due_ms);
    return request;
  }

  /// Returns how many ms before `due_ms` the event `name` happened (negative: after).
  std::int64_t early_by(const std::string& name, std::int64_t due_ms) const {
    const auto at = events_.time_of(name);
    return at ? due_ms - epoch_ms(*at) : -1;
  }
};

TEST_F(ProxyScheduledTest, FutureInvocationRepliesAtOnceWithoutPayload) {
  const auto response = invoke(scheduled(epoch_ms_now() + 1500));
  events_.record("reply");

  ASSERT_TRUE(is_ok(response));
  EXPECT_EQ(response.payload_case(), pb::InvocationResponse::PAYLOAD_NOT_SET)
      << "a scheduled call answers like an async one: no payload at all" << log();
  EXPECT_EQ(response.actor().id().name(), "delayed");
  EXPECT_EQ(events_.count("later"), 0)
      << "the reply must not wait for the due time " << events_.describe();
}

TEST_F(ProxyScheduledTest, FutureInvocationRunsAtItsDueTimeAndNotBefore) {
  const std::int64_t due = epoch_ms_now() + 1500;

  ASSERT_TRUE(is_ok(invoke(scheduled(due))));

  ASSERT_TRUE(wait_for_count("later", 1, 6s)) << "the scheduled invocation never ran" << log();
  EXPECT_LE(early_by("later", due), kEarlyTolerance.count())
      << "it ran " << early_by("later", due) << " ms before its due time" << log();
  EXPECT_TRUE(received("later").front().has_noop());
}

TEST_F(ProxyScheduledTest, InvocationDueInThePastRunsAtOnce) {
  ASSERT_TRUE(is_ok(invoke(scheduled(epoch_ms_now() - 60'000))));

  EXPECT_TRUE(wait_for_count("later", 1, 2s))
      << "an invocation already due must run at once" << log();
}

TEST_F(ProxyScheduledTest, ScheduledInvocationCarriesItsPayloadMetadataAndCaller) {
  google::protobuf::Any payload;
  payload.set_type_url("type.googleapis.com/Reminder");
  payload.set_value(
      std::string("\x0a\x03"
                  "abc\x00\xff",
                  7));
  auto request = scheduled(epoch_ms_now() - 1, payload);
  (*request.mutable_metadata())["trace-id"] = "t-1";
  request.mutable_caller()->set_name("scheduler-client");
  request.mutable_caller()->set_system(kSystem);

  ASSERT_TRUE(is_ok(invoke(request)));

  ASSERT_TRUE(wait_for_count("later", 1, 2s)) << log();
  const auto later = received("later").front();
  EXPECT_EQ(later.value().type_url(), payload.type_url());
  EXPECT_EQ(later.value().value(), payload.value()) << "the payload must arrive byte for byte";
  ASSERT_EQ(later.current_context().metadata().count("trace-id"), 1u) << log();
  EXPECT_EQ(later.current_context().metadata().at("trace-id"), "t-1");
  EXPECT_EQ(later.caller().name(), "scheduler-client");
}

TEST_F(ProxyScheduledTest, InvocationsRunInTheOrderOfTheirDueTimes) {
  const std::int64_t now = epoch_ms_now();

  ASSERT_TRUE(is_ok(invoke(scheduled(now + 1000, pack_json("\"second\"")))));
  ASSERT_TRUE(is_ok(invoke(scheduled(now + 400, pack_json("\"first\"")))));

  ASSERT_TRUE(wait_for_count("later", 2, 5s)) << log();
  EXPECT_LT(events_.index_of("later \"first\""), events_.index_of("later \"second\""))
      << events_.describe() << log();
}

TEST_F(ProxyScheduledTest, UnknownActorIsAnErrorAtRequestTime) {
  auto request = scheduled(epoch_ms_now() + 500);
  request.mutable_actor()->mutable_id()->set_name("nobody");

  const auto response = invoke(request);

  EXPECT_TRUE(is_error(response));
  EXPECT_NE(response.status().message().find("nobody"), std::string::npos)
      << response.status().message();
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyScheduledTest, ScheduledInvocationSurvivesKill9AndRunsExactlyOnce) {
  const std::int64_t due = epoch_ms_now() + 2000;
  ASSERT_TRUE(is_ok(invoke(scheduled(due, pack_json("\"durable\"")))));

  ASSERT_EQ(stop_proxy(SIGKILL), 128 + SIGKILL) << log();
  ASSERT_EQ(events_.count("later"), 0) << "it ran before its time" << log();
  start_proxy();
  ASSERT_TRUE(register_actors({delayed()}));

  ASSERT_TRUE(wait_for_count("later", 1, 10s))
      << "the scheduled invocation was lost with the proxy" << log();
  EXPECT_EQ(describe(received("later").front()), "\"durable\"");
  EXPECT_LE(early_by("later", due), kEarlyTolerance.count())
      << "it ran " << early_by("later", due) << " ms before its due time" << log();
  std::this_thread::sleep_for(2500ms);  // proving it does not run again takes waiting
  EXPECT_EQ(host_.count("later"), 1) << "a scheduled invocation must run exactly once" << log();
}

TEST_F(ProxyScheduledTest, EffectWithScheduledToRunsAtItsDueTime) {
  std::atomic<std::int64_t> due{0};
  host_.on("trigger", [&due](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    auto request = make_request("delayed", "later", pack_json("\"from effect\""));
    request.set_async(true);
    *request.mutable_caller() = invocation.actor();
    due = epoch_ms_now() + 1000;  // as the Node SDK computes scheduledTo: now + delay
    request.set_scheduled_to(due);
    *response.mutable_workflow()->add_effects()->mutable_request() = std::move(request);
    return response;
  });
  ASSERT_TRUE(register_actors({{.name = "source", .actions = {"trigger"}, .stateful = false}}));

  ASSERT_TRUE(is_ok(invoke("source", "trigger")));

  ASSERT_TRUE(wait_for_count("later", 1, 5s)) << "the scheduled effect never ran" << log();
  EXPECT_EQ(describe(received("later").front()), "\"from effect\"");
  EXPECT_LE(early_by("later", due), kEarlyTolerance.count())
      << "the effect ran " << early_by("later", due) << " ms before its due time" << log();
}

}  // namespace
}  // namespace spawn::integration
