// spawn-bench-host: a minimal, fast user function (host) for load tests of spawn-proxy.
//
//   spawn-bench-host [port] [threads]
//
// port defaults to $USER_FUNCTION_PORT, else 8090; threads defaults to 1. Every thread has its
// own io_context and its own SO_REUSEPORT listener, so threads share nothing and the kernel
// spreads connections between them.
//
// POST /api/v1/actors/actions: the actor's state is a counter, an Any of type
// `type.googleapis.com/bench.Counter` whose value is 8 bytes, little-endian. Every action
// increments it, except the default get actions and init/setup, which leave it unchanged. The
// reply carries the new state as updated_context.state and as the value payload, echoes the
// tags, and sets checkpoint when the invocation's metadata has checkpoint=true.
//
// For the fan-out and scheduling benchmarks (spawn-bench-driver):
//   - `announce` also answers with workflow.broadcast{channel_group: metadata "topic" or "bench",
//     noop}, so the proxy delivers `receive` to every subscriber of that topic;
//   - `receive` and `tick` are counted: how many arrived, and the wall-clock time (Unix epoch ns)
//     of the first and the last. A `tick` whose metadata carries "seq" (0 <= seq < 2^22) counts
//     only the first time that seq arrives; repeats are counted as duplicates. GET /bench/stats
//     answers one line per counted action, "<action> <count> <first_ns> <last_ns> <duplicates>";
//     POST /bench/reset sets everything to zero.

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "common/asio.hpp"
#include "protocol/messages.hpp"

namespace {

namespace asio = spawn::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace pb = spawn::protocol::pb;
using spawn::kUseTask;
using spawn::Task;
using tcp = asio::ip::tcp;

constexpr std::string_view kActionsPath = "/api/v1/actors/actions";
constexpr std::string_view kCounterType = "type.googleapis.com/bench.Counter";
constexpr std::size_t kMaxBodyBytes = std::size_t{64} * 1024 * 1024;
constexpr std::string_view kStatsPath = "/bench/stats";
constexpr std::string_view kResetPath = "/bench/reset";
constexpr std::string_view kDefaultTopic = "bench";

constexpr std::size_t kMaxSeq = std::size_t{1} << 22;

/// Arrivals of one counted action; shared by every host thread.
struct Counter {
  std::string_view action;
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::int64_t> first_ns{0};
  std::atomic<std::int64_t> last_ns{0};
  std::atomic<std::uint64_t> duplicates{0};

  void record(std::int64_t now_ns) {
    count.fetch_add(1, std::memory_order_relaxed);
    std::int64_t unset = 0;
    first_ns.compare_exchange_strong(unset, now_ns, std::memory_order_relaxed);
    std::int64_t last = last_ns.load(std::memory_order_relaxed);
    while (last < now_ns
           && !last_ns.compare_exchange_weak(last, now_ns, std::memory_order_relaxed)) {
    }
  }

