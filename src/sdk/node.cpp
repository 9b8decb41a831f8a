#include "spawn/node.hpp"

#include <csignal>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/env.hpp"
#include "sdk/node_impl.hpp"

namespace spawn {

void Node::Impl::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) {
      return;
    }
    stopped_ = true;
  }
  shutdown();
  std::lock_guard lock(mutex_);
  if (waiting_ != nullptr) {
    waiting_->stop();
  }
}

void Node::Impl::wait_for_shutdown() {
  boost::asio::io_context io(1);
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](const boost::system::error_code&, int) { io.stop(); });
  {
    std::lock_guard lock(mutex_);
    if (stopped_) {
      return;
    }
    waiting_ = &io;
  }
  io.run();
  std::lock_guard lock(mutex_);
  waiting_ = nullptr;
}

SidecarOptions SidecarOptions::from_env() {
  SidecarOptions options;
  options.proxy_host = common::env_or("PROXY_HTTP_HOST", options.proxy_host);
  // A malformed port keeps the default; the registration error then names the address used.
  if (auto port = common::env_int("PROXY_HTTP_PORT", options.proxy_port, 1, 65535); port) {
    options.proxy_port = static_cast<std::uint16_t>(*port);
  }
  if (auto port = common::env_int("USER_FUNCTION_PORT", options.port, 0, 65535); port) {
    options.port = static_cast<std::uint16_t>(*port);
  }
  return options;
}

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Node::Node(Node&&) noexcept = default;

Node& Node::operator=(Node&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      impl_->stop();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

Node::~Node() {
  if (impl_) {
    impl_->stop();
  }
}

Result<Node> Node::embedded(const ActorSystem& system, EmbeddedOptions options) {
  auto impl = sdk::make_embedded_node(system, std::move(options));
  if (!impl) {
    return std::move(impl).error();
  }
  return Node(std::move(*impl));
}

Result<Node> Node::sidecar(const ActorSystem& system, SidecarOptions options) {
  auto impl = sdk::make_sidecar_node(system, std::move(options));
  if (!impl) {
    return std::move(impl).error();
  }
  return Node(std::move(*impl));
}

Client Node::client() const {
  return impl_->client();
}

const std::string& Node::system() const {
  return impl_->system();
}

bool Node::is_embedded() const {
  return impl_->is_embedded();
}

std::uint16_t Node::host_port() const {
  return impl_->host_port();
}

void Node::wait_for_shutdown() {
  impl_->wait_for_shutdown();
}

void Node::stop() {
  impl_->stop();
}

void Node::kill_for_test() {
  impl_->kill();
  impl_->stop();
}

}  // namespace spawn
