#pragma once

// Helpers for the workflow and time integration tests (PROTOCOL.md §5.5, §5.6, §5.8): a
// thread-safe event log with wall-clock stamps, a raw-socket reader of server-sent events, and a
// fixture with log polling.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "integration/proxy_fixture.hpp"

namespace spawn::integration {

/// Returns the current time as Unix epoch milliseconds (the unit of `scheduled_to`).
std::int64_t epoch_ms_now();

/// Returns `time` as Unix epoch milliseconds.
std::int64_t epoch_ms(std::chrono::system_clock::time_point time);

/// Events recorded by test code and host handlers (which run on the TestHost thread), in the
/// order they happened, each with the wall-clock time it was recorded. Thread-safe.
class EventLog {
public:
  struct Event {
    std::string name;
    std::chrono::system_clock::time_point at;
  };

  /// Appends `name`, stamped with system_clock::now().
  void record(std::string name);

  /// Returns a copy of every event so far.
  std::vector<Event> events() const;

  /// Returns the position of the first event called `name`, if any.
  std::optional<std::size_t> index_of(const std::string& name) const;

  /// Returns the time of the first event called `name`, if any.
  std::optional<std::chrono::system_clock::time_point> time_of(const std::string& name) const;

  /// Returns the times of every event called `name`, in order.
  std::vector<std::chrono::system_clock::time_point> times_of(const std::string& name) const;

  /// Returns how many events are called `name`.
  int count(const std::string& name) const;

  /// Returns the names in order, for failure messages.
  std::string describe() const;

private:
  mutable std::mutex mutex_;  // guards events_
  std::vector<Event> events_;
};

/// A client of GET /api/v1/channels/{topic}/events on a plain blocking POSIX socket, reading the
/// server-sent event stream line by line with timeouts (HttpClient is request/response only).
class EventStream {
public:
  /// One server-sent event: its `event:` name and its (joined) `data:` lines.
  struct Event {
    std::string event;
    std::string data;
  };

  /// Connects to 127.0.0.1:`port`, sends the GET for `topic` and reads the response head.
  /// Check error() afterwards.
  EventStream(std::uint16_t port, const std::string& topic);
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  /// Returns what went wrong while connecting or reading the head; empty when nothing did.
  const std::string& error() const { return error_; }

  /// Returns the HTTP status of the response (0 when it could not be read).
  unsigned status() const { return status_; }

  /// Returns a response header by lower-case name ("" when absent).
  std::string header(const std::string& name) const;

  /// Returns the next line of the body without its line ending, or nullopt after `timeout` or at
  /// the end of the stream.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);

  /// Returns the next event (comment lines are skipped and kept in comments()), or nullopt after
  /// `timeout` or at the end of the stream.
  std::optional<Event> next_event(std::chrono::milliseconds timeout);

  /// Returns the comment lines (": …") seen by next_event() so far.
  const std::vector<std::string>& comments() const { return comments_; }

private:
  /// Reads more bytes into buffer_; false on timeout, end of stream or error.
  bool fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buffer_;
  std::string error_;
  unsigned status_ = 0;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::vector<std::string> comments_;
};

/// Base fixture of the workflow and time tests: ProxyTest plus log polling and an event log.
class WorkflowTest : public ProxyTest {
protected:
  /// Returns what the main proxy printed so far ("" without a proxy).
  std::string proxy_log() const;

  /// Polls the main proxy's log until it contains `text`.
  bool wait_for_log(const std::string& text,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  /// Returns the first line of the proxy log that contains both `a` and `b`, if any.
  std::optional<std::string> log_line_with(const std::string& a, const std::string& b) const;

  /// Polls the main proxy's log until a line contains both `a` and `b`.
  bool wait_for_log_line(const std::string& a, const std::string& b,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  /// Polls until the host received `action` at least `n` times.
  bool wait_for_count(const std::string& action, int n,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  /// Returns the invocations of `action` the host received, in arrival order.
  std::vector<pb::ActorInvocation> received(const std::string& action) const;

  EventLog events_;
};

}  // namespace spawn::integration
