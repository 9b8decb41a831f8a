// The NATS layer of the cluster against a real nats-server with JetStream: KV compare-and-set as
// the directory uses it, key escaping, and two NatsCluster nodes agreeing on one owner.

#include "cluster/nats.hpp"

#include <chrono>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "cluster/nats_cluster.hpp"
#include "support/nats_server.hpp"

namespace spawn::cluster {
namespace {

using namespace std::chrono_literals;

TEST(EscapeTokenTest, KeepsSafeCharactersAndHexesTheRest) {
  EXPECT_EQ(escape_token("cart-42_a"), "cart-42_a");
  EXPECT_EQ(escape_token("a.b c/é"), "a=2Eb=20c=2F=C3=A9");
  EXPECT_EQ(escape_token(""), "=");
  EXPECT_NE(escape_token("a.b"), escape_token("a=2Eb")) << "'=' itself is escaped";
}

TEST(NodeNameTest, IsSafeForSubjectsAndNewAtEveryStart) {
  auto a = make_node_name("pod.7 west");
  auto b = make_node_name("pod.7 west");
  EXPECT_EQ(a.rfind("pod_7_west-", 0), 0U) << a;
  EXPECT_NE(a, b);
}

class NatsKvTest : public ::testing::Test {
protected:
  void SetUp() override {
    NatsSettings settings;
    settings.servers = {server_.url()};
    auto connection = NatsConnection::connect(settings);
    ASSERT_TRUE(connection) << connection.error().message;
    connection_ = std::move(*connection);
    auto bucket = connection_->bucket("test_directory");
    ASSERT_TRUE(bucket) << bucket.error().message;
    bucket_ = *bucket;
  }

  testing::NatsServer server_;
  std::unique_ptr<NatsConnection> connection_;
  kvStore* bucket_ = nullptr;
};

TEST_F(NatsKvTest, CreateIfAbsentHasOneWinner) {
  auto first = kv_create(bucket_, "sys.actor", "node-a");
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_TRUE(first->has_value());
  auto second = kv_create(bucket_, "sys.actor", "node-b");
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_FALSE(second->has_value()) << "a second create of one key must lose";
  auto entry = kv_get(bucket_, "sys.actor");
  ASSERT_TRUE(entry && *entry);
  EXPECT_EQ((*entry)->value, "node-a");
  EXPECT_EQ((*entry)->revision, **first);
}

TEST_F(NatsKvTest, UpdateSucceedsOnlyAtTheRevisionRead) {
  auto created = kv_create(bucket_, "sys.x", "node-a");
  ASSERT_TRUE(created && *created);
  auto taken = kv_update(bucket_, "sys.x", "node-b", **created);
  ASSERT_TRUE(taken) << taken.error().message;
  ASSERT_TRUE(taken->has_value());
  auto stale = kv_update(bucket_, "sys.x", "node-c", **created);
  ASSERT_TRUE(stale) << stale.error().message;
  EXPECT_FALSE(stale->has_value()) << "an update at an old revision must lose";
  EXPECT_EQ((*kv_get(bucket_, "sys.x"))->value, "node-b");
}

TEST_F(NatsKvTest, AbsentKeyIsNotAnError) {
  auto entry = kv_get(bucket_, "sys.never");
  ASSERT_TRUE(entry) << entry.error().message;
  EXPECT_FALSE(entry->has_value());
}

TEST_F(NatsKvTest, RacingNodesAgreeOnOneOwner) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  std::vector<std::unique_ptr<NatsCluster>> nodes;
  for (const char* name : {"a", "b"}) {
    ClusterSettings settings;
    settings.nats.servers = {server_.url()};
    settings.node = make_node_name(name);
    settings.heartbeat = 100ms;
    settings.node_timeout = 1000ms;
    auto node = NatsCluster::create(settings);
    ASSERT_TRUE(node) << node.error().message;
    (*node)->attach(
        [](protocol::pb::InvocationRequest, int) -> Task<Result<protocol::pb::InvocationResponse>> {
          co_return fail(ErrorCode::kInternal, "not used");
        },
        [&](const statestore::ActorKey&) { return io.get_executor(); },
        []() -> Task<std::size_t> { co_return 0; }, [] {});
    std::vector<runtime::RegisteredActor> actors;
    for (int i = 0; i < 20; ++i) {
      actors.push_back(runtime::RegisteredActor{"counter-" + std::to_string(i), false, {}});
    }
    (*node)->registered("sys", std::move(actors));
    ASSERT_TRUE((*node)->start());
    nodes.push_back(std::move(*node));
  }
  // Each node hears the other within a few heartbeats.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while ((nodes[0]->nodes().size() < 2 || nodes[1]->nodes().size() < 2)
         && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(nodes[0]->nodes().size(), 2U);
  for (int round = 0; round < 20; ++round) {
    statestore::ActorKey key{"sys", "counter-" + std::to_string(round)};
    std::vector<std::future<std::string>> answers;
    for (auto& node : nodes) {
      answers.push_back(asio::co_spawn(
          io,
          [](NatsCluster* n, statestore::ActorKey k) -> Task<std::string> {
            auto placed = co_await n->locate(std::move(k));
            if (!placed) {
              co_return "error: " + placed.error().message;
            }
            co_return placed->node.empty() ? n->self() : placed->node;
          }(node.get(), key),
          asio::use_future));
    }
    auto first = answers[0].get();
    auto second = answers[1].get();
    EXPECT_EQ(first.rfind("error", 0), std::string::npos) << first;
    EXPECT_EQ(first, second) << "round " << round;
  }
  nodes.clear();
  work.reset();
  io.stop();
  runner.join();
}

}  // namespace
}  // namespace spawn::cluster
