// PROTOCOL.md §5.8 item 2 and §8 item 10: a broadcast reaches every actor subscribed to its topic
// through Actor.metadata.channel_group, as async invocations with the broadcasting actor as caller.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "integration/workflow_support.hpp"

namespace spawn::integration {
namespace {

using namespace std::chrono_literals;
using testing::pack_json;

/// Host handler: broadcasts the request's payload (value, noop or none) to the topic in metadata
/// "topic", and sets the publisher's state to "published".
testing::TestHost::Handler publish_handler() {
  return [](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    *response.mutable_updated_context()->mutable_state() = pack_json("\"published\"");
    auto* broadcast = response.mutable_workflow()->mutable_broadcast();
    const auto& metadata = invocation.current_context().metadata();
    const auto topic = metadata.find("topic");
    broadcast->set_channel_group(topic == metadata.end() ? "" : topic->second);
    if (invocation.has_value()) {
      *broadcast->mutable_value() = invocation.value();
    } else if (invocation.has_noop()) {
      broadcast->mutable_noop();
    }
    return response;
  };
}

class ProxyBroadcastTest : public WorkflowTest {
protected:
  void SetUp() override {
    host_.on("publish", publish_handler());
    start_proxy();
  }

  static ActorSpec publisher(std::string name = "publisher") {
    return {.name = std::move(name), .actions = {"publish"}, .stateful = false};
  }

  static ActorSpec subscriber(std::string name, std::string topic, std::string action = {},
                              std::vector<std::string> actions = {"receive"}) {
    return {.name = std::move(name),
            .actions = std::move(actions),
            .stateful = false,
            .channels = {{.topic = std::move(topic), .action = std::move(action)}}};
  }

