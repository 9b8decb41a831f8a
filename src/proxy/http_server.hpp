#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spawn/result.hpp"

#include "common/asio.hpp"
#include "proxy/metrics.hpp"
#include "runtime/runtime.hpp"
#include "workflows/saga.hpp"

namespace spawn::proxy {

struct HttpServerOptions {
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 9001;
  std::size_t max_body_bytes = 8 * 1024 * 1024;
};

/// The proxy's HTTP/1.1 API (PROTOCOL.md §3): one listener per shard on the same port
/// (SO_REUSEPORT), so a connection is served entirely on the shard that accepted it.
///
/// Every request body is untrusted; every error is answered with a protobuf of the endpoint's
/// response type (PROTOCOL.md §5.10) and never ends the process.
class HttpServer {
public:
  /// `sagas` serves POST /api/v1/system/{system}/sagas; both must outlive the server.
  HttpServer(runtime::Runtime& runtime, workflows::SagaEngine& sagas, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds and starts accepting on every shard. kUnavailable when the address cannot be bound.
  Result<void> start();

  /// Makes readiness answer 503 (draining) or 200.
  void set_ready(bool ready) { ready_ = ready; }

  /// Stops accepting new connections; open ones are served until they close.
  void close_listeners();

  Metrics& metrics() { return metrics_; }

private:
  struct Listener;

  runtime::Runtime& runtime_;
  workflows::SagaEngine& sagas_;
  HttpServerOptions options_;
  std::atomic<bool> ready_{true};
  Metrics metrics_;
  std::vector<std::unique_ptr<Listener>> listeners_;
};

}  // namespace spawn::proxy
