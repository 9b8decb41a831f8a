#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "protocol/messages.hpp"

namespace spawn::runtime {

/// A registered actor as the runtime uses it: the `Actor` message as the host sent it, plus what
/// the runtime derives from it once at registration. Immutable and shared between shards.
class ActorDefinition {
public:
  /// Timeout applied when an actor names no deactivation strategy (PROTOCOL.md §5.3).
  static constexpr std::chrono::milliseconds kDefaultDeactivation{10000};
  /// Snapshot interval applied when a strategy names a timeout ≤ 0 (PROTOCOL.md §5.3).
  static constexpr std::chrono::milliseconds kDefaultSnapshot{2000};
  /// Pool size of a POOLED actor that does not ask for more than one instance.
  static constexpr int kDefaultPoolSize = 8;

  explicit ActorDefinition(protocol::pba::Actor actor);

  /// Returns the registration message, unchanged.
  const protocol::pba::Actor& actor() const { return actor_; }

  const std::string& name() const { return actor_.id().name(); }

  protocol::pba::Kind kind() const { return actor_.settings().kind(); }

  bool is_stateful() const { return actor_.settings().stateful(); }

  bool is_pooled() const { return kind() == protocol::pba::POOLED; }

  /// Returns true when `action` may be sent to the host: a registered action or a timer action.
  bool has_action(const std::string& action) const { return actions_.contains(action); }

  /// Returns true for the default get actions the proxy answers itself, i.e. `action` is one of
  /// get/Get/get_state/getState/GetState and the actor registered none of them (PROTOCOL.md §5.4).
  bool answers_get_itself(const std::string& action) const;

  /// Returns the init action to run at activation (first of init/Init/setup/Setup in
  /// registration order), if any.
  const std::optional<std::string>& init_action() const { return init_action_; }

  std::chrono::milliseconds deactivation_timeout() const { return deactivation_timeout_; }

  /// Returns the periodic snapshot interval; nullopt when the actor has no snapshot strategy.
  std::optional<std::chrono::milliseconds> snapshot_interval() const { return snapshot_interval_; }

  /// Returns the number of instances of a POOLED actor.
  int pool_size() const { return pool_size_; }

private:
  protocol::pba::Actor actor_;
  std::unordered_set<std::string> actions_;
  bool registers_get_ = false;
  std::optional<std::string> init_action_;
  std::chrono::milliseconds deactivation_timeout_ = kDefaultDeactivation;
  std::optional<std::chrono::milliseconds> snapshot_interval_;
  int pool_size_ = 1;
};

/// Returns true for get, Get, get_state, getState and GetState.
bool is_default_get_action(const std::string& action);

/// Returns how long an invocation may keep trying: metadata `request-timeout` in ms
/// (PROTOCOL.md §5.10), or `fallback` when it is absent or not a number.
std::chrono::milliseconds request_timeout(const protocol::pb::InvocationRequest& request,
                                          std::chrono::milliseconds fallback);

}  // namespace spawn::runtime
