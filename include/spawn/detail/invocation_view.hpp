#pragma once

// Not API: what a handler's `Context` reads from the wire `ActorInvocation`, without exposing
// the protocol types in public headers.

#include <optional>
#include <string>

#include <google/protobuf/any.pb.h>
#include <google/protobuf/map.h>

#include "spawn/actor_id.hpp"

namespace eigr::functions::protocol {
class ActorInvocation;
}  // namespace eigr::functions::protocol

namespace spawn::detail {

/// Tags and metadata as they arrive: a protobuf map, read without copying.
using WireMap = google::protobuf::Map<std::string, std::string>;

/// A read-only view of one invocation for the duration of a handler call.
class InvocationView {
public:
  explicit InvocationView(const eigr::functions::protocol::ActorInvocation& invocation)
      : invocation_(invocation) {}

  const std::string& action() const;
  const std::string& actor_name() const;
  const std::string& system() const;
  /// Null when the actor has no state yet.
  const google::protobuf::Any* state() const;
  /// Null for a noop or missing payload.
  const google::protobuf::Any* payload() const;
  const WireMap& tags() const;
  const WireMap& metadata() const;
  ActorId self() const;
  std::optional<ActorId> caller() const;

private:
  const eigr::functions::protocol::ActorInvocation& invocation_;
};

}  // namespace spawn::detail
