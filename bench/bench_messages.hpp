#pragma once

// The protobuf messages the load tools send to spawn-proxy: registrations of the bench actors and
// invocation requests. Shared by spawn-bench-requests (writes them for wrk) and
// spawn-bench-driver (sends them itself).

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "protocol/messages.hpp"

namespace spawn::bench {

/// The actions a counter actor registers; spawn-bench-host understands every one of them.
inline const std::vector<std::string>& counter_actions() {
  static const std::vector<std::string> kActions = {"inc", "tick"};
  return kActions;
}

/// Returns the name of actor `index` of a set: `prefix` and the index, zero-padded to 5 digits.
std::string actor_name(const std::string& prefix, std::size_t index);

/// Returns a registration of `count` stateful NAMED counter actors `<prefix>00000`... in
/// `system`, with the actions of counter_actions() and a deactivation timeout of
/// `deactivation_ms`, so that they stay active during a run.
protocol::pb::RegistrationRequest counters_registration(const std::string& system,
                                                        const std::string& prefix,
                                                        std::size_t count,
                                                        std::int64_t deactivation_ms);

/// Returns a registration for the broadcast fan-out: `subscribers` non-stateful NAMED actors
/// `<prefix>00000`... subscribed to `topic` with the action `receive`, and one publisher actor
/// `publisher` with the action `announce`.
protocol::pb::RegistrationRequest fanout_registration(
    const std::string& system, const std::string& prefix, std::size_t subscribers,
    const std::string& topic, const std::string& publisher, std::int64_t deactivation_ms);

/// Returns a synchronous invocation of `action` on `actor` with a noop payload and `metadata`.
protocol::pb::InvocationRequest invocation(
    const std::string& system, const std::string& actor, const std::string& action,
    const std::vector<std::pair<std::string, std::string>>& metadata = {});

/// Returns the ActorInvocation the proxy sends the host for invocation(system, actor, action,
/// metadata) of a counter actor that holds the value 1 (its 8-byte state, as spawn-bench-host
/// writes it).
protocol::pb::ActorInvocation host_invocation(
    const std::string& system, const std::string& actor, const std::string& action,
    const std::vector<std::pair<std::string, std::string>>& metadata = {});

/// Returns the proxy's invoke path for `actor` (the path parameters are informational; the
/// proxy routes by the body, PROTOCOL.md §3).
std::string invoke_path(const std::string& system, const std::string& actor);

}  // namespace spawn::bench
