#include "ctl/proxy_connection.hpp"

#include <charconv>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace spawn::ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Result<ProxyAddress> ProxyAddress::parse(const std::string& text) {
  std::string rest = text;
  if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
  }
  while (!rest.empty() && rest.back() == '/') {
    rest.pop_back();
  }
  ProxyAddress address;
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) {
    address.host = rest.empty() ? address.host : rest;
    return address;
  }
  address.host = rest.substr(0, colon);
  auto port_text = rest.substr(colon + 1);
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 || port > 65535
      || address.host.empty()) {
    return fail(ErrorCode::kInvalidArgument,
                "proxy address '" + text + "' is not host:port (e.g. 127.0.0.1:9001)");
  }
  address.port = static_cast<std::uint16_t>(port);
  return address;
}

struct ProxyConnection::Impl {
  asio::io_context io;
  std::optional<tcp::socket> socket;
  beast::flat_buffer buffer;
};

ProxyConnection::ProxyConnection(ProxyAddress address)
    : address_(std::move(address)), impl_(std::make_unique<Impl>()) {}

ProxyConnection::~ProxyConnection() = default;

Result<ProxyConnection::Reply> ProxyConnection::request(const std::string& method,
                                                        const std::string& target,
                                                        const std::string& body) {
  const std::string where = address_.host + ":" + std::to_string(address_.port);
  for (int attempt = 0; attempt < 2; ++attempt) {
    boost::system::error_code ec;
    const bool reused = impl_->socket.has_value();
    if (!reused) {
      tcp::resolver resolver(impl_->io);
      auto endpoints = resolver.resolve(address_.host, std::to_string(address_.port), ec);
      if (ec) {
        return fail(ErrorCode::kUnavailable, "resolve " + where + ": " + ec.message());
      }
      impl_->socket.emplace(impl_->io);
      asio::connect(*impl_->socket, endpoints, ec);
      if (ec) {
        impl_->socket.reset();
        return fail(ErrorCode::kUnavailable, "cannot reach the proxy at " + where + ": "
                                                 + ec.message()
                                                 + " (is spawn-proxy running? see --proxy)");
      }
      impl_->socket->set_option(tcp::no_delay(true), ec);
    }
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, where);
    req.set(http::field::content_type, "application/octet-stream");
    req.set(http::field::accept, "application/octet-stream");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    http::write(*impl_->socket, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    if (!ec) {
      http::read(*impl_->socket, impl_->buffer, parser, ec);
    }
    if (ec) {
      impl_->socket.reset();
      impl_->buffer.clear();
      if (reused) {
        continue;  // a keep-alive connection the proxy had closed: once more on a new one
      }
      return fail(ErrorCode::kUnavailable,
                  "request to the proxy at " + where + " failed: " + ec.message());
    }
    auto response = parser.release();
    if (!response.keep_alive()) {
      impl_->socket.reset();
    }
    return Reply{response.result_int(), std::move(response.body())};
  }
  return fail(ErrorCode::kUnavailable, "request to the proxy at " + where + " failed");
}

}  // namespace spawn::ctl
