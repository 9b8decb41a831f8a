#pragma once

// What the proxy's HTTP server and its host client share: reading one HTTP/1.1 message from a
// plain socket with Beast's parser but without Beast's message containers (no field allocations:
// only what the proxy looks at is kept), writing a response head, and deadlines kept by one timer
// per shard instead of one per socket operation.

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/intrusive/list.hpp>

#include "common/asio.hpp"
#include "proxy/drained_read.hpp"

namespace spawn::proxy::http_codec {

namespace beast = boost::beast;
namespace http = beast::http;

/// An HTTP request as the server needs it. The strings belong to the connection and keep their
/// capacity from one request to the next.
struct RequestHead {
  http::verb method = http::verb::unknown;
  std::string method_name;
  std::string target;
  unsigned version = 11;
};

/// What both parsers do: keep the body (cleared first) and ignore every header field. Each
/// parser overrides the start line it cares about.
template <bool isRequest>
class BodyParser : public http::basic_parser<isRequest> {
protected:
  explicit BodyParser(std::string& body) : body_(body) { body_.clear(); }

  void on_request_impl(http::verb, beast::string_view, beast::string_view, int,
                       beast::error_code& ec) override {
    ec = {};
  }

  void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override { ec = {}; }

private:
  void on_field_impl(http::field, beast::string_view, beast::string_view,
                     beast::error_code& ec) override {
    ec = {};
  }

  void on_header_impl(beast::error_code& ec) override { ec = {}; }

  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         beast::error_code& ec) override {
    if (length) {
      body_.reserve(static_cast<std::size_t>(*length));
    }
    ec = {};
  }

  std::size_t on_body_impl(beast::string_view data, beast::error_code& ec) override {
    body_.append(data.data(), data.size());
    ec = {};
    return data.size();
  }

  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code& ec) override {
    ec = {};
  }

  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view data,
                                 beast::error_code& ec) override {
    return on_body_impl(data, ec);
  }

  void on_finish_impl(beast::error_code& ec) override { ec = {}; }

  std::string& body_;
};

/// Parses one request into `head` and `body` (cleared first). Use a new parser per request.
class RequestParser final : public BodyParser<true> {
public:
  RequestParser(RequestHead& head, std::string& body) : BodyParser(body), head_(head) {
    head_.method = http::verb::unknown;
    head_.method_name.clear();
    head_.target.clear();
    head_.version = 11;
  }

private:
  void on_request_impl(http::verb method, beast::string_view method_name, beast::string_view target,
                       int version, beast::error_code& ec) override {
    head_.method = method;
    head_.method_name.assign(method_name.data(), method_name.size());
    head_.target.assign(target.data(), target.size());
    head_.version = static_cast<unsigned>(version);
    ec = {};
  }

  RequestHead& head_;
};

/// Parses one response: its status and body (cleared first). Use a new parser per response.
class ResponseParser final : public BodyParser<false> {
public:
  explicit ResponseParser(std::string& body) : BodyParser(body) {}

  unsigned status() const { return status_; }

private:
  void on_response_impl(int status, beast::string_view, int, beast::error_code& ec) override {
    status_ = static_cast<unsigned>(status);
    ec = {};
  }

  unsigned status_ = 0;
};

// Reading one message from a socket into a buffer, fed to a parser until the message is whole,
// as Beast's http::async_read does (bytes after the message stay in the buffer), without a
// coroutine of its own: the caller's frame runs the loop, one frame fewer per message (Asio's
// per-thread recycling cache misses more the more frames a call interleaves):
//
//   beast::error_code ec;
//   std::size_t size = 0;
//   while (!http_codec::parse_buffered(parser, buffer, ec, size)) {
//     auto [read_ec, n] =
//         co_await http_codec::async_read_some_drained(socket, buffer.prepare(size), kUseTask);
//     if (http_codec::take_read(parser, buffer, read_ec, n, ec)) {
//       break;
//     }
//   }
//
// Errors are Beast's: http::error::end_of_stream when the peer closed before a message began.
// async_read_some_drained() makes a read that empties the socket make the next one wait for
// readiness first (drained_read.hpp), so the read of the next message on a keep-alive
// connection does not begin with a recv() that fails.

/// Feeds `parser` what `buffer` holds. Returns true when reading the message is over: it is
/// whole (`ec` clear) or failed (`ec`); false when `size` more bytes are to be read into
/// `buffer.prepare(size)` first.
template <bool isRequest>
bool parse_buffered(http::basic_parser<isRequest>& parser, beast::flat_buffer& buffer,
                    beast::error_code& ec, std::size_t& size) {
  parser.eager(true);
  ec = {};
  while (buffer.size() > 0) {
    const std::size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec && ec != http::error::need_more) {
      return true;
    }
    if (!ec && parser.is_done()) {
      return true;
    }
    if (ec || used == 0) {
      ec = {};
      break;
    }
  }
  size = beast::read_size(buffer, 65536);
  if (size == 0) {
    ec = http::error::buffer_overflow;
    return true;
  }
  return false;
}

/// Takes a read of `n` bytes into what parse_buffered() prepared, which ended with `read_ec`.
/// Returns true when reading the message is over (`ec` says how), false to parse on.
template <bool isRequest>
bool take_read(http::basic_parser<isRequest>& parser, beast::flat_buffer& buffer,
               const boost::system::error_code& read_ec, std::size_t n, beast::error_code& ec) {
  buffer.commit(n);
  if (read_ec == asio::error::eof) {
    ec = {};
    if (parser.got_some()) {
      parser.put_eof(ec);
    } else {
      ec = http::error::end_of_stream;
    }
    return true;
  }
  if (read_ec) {
    ec = read_ec;
    return true;
  }
  return false;
}