  /// Invokes `publish` on `actor`, broadcasting `payload` (noop when unset) to `topic`.
  pb::InvocationResponse publish(const std::string& actor, const std::string& topic,
                                 std::optional<google::protobuf::Any> payload = std::nullopt) {
    auto request = make_request(actor, "publish", std::move(payload));
    (*request.mutable_metadata())["topic"] = topic;
    return invoke(request);
  }
};

TEST_F(ProxyBroadcastTest, ReachesASubscriberThatWasNeverActivated) {
  ASSERT_TRUE(
      register_actors({publisher(), subscriber("listener", "news", "on_news", {"on_news"})}));
  google::protobuf::Any payload;
  payload.set_type_url("type.googleapis.com/NewsItem");
  payload.set_value(std::string("\x0a\x02hi\x00\xfe", 6));

  ASSERT_TRUE(is_ok(publish("publisher", "news", payload)));

  ASSERT_TRUE(wait_for_count("on_news", 1)) << "the subscriber never received it" << log();
  const auto delivered = received("on_news").front();
  EXPECT_EQ(delivered.actor().name(), "listener");
  EXPECT_EQ(delivered.actor().system(), kSystem);
  EXPECT_EQ(delivered.caller().name(), "publisher") << "caller must be the broadcasting actor";
  EXPECT_EQ(delivered.caller().system(), kSystem);
  EXPECT_EQ(delivered.current_context().caller().name(), "publisher");
  ASSERT_TRUE(delivered.has_value()) << log();
  EXPECT_EQ(delivered.value().type_url(), payload.type_url());
  EXPECT_EQ(delivered.value().value(), payload.value()) << "the value must arrive byte for byte";
}

TEST_F(ProxyBroadcastTest, EmptyChannelActionInvokesReceive) {
  ASSERT_TRUE(register_actors({publisher(), subscriber("listener", "news")}));

  ASSERT_TRUE(is_ok(publish("publisher", "news", pack_json("1"))));

  ASSERT_TRUE(wait_for_count("receive", 1)) << log();
  EXPECT_EQ(received("receive").front().actor().name(), "listener");
}

TEST_F(ProxyBroadcastTest, NoopBroadcastArrivesAsNoop) {
  ASSERT_TRUE(register_actors({publisher(), subscriber("listener", "news")}));

  ASSERT_TRUE(is_ok(publish("publisher", "news")));

  ASSERT_TRUE(wait_for_count("receive", 1)) << log();
  EXPECT_TRUE(received("receive").front().has_noop()) << log();
}

TEST_F(ProxyBroadcastTest, PublishingCallSucceedsAndKeepsItsState) {
  ASSERT_TRUE(register_actors({publisher(), subscriber("listener", "news")}));

  ASSERT_TRUE(is_ok(publish("publisher", "news", pack_json("1"))));

  const auto state = invoke("publisher", "get");
  ASSERT_TRUE(is_ok(state));
  EXPECT_EQ(json_of(state.value()), "\"published\"") << log();
}

TEST_F(ProxyBroadcastTest, ReachesEverySubscriberOfTheTopicAndNoOther) {
  ASSERT_TRUE(register_actors({publisher(), subscriber("news-1", "news"),
                               subscriber("news-2", "news"), subscriber("sports-1", "sports")}));

  ASSERT_TRUE(is_ok(publish("publisher", "news", pack_json("\"headline\""))));
  ASSERT_TRUE(wait_for_count("receive", 2)) << log();
  ASSERT_TRUE(is_ok(publish("publisher", "sports", pack_json("\"score\""))));
  ASSERT_TRUE(wait_for_count("receive", 3)) << log();

  std::map<std::string, std::vector<std::string>> seen;  // actor -> payloads
  for (const auto& delivered : received("receive")) {
    seen[delivered.actor().name()].push_back(json_of(delivered.value()));
  }
  EXPECT_EQ(seen["news-1"], std::vector<std::string>{"\"headline\""}) << log();
  EXPECT_EQ(seen["news-2"], std::vector<std::string>{"\"headline\""});
  EXPECT_EQ(seen["sports-1"], std::vector<std::string>{"\"score\""});
}

TEST_F(ProxyBroadcastTest, PassivatedSubscriberIsReactivatedByABroadcast) {
  ActorSpec sleepy = subscriber("sleepy", "news", "", {"init", "receive"});
  sleepy.deactivation_ms = 200;
  ASSERT_TRUE(register_actors({publisher(), sleepy}));
  ASSERT_TRUE(is_ok(publish("publisher", "news", pack_json("1"))));
  ASSERT_TRUE(wait_for_count("receive", 1)) << log();
  ASSERT_EQ(host_.count("init"), 1) << "the first broadcast must activate it" << log();
  ASSERT_TRUE(wait_for_log("actor=" + std::string(kSystem) + "/sleepy deactivated"))
      << "the subscriber was never passivated" << log();

  ASSERT_TRUE(is_ok(publish("publisher", "news", pack_json("2"))));

  ASSERT_TRUE(wait_for_count("receive", 2))
      << "a passivated subscriber lost the broadcast" << log();
  EXPECT_EQ(host_.count("init"), 2) << "the broadcast must reactivate it (init runs again)";
  EXPECT_EQ(json_of(received("receive").back().value()), "2");
}

TEST_F(ProxyBroadcastTest, PublisherReceivesItsOwnBroadcastWhenSubscribed) {
  ASSERT_TRUE(register_actors({{.name = "echo-chamber",
                                .actions = {"publish", "receive"},
                                .stateful = false,
                                .channels = {{.topic = "self-news"}}}}));

  ASSERT_TRUE(is_ok(publish("echo-chamber", "self-news", pack_json("\"me\""))));

  ASSERT_TRUE(wait_for_count("receive", 1)) << log();
  const auto delivered = received("receive").front();
  EXPECT_EQ(delivered.actor().name(), "echo-chamber");
  EXPECT_EQ(delivered.caller().name(), "echo-chamber");
  EXPECT_EQ(state_of(delivered.current_context()), "\"published\"")
      << "the broadcast runs after the publisher's new state is applied" << log();
}

TEST_F(ProxyBroadcastTest, TopicWithoutSubscribersIsLoggedAndTheCallSucceeds) {
  ASSERT_TRUE(register_actors({publisher(), subscriber("listener", "news")}));

  const auto response = publish("publisher", "nobody-listens");

  EXPECT_TRUE(is_ok(response));
  EXPECT_TRUE(wait_for_log_line("no subscribers", "nobody-listens"))
      << "the log must say that topic 'nobody-listens' has no subscribers" << log();
  EXPECT_EQ(host_.count("receive"), 0);
  EXPECT_TRUE(still_serves());
}

TEST_F(ProxyBroadcastTest, ReachesAThousandSubscribersRegisteredAtOnce) {
  constexpr int kSubscribers = 1000;
  std::vector<ActorSpec> actors{publisher()};
  for (int i = 0; i < kSubscribers; ++i) {
    actors.push_back(subscriber("fan-" + std::to_string(i), "stadium"));
  }
  ASSERT_TRUE(register_actors(actors));

  ASSERT_TRUE(is_ok(publish("publisher", "stadium", pack_json("\"goal\""))));

  EXPECT_TRUE(
      testing::TestHost::wait_for([&] { return host_.count("receive") >= kSubscribers; }, 30s))
      << "only " << host_.count("receive") << " of " << kSubscribers << " received it" << log();
  std::set<std::string> fans;
  for (const auto& delivered : received("receive")) {
    fans.insert(delivered.actor().name());
  }
  EXPECT_EQ(fans.size(), static_cast<std::size_t>(kSubscribers))
      << "some fans got it twice, others not at all";
}

}  // namespace
}  // namespace spawn::integration
