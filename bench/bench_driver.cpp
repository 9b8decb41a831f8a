// spawn-bench-driver: the broadcast fan-out and scheduled-invocation benchmarks, run against a
// real spawn-proxy and spawn-bench-host (which counts the deliveries; see bench_host.cpp).
//
//   spawn-bench-driver fanout --proxy-port P --host-port H [--subscribers 10000] [--rounds 3]
//       Registers system "bench-fanout": N subscribers of topic "bench" (action receive) and an
//       "announcer". Each round resets the host's counters, invokes announcer.announce (the host
//       answers with a broadcast to "bench") and waits until the host has counted N receives.
//       Round 1 activates every subscriber; later rounds find them active.
//
//   spawn-bench-driver schedule --proxy-port P --host-port H [--system bench] [--prefix a]
//                               [--actors 1000] [--count 100000] [--window-ms 1000]
//                               [--connections 64] [--pilot 2000]
//       Uses counter actors registered beforehand (spawn-bench-requests registration). A pilot
//       of scheduled requests due in an hour measures how fast the proxy stores them; then
//       `count` requests of action tick, round-robin over the actors, due evenly within
//       [D, D + window), where D leaves room to store them all first, are posted over
//       `connections` connections, and the driver waits until the host has counted them all.
//
// Every result is one line, FANOUT_RESULT or SCHEDULE_RESULT key=value..., for bench/run.sh.
// Times are wall-clock (Unix epoch) in both processes, so the host's timestamps compare with ours.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "bench_messages.hpp"
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

constexpr std::string_view kTopic = "bench";
constexpr std::int64_t kKeepActiveMs = 600000;

std::int64_t epoch_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t epoch_ms() {
  return epoch_ns() / 1000000;
}

/// What one HTTP exchange produced; `error` is empty on success (any status).
struct Reply {
  unsigned status = 0;
  std::string body;
  std::string error;
};

/// One keep-alive HTTP/1.1 connection to 127.0.0.1:port; reconnects when the server closed it.
class Client {
public:
  Client(asio::any_io_executor executor, std::uint16_t port)
      : executor_(std::move(executor)), port_(port) {}

  Task<Reply> send(http::verb verb, std::string target, std::string body) {
    http::request<http::string_body> request{verb, target, 11};
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::content_type, "application/octet-stream");
    request.set(http::field::accept, "application/octet-stream");
    request.keep_alive(true);
    request.body() = std::move(body);
    request.prepare_payload();
    Reply reply;
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = connected_;
      if (!connected_) {
        stream_.emplace(executor_);
        stream_->expires_after(std::chrono::seconds(10));
        auto [error] = co_await stream_->async_connect(
            tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port_), kUseTask);
        if (error) {
          reply.error = "connect to port " + std::to_string(port_) + ": " + error.message();
          co_return reply;
        }
        beast::error_code ignored;
        stream_->socket().set_option(tcp::no_delay(true), ignored);
        connected_ = true;
      }
      stream_->expires_after(std::chrono::seconds(60));
      auto [write_error, written] = co_await http::async_write(*stream_, request, kUseTask);
      http::response_parser<http::string_body> parser;
      parser.body_limit(std::size_t{64} * 1024 * 1024);
      beast::error_code read_error = write_error;
      if (!write_error) {
        std::tie(read_error, std::ignore) =
            co_await http::async_read(*stream_, buffer_, parser, kUseTask);
      }
      if (read_error) {
        connected_ = false;
        buffer_.clear();
        if (reused) {
          continue;  // the server closed an idle connection: try once on a new one
        }
        reply.error = "port " + std::to_string(port_) + " " + std::string(target) + ": "
                      + read_error.message();
        co_return reply;
      }
      reply.status = parser.get().result_int();
      reply.body = std::move(parser.get().body());
      connected_ = parser.get().keep_alive();
      co_return reply;
    }
    reply.error = "port " + std::to_string(port_) + ": connection closed twice";
    co_return reply;
  }

private:
  asio::any_io_executor executor_;
  std::uint16_t port_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  bool connected_ = false;
};

struct Counted {
  std::uint64_t count = 0;
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
  std::uint64_t duplicates = 0;
};

