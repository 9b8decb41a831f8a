#pragma once

#include <map>
#include <string>

namespace spawn {

/// The identity of an actor instance: its name and actor system, and for a child spawned from an
/// unnamed actor, the name of that template (`parent`).
struct ActorId {
  std::string name{};
  std::string system{};
  /// The unnamed actor this instance was spawned from; empty for named and pooled actors.
  std::string parent{};

  friend bool operator==(const ActorId&, const ActorId&) = default;
};

/// Per-invocation metadata or persistent tags as the caller writes them: string keys and values.
using StringMap = std::map<std::string, std::string>;

}  // namespace spawn
