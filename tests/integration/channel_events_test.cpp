// External broadcast subscribers: GET /api/v1/channels/{topic}/events streams every broadcast to
// the topic as server-sent events (docs/architecture.md, "Routing and workflows").

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "integration/workflow_support.hpp"

namespace spawn::integration {
namespace {

using namespace std::chrono_literals;
using testing::pack_json;

constexpr auto kEventWait = 5s;

class ProxyChannelEventsTest : public WorkflowTest {
protected:
  void SetUp() override {
    host_.on("publish", [](const pb::ActorInvocation& invocation) {
      auto response = testing::echo_response(invocation);
      auto* broadcast = response.mutable_workflow()->mutable_broadcast();
      broadcast->set_channel_group(invocation.current_context().metadata().at("topic"));
      if (invocation.has_value()) {
        *broadcast->mutable_value() = invocation.value();
      } else {
        broadcast->mutable_noop();
      }
      return response;
    });
    start_proxy();
    ASSERT_TRUE(
        register_actors({{.name = "publisher", .actions = {"publish"}, .stateful = false}}));
  }

  /// Opens an event stream on `topic` and consumes its announcement; fails the test otherwise.
  std::unique_ptr<EventStream> subscribe(const std::string& topic) {
    auto stream = std::make_unique<EventStream>(proxy_->port(), topic);
    EXPECT_EQ(stream->error(), "") << log();
    EXPECT_EQ(stream->status(), 200u) << log();
    const auto line = stream->read_line(kEventWait);
    EXPECT_EQ(line.value_or("<nothing>"), ": subscribed to " + topic) << log();
    return stream;
  }

  /// Invokes `publish` on the publisher: broadcasts `payload` (noop when unset) to `topic`.
  pb::InvocationResponse publish(const std::string& topic,
                                 std::optional<google::protobuf::Any> payload = std::nullopt) {
    auto request = make_request("publisher", "publish", std::move(payload));
    (*request.mutable_metadata())["topic"] = topic;
    return invoke(request);
  }

  /// Reads the next event and parses its data as JSON; null JSON when there is none.
  nlohmann::json next_broadcast(EventStream& stream) {
    const auto event = stream.next_event(kEventWait);
    if (!event) {
      ADD_FAILURE() << "no event within " << kEventWait.count() << " s" << log();
      return nullptr;
    }
    EXPECT_EQ(event->event, "broadcast") << "data: " << event->data;
    const auto json = nlohmann::json::parse(event->data, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(json.is_discarded()) << "data is not JSON: " << event->data;
    return json.is_discarded() ? nlohmann::json(nullptr) : json;
  }
};

TEST_F(ProxyChannelEventsTest, AnswersAnEventStreamAndAnnouncesTheSubscription) {
  EventStream stream(proxy_->port(), "news");

  ASSERT_EQ(stream.error(), "") << log();
  EXPECT_EQ(stream.status(), 200u);
  EXPECT_EQ(stream.header("content-type").rfind("text/event-stream", 0), 0u)
      << "content-type: " << stream.header("content-type");
  EXPECT_EQ(stream.read_line(kEventWait).value_or("<nothing>"), ": subscribed to news") << log();
}

TEST_F(ProxyChannelEventsTest, JsonValueBroadcastArrivesWithTopicCallerBytesAndJson) {
  auto stream = subscribe("news");
  const auto payload = pack_json(R"({"headline":"hello"})");

  ASSERT_TRUE(is_ok(publish("news", payload)));

  const auto event = next_broadcast(*stream);
  ASSERT_TRUE(event.is_object()) << log();
  EXPECT_EQ(event.value("topic", ""), "news");
  ASSERT_TRUE(event.contains("caller")) << event.dump();
  EXPECT_EQ(event["caller"].value("name", ""), "publisher");
  EXPECT_EQ(event["caller"].value("system", ""), kSystem);
  EXPECT_EQ(event.value("type_url", ""), payload.type_url());
  EXPECT_EQ(event.value("value", ""), base64(payload.value()))
      << "value is base64 of the Any bytes";
  EXPECT_EQ(event.value("json", ""), R"({"headline":"hello"})");
  EXPECT_FALSE(event.contains("noop")) << event.dump();
}

TEST_F(ProxyChannelEventsTest, BinaryValueBroadcastHasNoJsonField) {
  auto stream = subscribe("binary");
  google::protobuf::Any payload;
  payload.set_type_url("type.googleapis.com/Blob");
  payload.set_value(std::string("\x00\x01\xfe\xff\x80", 5));

  ASSERT_TRUE(is_ok(publish("binary", payload)));

  const auto event = next_broadcast(*stream);
  ASSERT_TRUE(event.is_object()) << log();
  EXPECT_EQ(event.value("type_url", ""), "type.googleapis.com/Blob");
  EXPECT_EQ(event.value("value", ""), base64(payload.value()));
  EXPECT_FALSE(event.contains("json")) << event.dump();
}

TEST_F(ProxyChannelEventsTest, NoopBroadcastArrivesAsNoop) {
  auto stream = subscribe("pings");

  ASSERT_TRUE(is_ok(publish("pings")));

  const auto event = next_broadcast(*stream);
  ASSERT_TRUE(event.is_object()) << log();
  EXPECT_EQ(event.value("topic", ""), "pings");
  EXPECT_EQ(event.value("noop", false), true) << event.dump();
  EXPECT_FALSE(event.contains("value")) << event.dump();
}

TEST_F(ProxyChannelEventsTest, EveryBroadcastArrivesInOrder) {
  auto stream = subscribe("ticker");

  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(is_ok(publish("ticker", pack_json(std::to_string(i)))));
  }