/// Reads the host's counters (GET /bench/stats); empty on failure.
Task<std::map<std::string, Counted>> host_stats(Client& host) {
  std::map<std::string, Counted> stats;
  Reply reply = co_await host.send(http::verb::get, "/bench/stats", {});
  if (!reply.error.empty() || reply.status != 200) {
    co_return stats;
  }
  std::istringstream lines(reply.body);
  std::string action;
  Counted counted;
  while (lines >> action >> counted.count >> counted.first_ns >> counted.last_ns
         >> counted.duplicates) {
    stats[action] = counted;
  }
  co_return stats;
}

Task<void> sleep_for(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(kUseTask);
}

/// Polls the host until `action` was counted `target` times or `timeout` passed.
Task<Counted> wait_for_count(Client& host, std::string action, std::uint64_t target,
                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Counted last;
  for (;;) {
    auto stats = co_await host_stats(host);
    last = stats[action];
    if (last.count >= target || std::chrono::steady_clock::now() >= deadline) {
      co_return last;
    }
    co_await sleep_for(std::chrono::milliseconds(5));
  }
}

/// Returns an empty string when `reply` is a 200 whose protobuf `Message` says OK.
template <class Message>
std::string check_ok(const Reply& reply, std::string_view what) {
  if (!reply.error.empty()) {
    return std::string(what) + ": " + reply.error;
  }
  Message message;
  if (!message.ParseFromString(reply.body)) {
    return std::string(what) + ": HTTP " + std::to_string(reply.status)
           + ", body is not the expected protobuf";
  }
  if (reply.status != 200 || message.status().status() != pb::OK) {
    return std::string(what) + ": HTTP " + std::to_string(reply.status) + ", "
           + message.status().message();
  }
  return {};
}

struct Options {
  std::string command;
  std::uint16_t proxy_port = 9001;
  std::uint16_t host_port = 8090;
  std::size_t subscribers = 10000;
  int rounds = 3;
  std::string system = "bench";
  std::string prefix = "a";
  std::size_t actors = 1000;
  std::size_t count = 100000;
  std::int64_t window_ms = 1000;
  std::size_t connections = 64;
  std::size_t pilot = 2000;
  int timeout_s = 120;
};

Task<int> fanout(Options options) {
  auto executor = co_await asio::this_coro::executor;
  Client proxy(executor, options.proxy_port);
  Client host(executor, options.host_port);
  const std::string system = "bench-fanout";
  const std::string publisher = "announcer";

  auto registration = spawn::bench::fanout_registration(
      system, "s", options.subscribers, std::string(kTopic), publisher, kKeepActiveMs);
  const auto registered_at = std::chrono::steady_clock::now();
  Reply registered =
      co_await proxy.send(http::verb::post, "/api/v1/system", registration.SerializeAsString());
  if (auto error = check_ok<pb::RegistrationResponse>(registered, "register"); !error.empty()) {
    std::fprintf(stderr, "fanout: %s\n", error.c_str());
    co_return 1;
  }
  std::printf(
      "FANOUT_REGISTER subscribers=%zu ms=%.1f\n", options.subscribers,
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - registered_at)
          .count());

  const std::string body =
      spawn::bench::invocation(system, publisher, "announce", {{"topic", std::string(kTopic)}})
          .SerializeAsString();
  for (int round = 1; round <= options.rounds; ++round) {
    co_await host.send(http::verb::post, "/bench/reset", {});
    const std::int64_t start_ns = epoch_ns();
    Reply invoked =
        co_await proxy.send(http::verb::post, spawn::bench::invoke_path(system, publisher), body);
    const std::int64_t reply_ns = epoch_ns();
    if (auto error = check_ok<pb::InvocationResponse>(invoked, "announce"); !error.empty()) {
      std::fprintf(stderr, "fanout: %s\n", error.c_str());
      co_return 1;
    }
    Counted received = co_await wait_for_count(host, "receive", options.subscribers,
                                               std::chrono::seconds(options.timeout_s));
    co_await sleep_for(std::chrono::milliseconds(50));  // any duplicate would show up by now
    auto settled = (co_await host_stats(host))["receive"];
    const double all_ms = static_cast<double>(received.last_ns - start_ns) / 1e6;
    std::printf(
        "FANOUT_RESULT round=%d subscribers=%zu delivered=%llu reply_ms=%.2f first_ms=%.2f "
        "all_ms=%.1f deliveries_per_s=%.0f\n",
        round, options.subscribers, static_cast<unsigned long long>(settled.count),
        static_cast<double>(reply_ns - start_ns) / 1e6,
        static_cast<double>(received.first_ns - start_ns) / 1e6, all_ms,
        received.count >= options.subscribers
            ? static_cast<double>(options.subscribers) / (all_ms / 1e3)
            : 0.0);
    std::fflush(stdout);
    if (received.count < options.subscribers) {
      std::fprintf(stderr, "fanout: only %llu of %zu deliveries within %d s\n",
                   static_cast<unsigned long long>(received.count), options.subscribers,
                   options.timeout_s);
      co_return 1;
    }
  }
  co_return 0;
}

