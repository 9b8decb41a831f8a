#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "spawn/result.hpp"
#include "spawn/saga.pb.h"

#include "common/asio.hpp"
#include "runtime/runtime.hpp"
#include "statestore/store.hpp"

namespace spawn::workflows {

/// Runs sagas: steps (actor actions) in order, and when one fails, the compensations of the steps
/// before it in reverse order (docs/workflows.md).
///
/// A running saga is recorded in the statestore (as a stored invocation of the reserved system
/// "__saga") before each step and forgotten when it ends. If the process dies mid-saga, the record
/// comes due after `lease` and the saga is compensated from where it was, including the step that
/// may have been under way; compensations must therefore tolerate undoing a step that never took
/// effect. Thread-safe; run() may be awaited from any executor.
class SagaEngine {
public:
  static constexpr std::string_view kSystem = "__saga";

  /// Registers the recovery of "__saga" records with `runtime`; construct before runtime.start().
  SagaEngine(runtime::Runtime& runtime, std::chrono::milliseconds lease = std::chrono::seconds(30));

  /// Runs `request` to its end and returns the outcome. Errors are for requests that cannot run
  /// at all (kInvalidArgument: no steps, a step without actor or action, the same id already
  /// running; kShuttingDown); a failed step is an outcome (COMPENSATED or COMPENSATION_FAILED)
  /// with status ERROR, not an Error.
  Task<Result<::spawn::saga::SagaResponse>> run(::spawn::saga::SagaRequest request);

private:
  Task<Result<bool>> recover(statestore::ScheduledInvocation entry);
  Task<Result<void>> record(const ::spawn::saga::SagaLog& log);
  Task<void> forget(std::string id);
  Task<Result<protocol::pb::InvocationResponse>> invoke_step(const ::spawn::saga::SagaRequest& saga,
                                                             const ::spawn::saga::SagaStep& step,
                                                             bool compensation);
  Task<std::vector<std::string>> compensate(const ::spawn::saga::SagaRequest& saga, int count);
  bool begin(const std::string& id);
  void end(const std::string& id);

  runtime::Runtime& runtime_;
  std::chrono::milliseconds lease_;
  std::mutex mutex_;  // guards running_
  std::unordered_set<std::string> running_;
};

}  // namespace spawn::workflows
