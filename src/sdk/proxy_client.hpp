#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "spawn/result.hpp"

#include "protocol/messages.hpp"
#include "sdk/client_core.hpp"

namespace spawn::sdk {

/// A blocking client of the proxy's HTTP API (PROTOCOL.md §3), as any Spawn SDK speaks it:
/// protobuf bodies over pooled HTTP/1.1 keep-alive connections. The I/O runs on a thread of its
/// own; invoke() answers on that thread, the other calls block their caller. Thread-safe.
class ProxyClient {
public:
  /// At most `max_connections` connections are open at once; further calls wait for one (in
  /// order, within their deadline).
  ProxyClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout,
              std::size_t max_connections);
  ~ProxyClient();
  ProxyClient(const ProxyClient&) = delete;
  ProxyClient& operator=(const ProxyClient&) = delete;

  /// Returns "host:port".
  const std::string& authority() const;

  /// POST /api/v1/system. kUnavailable / kTimeout when the proxy cannot be reached;
  /// kInvalidArgument when it refuses the registration (the message is its reason).
  Result<void> register_system(const protocol::pb::RegistrationRequest& request);

  /// POST /api/v1/system/{system}/actors/{actor}/invoke; returns at once and `done` gets the
  /// response on the I/O thread. A non-OK status becomes an Error whose code is derived from the
  /// proxy's message and HTTP status (kNotFound, kBadHostResponse, ...).
  void invoke(const protocol::pb::InvocationRequest& request, ReplyHandler done);

  /// POST /api/v1/system/{system}/actors/spawn[?revision=N].
  Result<void> spawn(const std::string& system, const protocol::pb::SpawnRequest& request,
                     std::optional<std::int64_t> revision);

  /// Fails every later call with kShuttingDown.
  void close();

  /// Waits until no invoke() is in flight or `max_wait` passed; returns whether none is.
  bool wait_idle_for(std::chrono::milliseconds max_wait);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Returns the Error a proxy's non-OK `status` stands for: the proxy sends only a message (and
/// an HTTP status), so the code is recovered from both, matching what embedded mode returns.
Error error_from_proxy(unsigned http_status, const protocol::pb::RequestStatus& status);

}  // namespace spawn::sdk