/// Posts scheduled invocations over several connections at once.
class Loader {
public:
  Loader(const Options& options, std::string action, std::int64_t first_due_ms,
         std::int64_t window_ms)
      : options_(options),
        action_(std::move(action)),
        first_due_ms_(first_due_ms),
        window_ms_(window_ms) {}

  /// Posts `count` requests; returns the number that failed.
  Task<std::size_t> run(std::size_t count) {
    auto executor = co_await asio::this_coro::executor;
    count_ = count;
    std::vector<std::unique_ptr<Client>> clients;
    asio::steady_timer all_done(executor, std::chrono::steady_clock::time_point::max());
    std::size_t running = std::min(options_.connections, count);
    const std::size_t workers = running;
    for (std::size_t i = 0; i < workers; ++i) {
      clients.push_back(std::make_unique<Client>(executor, options_.proxy_port));
      asio::co_spawn(executor, worker(*clients.back()), [&](std::exception_ptr) {
        if (--running == 0) {
          all_done.cancel();
        }
      });
    }
    co_await all_done.async_wait(kUseTask);
    co_return failures_;
  }

  const std::string& first_error() const { return first_error_; }

private:
  Task<void> worker(Client& client) {
    for (;;) {
      const std::size_t i = next_++;
      if (i >= count_) {
        co_return;
      }
      const std::string actor = spawn::bench::actor_name(options_.prefix, i % options_.actors);
      // The host counts each seq once, so an invocation that runs twice shows as a duplicate.
      auto request =
          spawn::bench::invocation(options_.system, actor, action_, {{"seq", std::to_string(i)}});
      const auto offset = static_cast<std::int64_t>(i) * window_ms_
                          / static_cast<std::int64_t>(std::max<std::size_t>(count_, 1));
      request.set_scheduled_to(first_due_ms_ + offset);
      Reply reply =
          co_await client.send(http::verb::post, spawn::bench::invoke_path(options_.system, actor),
                               request.SerializeAsString());
      if (auto error = check_ok<pb::InvocationResponse>(reply, "schedule"); !error.empty()) {
        if (failures_++ == 0) {
          first_error_ = error;
        }
      }
    }
  }

  const Options& options_;
  std::string action_;
  std::int64_t first_due_ms_;
  std::int64_t window_ms_;
  std::size_t count_ = 0;
  std::size_t next_ = 0;
  std::size_t failures_ = 0;
  std::string first_error_;
};

