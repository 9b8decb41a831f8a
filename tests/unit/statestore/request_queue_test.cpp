#include <memory>
#include <string>
#include <vector>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "statestore/store_requests.hpp"

namespace spawn::statestore {
namespace {

using Loaded = Result<std::optional<Snapshot>>;

// Queues a load of actor `name`; once resumed on `io`, its caller checks the snapshot and
// records the name in `resumed`.
void push_load(RequestQueue<ReadRequest>& queue, asio::io_context& io, const std::string& name,
               std::vector<std::string>& resumed) {
  auto handler = asio::bind_executor(io.get_executor(), [&resumed, name](Loaded loaded) {
    ASSERT_TRUE(loaded);
    ASSERT_TRUE(loaded->has_value());
    EXPECT_EQ((*loaded)->node, name);
    resumed.push_back(name);
  });
  queue.push(ReadRequest(
      LoadOp{.payload = Load{.key = ActorKey{.system = "system", .name = name}},
             .completion = make_completion<std::optional<Snapshot>>(std::move(handler))}));
}

// What a reader does: answers each load, here with a snapshot naming its actor.
void serve(std::vector<ReadRequest>& batch) {
  for (ReadRequest& request : batch) {
    auto& load = std::get<LoadOp>(request);
    Snapshot snapshot;
    snapshot.revision = 1;
    snapshot.node = load.payload.key.name;
    load.completion.set(std::optional<Snapshot>(std::move(snapshot)));
  }
}

std::vector<std::string> names(const std::string& prefix, int count) {
  std::vector<std::string> all;
  for (int i = 0; i < count; ++i) {
    all.push_back(prefix + std::to_string(i));
  }
  return all;
}

TEST(RequestQueueTest, ABatchVectorGoesBackToItsQueueOnceItsCallersAreResumed) {
  asio::io_context io;
  auto queue = std::make_shared<RequestQueue<ReadRequest>>();
  std::vector<std::string> resumed;
  for (const std::string& name : names("a", 8)) {
    push_load(*queue, io, name, resumed);
  }
  std::vector<ReadRequest> batch = queue->pop(64);
  ASSERT_EQ(batch.size(), 8U);
  serve(batch);
  post_completions(queue, std::move(batch));
  EXPECT_TRUE(resumed.empty());  // resumed on their executor, not by the store thread
  // run() returns only once every request is gone: the recycled vector keeps none alive (each
  // holds its caller's executor as outstanding work).
  io.run();
  EXPECT_EQ(resumed, names("a", 8));
  std::vector<ReadRequest> spare = queue->spare();
  EXPECT_TRUE(spare.empty());
  EXPECT_GE(spare.capacity(), 8U);
}

TEST(RequestQueueTest, ABatchTakenInPartsKeepsTheOrderAndResumesEveryCaller) {
  asio::io_context io;
  auto queue = std::make_shared<RequestQueue<ReadRequest>>();
  std::vector<std::string> resumed;
  for (const std::string& name : names("b", 10)) {
    push_load(*queue, io, name, resumed);
  }
  std::vector<ReadRequest> first = queue->pop(4);
  std::vector<ReadRequest> rest = queue->pop(64);
  ASSERT_EQ(first.size(), 4U);
  ASSERT_EQ(rest.size(), 6U);
  EXPECT_EQ(std::get<LoadOp>(first.front()).payload.key.name, "b0");
  EXPECT_EQ(std::get<LoadOp>(rest.front()).payload.key.name, "b4");
  serve(first);
  serve(rest);
  post_completions(queue, std::move(first));
  post_completions(queue, std::move(rest));
  io.run();
  EXPECT_EQ(resumed, names("b", 10));
}

TEST(RequestQueueTest, ABatchOfTwoExecutorsResumesEachCallerOnItsOwn) {
  asio::io_context one;
  asio::io_context two;
  auto queue = std::make_shared<RequestQueue<ReadRequest>>();
  std::vector<std::string> on_one;
  std::vector<std::string> on_two;
  for (int i = 0; i < 3; ++i) {
    push_load(*queue, one, "one" + std::to_string(i), on_one);
    push_load(*queue, two, "two" + std::to_string(i), on_two);
  }
  std::vector<ReadRequest> batch = queue->pop(64);
  ASSERT_EQ(batch.size(), 6U);
  serve(batch);
  post_completions(queue, std::move(batch));
  one.run();
  EXPECT_EQ(on_one, names("one", 3));
  EXPECT_TRUE(on_two.empty());
  two.run();
  EXPECT_EQ(on_two, names("two", 3));
}

}  // namespace
}  // namespace spawn::statestore
