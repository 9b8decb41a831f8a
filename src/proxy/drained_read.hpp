#pragma once

// A socket read that tells Asio's reactor when it emptied the socket.
//
// Boost 1.81's epoll reactor starts every read with a speculative recv(), and only stops doing so
// (until the next readiness event) after a read that found the end of the stream. A read that
// returns fewer bytes than its buffer had room for has emptied the socket too, but the reactor
// does not know it: on a keep-alive connection the read that follows each message fails with
// EAGAIN first and then waits (docs/performance.md, Finding 6). async_read_some_drained() reports
// such a short read as "done and exhausted", which makes the reactor skip the speculative recv of
// the next read on that socket and wait for the next edge-triggered readiness event, as nginx
// does. Any data that arrives after the short read raises such an event, which turns speculative
// reads back on, so nothing is missed.
//
// This uses Asio's detail API (the reactor's operations), so it is only compiled for the Asio it
// was written against (Boost 1.81, Asio 1.26, the epoll reactor); elsewhere it is a plain
// async_read_some().

#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/version.hpp>

#if BOOST_ASIO_VERSION / 100 == 1026 && defined(BOOST_ASIO_HAS_EPOLL) \
    && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define SPAWN_DRAINED_READ 1
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/memory.hpp>
#include <boost/asio/detail/reactive_socket_service.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#else
#define SPAWN_DRAINED_READ 0
#endif

namespace spawn::proxy::http_codec {

#if SPAWN_DRAINED_READ
namespace drained_detail {

namespace detail = boost::asio::detail;

/// The socket's service and implementation (descriptor, state, the reactor's per-descriptor
/// data), which basic_socket keeps protected.
struct SocketAccess : boost::asio::ip::tcp::socket {
  static auto& io_object(boost::asio::ip::tcp::socket& socket) {
    return socket.*(&SocketAccess::impl_);
  }
};

/// The service's start_op(), protected: it puts the socket in non-blocking mode and hands the
/// operation to the reactor, as every read of Asio's own does.
struct ServiceAccess : detail::reactive_socket_service<boost::asio::ip::tcp> {
  static void start_read(detail::reactive_socket_service<boost::asio::ip::tcp>& service,
                         base_implementation_type& impl, detail::reactor_op* op,
                         bool is_continuation, bool empty_buffer) {
    (service.*(&ServiceAccess::start_op))(impl, detail::reactor::read_op, op, is_continuation, true,
                                          empty_buffer);
  }
};

/// Asio's reactive_socket_recv_op for one buffer, except for what perform() reports.
template <typename Handler, typename IoExecutor>
class RecvOp : public detail::reactor_op {
public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(RecvOp);

  RecvOp(const boost::system::error_code& success_ec, detail::socket_type socket,
         boost::asio::mutable_buffer buffer, Handler& handler, const IoExecutor& io_ex)
      : detail::reactor_op(success_ec, &RecvOp::do_perform, &RecvOp::do_complete),
        socket_(socket),
        buffer_(buffer),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static status do_perform(detail::reactor_op* base) {
    auto* o = static_cast<RecvOp*>(base);
    if (!detail::socket_ops::non_blocking_recv1(o->socket_, o->buffer_.data(), o->buffer_.size(), 0,
                                                true, o->ec_, o->bytes_transferred_)) {
      return not_done;  // would block: wait for readiness
    }
    // End of stream (0 bytes, as Asio's own op) or a short read: the socket is empty now.
    if (!o->ec_ && o->bytes_transferred_ < o->buffer_.size()) {
      return done_and_exhausted;
    }
    return done;
  }

  static void do_complete(void* owner, detail::operation* base, const boost::system::error_code&,
                          std::size_t) {
    auto* o = static_cast<RecvOp*>(base);
    ptr p = {detail::addressof(o->handler_), o, o};
    detail::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    // The handler is moved out so the operation's memory can be freed before the upcall.
    detail::binder2<Handler, boost::system::error_code, std::size_t> handler(o->handler_, o->ec_,
                                                                             o->bytes_transferred_);
    p.h = detail::addressof(handler.handler_);
    p.reset();
    if (owner) {
      detail::fenced_block b(detail::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

private:
  detail::socket_type socket_;
  boost::asio::mutable_buffer buffer_;
  Handler handler_;
  detail::handler_work<Handler, IoExecutor> work_;
};

struct InitiateRead {
  template <typename Handler>
  void operator()(Handler&& handler, boost::asio::ip::tcp::socket* socket,
                  boost::asio::mutable_buffer buffer) const {
    using Executor = boost::asio::ip::tcp::socket::executor_type;
    using Op = RecvOp<std::decay_t<Handler>, Executor>;
    auto& io_object = SocketAccess::io_object(*socket);
    auto& impl = io_object.get_implementation();
    const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
    typename Op::ptr p = {detail::addressof(handler), Op::ptr::allocate(handler), nullptr};
    p.p = new (p.v)
        Op(boost::system::error_code(), impl.socket_, buffer, handler, socket->get_executor());
    ServiceAccess::start_read(io_object.get_service(), impl, p.p, is_continuation,
                              buffer.size() == 0);
    p.v = p.p = nullptr;
  }
};

}  // namespace drained_detail
#endif

/// Reads what `socket` has into `buffer`, as socket.async_read_some(buffer, token) does; a read
/// that returns fewer bytes than `buffer` holds makes the next read on the socket wait for
/// readiness instead of trying a recv() first. Completes with (error_code, bytes read).
template <typename Token>
auto async_read_some_drained(boost::asio::ip::tcp::socket& socket,
                             boost::asio::mutable_buffer buffer, Token&& token) {
#if SPAWN_DRAINED_READ
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      drained_detail::InitiateRead{}, token, &socket, buffer);
#else
  return socket.async_read_some(buffer, std::forward<Token>(token));
#endif
}

}  // namespace spawn::proxy::http_codec
