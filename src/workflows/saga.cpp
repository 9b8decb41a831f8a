#include "workflows/saga.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include "protocol/status.hpp"
#include "runtime/scheduler.hpp"

namespace spawn::workflows {

namespace pb = protocol::pb;
namespace sg = ::spawn::saga;

namespace {

// Attempts per compensation before it counts as failed.
constexpr int kCompensationAttempts = 3;

std::string record_id(const std::string& saga_id) {
  return "saga-" + saga_id;
}

std::string describe(const sg::SagaStep& step, const std::string& action) {
  return "'" + action + "' on actor '" + step.actor().name() + "'";
}

}  // namespace

SagaEngine::SagaEngine(runtime::Runtime& runtime, std::chrono::milliseconds lease)
    : runtime_(runtime), lease_(lease) {
  runtime_.on_scheduled(std::string(kSystem), [this](statestore::ScheduledInvocation entry) {
    return recover(std::move(entry));
  });
}

bool SagaEngine::begin(const std::string& id) {
  std::lock_guard lock(mutex_);
  return running_.insert(id).second;
}

void SagaEngine::end(const std::string& id) {
  std::lock_guard lock(mutex_);
  running_.erase(id);
}

Task<Result<sg::SagaResponse>> SagaEngine::run(sg::SagaRequest request) {
  if (runtime_.is_shutting_down()) {
    co_return fail(ErrorCode::kShuttingDown, "proxy is shutting down: saga refused");
  }
  if (request.steps_size() == 0) {
    co_return fail(ErrorCode::kInvalidArgument, "saga: no steps");
  }
  for (int i = 0; i < request.steps_size(); ++i) {
    const auto& step = request.steps(i);
    if (step.actor().name().empty() || step.action().empty()) {
      co_return fail(ErrorCode::kInvalidArgument,
                     "saga step " + std::to_string(i) + ": needs an actor name and an action");
    }
    if (step.actor().system().empty() && request.system().empty()) {
      co_return fail(ErrorCode::kInvalidArgument,
                     "saga step " + std::to_string(i) + ": names no actor system");
    }
  }
  if (request.id().empty()) {
    request.set_id(runtime::Scheduler::new_id());
  }
  const std::string id = request.id();
  if (!begin(id)) {
    co_return fail(ErrorCode::kInvalidArgument, "saga " + id + " is already running");
  }

  sg::SagaResponse response;
  response.set_id(id);
  sg::SagaLog log;
  *log.mutable_request() = request;
  for (int k = 0; k < request.steps_size(); ++k) {
    const auto& step = request.steps(k);
    log.set_started(k + 1);
    Result<pb::InvocationResponse> result = fail(ErrorCode::kInternal, "not run");
    auto recorded = co_await record(log);
    if (recorded) {
      result = co_await invoke_step(request, step, false);
    } else {
      result = std::move(recorded).error();  // not durable: do not run the step
    }
    if (result) {
      *response.add_results() = result->value();
      continue;
    }
    // Step k failed and changed nothing; undo the steps before it, newest first.
    auto errors = co_await compensate(request, k);
    response.set_failed_step(k);
    response.set_outcome(errors.empty() ? sg::COMPENSATED : sg::COMPENSATION_FAILED);
    for (auto& error : errors) {
      response.add_compensation_errors(std::move(error));
    }
    std::string message =
        "saga " + id + ": step " + std::to_string(k) + " (" + describe(step, step.action())
        + ") failed: " + result.error().message
        + (errors.empty() ? "; earlier steps compensated"
                          : "; " + std::to_string(errors.size()) + " compensation(s) failed");
    spdlog::warn("{}", message);
    *response.mutable_status() = protocol::request_status(fail(ErrorCode::kInternal, message));
    co_await forget(id);
    end(id);
    co_return response;
  }
  response.set_failed_step(-1);
  response.set_outcome(sg::COMPLETED);
  *response.mutable_status() = protocol::ok_status("saga " + id + " completed");
  co_await forget(id);
  end(id);
  co_return response;
}

Task<Result<pb::InvocationResponse>> SagaEngine::invoke_step(const sg::SagaRequest& saga,
                                                             const sg::SagaStep& step,
                                                             bool compensation) {
  pb::InvocationRequest request;
  const auto& system = step.actor().system().empty() ? saga.system() : step.actor().system();
  request.mutable_system()->set_name(system);
  request.mutable_actor()->mutable_id()->set_name(step.actor().name());
  request.mutable_actor()->mutable_id()->set_system(system);
  request.set_action_name(compensation ? step.compensation() : step.action());
  *request.mutable_metadata() = saga.metadata();
  (*request.mutable_metadata())["saga-id"] = saga.id();
  if (compensation && step.has_compensation_payload()) {
    *request.mutable_value() = step.compensation_payload();
  } else if (step.has_payload()) {
    *request.mutable_value() = step.payload();
  } else {
    request.mutable_noop();
  }
  co_return co_await runtime_.invoke(std::move(request));
}

Task<std::vector<std::string>> SagaEngine::compensate(const sg::SagaRequest& saga, int count) {
  std::vector<std::string> errors;
  for (int i = count - 1; i >= 0; --i) {
    const auto& step = saga.steps(i);
    if (step.compensation().empty()) {
      continue;
    }
    Result<pb::InvocationResponse> result = fail(ErrorCode::kInternal, "not run");
    auto backoff = std::chrono::milliseconds(100);
    for (int attempt = 1; attempt <= kCompensationAttempts; ++attempt) {
      result = co_await invoke_step(saga, step, true);
      if (result || result.error().code == ErrorCode::kShuttingDown) {
        break;
      }
      if (attempt < kCompensationAttempts) {
        asio::steady_timer timer(co_await asio::this_coro::executor, backoff);
        co_await timer.async_wait(kUseTask);
        backoff *= 2;
      }
    }
    if (!result) {
      auto error = "step " + std::to_string(i) + " (" + describe(step, step.compensation())
                   + "): " + result.error().message;
      spdlog::error("saga {}: compensation failed: {}", saga.id(), error);
      errors.push_back(std::move(error));
    }
  }
  co_return errors;
}

Task<Result<void>> SagaEngine::record(const sg::SagaLog& log) {
  auto* store = runtime_.store();
  if (store == nullptr) {
    co_return ok();
  }
  statestore::ScheduledInvocation entry;
  entry.id = record_id(log.request().id());
  entry.due_ms = runtime::epoch_ms() + lease_.count();
  entry.system = std::string(kSystem);
  entry.actor = log.request().id();
  entry.request = log.SerializeAsString();
  auto stored = co_await store->put_scheduled(std::move(entry));
  if (!stored) {
    co_return std::move(stored).error().with_context("record saga " + log.request().id());
  }
  co_return ok();
}

Task<void> SagaEngine::forget(std::string id) {
  auto* store = runtime_.store();
  if (store == nullptr) {
    co_return;
  }
  std::vector<std::string> ids(1, record_id(id));
  auto removed = co_await store->remove_scheduled(std::move(ids));
  if (!removed) {
    spdlog::error(
        "saga {} ended but its record could not be removed (it will be compensated "
        "again after {} ms): {}",
        id, lease_.count(), removed.error().message);
  }
}

Task<Result<bool>> SagaEngine::recover(statestore::ScheduledInvocation entry) {
  sg::SagaLog log;
  if (!log.ParseFromString(entry.request)) {
    co_return fail(ErrorCode::kDataLoss, "saga record " + entry.id + " cannot be read");
  }
  const auto& id = log.request().id();
  if (!begin(id)) {
    // Still running here (a slow step): renew the record instead of recovering it.
    auto renewed = co_await record(log);
    if (!renewed) {
      co_return std::move(renewed).error();
    }
    co_return false;
  }
  spdlog::warn("saga {}: found unfinished after a restart; compensating {} started step(s)", id,
               log.started());
  auto errors = co_await compensate(log.request(), log.started());
  end(id);
  if (errors.empty()) {
    spdlog::info("saga {}: compensated", id);
  }
  co_return true;
}

}  // namespace spawn::workflows
