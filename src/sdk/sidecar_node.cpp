// Sidecar mode: the actions are served over HTTP to a spawn-proxy, which runs the runtime.

#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "sdk/host_server.hpp"
#include "sdk/node_impl.hpp"
#include "sdk/proxy_client.hpp"

namespace spawn::sdk {

namespace pb = protocol::pb;
namespace pba = protocol::pba;

namespace {

// Holds the ProxyClient by shared ownership: a Client may outlive its Node (its calls then fail
// with kShuttingDown).
class ProxyTransport final : public Transport {
public:
  explicit ProxyTransport(std::shared_ptr<ProxyClient> proxy) : proxy_(std::move(proxy)) {}

  void invoke(RequestPtr& request, ReplyHandler done) override {
    proxy_->invoke(*request, std::move(done));
  }

  Result<void> spawn(std::string system, std::vector<pba::ActorId> ids,
                     std::optional<std::int64_t> revision) override {
    pb::SpawnRequest request;
    for (auto& id : ids) {
      *request.add_actors() = std::move(id);
    }
    auto spawned = proxy_->spawn(system, request, revision);
    if (!spawned) {
      return std::move(spawned).error().with_context("spawn in system '" + system + "'");
    }
    return ok();
  }

private:
  std::shared_ptr<ProxyClient> proxy_;
};

class SidecarNode final : public Node::Impl {
public:
  SidecarNode(std::shared_ptr<const Dispatcher> dispatcher, const SidecarOptions& options)
      : options_(options),
        server_(dispatcher, options.bind_address, options.port, options.threads),
        proxy_(std::make_shared<ProxyClient>(options.proxy_host, options.proxy_port,
                                             options.request_timeout, options.max_connections)) {
    transport_ = std::make_shared<ProxyTransport>(proxy_);
    core_ = std::make_shared<detail::ClientCore>(std::move(dispatcher), transport_);
  }

  ~SidecarNode() override { SidecarNode::shutdown(); }

  SidecarNode(const SidecarNode&) = delete;
  SidecarNode& operator=(const SidecarNode&) = delete;

  Result<void> start(const pba::ActorSystem& registration) {
    if (auto started = server_.start(); !started) {
      return started;
    }
    pb::RegistrationRequest request;
    auto* info = request.mutable_service_info();
    info->set_service_name("spawn-cpp-sdk");
    info->set_service_version("0.1.0");
    info->set_service_runtime("cpp20");
    info->set_support_library_name("spawn-cpp-sdk");
    info->set_support_library_version("0.1.0");
    info->set_protocol_major_version(1);
    info->set_protocol_minor_version(1);
    *request.mutable_actor_system() = registration;

    const std::string what =
        "register system '" + registration.name() + "' with the proxy at " + proxy_->authority();
    const int attempts = std::max(1, options_.registration_attempts);
    for (int attempt = 1;; ++attempt) {
      auto registered = proxy_->register_system(request);
      if (registered) {
        spdlog::info("sdk: system={} registered with the proxy at {}; serving on port {}",
                     registration.name(), proxy_->authority(), server_.port());
        return ok();
      }
      const bool transient = registered.error().code == ErrorCode::kUnavailable
                             || registered.error().code == ErrorCode::kTimeout
                             || registered.error().code == ErrorCode::kShuttingDown;
      if (!transient) {
        return std::move(registered).error().with_context(what);
      }
      if (attempt >= attempts) {
        return fail(registered.error().code, what + ": no answer after " + std::to_string(attempts)
                                                 + " attempt(s): " + registered.error().message);
      }
      spdlog::info("sdk: {} failed (attempt {}/{}), retrying in {} ms: {}", what, attempt, attempts,
                   options_.registration_interval.count(), registered.error().message);
      std::this_thread::sleep_for(options_.registration_interval);
    }
  }

  bool is_embedded() const override { return false; }

  std::uint16_t host_port() const override { return server_.port(); }

  /// Refuses new calls, lets those in flight finish (their actions need this host), then stops
  /// serving the proxy.
  void shutdown() override {
    proxy_->close();
    if (!proxy_->wait_idle_for(options_.request_timeout)) {
      spdlog::warn("sdk: calls to the proxy still in flight after {} ms; stopping anyway",
                   options_.request_timeout.count());
    }
    server_.stop();
  }

  void kill() override {
    proxy_->close();
    server_.stop();
  }

private:
  SidecarOptions options_;
  HostServer server_;
  std::shared_ptr<ProxyClient> proxy_;
  std::shared_ptr<ProxyTransport> transport_;
};

}  // namespace

Result<std::unique_ptr<Node::Impl>> make_sidecar_node(const ActorSystem& system,
                                                      SidecarOptions options) {
  auto dispatcher = Dispatcher::make(system.spec());
  if (!dispatcher) {
    return std::move(dispatcher).error();
  }
  auto registration = (*dispatcher)->registration();
  auto node = std::make_unique<SidecarNode>(std::move(*dispatcher), options);
  if (auto started = node->start(registration); !started) {
    return std::move(started).error();
  }
  return std::unique_ptr<Node::Impl>(std::move(node));
}

}  // namespace spawn::sdk
