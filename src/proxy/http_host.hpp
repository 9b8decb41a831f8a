#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spawn/result.hpp"

#include "common/asio.hpp"
#include "protocol/messages.hpp"
#include "proxy/http_codec.hpp"
#include "runtime/host.hpp"

namespace spawn::proxy {

/// Where and how `HttpHost` reaches the user function (PROTOCOL.md §4, §7).
struct HttpHostOptions {
  /// USER_FUNCTION_HOST: an IP address or a name to resolve. "0.0.0.0" (and "::") mean this
  /// machine: 127.0.0.1 (::1).
  std::string host = "127.0.0.1";
  /// USER_FUNCTION_PORT.
  std::uint16_t port = 8090;
  /// Deadline of one invoke(), connecting, retrying and reading included (Elixir: 60 s).
  std::chrono::milliseconds timeout{60000};
  /// How many idle keep-alive connections a shard keeps (PROXY_HTTP_CLIENT_ADAPTER_POOL_SIZE).
  /// Connections in use are not capped.
  std::size_t max_idle_connections = 30;
  /// An idle connection older than this is closed instead of reused. Node's server closes idle
  /// connections after 5 s (keepAliveTimeout), and reusing one it is about to close costs a retry.
  std::chrono::milliseconds max_idle_time{4000};
  /// Largest response body accepted; a larger one is kBadHostResponse.
  std::size_t max_body_bytes = std::size_t{64} * 1024 * 1024;
};

/// The runtime::Host of sidecar mode: calls the user function with
/// `POST /api/v1/actors/actions` over pooled HTTP/1.1 keep-alive connections (PROTOCOL.md §4).
///
/// One HttpHost serves one shard. It is created with that shard's executor, and it and its
/// invoke() are only ever used from that shard's thread, so it takes no locks. It must outlive
/// every invoke() in flight.
class HttpHost final : public runtime::Host {
public:
  /// Makes a host client that opens its connections on `executor`. Does no I/O.
  HttpHost(asio::any_io_executor executor, HttpHostOptions options);

  ~HttpHost() override;
  HttpHost(const HttpHost&) = delete;
  HttpHost& operator=(const HttpHost&) = delete;

  /// Posts `invocation` to the user function and decodes its answer into `response` (parsed
  /// there, on the response's arena when it has one). Suspends; completes on the shard. The request
  /// reuses the most recently idle connection, or opens a new one. A reused connection that fails
  /// before any response byte arrives (the host restarted) is retried once on a new connection. The
  /// HTTP status is not looked at (as in the original proxy).
  ///
  /// Fails with kUnavailable when the host cannot be reached or closes the connection without
  /// answering; kTimeout when no complete answer arrives within `timeout`; kBadHostResponse when
  /// the body is empty, too large, not an `ActorInvocationResponse`, or has no `updated_context`.
  Task<Result<void>> invoke(protocol::pb::ActorInvocation& invocation,
                            protocol::pb::ActorInvocationResponse& response) override;

  /// Returns how many idle connections are pooled right now.
  std::size_t idle_connections_for_test() const;

private:
  struct Connection;
  struct Exchange;

  using Deadline = std::chrono::steady_clock::time_point;

  std::unique_ptr<Connection> take_idle();
  void release(std::unique_ptr<Connection> connection);
  Task<Result<std::unique_ptr<Connection>>> connect(Deadline deadline);
  /// Writes the HTTP request of `invocation` to `request` (cleared first).
  void make_request(const protocol::pb::ActorInvocation& invocation, std::string& request) const;
  Error transport_error(const Exchange& answer) const;
  /// Parses the response `body` of `answer` into `response`.
  static Result<void> decode(const Exchange& answer, const std::string& body,
                             protocol::pb::ActorInvocationResponse& response);

  asio::any_io_executor executor_;
  HttpHostOptions options_;
  std::string connect_host_;  // options_.host, with 0.0.0.0 replaced by 127.0.0.1
  std::string authority_;     // "host:port", for the Host header and messages
  std::string url_;           // the full URL, for messages
  std::string request_head_;  // every request header but the value of content-length
  /// The deadlines of the calls in flight (connecting, writing, reading).
  http_codec::Deadlines deadlines_;
  std::vector<std::unique_ptr<Connection>> idle_;  // a stack: the newest at the back
};

/// Returns a factory that makes one HttpHost per shard with `options`.
runtime::HostFactory make_http_host_factory(HttpHostOptions options);

}  // namespace spawn::proxy
