#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/io_context.hpp>

#include "spawn/node.hpp"

#include "sdk/client_core.hpp"

namespace spawn {

/// What an embedded and a sidecar node have in common; each mode derives from it.
class Node::Impl {
public:
  virtual ~Impl() = default;

  virtual bool is_embedded() const = 0;

  virtual std::uint16_t host_port() const { return 0; }

  /// Stops the mode's machinery; called once, by stop().
  virtual void shutdown() = 0;

  /// Stops at once without saving.
  virtual void kill() = 0;

  Client client() const { return Client(core_); }

  const std::string& system() const { return core_->system(); }

  void stop();

  void wait_for_shutdown();

protected:
  std::shared_ptr<detail::ClientCore> core_;

private:
  std::mutex mutex_;  // guards stopped_ and waiting_
  bool stopped_ = false;
  boost::asio::io_context* waiting_ = nullptr;
};

namespace sdk {

/// Makes the Impl of each mode (embedded_node.cpp, sidecar_node.cpp).
Result<std::unique_ptr<Node::Impl>> make_embedded_node(const ActorSystem& system,
                                                       EmbeddedOptions options);
Result<std::unique_ptr<Node::Impl>> make_sidecar_node(const ActorSystem& system,
                                                      SidecarOptions options);

}  // namespace sdk

}  // namespace spawn
