#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "spawn/result.hpp"

#include "common/asio.hpp"
#include "protocol/messages.hpp"
#include "runtime/host.hpp"

namespace spawn::testing {

/// What every shard's FakeHost shares: the script and the record of calls.
struct HostScript {
  std::mutex mutex;
  std::function<Result<protocol::pb::ActorInvocationResponse>(const protocol::pb::ActorInvocation&)>
      handler;
  std::vector<protocol::pb::ActorInvocation> received;
  std::chrono::milliseconds delay{0};
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};

  std::vector<protocol::pb::ActorInvocation> calls() {
    std::lock_guard lock(mutex);
    return received;
  }

  int count(const std::string& action) {
    std::lock_guard lock(mutex);
    return static_cast<int>(std::count_if(received.begin(), received.end(), [&](const auto& i) {
      return i.action_name() == action;
    }));
  }
};

/// An in-process host: answers by script, optionally after a delay, and records every call.
class FakeHost final : public runtime::Host {
public:
  FakeHost(asio::any_io_executor executor, std::shared_ptr<HostScript> script)
      : executor_(std::move(executor)), script_(std::move(script)) {}

  Task<Result<void>> invoke(protocol::pb::ActorInvocation& invocation,
                            protocol::pb::ActorInvocationResponse& response) override {
    int now = ++script_->running;
    int seen = script_->max_running;
    while (now > seen && !script_->max_running.compare_exchange_weak(seen, now)) {
    }
    if (script_->delay.count() > 0) {
      asio::steady_timer timer(executor_, script_->delay);
      co_await timer.async_wait(kUseTask);
    }
    std::function<Result<protocol::pb::ActorInvocationResponse>(
        const protocol::pb::ActorInvocation&)>
        handler;
    {
      std::lock_guard lock(script_->mutex);
      script_->received.push_back(invocation);
      handler = script_->handler;
    }
    --script_->running;
    Result<protocol::pb::ActorInvocationResponse> answered = handler(invocation);
    if (!answered) {
      co_return std::move(answered).error();
    }
    response = std::move(*answered);  // copied when `response` is on an arena (the shard's)
    co_return ok();
  }

private:
  asio::any_io_executor executor_;
  std::shared_ptr<HostScript> script_;
};

}  // namespace spawn::testing
