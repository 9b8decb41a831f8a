#include "support/http_client.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <exception>
#include <sstream>
#include <string_view>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "common/asio.hpp"

namespace spawn::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace pb = protocol::pb;
using tcp = asio::ip::tcp;

namespace {

// Longer than the proxy's own 60 s host timeout, so a slow proxy fails the test, not the client.
constexpr std::chrono::seconds kTimeout{90};
constexpr std::size_t kMaxResponseBytes = std::size_t{1024} * 1024 * 1024;

// Runs `task` on `io` to completion and returns its value.
template <class T>
T run(asio::io_context& io, Task<T> task) {
  std::optional<T> out;
  std::exception_ptr thrown;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr error, T value) {
    thrown = error;
    out.emplace(std::move(value));
  });
  io.restart();
  io.run();
  if (thrown) {
    std::rethrow_exception(thrown);
  }
  return std::move(*out);
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Percent-encodes a path segment (RFC 3986 unreserved characters stay as they are).
std::string encode_segment(std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : segment) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0x0F];
    }
  }
  return out;
}

template <class Message>
Result<Message> decode(const Result<HttpClient::Response>& reply, std::string_view name) {
  if (!reply) {
    return reply.error();
  }
  Message message;
  if (reply->body.empty() || !message.ParseFromString(reply->body)) {
    return fail(ErrorCode::kInvalidArgument, "proxy answered HTTP " + std::to_string(reply->status)
                                                 + " with a body that is not a " + std::string(name)
                                                 + " (" + std::to_string(reply->body.size())
                                                 + " bytes)");
  }
  return message;
}

}  // namespace

struct HttpClient::Impl {
  std::uint16_t port = 0;
  asio::io_context io{1};
  std::optional<beast::tcp_stream> stream;

  void close() {
    if (stream) {
      beast::error_code ignored;
      stream->socket().close(ignored);
      stream.reset();
    }
  }

  static Task<Result<Response>> exchange(Impl* impl, std::string bytes);
};

Task<Result<HttpClient::Response>> HttpClient::Impl::exchange(Impl* impl, std::string bytes) {
  for (int attempt = 0;; ++attempt) {
    const bool reused = impl->stream.has_value();
    if (!reused) {
      impl->stream.emplace(impl->io.get_executor());
      impl->stream->expires_after(kTimeout);
      const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), impl->port);
      auto [error] = co_await impl->stream->async_connect(endpoint, kUseTask);
      if (error) {
        impl->close();
        co_return fail(
            ErrorCode::kUnavailable,
            "cannot connect to 127.0.0.1:" + std::to_string(impl->port) + ": " + error.message());
      }
    }

    beast::tcp_stream& stream = *impl->stream;
    stream.expires_after(kTimeout);
    auto [write_error, written] = co_await asio::async_write(stream, asio::buffer(bytes), kUseTask);
    if (write_error) {
      impl->close();
      if (reused && attempt == 0) {
        continue;
      }
      co_return fail(ErrorCode::kUnavailable, "write to 127.0.0.1:" + std::to_string(impl->port)
                                                  + " failed: " + write_error.message());
    }

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBytes);
    auto [read_error, read] = co_await http::async_read(stream, buffer, parser, kUseTask);
    stream.expires_never();
    if (read_error) {
      impl->close();
      // A kept-alive connection the server closed meanwhile: reconnect once.
      if (reused && attempt == 0 && !parser.got_some() && buffer.size() == 0
          && read_error != beast::error::timeout) {
        continue;
      }
      co_return fail(ErrorCode::kUnavailable, "read from 127.0.0.1:" + std::to_string(impl->port)
                                                  + " failed: " + read_error.message());
    }

    http::response<http::string_body>& message = parser.get();
    Response response;
    response.status = message.result_int();
    for (const auto& field : message) {
      std::string name = lower(field.name_string());
      auto [it, inserted] = response.headers.try_emplace(name, field.value());
      if (!inserted) {
        it->second += ", ";
        it->second += field.value();
      }
    }
    response.body = std::move(message.body());
    if (!message.keep_alive() || buffer.size() != 0) {
      impl->close();
    }
    co_return response;
  }
}

HttpClient::HttpClient(std::uint16_t port) : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
}

HttpClient::~HttpClient() = default;

HttpClient::HttpClient(HttpClient&&) noexcept = default;

HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Result<HttpClient::Response> HttpClient::request(std::string method, std::string target,
                                                 std::string body,
                                                 std::optional<std::string> content_type) {
  http::request<http::string_body> request;
  const http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    request.method_string(method);
  } else {
    request.method(verb);
  }
  request.target(target);
  request.version(11);
  request.set(http::field::host, "127.0.0.1:" + std::to_string(impl_->port));
  if (content_type) {
    request.set(http::field::content_type, *content_type);
  }
  request.keep_alive(true);
  request.body() = std::move(body);
  request.prepare_payload();
  std::ostringstream bytes;
  bytes << request;
  return raw(bytes.str());
}

Result<HttpClient::Response> HttpClient::raw(const std::string& raw) {
  return run(impl_->io, Impl::exchange(impl_.get(), raw));
}

ProxyClient::ProxyClient(std::uint16_t port) : http_(port) {}

Result<pb::RegistrationResponse> ProxyClient::register_system(
    const pb::RegistrationRequest& request) {
  Result<HttpClient::Response> reply =
      http_.request("POST", "/api/v1/system", request.SerializeAsString());
  if (reply) {
    last_status_ = reply->status;
  }
  return decode<pb::RegistrationResponse>(reply, "RegistrationResponse");
}

Result<pb::InvocationResponse> ProxyClient::invoke(const pb::InvocationRequest& request) {
  const std::string target = "/api/v1/system/" + encode_segment(request.system().name())
                             + "/actors/" + encode_segment(request.actor().id().name()) + "/invoke";
  Result<HttpClient::Response> reply = http_.request("POST", target, request.SerializeAsString());
  if (reply) {
    last_status_ = reply->status;
  }
  return decode<pb::InvocationResponse>(reply, "InvocationResponse");
}

Result<pb::SpawnResponse> ProxyClient::spawn(const std::string& system,
                                             const pb::SpawnRequest& request,
                                             std::optional<std::int64_t> revision) {
  std::string target = "/api/v1/system/" + encode_segment(system) + "/actors/spawn";
  if (revision) {
    target += "?revision=" + std::to_string(*revision);
  }
  Result<HttpClient::Response> reply = http_.request("POST", target, request.SerializeAsString());
  if (reply) {
    last_status_ = reply->status;
  }
  return decode<pb::SpawnResponse>(reply, "SpawnResponse");
}

}  // namespace spawn::testing
