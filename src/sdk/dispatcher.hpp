#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "spawn/detail/actor_spec.hpp"
#include "spawn/result.hpp"

#include "protocol/messages.hpp"

namespace spawn::sdk {

/// Runs actions of one actor system's C++ handlers: what both hosts (in-process and HTTP) call.
/// Immutable once made; dispatch() may run on any number of threads at once.
class Dispatcher {
public:
  /// Checks `spec` and makes its dispatcher. kInvalidArgument when the system or an actor has no
  /// name, or a timer or subscription names an action the actor does not have, or a timer
  /// period is not positive.
  static Result<std::shared_ptr<const Dispatcher>> make(
      std::shared_ptr<const detail::SystemSpec> spec);

  const detail::SystemSpec& spec() const { return *spec_; }

  const std::string& system() const { return spec_->name; }

  /// Returns the actor registered as `name` (not a spawned child); null when there is none.
  const detail::ActorSpec* actor(const std::string& name) const;

  /// Returns the registration of every actor (PROTOCOL.md §2.1), for the runtime or a proxy.
  protocol::pba::ActorSystem registration() const;

  /// Runs the action `invocation` names: looks the handler up by actor name, then by parent
  /// (spawned children), calls it on this thread and builds the response. Never throws.
  ///
  /// Fails with kNotFound when no actor or action matches; kBadHostResponse when the handler
  /// threw, returned an error, or could not read its state or input (the message says which).
  ///
  /// The response takes the current tags from `invocation` when the action leaves them as they
  /// are; the rest of it is left as it was (runtime::Host's contract). Its informational
  /// `actor_name` and `actor_system` are left unset (the HTTP host sets them).
  Result<protocol::pb::ActorInvocationResponse> dispatch(
      protocol::pb::ActorInvocation& invocation) const;

  /// dispatch() into `response`, which may hold an earlier call's response (its messages and
  /// strings are reused): every field a handler's answer has (the updated context's tags and
  /// state, the payload, the checkpoint, the workflow) is set; the others are left as they were.
  /// On failure `response` is unspecified.
  Result<void> dispatch(protocol::pb::ActorInvocation& invocation,
                        protocol::pb::ActorInvocationResponse& response) const;

  Result<protocol::pb::ActorInvocationResponse> dispatch(
      protocol::pb::ActorInvocation&& invocation) const {
    return dispatch(invocation);
  }

  /// Returns true while the calling thread runs a handler (Client refuses such calls).
  static bool in_handler();

private:
  explicit Dispatcher(std::shared_ptr<const detail::SystemSpec> spec);

  std::shared_ptr<const detail::SystemSpec> spec_;
  std::unordered_map<std::string, const detail::ActorSpec*> actors_;
};

}  // namespace spawn::sdk
