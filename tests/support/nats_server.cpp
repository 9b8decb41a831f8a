#include "support/nats_server.hpp"

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace spawn::testing {

namespace {

bool accepts(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  // The sockaddr cast is how the BSD socket API is called.
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return connected;
}

}  // namespace

NatsServer::NatsServer() : port_(free_port()) {
  start();
}

NatsServer::~NatsServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string NatsServer::url() const {
  return "nats://127.0.0.1:" + std::to_string(port_);
}

void NatsServer::start() {
  const std::string port = std::to_string(port_);
  const std::string store = (dir_.path() / "jetstream").string();
  const std::string log = (dir_.path() / "nats.log").string();
  std::vector<std::string> args = {"nats-server", "-a",  "127.0.0.1", "-p", port,
                                   "-js",         "-sd", store,       "-l", log};
  std::vector<char*> argv;
  for (auto& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  if (::posix_spawnp(&pid_, "nats-server", nullptr, nullptr, argv.data(), environ) != 0) {
    pid_ = -1;
    ADD_FAILURE() << "could not start nats-server (scripts/setup.sh installs it)";
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!accepts(port_)) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "nats-server did not listen on " << port_ << " within 10 s\n" << this->log();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void NatsServer::stop() {
  if (pid_ <= 0) {
    return;
  }
  ::kill(pid_, SIGTERM);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string NatsServer::log() const {
  std::ifstream in(dir_.path() / "nats.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace spawn::testing
