#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "spawn/result.hpp"

#include "sdk/dispatcher.hpp"

namespace spawn::sdk {

/// The user-function side of sidecar mode: serves `POST /api/v1/actors/actions` for a
/// spawn-proxy (PROTOCOL.md §4) over HTTP/1.1 keep-alive, on `threads` threads, so the proxy's
/// concurrent calls (one per actor at a time) run concurrently.
///
/// Answers: 200 with the `ActorInvocationResponse`; 404 with an empty body for an actor or
/// action this program does not define (the proxy reports it as an error to the caller rather
/// than a silent success); 400 with an empty body when the handler throws or fails, as the Node
/// SDK's host does (the proxy reports "host returned an empty body (HTTP 400)"); 400 text for a
/// body that is not an ActorInvocation; 404 text for any other path. Each failure is logged here
/// with its reason.
class HostServer {
public:
  HostServer(std::shared_ptr<const Dispatcher> dispatcher, std::string bind_address,
             std::uint16_t port, std::size_t threads);
  ~HostServer();
  HostServer(const HostServer&) = delete;
  HostServer& operator=(const HostServer&) = delete;

  /// Binds and starts serving. kUnavailable when the address cannot be bound.
  Result<void> start();

  /// Returns the bound port (after start()).
  std::uint16_t port() const;

  /// Stops accepting and serving; joins the threads. Idempotent.
  void stop();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spawn::sdk
