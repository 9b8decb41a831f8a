#include "sdk/host_server.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "common/asio.hpp"
#include "common/log.hpp"

namespace spawn::sdk {

namespace beast = boost::beast;
namespace http = beast::http;
namespace pb = protocol::pb;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kActionsPath = "/api/v1/actors/actions";
// The proxy keeps idle connections for a few seconds; close ours later than that.
constexpr auto kIdleTimeout = std::chrono::seconds(75);
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr std::size_t kMaxBodyBytes = std::size_t{64} * 1024 * 1024;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response make_response(const Request& request, http::status status, std::string_view type,
                       std::string body) {
  Response response{status, request.version()};
  if (!type.empty()) {
    response.set(http::field::content_type, type);
  }
  response.body() = std::move(body);
  response.keep_alive(request.keep_alive());
  response.prepare_payload();
  return response;
}

}  // namespace

struct HostServer::Impl {
  Impl(std::shared_ptr<const Dispatcher> handlers, std::string address, std::uint16_t bind_port,
       std::size_t thread_count)
      : dispatcher(std::move(handlers)),
        bind_address(std::move(address)),
        port(bind_port),
        threads(thread_count == 0 ? std::max<std::size_t>(2, std::thread::hardware_concurrency())
                                  : thread_count),
        io(static_cast<int>(threads)),
        acceptor(asio::make_strand(io)) {}

  Response handle(Request& request) const {
    if (request.target() != kActionsPath) {
      return make_response(request, http::status::not_found, "text/plain", "Not found");
    }
    if (request.method() != http::verb::post) {
      auto response = make_response(request, http::status::method_not_allowed, "text/plain",
                                    "Method Not Allowed: use POST");
      response.set(http::field::allow, "POST");
      return response;
    }
    pb::ActorInvocation invocation;
    if (!invocation.ParseFromString(request.body())) {
      spdlog::warn("sdk host: a request body of {} bytes is not an ActorInvocation",
                   request.body().size());
      return make_response(request, http::status::bad_request, "text/plain",
                           "the body is not an ActorInvocation");
    }
    auto response = dispatcher->dispatch(invocation);
    if (response) {
      // Informational on the wire (PROTOCOL.md §2.2), as every SDK's host sends them.
      response->set_actor_name(invocation.actor().name());
      response->set_actor_system(invocation.actor().system());
      return make_response(request, http::status::ok, "application/octet-stream",
                           response->SerializeAsString());
    }
    // The reason goes back as text: our proxy passes it on to the caller; Spawn's own proxy
    // ignores it, and sees a failed call either way (PROTOCOL.md §4).
    spdlog::warn("sdk host: actor={} action={} failed: {}", invocation.actor().name(),
                 invocation.action_name(), response.error().message);
    const auto status = response.error().code == ErrorCode::kNotFound ? http::status::not_found
                                                                      : http::status::bad_request;
    return make_response(request, status, "text/plain", response.error().message);
  }

  Task<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxBodyBytes);
      stream.expires_after(kIdleTimeout);
      auto [read_error, read] = co_await http::async_read(stream, buffer, parser, kUseTask);
      if (read_error) {
        break;
      }
      Request& request = parser.get();
      Response response = handle(request);
      stream.expires_after(kWriteTimeout);
      auto [write_error, written] = co_await http::async_write(stream, response, kUseTask);
      if (write_error || !response.keep_alive()) {
        break;
      }
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  Task<void> accept_loop() {
    for (;;) {
      auto [error, socket] = co_await acceptor.async_accept(kUseTask);
      if (error == asio::error::operation_aborted || !acceptor.is_open()) {
        co_return;
      }
      if (error) {
        spdlog::warn("sdk host: accept failed: {}", error.message());
        continue;
      }
      socket.set_option(tcp::no_delay(true), error);
      asio::co_spawn(asio::make_strand(io), session(std::move(socket)),
                     [](std::exception_ptr e) { common::log_exception(e, "sdk host session"); });
    }
  }

  std::shared_ptr<const Dispatcher> dispatcher;
  std::string bind_address;
  std::uint16_t port;
  std::size_t threads;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::vector<std::thread> workers;
  std::atomic<bool> stopped{false};
};

HostServer::HostServer(std::shared_ptr<const Dispatcher> dispatcher, std::string bind_address,
                       std::uint16_t port, std::size_t threads)
    : impl_(std::make_unique<Impl>(std::move(dispatcher), std::move(bind_address), port, threads)) {
}

HostServer::~HostServer() {
  stop();
}

Result<void> HostServer::start() {
  boost::system::error_code error;
  const auto address = asio::ip::make_address(impl_->bind_address, error);
  const std::string where = impl_->bind_address + ":" + std::to_string(impl_->port);
  if (error) {
    return fail(ErrorCode::kConfig,
                "sdk host: bind address '" + impl_->bind_address + "' is not an IP address");
  }
  tcp::endpoint endpoint(address, impl_->port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), error);
  if (!error) {
    acceptor.set_option(asio::socket_base::reuse_address(true), error);
  }
  if (!error) {
    acceptor.bind(endpoint, error);
  }
  if (!error) {
    acceptor.listen(asio::socket_base::max_listen_connections, error);
  }
  if (error) {
    return fail(ErrorCode::kUnavailable,
                "sdk host: cannot listen on " + where + ": " + error.message());
  }
  impl_->port = acceptor.local_endpoint().port();
  asio::co_spawn(acceptor.get_executor(), impl_->accept_loop(),
                 [](std::exception_ptr e) { common::log_exception(e, "sdk host accept loop"); });
  for (std::size_t i = 0; i < impl_->threads; ++i) {
    impl_->workers.emplace_back([this] { impl_->io.run(); });
  }
  spdlog::info("sdk host: serving {} on {}:{} threads={}", kActionsPath, impl_->bind_address,
               impl_->port, impl_->threads);
  return ok();
}

std::uint16_t HostServer::port() const {
  return impl_->port;
}

void HostServer::stop() {
  if (impl_->stopped.exchange(true)) {
    return;
  }
  impl_->io.stop();
  for (auto& worker : impl_->workers) {
    worker.join();
  }
  impl_->workers.clear();
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
}

}  // namespace spawn::sdk
