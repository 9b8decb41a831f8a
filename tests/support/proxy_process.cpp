#include "support/proxy_process.hpp"

#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/http_client.hpp"

namespace spawn::testing {

namespace {

constexpr std::chrono::seconds kReadyTimeout{15};
constexpr std::chrono::milliseconds kPollInterval{10};

// The spawn-proxy this build made, or else $SPAWN_PROXY_BINARY.
std::string proxy_binary() {
#ifdef SPAWN_PROXY_BINARY
  return SPAWN_PROXY_BINARY;
#else
  const char* path = std::getenv("SPAWN_PROXY_BINARY");
  return path != nullptr ? path : "";
#endif
}

// Reports a failed execve() in the child, with only async-signal-safe calls, and exits 127.
[[noreturn]] void exec_failed(int error) {
  char message[] = "spawn-proxy: execve failed, errno 000\n";
  const std::size_t digits = sizeof(message) - 3;  // the last digit, before "\n" and NUL
  for (std::size_t i = 0; i < 3; ++i) {
    message[digits - i] = static_cast<char>('0' + error % 10);
    error /= 10;
  }
  [[maybe_unused]] const auto written = ::write(STDERR_FILENO, message, sizeof(message) - 1);
  ::_exit(127);
}

int decode_status(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

}  // namespace

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "free_port: socket");
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  // The sockaddr casts are how the BSD socket API is called.
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "free_port: bind");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "spawn-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

ProxyProcess::ProxyProcess(std::map<std::string, std::string> env, bool wait_ready) {
  log_path_ = log_dir_.path() / "proxy.log";

  bool port_chosen = false;
  if (auto it = env.find("PROXY_HTTP_PORT"); it != env.end()) {
    // A test may pass a malformed port on purpose, to see the proxy refuse to start; port() is
    // then 0.
    unsigned value = 0;
    const std::string& text = it->second;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error == std::errc() && end == text.data() + text.size() && value <= 65535) {
      port_ = static_cast<std::uint16_t>(value);
    }
  } else {
    port_chosen = true;
    port_ = free_port();
    env["PROXY_HTTP_PORT"] = std::to_string(port_);
  }
  if (env.find("PATH") == env.end()) {
    const char* path = std::getenv("PATH");
    env["PATH"] = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  }

  const std::string binary = proxy_binary();
  if (binary.empty() || ::access(binary.c_str(), X_OK) != 0) {
    ADD_FAILURE() << "no spawn-proxy binary at '" << binary
                  << "': build the spawn-proxy target (or set SPAWN_PROXY_BINARY when this build "
                     "has none)";
    exited_ = true;
    return;
  }

  // A port free_port() found free can be taken by another process (tests run in parallel)
  // before the proxy binds it: the proxy then starts again on another one.
  constexpr int kMaxStarts = 5;
  for (int start = 1;; ++start) {
    if (!launch(binary, env) || !wait_ready) {
      return;
    }
    const Readiness ready = wait_until_ready();
    if (ready == Readiness::kReady) {
      return;
    }
    if (ready == Readiness::kPortTaken && port_chosen && start < kMaxStarts) {
      port_ = free_port();
      env["PROXY_HTTP_PORT"] = std::to_string(port_);
      continue;
    }
    if (ready == Readiness::kTimedOut) {
      ADD_FAILURE() << "spawn-proxy not ready on port " << port_ << " after "
                    << kReadyTimeout.count() << " s; log:\n"
                    << log();
    } else {
      ADD_FAILURE() << "spawn-proxy exited with " << exit_code_ << " before it was ready; log:\n"
                    << log();
    }
    return;
  }
}

bool ProxyProcess::launch(const std::string& binary,
                          const std::map<std::string, std::string>& env) {
  pid_ = -1;
  exit_code_ = -1;
  exited_ = false;
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::vector<std::string> env_strings;
  env_strings.reserve(env.size());
  for (const auto& [name, value] : env) {
    env_strings.push_back(name + "=" + value);
  }
  std::vector<char*> envp;
  for (std::string& entry : env_strings) {
    envp.push_back(entry.data());
  }
  envp.push_back(nullptr);
  std::string argv0 = binary;
  std::array<char*, 2> argv{argv0.data(), nullptr};

  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    ADD_FAILURE() << "cannot create " << log_path_ << ": " << std::strerror(errno);
    exited_ = true;
    return false;
  }
  const pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ == 0) {
    // A proxy must not outlive a crashed test run.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);
    }
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) {
      ::dup2(null_fd, STDIN_FILENO);
    }
    // Inherited sockets (a TestHost's listener) would keep their ports open after the test
    // closes them.
    if (::close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 65536; ++fd) {
        ::close(fd);
      }
    }
    ::execve(argv0.c_str(), argv.data(), envp.data());
    exec_failed(errno);
  }
  ::close(log_fd);
  if (pid_ < 0) {
    ADD_FAILURE() << "fork failed: " << std::strerror(errno);
    exited_ = true;
    return false;
  }
  return true;
}

ProxyProcess::Readiness ProxyProcess::wait_until_ready() {
  HttpClient client(port_);
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) {
      // The proxy's words when its HTTP port is taken: "listen on <address>:<port>: Address
      // already in use".
      const std::string taken = ":" + std::to_string(port_) + ": Address already in use";
      return log().find(taken) != std::string::npos ? Readiness::kPortTaken : Readiness::kExited;
    }
    Result<HttpClient::Response> health = client.request("GET", "/health", {}, std::nullopt);
    if (health && health->status == 200) {
      return Readiness::kReady;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return Readiness::kTimedOut;
}

ProxyProcess::~ProxyProcess() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

int ProxyProcess::stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0 || !running()) {
    return exit_code_;
  }
  ::kill(pid_, signal);
  return wait(timeout);
}

int ProxyProcess::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return -1;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return exit_code_;
}

bool ProxyProcess::running() {
  if (pid_ <= 0 || exited_) {
    return false;
  }
  int status = 0;
  const pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done == 0) {
    return true;
  }
  exited_ = true;
  exit_code_ = done == pid_ ? decode_status(status) : -1;
  return false;
}

std::string ProxyProcess::log() const {
  std::ifstream file(log_path_, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace spawn::testing
