#include "support/test_host.hpp"

#include <atomic>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <thread>
#include <utility>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "common/asio.hpp"

namespace spawn::testing {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

HostReply make_reply(unsigned http_status, std::string body = {}) {
  HostReply out;
  out.http_status = http_status;
  out.body = std::move(body);
  return out;
}

constexpr std::string_view kActionsPath = "/api/v1/actors/actions";
constexpr std::size_t kMaxRequestBytes = std::size_t{256} * 1024 * 1024;

}  // namespace

struct TestHost::Impl {
  mutable std::mutex mutex;  // guards handlers and received
  std::map<std::string, RawHandler, std::less<>> handlers;
  std::vector<pb::ActorInvocation> received;
  std::atomic<int> accepted{0};
  std::atomic<std::uint16_t> port{0};

  // Only touched by the thread that calls the constructor, start(), stop() and the destructor.
  std::unique_ptr<asio::io_context> io;
  std::thread thread;

  void start();
  void stop();
  HostReply answer(const http::request<http::string_body>& request);

  static Task<void> accept_loop(tcp::acceptor acceptor, Impl* impl);
  static Task<void> serve(tcp::socket socket, Impl* impl);
};

void TestHost::Impl::start() {
  if (io) {
    return;
  }
  io = std::make_unique<asio::io_context>(1);
  tcp::acceptor acceptor(*io);
  const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port.load());
  beast::error_code error;
  // A restarted host takes its old port back, as a restarted user function would. While it was
  // away the port may have served for a moment as some connection's ephemeral port (the proxy
  // retrying, another test): try again for a while before giving up.
  for (int attempt = 0; attempt < 100; ++attempt) {
    error = {};
    acceptor = tcp::acceptor(*io);
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
    if (!error || port.load() == 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (error) {
    io.reset();
    throw std::runtime_error("TestHost cannot listen on 127.0.0.1:" + std::to_string(port.load())
                             + ": " + error.message());
  }
  port = acceptor.local_endpoint().port();
  asio::co_spawn(*io, accept_loop(std::move(acceptor), this), asio::detached);
  thread = std::thread([context = io.get()] { context->run(); });
}

void TestHost::Impl::stop() {
  if (!io) {
    return;
  }
  io->stop();
  thread.join();
  // Destroying the io_context destroys the suspended accept loop and sessions, which closes the
  // listener and every live connection.
  io.reset();
}

Task<void> TestHost::Impl::accept_loop(tcp::acceptor acceptor, Impl* impl) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kUseTask);
    if (error) {
      co_return;
    }
    ++impl->accepted;
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), impl), asio::detached);
  }
}

Task<void> TestHost::Impl::serve(tcp::socket socket, Impl* impl) {
  beast::flat_buffer buffer;
  beast::error_code ignored;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxRequestBytes);
    auto [read_error, read] = co_await http::async_read(socket, buffer, parser, kUseTask);
    if (read_error) {
      co_return;
    }
    http::request<http::string_body>& request = parser.get();
    const HostReply reply = impl->answer(request);

    if (reply.delay.count() > 0) {
      asio::steady_timer timer(socket.get_executor(), reply.delay);
      co_await timer.async_wait(kUseTask);
    }
    if (reply.drop) {
      socket.close(ignored);
      co_return;
    }
    http::response<http::string_body> response;
    response.version(request.version());
    response.result(reply.http_status);
    response.set(http::field::content_type, "application/octet-stream");
    response.keep_alive(request.keep_alive() && !reply.close);
    response.body() = reply.body;
    response.prepare_payload();
    auto [write_error, written] = co_await http::async_write(socket, response, kUseTask);
    if (write_error || !response.keep_alive()) {
      socket.shutdown(tcp::socket::shutdown_send, ignored);
      socket.close(ignored);
      co_return;
    }
  }
}

HostReply TestHost::Impl::answer(const http::request<http::string_body>& request) {
  // Like the Node host: exact path, anything else is 404 (PROTOCOL.md §4).
  if (request.method() != http::verb::post || request.target() != kActionsPath) {
    return make_reply(404);
  }
  pb::ActorInvocation invocation;
  if (!invocation.ParseFromString(request.body())) {
    return make_reply(400);
  }
  RawHandler handler;
  {
    const std::lock_guard lock(mutex);
    if (auto it = handlers.find(invocation.action_name()); it != handlers.end()) {
      handler = it->second;
    }
  }
  HostReply reply;
  try {
    reply = handler ? handler(invocation)
                    : make_reply(200, echo_response(invocation).SerializeAsString());
  } catch (const std::exception&) {
    // A throwing user callback: the Node host answers 400 with an empty body.
    reply = make_reply(400);
  }
  // Counted once its handler has run, so a test that waits for a count sees what the handler
  // recorded.
  const std::lock_guard lock(mutex);
  received.push_back(std::move(invocation));
  return reply;
}

TestHost::TestHost(std::uint16_t port) : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->start();
}

TestHost::~TestHost() {
  impl_->stop();
}

std::uint16_t TestHost::port() const {
  return impl_->port.load();
}

void TestHost::on(std::string action, Handler handler) {
  on_raw(std::move(action), [handler = std::move(handler)](const pb::ActorInvocation& invocation) {
    return make_reply(200, handler(invocation).SerializeAsString());
  });
}

void TestHost::on_raw(std::string action, RawHandler handler) {
  const std::lock_guard lock(impl_->mutex);
  impl_->handlers.insert_or_assign(std::move(action), std::move(handler));
}

std::vector<pb::ActorInvocation> TestHost::received() const {
  const std::lock_guard lock(impl_->mutex);
  return impl_->received;
}

int TestHost::count(std::string_view action) const {
  const std::lock_guard lock(impl_->mutex);
  int n = 0;
  for (const pb::ActorInvocation& invocation : impl_->received) {
    if (invocation.action_name() == action) {
      ++n;
    }
  }
  return n;
}

int TestHost::accepted_connections() const {
  return impl_->accepted.load();
}

bool TestHost::wait_for(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (predicate()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return predicate();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void TestHost::stop() {
  impl_->stop();
}

void TestHost::start() {
  impl_->start();
}

pb::ActorInvocationResponse echo_response(const pb::ActorInvocation& invocation) {
  pb::ActorInvocationResponse response;
  response.set_actor_name(invocation.actor().name());
  response.set_actor_system(invocation.actor().system());
  *response.mutable_updated_context() = invocation.current_context();
  // The Node host always sends a workflow, usually an empty one.
  response.mutable_workflow();
  return response;
}

google::protobuf::Any pack(const google::protobuf::Message& message) {
  google::protobuf::Any any;
  any.PackFrom(message);
  return any;
}

google::protobuf::Any pack_json(std::string json) {
  pb::JSONType value;
  value.set_content(std::move(json));
  return pack(value);
}

}  // namespace spawn::testing