  for (int i = 1; i <= 3; ++i) {
    const auto event = next_broadcast(*stream);
    ASSERT_TRUE(event.is_object()) << "event " << i << log();
    EXPECT_EQ(event.value("json", ""), std::to_string(i));
  }
}

TEST_F(ProxyChannelEventsTest, StreamReceivesOnlyItsTopic) {
  auto news = subscribe("news");
  auto sports = subscribe("sports");

  ASSERT_TRUE(is_ok(publish("sports", pack_json("\"score\""))));
  ASSERT_TRUE(is_ok(publish("news", pack_json("\"headline\""))));

  const auto news_event = next_broadcast(*news);
  EXPECT_EQ(news_event.value("topic", ""), "news") << news_event.dump();
  const auto sports_event = next_broadcast(*sports);
  EXPECT_EQ(sports_event.value("topic", ""), "sports") << sports_event.dump();
}

TEST_F(ProxyChannelEventsTest, ActorSubscribersStillReceiveAlongsideAStream) {
  ASSERT_TRUE(register_actors({{.name = "listener",
                                .actions = {"receive"},
                                .stateful = false,
                                .channels = {{.topic = "shared"}}}}));
  auto stream = subscribe("shared");

  ASSERT_TRUE(is_ok(publish("shared", pack_json("\"both\""))));

  EXPECT_EQ(next_broadcast(*stream).value("json", ""), "\"both\"");
  ASSERT_TRUE(wait_for_count("receive", 1)) << log();
  EXPECT_EQ(json_of(received("receive").front().value()), "\"both\"");
}

TEST_F(ProxyChannelEventsTest, TopicWithOnlyAStreamIsNotLoggedAsWithoutSubscribers) {
  auto stream = subscribe("outside-only");

  ASSERT_TRUE(is_ok(publish("outside-only", pack_json("1"))));

  ASSERT_TRUE(next_broadcast(*stream).is_object()) << log();
  // Control: a topic nobody listens to is logged, so the log is written by now.
  ASSERT_TRUE(is_ok(publish("nobody-listens", pack_json("2"))));
  ASSERT_TRUE(wait_for_log_line("nobody-listens", "no subscribers")) << log();
  EXPECT_EQ(log_line_with("outside-only", "no subscribers").value_or(""), "") << log();
}

TEST_F(ProxyChannelEventsTest, ClosedStreamDoesNotDisturbLaterBroadcasts) {
  subscribe("fleeting").reset();  // connect, read the announcement, close

  EXPECT_TRUE(is_ok(publish("fleeting", pack_json("1"))));
  auto stream = subscribe("fleeting");
  ASSERT_TRUE(is_ok(publish("fleeting", pack_json("2"))));

  EXPECT_EQ(next_broadcast(*stream).value("json", ""), "2") << log();
  EXPECT_TRUE(still_serves());
}

}  // namespace
}  // namespace spawn::integration
