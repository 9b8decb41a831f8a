#include "proxy/http_host.hpp"

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <tuple>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

namespace spawn::proxy {

namespace beast = boost::beast;
namespace http = beast::http;
namespace pb = protocol::pb;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kActionsPath = "/api/v1/actors/actions";
// A pooled connection keeps its request and response buffers up to this capacity.
constexpr std::size_t kKeptBufferBytes = 64 * 1024;

// Error texts read "connection refused", not "Connection refused".
std::string reason(const beast::error_code& error) {
  std::string text = error.message();
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') {
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  }
  return text;
}

}  // namespace

struct HttpHost::Connection {
  explicit Connection(tcp::socket opened) : timed(std::move(opened)) {}

  /// The socket, closed by the host's deadlines when a call on it runs out of time.
  http_codec::Timed timed;
  /// What was read and not parsed yet; kept with its capacity from one call to the next.
  beast::flat_buffer buffer;
  /// The request being sent and the body of its response; kept with their capacity (up to
  /// kKeptBufferBytes) from one call to the next.
  std::string request;
  std::string body;
  std::chrono::steady_clock::time_point idle_since{};
};

// What one request/response round trip on one connection produced; the response's body is in
// the connection.
struct HttpHost::Exchange {
  beast::error_code error;
  // The failure happened while writing or before any response byte arrived, so the host did not
  // answer; on a reused connection that means it was stale.
  bool before_response = false;
  bool keep_alive = false;
  unsigned status = 0;
};

HttpHost::HttpHost(asio::any_io_executor executor, HttpHostOptions options)
    : executor_(std::move(executor)), options_(std::move(options)), deadlines_(executor_) {
  // PROTOCOL.md §4: the default USER_FUNCTION_HOST is 0.0.0.0, which means this machine.
  if (options_.host == "0.0.0.0") {
    connect_host_ = "127.0.0.1";
  } else if (options_.host == "::") {
    connect_host_ = "::1";
  } else {
    connect_host_ = options_.host;
  }
  const bool ipv6_literal = connect_host_.find(':') != std::string::npos;
  authority_ = ipv6_literal ? fmt::format("[{}]:{}", connect_host_, options_.port)
                            : fmt::format("{}:{}", connect_host_, options_.port);
  url_ = fmt::format("http://{}{}", authority_, kActionsPath);
  request_head_ = fmt::format(
      "POST {} HTTP/1.1\r\n"
      "host: {}\r\n"
      "content-type: application/octet-stream\r\n"
      "connection: keep-alive\r\n"
      "content-length: ",
      kActionsPath, authority_);
}

HttpHost::~HttpHost() = default;

std::size_t HttpHost::idle_connections_for_test() const {
  return idle_.size();
}

