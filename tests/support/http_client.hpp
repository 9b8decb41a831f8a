#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "spawn/result.hpp"

#include "protocol/messages.hpp"

namespace spawn::testing {

/// A blocking HTTP/1.1 client on one keep-alive connection to 127.0.0.1:port, reconnecting when
/// the server closed it. For tests only.
class HttpClient {
public:
  struct Response {
    unsigned status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // lower-case names
  };

  explicit HttpClient(std::uint16_t port);
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  /// Sends one request and reads the answer. Transport failures are kUnavailable.
  /// `content_type` nullopt sends no Content-Type header.
  Result<Response> request(std::string method, std::string target, std::string body = {},
                           std::optional<std::string> content_type = "application/octet-stream");

  /// Sends `raw` bytes as they are (for malformed HTTP) and reads one response.
  Result<Response> raw(const std::string& raw);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A Spawn SDK's view of the proxy API (PROTOCOL.md §3), over an HttpClient. Each call fails
/// only on transport errors or an undecodable body; protocol errors come back as the decoded
/// response with its non-OK status, which callers check.
class ProxyClient {
public:
  explicit ProxyClient(std::uint16_t port);

  Result<protocol::pb::RegistrationResponse> register_system(
      const protocol::pb::RegistrationRequest& request);
  Result<protocol::pb::InvocationResponse> invoke(const protocol::pb::InvocationRequest& request);
  Result<protocol::pb::SpawnResponse> spawn(const std::string& system,
                                            const protocol::pb::SpawnRequest& request,
                                            std::optional<std::int64_t> revision = std::nullopt);

  /// Returns the status of the last call.
  unsigned last_status() const { return last_status_; }

  HttpClient& http() { return http_; }

private:
  HttpClient http_;
  unsigned last_status_ = 0;
};

}  // namespace spawn::testing
