#include "proxy/drained_read.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

namespace spawn::proxy::http_codec {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct ReadResult {
  boost::system::error_code ec;
  std::string data;
};

/// A connected pair of sockets: `ours` on the io_context, `peer` used with blocking calls.
class DrainedReadTest : public ::testing::Test {
protected:
  DrainedReadTest() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    peer_.connect(acceptor_.local_endpoint());
    ours_ = acceptor_.accept();
  }

  /// Starts one drained read into a buffer of `size` bytes; the result lands in `result`.
  void start_read(std::size_t size, std::optional<ReadResult>& result) {
    buffer_.assign(size, '\0');
    async_read_some_drained(ours_, asio::buffer(buffer_),
                            [this, &result](boost::system::error_code ec, std::size_t n) {
                              result = ReadResult{ec, buffer_.substr(0, n)};
                            });
  }

  /// Runs the io_context until `result` is set.
  /// Starts a read into `result` and runs what the event loop has ready, without waiting.
  void start_read_and_poll(std::size_t size, std::optional<ReadResult>& result) {
    start_read(size, result);
    io_.restart();
    io_.poll();
  }

  void run_until(const std::optional<ReadResult>& result) {
    io_.restart();
    while (!result) {
      io_.run_one();
    }
  }

  ReadResult read(std::size_t size) {
    std::optional<ReadResult> result;
    start_read(size, result);
    run_until(result);
    return *result;
  }

  void send(std::string_view data) { asio::write(peer_, asio::buffer(data.data(), data.size())); }

  /// Lets the event loop run (and see readiness events) with no read waiting.
  void spin_event_loop() {
    asio::steady_timer timer(io_, std::chrono::milliseconds(20));
    bool fired = false;
    timer.async_wait([&](boost::system::error_code) { fired = true; });
    io_.restart();
    while (!fired) {
      io_.run_one();
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::io_context peer_io_;
  tcp::socket peer_{peer_io_};
  tcp::socket ours_{io_};
  std::string buffer_;
};

TEST_F(DrainedReadTest, ReadsWhatIsThere) {
  send("hello");
  ReadResult first = read(64);
  EXPECT_FALSE(first.ec);
  EXPECT_EQ(first.data, "hello");
}

TEST_F(DrainedReadTest, AfterAShortReadWaitsForDataThatComesLater) {
  send("one");
  EXPECT_EQ(read(64).data, "one");
  // The socket is empty now: the next read must wait, then get what arrives.
  std::optional<ReadResult> second;
  start_read_and_poll(64, second);
  EXPECT_FALSE(second);
  send("two");
  run_until(second);
  EXPECT_FALSE(second->ec);
  EXPECT_EQ(second->data, "two");
}

TEST_F(DrainedReadTest, AfterAShortReadGetsDataThatCameBeforeTheNextRead) {
  send("one");
  EXPECT_EQ(read(64).data, "one");
  // Data arrives while no read is waiting, before or after the event loop saw it.
  send("two");
  EXPECT_EQ(read(64).data, "two");
  send("three");
  spin_event_loop();
  EXPECT_EQ(read(64).data, "three");
}

TEST_F(DrainedReadTest, AFullReadLeavesTheRestForTheNextRead) {
  send("0123456789abcdef0123456789ABCDEF");
  EXPECT_EQ(read(16).data, "0123456789abcdef");
  EXPECT_EQ(read(16).data, "0123456789ABCDEF");
  send("tail");
  EXPECT_EQ(read(16).data, "tail");
}

TEST_F(DrainedReadTest, EndOfStreamAfterAShortRead) {
  send("last");
  EXPECT_EQ(read(64).data, "last");
  peer_.shutdown(tcp::socket::shutdown_send);
  ReadResult end = read(64);
  EXPECT_EQ(end.ec, asio::error::eof);
  EXPECT_TRUE(end.data.empty());
}

TEST_F(DrainedReadTest, ClosingTheSocketAbortsAWaitingRead) {
  send("x");
  EXPECT_EQ(read(64).data, "x");
  std::optional<ReadResult> waiting;
  start_read_and_poll(64, waiting);
  EXPECT_FALSE(waiting);
  ours_.close();
  run_until(waiting);
  EXPECT_EQ(waiting->ec, asio::error::operation_aborted);
}

TEST_F(DrainedReadTest, AnEmptyBufferCompletesAtOnce) {
  ReadResult empty = read(0);
  EXPECT_FALSE(empty.ec);
  EXPECT_TRUE(empty.data.empty());
}

}  // namespace
}  // namespace spawn::proxy::http_codec
