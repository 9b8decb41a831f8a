#include "sdk/proxy_client.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <deque>
#include <future>
#include <optional>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "common/asio.hpp"

namespace spawn::sdk {

namespace beast = boost::beast;
namespace http = beast::http;
namespace pb = protocol::pb;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kMaxBodyBytes = std::size_t{64} * 1024 * 1024;

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

/// Percent-encodes a path segment (names may hold any character; the proxy routes by the body).
std::string path_segment(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    }
  }
  return out;
}

std::string lower_first(std::string text) {
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') {
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  }
  return text;
}

}  // namespace

Error error_from_proxy(unsigned http_status, const pb::RequestStatus& status) {
  const std::string& message = status.message();
  ErrorCode code = ErrorCode::kInternal;
  if (http_status == 413) {
    code = ErrorCode::kPayloadTooLarge;
  } else if (http_status == 503 || contains(message, "shutting down")) {
    code = ErrorCode::kShuttingDown;
  } else if (contains(message, "not found") || contains(message, "not registered")
             || contains(message, "never been registered")) {
    code = ErrorCode::kNotFound;
  } else if (contains(message, "host returned") || contains(message, "host response")
             || contains(message, "host sent") || contains(message, "host failed")) {
    code = ErrorCode::kBadHostResponse;
  } else if (contains(message, "did not answer within")) {
    code = ErrorCode::kTimeout;
  } else if (contains(message, "host unreachable") || contains(message, "closed the connection")) {
    code = ErrorCode::kUnavailable;
  } else if (http_status == 400) {
    code = ErrorCode::kInvalidArgument;
  }
  return fail(code, message.empty() ? "the proxy answered HTTP " + std::to_string(http_status)
                                          + " with status " + pb::Status_Name(status.status())
                                    : message);
}

struct ProxyClient::Impl {
  struct Answer {
    unsigned status = 0;
    std::string body;
  };

  struct Exchange {
    beast::error_code error;
    bool before_response = false;
    bool keep_alive = false;
    Answer answer;
  };

  using Deadline = std::chrono::steady_clock::time_point;

  Impl(std::string proxy_host, std::uint16_t proxy_port, std::chrono::milliseconds call_timeout,
       std::size_t connection_limit)
      : host(proxy_host == "0.0.0.0" ? "127.0.0.1" : std::move(proxy_host)),
        port(proxy_port),
        timeout(call_timeout),
        max_connections(std::max<std::size_t>(1, connection_limit)),
        authority(host + ":" + std::to_string(port)),
        work(asio::make_work_guard(io)),
        thread([this] { io.run(); }) {}