Task<int> schedule(Options options) {
  auto executor = co_await asio::this_coro::executor;
  Client host(executor, options.host_port);

  // The pilot is due in an hour: it only measures storing and never fires during the run.
  double store_rate = 0;
  if (options.pilot > 0) {
    Loader pilot(options, "inc", epoch_ms() + 3600000, 0);
    const auto started = std::chrono::steady_clock::now();
    const std::size_t failed = co_await pilot.run(options.pilot);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (failed > 0) {
      std::fprintf(stderr, "schedule: %zu of %zu pilot requests failed: %s\n", failed,
                   options.pilot, pilot.first_error().c_str());
      co_return 1;
    }
    store_rate = static_cast<double>(options.pilot) / seconds;
  }
  // Leave time to store everything (with a 50% margin) before the first is due.
  const double expected_s = store_rate > 0 ? static_cast<double>(options.count) / store_rate : 30.0;
  const std::int64_t lead_ms = static_cast<std::int64_t>(expected_s * 1500.0) + 500;

  co_await host.send(http::verb::post, "/bench/reset", {});
  const std::int64_t load_start_ms = epoch_ms();
  const std::int64_t first_due_ms = load_start_ms + lead_ms;
  Loader loader(options, "tick", first_due_ms, options.window_ms);
  const std::size_t failed = co_await loader.run(options.count);
  const std::int64_t load_end_ms = epoch_ms();
  if (failed > 0) {
    std::fprintf(stderr, "schedule: %zu of %zu requests failed: %s\n", failed, options.count,
                 loader.first_error().c_str());
    co_return 1;
  }
  const auto early = (co_await host_stats(host))["tick"];
  Counted fired = co_await wait_for_count(
      host, "tick", options.count,
      std::chrono::seconds(options.timeout_s) + std::chrono::milliseconds(lead_ms));
  co_await sleep_for(std::chrono::milliseconds(100));
  auto settled = (co_await host_stats(host))["tick"];

  const double load_s = static_cast<double>(load_end_ms - load_start_ms) / 1e3;
  const std::int64_t first_due_ns = first_due_ms * 1000000;
  const double span_s = static_cast<double>(fired.last_ns - first_due_ns) / 1e9;
  std::printf(
      "SCHEDULE_RESULT count=%zu stored_per_s=%.0f pilot_stored_per_s=%.0f lead_ms=%lld "
      "fired_before_load_end=%llu fired=%llu duplicates=%llu first_late_ms=%.1f last_late_ms=%.1f "
      "fired_per_s=%.0f\n",
      options.count, static_cast<double>(options.count) / load_s, store_rate,
      static_cast<long long>(lead_ms), static_cast<unsigned long long>(early.count),
      static_cast<unsigned long long>(settled.count),
      static_cast<unsigned long long>(settled.duplicates),
      static_cast<double>(fired.first_ns - first_due_ns) / 1e6,
      static_cast<double>(fired.last_ns - (first_due_ns + options.window_ms * 1000000)) / 1e6,
      fired.count >= options.count ? static_cast<double>(options.count) / span_s : 0.0);
  std::fflush(stdout);
  if (fired.count < options.count) {
    std::fprintf(stderr, "schedule: only %llu of %zu fired in time\n",
                 static_cast<unsigned long long>(fired.count), options.count);
    co_return 1;
  }
  co_return 0;
}

bool parse(int argc, char** argv, Options& options) {
  if (argc < 2 || (argc % 2) != 0) {
    return false;
  }
  options.command = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const std::string value = argv[i + 1];
    const auto number = std::strtoll(value.c_str(), nullptr, 10);
    if (flag == "--proxy-port") {
      options.proxy_port = static_cast<std::uint16_t>(number);
    } else if (flag == "--host-port") {
      options.host_port = static_cast<std::uint16_t>(number);
    } else if (flag == "--subscribers") {
      options.subscribers = static_cast<std::size_t>(number);
    } else if (flag == "--rounds") {
      options.rounds = static_cast<int>(number);
    } else if (flag == "--system") {
      options.system = value;
    } else if (flag == "--prefix") {
      options.prefix = value;
    } else if (flag == "--actors") {
      options.actors = static_cast<std::size_t>(number);
    } else if (flag == "--count") {
      options.count = static_cast<std::size_t>(number);
    } else if (flag == "--window-ms") {
      options.window_ms = number;
    } else if (flag == "--connections") {
      options.connections = static_cast<std::size_t>(number);
    } else if (flag == "--pilot") {
      options.pilot = static_cast<std::size_t>(number);
    } else if (flag == "--timeout-s") {
      options.timeout_s = static_cast<int>(number);
    } else {
      return false;
    }
  }
  return options.proxy_port != 0 && options.host_port != 0 && options.actors > 0
         && options.connections > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse(argc, argv, options)
      || (options.command != "fanout" && options.command != "schedule")) {
    std::fprintf(stderr,
                 "usage: spawn-bench-driver fanout --proxy-port P --host-port H "
                 "[--subscribers N] [--rounds R]\n"
                 "       spawn-bench-driver schedule --proxy-port P --host-port H [--system S] "
                 "[--prefix P] [--actors N] [--count N] [--window-ms MS] [--connections C] "
                 "[--pilot N]\n");
    return 2;
  }
  try {
    asio::io_context io(1);
    int status = 1;
    asio::co_spawn(io, options.command == "fanout" ? fanout(options) : schedule(options),
                   [&status](std::exception_ptr error, int result) {
                     if (error) {
                       try {
                         std::rethrow_exception(error);
                       } catch (const std::exception& e) {
                         std::fprintf(stderr, "spawn-bench-driver: %s\n", e.what());
                       }
                       return;
                     }
                     status = result;
                   });
    io.run();
    return status;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "spawn-bench-driver: %s\n", error.what());
    return 1;
  }
}
