#pragma once

// Not API: an actor as the SDK records it while `ActorSystem::actor()` builds it, and as both
// hosts (in-process and HTTP) dispatch to it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <google/protobuf/any.pb.h>

#include "spawn/actor_id.hpp"
#include "spawn/detail/invocation_view.hpp"
#include "spawn/detail/value_data.hpp"
#include "spawn/result.hpp"

namespace spawn {

/// How instances of an actor come to be (PROTOCOL.md §5.2).
enum class ActorKind : std::uint8_t {
  /// One instance per name, registered up front.
  kNamed,
  /// A template: instances are spawned at run time under their own names.
  kUnnamed,
  /// A pool of stateless instances serving requests concurrently.
  kPooled,
};

}  // namespace spawn

namespace spawn::detail {

/// Runs one action: reads the invocation, returns the erased Value or an error. May throw; the
/// SDK catches.
using ActionFn = std::function<Result<ValueData>(const InvocationView&)>;

struct ActionSpec {
  ActionFn fn;
  /// The type URL the input must have; empty when the action takes no input or any input.
  std::string input_type_url;
};

struct ActorSpec {
  std::string name;
  ActorKind kind = ActorKind::kNamed;
  bool stateful = false;
  std::optional<std::chrono::milliseconds> deactivate_after;
  std::optional<std::chrono::milliseconds> snapshot_every;
  int min_pool_size = 1;
  int max_pool_size = 0;
  std::optional<google::protobuf::Any> initial_state;
  StringMap tags;
  /// Type URL of the state ("" for NoState).
  std::string state_type_url;
  /// Action names in registration order (init is looked up in this order), and their handlers.
  std::vector<std::string> action_order;
  std::unordered_map<std::string, ActionSpec> actions;
  std::vector<std::pair<std::string, std::chrono::milliseconds>> timers;  // action, period
  std::vector<std::pair<std::string, std::string>> channels;              // topic, action

  void add_action(std::string action, ActionSpec spec) {
    if (!actions.contains(action)) {
      action_order.push_back(action);
    }
    actions.insert_or_assign(std::move(action), std::move(spec));
  }

  const ActionSpec* find(const std::string& action) const {
    auto it = actions.find(action);
    return it == actions.end() ? nullptr : &it->second;
  }
};

struct SystemSpec {
  std::string name;
  /// In the order first defined; a name defined again keeps its place.
  std::vector<std::unique_ptr<ActorSpec>> actors;
  /// Where each name is in `actors`, so that defining N actors takes O(N), not O(N²).
  std::unordered_map<std::string, std::size_t> positions;

  /// Adds `spec`, replacing the actor of the same name if there is one. Returns the added spec.
  ActorSpec& define(std::unique_ptr<ActorSpec> spec) {
    const auto [at, added] = positions.try_emplace(spec->name, actors.size());
    if (added) {
      actors.push_back(std::move(spec));
    } else {
      actors[at->second] = std::move(spec);
    }
    return *actors[at->second];
  }

  ActorSpec* find(const std::string& actor) const {
    const auto at = positions.find(actor);
    return at == positions.end() ? nullptr : actors[at->second].get();
  }
};

}  // namespace spawn::detail
