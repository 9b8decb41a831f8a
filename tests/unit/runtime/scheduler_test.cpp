#include "runtime/scheduler.hpp"

#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "statestore/memory/memory_store.hpp"

namespace spawn::runtime {
namespace {

using namespace std::chrono_literals;
using statestore::ScheduledInvocation;

/// A store whose due_scheduled() answers late: it reads, then waits before answering, like a
/// database query that is slow under load. Everything else goes straight to memory.
class SlowQueryStore final : public statestore::Store {
public:
  Task<Result<std::optional<statestore::Snapshot>>> load(statestore::ActorKey key) override {
    return inner_.load(std::move(key));
  }

  Task<Result<std::optional<statestore::Snapshot>>> load_revision(statestore::ActorKey key,
                                                                  std::int64_t revision) override {
    return inner_.load_revision(std::move(key), revision);
  }

  Task<Result<std::int64_t>> save(statestore::ActorKey key, statestore::Snapshot snapshot,
                                  std::int64_t expected) override {
    return inner_.save(std::move(key), std::move(snapshot), expected);
  }

  Task<Result<void>> put_scheduled(ScheduledInvocation invocation) override {
    return inner_.put_scheduled(std::move(invocation));
  }

  Task<Result<std::vector<ScheduledInvocation>>> due_scheduled(std::int64_t until_ms,
                                                               std::size_t limit) override {
    auto read = co_await inner_.due_scheduled(until_ms, limit);
    asio::steady_timer timer(co_await asio::this_coro::executor, 20ms);
    co_await timer.async_wait(kUseTask);
    co_return read;
  }

  Task<Result<void>> remove_scheduled(std::vector<std::string> ids) override {
    return inner_.remove_scheduled(std::move(ids));
  }

  Task<Result<std::int64_t>> count_scheduled() override { return inner_.count_scheduled(); }

  statestore::memory::InMemoryStore inner_;
};

class SchedulerTest : public ::testing::Test {
protected:
  template <class T>
  T run(Task<T> task) {
    asio::io_context io;
    auto future = asio::co_spawn(io, std::move(task), asio::use_future);
    io.run();
    return future.get();
  }

  /// Counts each run by id; a run takes 5 ms, so that queries overlap with runs.
  Scheduler::Runner counting_runner() {
    return [this](ScheduledInvocation entry) -> Task<Result<bool>> {
      {
        std::lock_guard lock(mutex_);
        ++runs_[entry.id];
      }
      asio::steady_timer timer(co_await asio::this_coro::executor, 5ms);
      co_await timer.async_wait(kUseTask);
      co_return true;
    };
  }

  std::map<std::string, int> runs() {
    std::lock_guard lock(mutex_);
    return runs_;
  }

  SlowQueryStore store_;
  asio::io_context io_;
  std::mutex mutex_;
  std::map<std::string, int> runs_;
};

TEST_F(SchedulerTest, EveryEntryRunsOnceEvenWhenQueriesAnswerLate) {
  constexpr int kEntries = 3000;
  for (int i = 0; i < kEntries; ++i) {
    ASSERT_TRUE(run(store_.put_scheduled(
        ScheduledInvocation{"id-" + std::to_string(i), epoch_ms() - 1, "s", "a", "r"})));
  }
  SchedulerOptions options;
  options.poll = 5ms;
  options.batch = 100;
  Scheduler scheduler(io_.get_executor(), store_, counting_runner(), options);
  scheduler.start();
  std::thread loop([this] { io_.run_for(3s); });
  for (int i = 0; i < 500 && *run(store_.count_scheduled()) > 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  std::this_thread::sleep_for(100ms);  // a few more polls: nothing may run again
  scheduler.stop();
  io_.stop();
  loop.join();
  auto counted = runs();
  EXPECT_EQ(counted.size(), static_cast<std::size_t>(kEntries));
  int twice = 0;
  for (const auto& [id, n] : counted) {
    twice += n > 1 ? 1 : 0;
  }
  EXPECT_EQ(twice, 0) << "entries that ran more than once";
}

TEST_F(SchedulerTest, KeepsEntriesThatFailBecauseOfShutdownAndRemovesTheOthers) {
  ASSERT_TRUE(run(store_.put_scheduled(ScheduledInvocation{"keep", epoch_ms() - 1, "s", "a", ""})));
  ASSERT_TRUE(run(store_.put_scheduled(ScheduledInvocation{"drop", epoch_ms() - 1, "s", "a", ""})));
  SchedulerOptions options;
  options.poll = 5ms;
  Scheduler scheduler(
      io_.get_executor(), store_,
      [](ScheduledInvocation entry) -> Task<Result<bool>> {
        co_return fail(entry.id == "keep" ? ErrorCode::kShuttingDown : ErrorCode::kBadHostResponse,
                       "refused");
      },
      options);
  scheduler.start();
  std::thread loop([this] { io_.run_for(300ms); });
  loop.join();
  scheduler.stop();
  auto left = run(store_.due_scheduled(epoch_ms(), 10));
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 1U);
  EXPECT_EQ(left->front().id, "keep");
}

}  // namespace
}  // namespace spawn::runtime
