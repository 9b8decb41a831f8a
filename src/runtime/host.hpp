#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "spawn/result.hpp"

#include "common/asio.hpp"
#include "protocol/messages.hpp"

namespace spawn::runtime {

/// The seam between the actor runtime and user code (DESIGN.md decision 1).
///
/// `HttpHost` calls a user function over HTTP (sidecar mode); `InProcessHost` calls C++ handlers
/// directly (embedded mode). One Host is made per shard and is only used from that shard's
/// thread, so implementations need no locks.
class Host {
public:
  virtual ~Host() = default;

  /// Runs one action of one actor in user code and answers in `response`: ok when its response
  /// is there. Suspends; completes on the calling shard. `invocation` stays the caller's (a retry
  /// sends it again) and lives until the call completes. Fails with kUnavailable (host
  /// unreachable), kTimeout (no answer in time) or kBadHostResponse (empty, undecodable, or no
  /// `updated_context`; PROTOCOL.md §4).
  ///
  /// `invocation` lives until the call completes. The host may take the parts of its
  /// `current_context` except the metadata (it is not used again), except when it fails with
  /// kUnavailable: then it is left as it was, for a retry. Everything else, the payload and the
  /// metadata included, is left as it was: the shard lends them from the request and takes them
  /// back.
  ///
  /// `response` is the caller's and lives until the call completes; it may be made on a protobuf
  /// arena the caller resets between calls (the shard's is: a host that parses its answer
  /// allocates its parts there). The host sets every field of the response it answers (parsing
  /// clears it first); on failure it is unspecified.
  virtual Task<Result<void>> invoke(protocol::pb::ActorInvocation& invocation,
                                    protocol::pb::ActorInvocationResponse& response) = 0;

  /// Runs the action at once, when this host needs nothing to wait for (an in-process host), and
  /// answers in `response`: returns ok (the response is in `response`) or the error invoke()
  /// would fail with, or nullopt when the call must be awaited with invoke() (`response` is then
  /// left as it was). Spares the shard the coroutine frames of an awaited call. The same contract
  /// as invoke() for `invocation`.
  ///
  /// `response` is the shard's, reused from call to call so that its messages and strings stay
  /// allocated: it may hold parts of an earlier call's response. The host sets every field of the
  /// response it answers (Dispatcher::dispatch() into a response); on failure it is unspecified.
  virtual std::optional<Result<void>> invoke_now(
      protocol::pb::ActorInvocation& /*invocation*/,
      protocol::pb::ActorInvocationResponse& /*response*/) {
    return std::nullopt;
  }
};

/// Makes the Host of one shard, bound to that shard's executor.
using HostFactory = std::function<std::unique_ptr<Host>(asio::any_io_executor)>;

}  // namespace spawn::runtime
