#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <sys/types.h>

#include "support/proxy_process.hpp"

namespace spawn::testing {

/// A real nats-server with JetStream on 127.0.0.1 (Debian's nats-server, installed by
/// scripts/setup.sh), with its store in a temp dir, for cluster tests.
class NatsServer {
public:
  /// Starts the server on a free port and waits until it accepts connections (at most 10 s;
  /// fails the current test otherwise).
  NatsServer();
  /// Kills the server if it still runs.
  ~NatsServer();
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  std::uint16_t port() const { return port_; }

  /// nats://127.0.0.1:<port>
  std::string url() const;

  /// Stops the server (SIGTERM) and waits for its exit.
  void stop();

  /// Starts it again on the same port with the same store (after stop()).
  void start();

  /// Returns what the server printed so far.
  std::string log() const;

private:
  TempDir dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace spawn::testing