  ~Impl() {
    work.reset();
    io.stop();
    thread.join();
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  static Error refused() {
    return fail(ErrorCode::kShuttingDown, "the node is stopped: call to the proxy refused");
  }

  /// Posts `body` to `target` and waits for the answer (blocks the caller, not the I/O thread).
  Result<Answer> post(std::string target, std::string body) {
    if (closed) {
      return refused();
    }
    try {
      return asio::co_spawn(io, exchange(std::move(target), std::move(body)), asio::use_future)
          .get();
    } catch (const std::exception& e) {
      return fail(ErrorCode::kInternal,
                  std::string("proxy call: unexpected exception: ") + e.what());
    }
  }

  Task<Result<Answer>> exchange(std::string target, std::string body) {
    const Deadline deadline = std::chrono::steady_clock::now() + timeout;
    http::request<http::string_body> request{http::verb::post, target, 11};
    request.set(http::field::host, authority);
    request.set(http::field::content_type, "application/octet-stream");
    request.set(http::field::accept, "application/octet-stream");
    request.keep_alive(true);
    request.body() = std::move(body);
    request.prepare_payload();

    for (int attempt = 0;; ++attempt) {
      // A reused connection the proxy closed meanwhile is retried once on a new one.
      std::unique_ptr<beast::tcp_stream> stream;
      if (attempt == 0) {
        if (auto waited = co_await wait_for_connection(deadline); !waited) {
          co_return std::move(waited).error();
        }
        if (!idle.empty()) {
          stream = std::move(idle.back());
          idle.pop_back();
        }
      }
      const bool reused = stream != nullptr;
      if (!reused) {
        ++open;  // reserved before connecting, so waiters count it
        auto connected = co_await connect(deadline);
        if (!connected) {
          release(nullptr);
          co_return std::move(connected).error();
        }
        stream = std::move(*connected);
      }
      Exchange result = co_await round_trip(*stream, request, deadline);
      if (result.error) {
        release(nullptr);
        if (reused && result.before_response && result.error != beast::error::timeout) {
          open -= idle.size();  // the others were most likely closed by the proxy too
          idle.clear();
          continue;
        }
        co_return transport_error(result);
      }
      release(result.keep_alive ? std::move(stream) : nullptr);
      co_return std::move(result.answer);
    }
  }

  /// Waits until an idle connection is there or another may be opened (at most
  /// `max_connections` are open at once; the other calls queue here in order).
  Task<Result<void>> wait_for_connection(Deadline deadline) {
    while (idle.empty() && open >= max_connections) {
      asio::steady_timer timer(io, deadline);
      waiting.push_back(&timer);
      auto [error] = co_await timer.async_wait(kUseTask);
      if (!error) {  // the deadline passed: no connection came free
        std::erase(waiting, &timer);
        co_return fail(ErrorCode::kTimeout, "the proxy at " + authority + " did not answer within "
                                                + std::to_string(timeout.count()) + " ms (all "
                                                + std::to_string(max_connections)
                                                + " connections busy)");
      }
    }
    co_return ok();
  }

  /// Returns a connection after a call: kept for the next one, or closed (null); wakes the
  /// first call waiting for one.
  void release(std::unique_ptr<beast::tcp_stream> stream) {
    if (stream) {
      idle.push_back(std::move(stream));
    } else {
      --open;
    }
    if (!waiting.empty()) {
      waiting.front()->cancel();
      waiting.pop_front();
    }
  }

  Task<Result<std::unique_ptr<beast::tcp_stream>>> connect(Deadline deadline) {
    auto stream = std::make_unique<beast::tcp_stream>(io);
    stream->expires_at(deadline);
    beast::error_code error;
    const auto address = asio::ip::make_address(host, error);
    if (!error) {
      std::tie(error) = co_await stream->async_connect(tcp::endpoint(address, port), kUseTask);
    } else {
      tcp::resolver resolver(io);
      auto [resolve_error, endpoints] =
          co_await resolver.async_resolve(host, std::to_string(port), kUseTask);
      error = resolve_error;
      if (!error) {
        std::tie(error, std::ignore) = co_await stream->async_connect(endpoints, kUseTask);
      }
    }
    if (error == beast::error::timeout) {
      co_return fail(ErrorCode::kTimeout, "the proxy at " + authority + " did not answer within "
                                              + std::to_string(timeout.count()) + " ms");
    }
    if (error) {
      co_return fail(ErrorCode::kUnavailable,
                     "proxy unreachable at " + authority + ": " + lower_first(error.message()));
    }
    stream->socket().set_option(tcp::no_delay(true), error);
    co_return std::move(stream);
  }

  Task<Exchange> round_trip(beast::tcp_stream& stream, http::request<http::string_body>& request,
                            Deadline deadline) {
    Exchange result;
    stream.expires_at(deadline);
    auto [write_error, written] = co_await http::async_write(stream, request, kUseTask);
    if (write_error) {
      stream.expires_never();
      result.error = write_error;
      result.before_response = true;
      co_return result;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    auto [read_error, read] = co_await http::async_read(stream, buffer, parser, kUseTask);
    stream.expires_never();
    if (read_error) {
      result.error = read_error;
      result.before_response = !parser.got_some() && buffer.size() == 0;
      co_return result;
    }
    auto& response = parser.get();
    result.keep_alive = response.keep_alive() && buffer.size() == 0;
    result.answer.status = response.result_int();
    result.answer.body = std::move(response.body());
    co_return result;
  }

  Error transport_error(const Exchange& result) const {
    if (result.error == beast::error::timeout) {
      return fail(ErrorCode::kTimeout, "the proxy at " + authority + " did not answer within "
                                           + std::to_string(timeout.count()) + " ms");
    }
    if (result.before_response) {
      return fail(ErrorCode::kUnavailable, "proxy at " + authority + " closed the connection: "
                                               + lower_first(result.error.message()));
    }
    return fail(ErrorCode::kUnavailable,
                "the proxy at " + authority
                    + " sent a malformed HTTP response: " + lower_first(result.error.message()));
  }

  std::string host;
  std::uint16_t port;
  std::chrono::milliseconds timeout;
  std::size_t max_connections;
  std::string authority;
  std::atomic<bool> closed{false};
  InFlightCalls calls;  // outlives io, whose destruction drops the handlers of unfinished calls
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  // Only touched on the I/O thread.
  std::vector<std::unique_ptr<beast::tcp_stream>> idle;
  std::size_t open = 0;  // connections open or being opened, idle ones included
  std::deque<asio::steady_timer*> waiting;
  std::thread thread;
};

ProxyClient::ProxyClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout,
                         std::size_t max_connections)
    : impl_(std::make_unique<Impl>(std::move(host), port, timeout, max_connections)) {}

ProxyClient::~ProxyClient() = default;

const std::string& ProxyClient::authority() const {
  return impl_->authority;
}

void ProxyClient::close() {
  impl_->closed = true;
}

bool ProxyClient::wait_idle_for(std::chrono::milliseconds max_wait) {
  return impl_->calls.wait_idle_for(max_wait);
}

Result<void> ProxyClient::register_system(const pb::RegistrationRequest& request) {
  auto answer = impl_->post("/api/v1/system", request.SerializeAsString());
  if (!answer) {
    return std::move(answer).error();
  }
  pb::RegistrationResponse response;
  if (!response.ParseFromString(answer->body)) {
    return fail(ErrorCode::kUnavailable, "the server at " + impl_->authority + " answered HTTP "
                                             + std::to_string(answer->status)
                                             + " with something that is not a Spawn proxy's "
                                               "RegistrationResponse");
  }
  if (response.status().status() != pb::OK) {
    return fail(ErrorCode::kInvalidArgument,
                "the proxy refused the registration: " + response.status().message());
  }
  return ok();
}

namespace {

Result<pb::InvocationResponse> invocation_response(unsigned http_status, const std::string& body) {
  pb::InvocationResponse response;
  if (!response.ParseFromString(body)) {
    return fail(ErrorCode::kInternal, "the proxy answered HTTP " + std::to_string(http_status)
                                          + " with a body that is not an InvocationResponse");
  }
  if (response.status().status() != pb::OK) {
    return error_from_proxy(http_status, response.status());
  }
  return response;
}

}  // namespace

void ProxyClient::invoke(const pb::InvocationRequest& request, ReplyHandler done) {
  if (impl_->closed) {
    done(Impl::refused());
    return;
  }
  const auto& id = request.actor().id();
  std::string target = "/api/v1/system/" + path_segment(request.system().name()) + "/actors/"
                       + path_segment(id.name()) + "/invoke";
  asio::co_spawn(impl_->io, impl_->exchange(std::move(target), request.SerializeAsString()),
                 [done = std::move(done), call = impl_->calls.start(), actor = id.name(),
                  action = request.action_name()](std::exception_ptr error,
                                                  Result<Impl::Answer> answer) mutable {
                   if (error) {
                     done(fail(ErrorCode::kInternal, "proxy call: unexpected exception"));
                   } else if (!answer) {
                     done(std::move(answer).error());
                   } else {
                     done(invocation_response(answer->status, answer->body), actor, action);
                   }
                 });
}

Result<void> ProxyClient::spawn(const std::string& system, const pb::SpawnRequest& request,
                                std::optional<std::int64_t> revision) {
  std::string target = "/api/v1/system/" + path_segment(system) + "/actors/spawn";
  if (revision) {
    target += "?revision=" + std::to_string(*revision);
  }
  auto answer = impl_->post(std::move(target), request.SerializeAsString());
  if (!answer) {
    return std::move(answer).error();
  }
  pb::SpawnResponse response;
  if (!response.ParseFromString(answer->body)) {
    return fail(ErrorCode::kInternal, "the proxy answered HTTP " + std::to_string(answer->status)
                                          + " with a body that is not a SpawnResponse");
  }
  if (response.status().status() != pb::OK) {
    return error_from_proxy(answer->status, response.status());
  }
  return ok();
}

}  // namespace spawn::sdk