  void reset() {
    count = 0;
    first_ns = 0;
    last_ns = 0;
    duplicates = 0;
  }
};

/// Which sequence numbers of `tick` arrived already (to find invocations that ran twice).
std::vector<std::atomic<bool>> g_seen(kMaxSeq);

/// Returns false when `seq` was seen before.
bool first_arrival(std::string_view seq) {
  std::size_t value = 0;
  const auto [end, error] = std::from_chars(seq.data(), seq.data() + seq.size(), value);
  if (error != std::errc() || end != seq.data() + seq.size() || value >= kMaxSeq) {
    return true;
  }
  return !g_seen[value].exchange(true, std::memory_order_relaxed);
}

Counter g_receive{"receive"};
Counter g_tick{"tick"};

std::int64_t epoch_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string stats_text() {
  std::string text;
  for (const Counter* counter : {&g_receive, &g_tick}) {
    text += counter->action;
    text += ' ' + std::to_string(counter->count.load()) + ' '
            + std::to_string(counter->first_ns.load()) + ' '
            + std::to_string(counter->last_ns.load()) + ' '
            + std::to_string(counter->duplicates.load()) + '\n';
  }
  return text;
}

bool leaves_state_unchanged(std::string_view action) {
  return action == "get" || action == "Get" || action == "get_state" || action == "getState"
         || action == "GetState" || action == "init" || action == "Init" || action == "setup"
         || action == "Setup";
}

std::uint64_t read_counter(const google::protobuf::Any& state) {
  const std::string& bytes = state.value();
  if (bytes.size() != 8) {
    return 0;
  }
  std::uint64_t value = 0;
  for (int i = 7; i >= 0; --i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  }
  return value;
}

void write_counter(std::uint64_t value, google::protobuf::Any& state) {
  state.set_type_url(std::string(kCounterType));
  std::string& bytes = *state.mutable_value();
  bytes.resize(8);
  for (std::size_t i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
  }
}

// Fills `response` for `invocation`. Both are reused across requests so their storage is too.
void handle(const pb::ActorInvocation& invocation, pb::ActorInvocationResponse& response) {
  response.Clear();
  const pb::Context& current = invocation.current_context();
  response.set_actor_name(invocation.actor().name());
  response.set_actor_system(invocation.actor().system());
  pb::Context& updated = *response.mutable_updated_context();
  *updated.mutable_tags() = current.tags();
  *updated.mutable_self() = current.self();

  if (leaves_state_unchanged(invocation.action_name())) {
    if (current.has_state()) {
      *updated.mutable_state() = current.state();
      *response.mutable_value() = current.state();
    }
  } else {
    write_counter(read_counter(current.state()) + 1, *updated.mutable_state());
    *response.mutable_value() = updated.state();
  }
  const auto checkpoint = current.metadata().find("checkpoint");
  response.set_checkpoint(checkpoint != current.metadata().end() && checkpoint->second == "true");

  const std::string& action = invocation.action_name();
  if (action == "receive") {
    g_receive.record(epoch_ns());
  } else if (action == "tick") {
    const auto seq = current.metadata().find("seq");
    if (seq == current.metadata().end() || first_arrival(seq->second)) {
      g_tick.record(epoch_ns());
    } else {
      g_tick.duplicates.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (action == "announce") {
    const auto topic = current.metadata().find("topic");
    auto* broadcast = response.mutable_workflow()->mutable_broadcast();
    broadcast->set_channel_group(topic != current.metadata().end() ? topic->second
                                                                   : std::string(kDefaultTopic));
    broadcast->mutable_noop();
  }
}

Task<void> serve(tcp::socket socket) {
  socket.set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  pb::ActorInvocation invocation;
  pb::ActorInvocationResponse reply;
  http::response<http::string_body> response;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    auto [read_error, read] = co_await http::async_read(socket, buffer, parser, kUseTask);
    if (read_error) {
      co_return;
    }
    const http::request<http::string_body>& request = parser.get();

    response.clear();
    response.body().clear();
    response.version(request.version());
    response.keep_alive(request.keep_alive());
    if (request.method() == http::verb::get && request.target() == kStatsPath) {
      response.result(http::status::ok);
      response.set(http::field::content_type, "text/plain");
      response.body() = stats_text();
    } else if (request.method() == http::verb::post && request.target() == kResetPath) {
      g_receive.reset();
      g_tick.reset();
      for (auto& seen : g_seen) {
        seen.store(false, std::memory_order_relaxed);
      }
      response.result(http::status::ok);
    } else if (request.method() != http::verb::post || request.target() != kActionsPath) {
      response.result(http::status::not_found);
    } else if (!invocation.ParseFromString(request.body())) {
      response.result(http::status::bad_request);
    } else {
      handle(invocation, reply);
      response.result(http::status::ok);
      response.set(http::field::content_type, "application/octet-stream");
      reply.SerializeToString(&response.body());
    }
    response.prepare_payload();
    auto [write_error, written] = co_await http::async_write(socket, response, kUseTask);
    if (write_error || !response.keep_alive()) {
      beast::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
  }
}

Task<void> accept_loop(tcp::acceptor acceptor) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kUseTask);
    if (error == asio::error::operation_aborted) {
      co_return;
    }
    if (!error) {
      asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
    }
  }
}

// Returns the port from argv[1], $USER_FUNCTION_PORT or 8090; 0 when malformed.
std::uint16_t parse_port(int argc, char** argv) {
  std::string_view text = "8090";
  if (argc > 1) {
    text = argv[1];
  } else if (const char* env = std::getenv("USER_FUNCTION_PORT"); env != nullptr && *env != 0) {
    text = env;
  }
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) {
    return 0;
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::uint16_t port = parse_port(argc, argv);
    int threads = 1;
    if (argc > 2) {
      threads = std::atoi(argv[2]);
    }
    if (port == 0 || threads < 1) {
      std::fprintf(stderr, "usage: spawn-bench-host [port] [threads]\n");
      return 2;
    }

    std::vector<std::unique_ptr<asio::io_context>> contexts;
    const tcp::endpoint endpoint(tcp::v4(), port);
    for (int i = 0; i < threads; ++i) {
      auto& io = *contexts.emplace_back(std::make_unique<asio::io_context>(1));
      tcp::acceptor acceptor(io);
      acceptor.open(endpoint.protocol());
      acceptor.set_option(asio::socket_base::reuse_address(true));
      acceptor.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
      acceptor.bind(endpoint);
      acceptor.listen(asio::socket_base::max_listen_connections);
      asio::co_spawn(io, accept_loop(std::move(acceptor)), asio::detached);
    }

    asio::signal_set signals(*contexts.front(), SIGINT, SIGTERM);
    signals.async_wait([&contexts](const boost::system::error_code&, int) {
      for (auto& io : contexts) {
        io->stop();
      }
    });
    std::fprintf(stderr, "spawn-bench-host listening on port %u with %d thread(s)\n",
                 static_cast<unsigned>(port), threads);

    std::vector<std::thread> workers;
    for (int i = 1; i < threads; ++i) {
      workers.emplace_back([&io = *contexts[static_cast<std::size_t>(i)]] { io.run(); });
    }
    contexts.front()->run();
    for (auto& worker : workers) {
      worker.join();
    }
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "spawn-bench-host: %s\n", error.what());
    return 1;
  }
}
