#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include <sys/types.h>

namespace spawn::testing {

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

/// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

private:
  std::filesystem::path path_;
};

/// A real spawn-proxy process (the binary this build made), for integration tests.
///
/// The environment is exactly `env` plus PATH; PROXY_HTTP_PORT is set to a free port unless
/// `env` has it (when another process takes that port before the proxy binds it, the proxy is
/// started again on another). Its stdout and stderr go to a log file, readable with log().
class ProxyProcess {
public:
  /// Starts the proxy. When `wait_ready`, waits until GET /health answers 200 (at most 15 s;
  /// fails the current test with the log otherwise).
  explicit ProxyProcess(std::map<std::string, std::string> env, bool wait_ready = true);
  /// Sends SIGKILL if still running.
  ~ProxyProcess();
  ProxyProcess(const ProxyProcess&) = delete;
  ProxyProcess& operator=(const ProxyProcess&) = delete;

  std::uint16_t port() const { return port_; }

  pid_t pid() const { return pid_; }

  /// Sends `signal` (SIGTERM by default) and waits for the exit; returns the exit code, or
  /// 128+signal when killed by a signal, or -1 after `timeout`.
  int stop(int signal = 15, std::chrono::milliseconds timeout = std::chrono::seconds(20));

  /// Waits for the process to exit by itself; returns as stop() does.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(20));

  /// Returns true while the process runs.
  bool running();

  /// Returns everything the proxy printed so far.
  std::string log() const;

private:
  enum class Readiness : std::uint8_t { kReady, kExited, kPortTaken, kTimedOut };

  /// Starts `binary` with `env` (a failure to start fails the test); false when it did not start.
  bool launch(const std::string& binary, const std::map<std::string, std::string>& env);
  /// Waits until GET /health answers 200, the process exits, or kReadyTimeout passes.
  Readiness wait_until_ready();

  std::filesystem::path log_path_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  bool exited_ = false;
  TempDir log_dir_;
};

}  // namespace spawn::testing
