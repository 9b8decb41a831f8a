#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "spawn/client.hpp"
#include "spawn/result.hpp"

#include "protocol/messages.hpp"
#include "sdk/dispatcher.hpp"

namespace spawn::sdk {

/// How a Client reaches the runtime: directly (embedded) or through the proxy's HTTP API.
/// Implementations are thread-safe and block the calling thread.
class Transport {
public:
  virtual ~Transport() = default;

  /// Runs `request`; a protocol error (status not OK) comes back as an Error.
  virtual Result<protocol::pb::InvocationResponse> invoke(
      protocol::pb::InvocationRequest request) = 0;

  /// Spawns `ids` (PROTOCOL.md §5.7).
  virtual Result<void> spawn(std::string system, std::vector<protocol::pba::ActorId> ids,
                             std::optional<std::int64_t> revision) = 0;
};

}  // namespace spawn::sdk

namespace spawn::detail {

/// What every Client handle of one Node shares: the node's system (for checks done before
/// sending) and its transport.
class ClientCore {
public:
  ClientCore(std::shared_ptr<const sdk::Dispatcher> dispatcher,
             std::shared_ptr<sdk::Transport> transport)
      : dispatcher_(std::move(dispatcher)), transport_(std::move(transport)) {}

  const std::string& system() const { return dispatcher_->system(); }

  Result<std::optional<google::protobuf::Any>> call(CallSpec spec) const;

  Result<void> spawn(std::string_view name, std::string_view parent,
                     const SpawnOptions& options) const;

private:
  Result<void> check(const CallSpec& spec, protocol::pb::InvocationRequest& request) const;

  std::shared_ptr<const sdk::Dispatcher> dispatcher_;
  std::shared_ptr<sdk::Transport> transport_;
};

}  // namespace spawn::detail
