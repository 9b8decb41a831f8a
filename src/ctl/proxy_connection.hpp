#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "spawn/result.hpp"

namespace spawn::ctl {

/// Where the proxy is: host and port, parsed from "host:port" or "http://host:port".
struct ProxyAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9001;

  /// Parses `text`; kInvalidArgument with a hint when it is not host:port.
  static Result<ProxyAddress> parse(const std::string& text);
};

/// One blocking keep-alive HTTP/1.1 connection to the proxy, reconnecting when needed. Not
/// thread-safe: one per thread.
class ProxyConnection {
public:
  struct Reply {
    unsigned status = 0;
    std::string body;
  };

  explicit ProxyConnection(ProxyAddress address);
  ~ProxyConnection();
  ProxyConnection(const ProxyConnection&) = delete;
  ProxyConnection& operator=(const ProxyConnection&) = delete;

  /// Sends one request. kUnavailable when the proxy cannot be reached (the message says where).
  Result<Reply> request(const std::string& method, const std::string& target,
                        const std::string& body = {});

  const ProxyAddress& address() const { return address_; }

private:
  struct Impl;
  ProxyAddress address_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spawn::ctl
