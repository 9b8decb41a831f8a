#include "runtime/scheduler.hpp"

#include <array>
#include <random>

#include <boost/asio/post.hpp>
#include <boost/asio/system_timer.hpp>
#include <spdlog/spdlog.h>

namespace spawn::runtime {

std::int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Scheduler::new_id() {
  thread_local std::mt19937_64 random(std::random_device{}());
  static constexpr std::array<char, 16> kHex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                                '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  std::string id;
  for (int word = 0; word < 2; ++word) {
    auto bits = random();
    for (int i = 0; i < 16; ++i) {
      id.push_back(kHex[bits & 0xF]);
      bits >>= 4;
    }
  }
  return id;
}

Scheduler::Scheduler(asio::any_io_executor executor, statestore::Store& store, Runner runner,
                     SchedulerOptions options)
    : executor_(executor),
      store_(store),
      runner_(std::move(runner)),
      options_(options),
      wake_(executor) {}

void Scheduler::start() {
  asio::co_spawn(executor_, run(), [](std::exception_ptr e) {
    if (e) {
      spdlog::error("scheduler stopped by an unexpected exception");
    }
  });
}

void Scheduler::stop() {
  stopped_ = true;
  asio::post(executor_, [this] { wake_.cancel(); });
}

Task<Result<void>> Scheduler::add(statestore::ScheduledInvocation invocation) {
  auto due = invocation.due_ms;
  auto stored = co_await store_.put_scheduled(std::move(invocation));
  if (!stored) {
    co_return std::move(stored).error().with_context("schedule invocation");
  }
  if (due <= epoch_ms() + options_.poll.count()) {
    asio::post(executor_, [this] { wake_.cancel(); });
  }
  co_return ok();
}

Task<void> Scheduler::run() {
  while (!stopped_) {
    if (in_flight_.size() >= options_.max_in_flight) {
      waiting_for_room_ = true;
      wake_.expires_after(options_.poll);
      co_await wake_.async_wait(kUseTask);
      waiting_for_room_ = false;
      continue;
    }
    if (gate_ && !gate_()) {
      wake_.expires_after(options_.poll);
      co_await wake_.async_wait(kUseTask);
      continue;
    }
    querying_ = true;
    auto due = co_await store_.due_scheduled(epoch_ms() + options_.poll.count(),
                                             in_flight_.size() + options_.batch);
    querying_ = false;
    std::size_t fresh = 0;
    if (!due) {
      spdlog::warn("scheduler: reading due invocations failed: {}", due.error().message);
    } else {
      for (auto& entry : *due) {
        if (stopped_) {
          break;
        }
        if (removed_during_query_.contains(entry.id)) {
          continue;  // ran and was removed while this answer was being read
        }
        if (in_flight_.insert(entry.id).second) {
          ++fresh;
          asio::co_spawn(executor_, fire(std::move(entry)), [](std::exception_ptr e) {
            if (e) {
              spdlog::error("scheduler: a run ended with an unexpected exception");
            }
          });
        }
      }
    }
    removed_during_query_.clear();
    if (fresh >= options_.batch) {
      continue;  // more are waiting
    }
    wake_.expires_after(options_.poll);
    co_await wake_.async_wait(kUseTask);
  }
}

Task<void> Scheduler::fire(statestore::ScheduledInvocation entry) {
  if (entry.due_ms > epoch_ms()) {
    asio::system_timer timer(
        executor_, std::chrono::system_clock::time_point(std::chrono::milliseconds(entry.due_ms)));
    co_await timer.async_wait(kUseTask);
  }
  bool remove = true;
  for (;;) {
    if (stopped_ || (gate_ && !gate_())) {
      remove = false;  // stays stored: this node stopped running them (or another one took over)
      break;
    }
    auto ran = co_await runner_(entry);
    if (ran) {
      remove = *ran;
      break;
    }
    if (ran.error().code == ErrorCode::kShuttingDown) {
      remove = false;
      break;
    }
    auto late = std::chrono::milliseconds(epoch_ms() - entry.due_ms);
    const bool retryable =
        ran.error().code == ErrorCode::kNotFound || ran.error().code == ErrorCode::kUnavailable;
    if (retryable && late < options_.give_up_after) {
      spdlog::debug("scheduled id={} actor={}/{} not runnable yet ({}); retrying", entry.id,
                    entry.system, entry.actor, ran.error().message);
      asio::steady_timer timer(executor_, options_.retry);
      co_await timer.async_wait(kUseTask);
      continue;
    }
    spdlog::error("scheduled invocation id={} on actor {}/{} failed and is dropped: {}", entry.id,
                  entry.system, entry.actor, ran.error().message);
    break;
  }
  if (remove) {
    std::vector<std::string> ids(1, entry.id);
    auto removed = co_await store_.remove_scheduled(std::move(ids));
    if (!removed) {
      spdlog::error(
          "scheduled invocation id={} ran but could not be removed (it may run again): {}",
          entry.id, removed.error().message);
    }
  }
  if (querying_) {
    removed_during_query_.insert(entry.id);
  }
  in_flight_.erase(entry.id);
  if (waiting_for_room_ && in_flight_.size() < options_.max_in_flight / 2) {
    wake_.cancel();
  }
}

}  // namespace spawn::runtime