Task<Result<void>> HttpHost::invoke(pb::ActorInvocation& invocation,
                                    pb::ActorInvocationResponse& response) {
  const Deadline deadline = std::chrono::steady_clock::now() + options_.timeout;

  for (int attempt = 0;; ++attempt) {
    // The retry always takes a new connection (PROTOCOL.md §4).
    std::unique_ptr<Connection> connection = attempt == 0 ? take_idle() : nullptr;
    const bool reused = connection != nullptr;
    if (!reused) {
      Result<std::unique_ptr<Connection>> connected = co_await connect(deadline);
      if (!connected) {
        co_return std::move(connected).error();
      }
      connection = std::move(*connected);
    }

    make_request(invocation, connection->request);
    // The exchange is written out here rather than in a coroutine of its own: one frame fewer
    // per call keeps Asio's per-thread recycling cache hitting (docs/performance.md).
    Exchange answer;
    http_codec::Timed& timed = connection->timed;
    deadlines_.set(timed, deadline);
    const std::string& request = connection->request;
    beast::error_code write_error;
    const std::size_t sent = http_codec::write_now(timed.socket, request, write_error);
    if (!write_error && sent < request.size()) {
      write_error =
          co_await http_codec::write_rest(timed.socket, std::string_view(request).substr(sent));
    }
    if (write_error || timed.timed_out) {
      deadlines_.clear(timed);
      answer.error = timed.timed_out ? beast::error::timeout : write_error;
      answer.before_response = true;
    } else {
      http_codec::ResponseParser parser(connection->body);
      parser.body_limit(options_.max_body_bytes);
      beast::error_code read_error;
      std::size_t size = 0;
      while (!http_codec::parse_buffered(parser, connection->buffer, read_error, size)) {
        auto [read_ec, n] = co_await http_codec::async_read_some_drained(
            timed.socket, connection->buffer.prepare(size), kUseTask);
        if (http_codec::take_read(parser, connection->buffer, read_ec, n, read_error)) {
          break;
        }
      }
      deadlines_.clear(timed);
      if (timed.timed_out) {
        read_error = beast::error::timeout;
      }
      if (read_error) {
        answer.error = read_error;
        answer.before_response = !parser.got_some() && connection->buffer.size() == 0;
      } else {
        answer.status = parser.status();
        // Bytes after the response would belong to no request of ours: don't reuse such a
        // connection.
        answer.keep_alive = parser.keep_alive() && connection->buffer.size() == 0;
      }
    }
    if (answer.error) {
      if (reused && answer.before_response && answer.error != beast::error::timeout) {
        // The host most likely restarted, so every other idle connection is stale as well.
        spdlog::debug("host connection stale, retrying on a new one: url={} error={}", url_,
                      answer.error.message());
        idle_.clear();
        continue;
      }
      co_return transport_error(answer);
    }
    Result<void> decoded = decode(answer, connection->body, response);
    if (answer.keep_alive) {
      release(std::move(connection));
    }
    co_return decoded;
  }
}

void HttpHost::make_request(const pb::ActorInvocation& invocation, std::string& request) const {
  // Head and body go out as one buffer with Content-Length, never chunked: the Node host
  // handles each `data` event on its own (PROTOCOL.md §4).
  const std::size_t body_size = invocation.ByteSizeLong();
  request.clear();
  request.reserve(request_head_.size() + 24 + body_size);
  request += request_head_;
  request += std::to_string(body_size);
  request += "\r\n\r\n";
  // The sizes ByteSizeLong() cached: AppendToString() would compute them all again.
  const std::size_t at = request.size();
  request.resize(at + body_size);
  invocation.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(request.data() + at));
}

std::unique_ptr<HttpHost::Connection> HttpHost::take_idle() {
  if (idle_.empty()) {
    return nullptr;
  }
  if (std::chrono::steady_clock::now() - idle_.back()->idle_since > options_.max_idle_time) {
    // The pool is a stack, so every connection below the newest one has been idle even longer.
    idle_.clear();
    return nullptr;
  }
  std::unique_ptr<Connection> connection = std::move(idle_.back());
  idle_.pop_back();
  return connection;
}

void HttpHost::release(std::unique_ptr<Connection> connection) {
  if (options_.max_idle_connections == 0) {
    return;
  }
  if (idle_.size() >= options_.max_idle_connections) {
    idle_.erase(idle_.begin());  // the oldest, most likely to have been closed by the host
  }
  // A large call's buffers are not kept for the next, most likely small one.
  for (std::string* kept : {&connection->request, &connection->body}) {
    if (kept->capacity() > kKeptBufferBytes) {
      std::string().swap(*kept);
    }
  }
  connection->idle_since = std::chrono::steady_clock::now();
  idle_.push_back(std::move(connection));
}

