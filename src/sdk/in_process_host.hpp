#pragma once

#include <memory>
#include <optional>

#include "spawn/result.hpp"

#include "common/asio.hpp"
#include "protocol/messages.hpp"
#include "runtime/host.hpp"
#include "sdk/dispatcher.hpp"

namespace spawn::sdk {

/// The runtime::Host of embedded mode (DESIGN.md decision 1): runs the C++ handlers directly on
/// the shard that owns the actor. No HTTP and no serialisation: the invocation is handed to the
/// handler as it is and the response is built in place, in the shard's reused one when it answers
/// at once (tags are moved, not copied; an unchanged state is not sent back at all).
///
/// A handler runs synchronously on the shard thread, so a slow handler delays the other actors
/// of its shard, exactly as one actor's invocations wait for each other.
class InProcessHost final : public runtime::Host {
public:
  explicit InProcessHost(std::shared_ptr<const Dispatcher> dispatcher)
      : dispatcher_(std::move(dispatcher)) {}

  /// Runs the action into `response`; fails as Dispatcher::dispatch() does. Completes without
  /// suspending.
  Task<Result<void>> invoke(protocol::pb::ActorInvocation& invocation,
                            protocol::pb::ActorInvocationResponse& response) override;

  /// Runs the action here and now (always: a handler never waits).
  std::optional<Result<void>> invoke_now(protocol::pb::ActorInvocation& invocation,
                                         protocol::pb::ActorInvocationResponse& response) override {
    return dispatcher_->dispatch(invocation, response);
  }

private:
  std::shared_ptr<const Dispatcher> dispatcher_;
};

/// Returns a factory that gives every shard an InProcessHost over `dispatcher`.
runtime::HostFactory make_in_process_host_factory(std::shared_ptr<const Dispatcher> dispatcher);

}  // namespace spawn::sdk