/// Writes what `socket` takes of `data` right now, without waiting, and returns how many bytes
/// that was; `ec` is set on a failure other than a full send buffer. A loopback socket almost
/// always takes a whole message, so the caller usually needs neither write_rest() nor a trip
/// through the event loop.
inline std::size_t write_now(asio::ip::tcp::socket& socket, std::string_view data,
                             beast::error_code& ec) {
  ec = {};
  if (!socket.non_blocking()) {
    socket.non_blocking(true, ec);
    if (ec) {
      return 0;
    }
  }
  const std::size_t written = socket.write_some(asio::buffer(data.data(), data.size()), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec = {};
  }
  return written;
}

/// Writes all of `rest` (what write_now() left), waiting as needed.
inline Task<beast::error_code> write_rest(asio::ip::tcp::socket& socket, std::string_view rest) {
  auto [ec, n] =
      co_await asio::async_write(socket, asio::buffer(rest.data(), rest.size()), kUseTask);
  co_return ec;
}

/// Appends the head of a response with a body of `content_length` bytes to `out`, as Beast
/// writes it: status line, Content-Type, `extra` (complete header lines, may be empty),
/// Connection where `keep_alive` differs from the version's default, Content-Length.
inline void append_response_head(std::string& out, unsigned status, unsigned version,
                                 bool keep_alive, std::string_view content_type,
                                 std::string_view extra, std::size_t content_length) {
  char number[24];
  if (status == 200 && version == 11 && keep_alive && extra.empty()) {
    // The usual answer (every successful invocation), in fewer steps.
    out += "HTTP/1.1 200 OK\r\nContent-Type: ";
    out += content_type;
    out += "\r\nContent-Length: ";
  } else {
    out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    out.append(number, std::to_chars(number, number + sizeof number, status).ptr);
    out += ' ';
    auto reason = http::obsolete_reason(static_cast<http::status>(status));
    out.append(reason.data(), reason.size());
    out += "\r\nContent-Type: ";
    out += content_type;
    out += "\r\n";
    out += extra;
    if (version >= 11 && !keep_alive) {
      out += "Connection: close\r\n";
    } else if (version < 11 && keep_alive) {
      out += "Connection: keep-alive\r\n";
    }
    out += "Content-Length: ";
  }
  out.append(number, std::to_chars(number, number + sizeof number, content_length).ptr);
  out += "\r\n\r\n";
}

/// A socket with a deadline, closed by its Deadlines when the deadline passes.
struct Timed
    : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
  explicit Timed(asio::ip::tcp::socket s) : socket(std::move(s)) {}

  asio::ip::tcp::socket socket;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  /// Set when the deadline passed and the socket was closed for it.
  bool timed_out = false;
};

/// The deadlines of the sockets of one shard: a list ordered by deadline and one timer, armed for
/// the earliest, instead of a timer started and cancelled around every read and write. Setting a
/// deadline costs a list insertion (at the back, for the usual later-than-all deadline) and no
/// system call. Only used from the shard's thread.
class Deadlines {
public:
  explicit Deadlines(asio::any_io_executor executor) : timer_(std::move(executor)) {}

  ~Deadlines() { list_.clear(); }

  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  /// Closes `timed.socket` at `at` unless set again or cleared before.
  void set(Timed& timed, std::chrono::steady_clock::time_point at) {
    timed.unlink();
    timed.deadline = at;
    auto it = list_.end();
    while (it != list_.begin() && std::prev(it)->deadline > at) {
      --it;
    }
    list_.insert(it, timed);
    if (!armed_ || at < armed_at_) {
      arm(list_.front().deadline);
    }
  }

  /// Forgets the deadline of `timed`. The timer stops with the last deadline, so that an
  /// io_context with nothing else to do returns from run().
  void clear(Timed& timed) {
    timed.unlink();
    timed.deadline = std::chrono::steady_clock::time_point::max();
    if (list_.empty() && armed_) {
      armed_ = false;
      timer_.cancel();
    }
  }

private:
  using List = boost::intrusive::list<Timed, boost::intrusive::constant_time_size<false>>;

  void arm(std::chrono::steady_clock::time_point at) {
    armed_ = true;
    armed_at_ = at;
    timer_.expires_at(at);  // cancels a wait for a later deadline
    timer_.async_wait([this, at](const boost::system::error_code& ec) {
      if (ec) {
        return;  // replaced by an earlier deadline, or the timer is gone with its owner
      }
      fire(at);
    });
  }

  void fire(std::chrono::steady_clock::time_point at) {
    if (at != armed_at_) {
      return;
    }
    armed_ = false;
    const auto now = std::chrono::steady_clock::now();
    while (!list_.empty() && list_.front().deadline <= now) {
      Timed& timed = list_.front();
      list_.pop_front();
      timed.deadline = std::chrono::steady_clock::time_point::max();
      timed.timed_out = true;
      boost::system::error_code ignored;
      timed.socket.close(ignored);
    }
    if (!list_.empty()) {
      arm(list_.front().deadline);
    }
  }

  asio::steady_timer timer_;
  List list_;
  bool armed_ = false;
  std::chrono::steady_clock::time_point armed_at_{};
};

}  // namespace spawn::proxy::http_codec