Task<Result<std::unique_ptr<HttpHost::Connection>>> HttpHost::connect(Deadline deadline) {
  auto connection = std::make_unique<Connection>(tcp::socket(executor_));
  tcp::socket& socket = connection->timed.socket;
  deadlines_.set(connection->timed, deadline);

  beast::error_code error;
  const asio::ip::address address = asio::ip::make_address(connect_host_, error);
  if (!error) {
    std::tie(error) =
        co_await socket.async_connect(tcp::endpoint(address, options_.port), kUseTask);
  } else {
    tcp::resolver resolver(executor_);
    auto [resolve_error, endpoints] =
        co_await resolver.async_resolve(connect_host_, std::to_string(options_.port), kUseTask);
    if (resolve_error) {
      deadlines_.clear(connection->timed);
      co_return fail(ErrorCode::kUnavailable,
                     fmt::format("host unreachable at {}: {}", authority_, reason(resolve_error)));
    }
    std::tie(error, std::ignore) = co_await asio::async_connect(socket, endpoints, kUseTask);
  }
  deadlines_.clear(connection->timed);

  if (connection->timed.timed_out) {
    co_return fail(ErrorCode::kTimeout, fmt::format("host did not answer within {} ms ({})",
                                                    options_.timeout.count(), url_));
  }
  if (error) {
    co_return fail(ErrorCode::kUnavailable,
                   fmt::format("host unreachable at {}: {}", authority_, reason(error)));
  }
  // Each request is one write followed by a read; Nagle would only add latency.
  socket.set_option(tcp::no_delay(true), error);
  co_return std::move(connection);
}

Error HttpHost::transport_error(const Exchange& answer) const {
  if (answer.error == beast::error::timeout) {
    return fail(ErrorCode::kTimeout, fmt::format("host did not answer within {} ms ({})",
                                                 options_.timeout.count(), url_));
  }
  if (!answer.before_response) {
    if (answer.error == http::error::body_limit) {
      return fail(
          ErrorCode::kBadHostResponse,
          fmt::format("host response body exceeds {} bytes ({})", options_.max_body_bytes, url_));
    }
    return fail(ErrorCode::kBadHostResponse,
                fmt::format("host sent a malformed or truncated HTTP response: {} ({})",
                            reason(answer.error), url_));
  }
  if (answer.error == http::error::end_of_stream || answer.error == asio::error::eof) {
    return fail(ErrorCode::kUnavailable,
                fmt::format("host closed the connection without answering ({})", url_));
  }
  return fail(ErrorCode::kUnavailable,
              fmt::format("host unreachable at {}: {}", authority_, reason(answer.error)));
}

Result<void> HttpHost::decode(const Exchange& answer, const std::string& body,
                              pb::ActorInvocationResponse& response) {
  // The HTTP status is not looked at, as in the original proxy (PROTOCOL.md §4); the Node host
  // answers a throwing action with 400 and an empty body.
  if (body.empty()) {
    return fail(ErrorCode::kBadHostResponse,
                fmt::format("host returned an empty body (HTTP {})", answer.status));
  }
  const bool parsed = response.ParseFromString(body);
  if (answer.status >= 400 && !(parsed && response.has_updated_context())) {
    // A host that failed and said why in text (the C++ SDK's host does): pass the reason on.
    std::string reason = body.substr(0, 512);
    std::replace_if(
        reason.begin(), reason.end(),
        [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }, ' ');
    return fail(ErrorCode::kBadHostResponse,
                fmt::format("host failed (HTTP {}): {}", answer.status, reason));
  }
  if (!parsed) {
    return fail(ErrorCode::kBadHostResponse,
                fmt::format("host returned a body that is not an ActorInvocationResponse ({} "
                            "bytes, HTTP {})",
                            body.size(), answer.status));
  }
  if (!response.has_updated_context()) {
    return fail(ErrorCode::kBadHostResponse, "host response has no updated_context");
  }
  return ok();
}

runtime::HostFactory make_http_host_factory(HttpHostOptions options) {
  return [options = std::move(options)](
             asio::any_io_executor executor) -> std::unique_ptr<runtime::Host> {
    return std::make_unique<HttpHost>(std::move(executor), options);
  };
}

}  // namespace spawn::proxy
