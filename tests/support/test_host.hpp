#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.hpp"

namespace spawn::testing {

namespace pb = protocol::pb;
namespace pba = protocol::pba;

/// What the test host sends back for one call, byte for byte.
struct HostReply {
  unsigned http_status = 200;
  std::string body;
  /// Close the connection after answering (and before, with `drop`).
  bool close = false;
  /// Close the connection without answering at all.
  bool drop = false;
  /// Wait this long before answering.
  std::chrono::milliseconds delay{0};
};

/// A Spawn user function (host) on 127.0.0.1, served on a thread of its own, for tests and
/// benchmarks. It answers POST /api/v1/actors/actions like the Node SDK's host does
/// (PROTOCOL.md §4): an action with no handler gets `updated_context = current_context` and no
/// payload; any other path is 404. Thread-safe.
class TestHost {
public:
  using Handler = std::function<pb::ActorInvocationResponse(const pb::ActorInvocation&)>;
  using RawHandler = std::function<HostReply(const pb::ActorInvocation&)>;

  /// Starts listening on `port` (0: a free port).
  explicit TestHost(std::uint16_t port = 0);
  ~TestHost();
  TestHost(const TestHost&) = delete;
  TestHost& operator=(const TestHost&) = delete;

  /// Returns the port it listens on (kept across stop()/start()).
  std::uint16_t port() const;

  /// Answers action `action` (of any actor) with `handler`'s response.
  void on(std::string action, Handler handler);

  /// Answers action `action` with raw bytes and status (garbage, empty bodies, delays, drops).
  void on_raw(std::string action, RawHandler handler);

  /// Returns a copy of every invocation received so far, in arrival order.
  std::vector<pb::ActorInvocation> received() const;

  /// Returns how many invocations of `action` arrived so far.
  int count(std::string_view action) const;

  /// Returns how many TCP connections were accepted so far, across stop()/start().
  int accepted_connections() const;

  /// Polls `predicate` until it holds or `timeout` passes; returns its last value.
  static bool wait_for(const std::function<bool()>& predicate,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));

  /// Stops serving and closes every connection (simulates a host going down).
  void stop();

  /// Serves again on the same port after stop().
  void start();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Returns the response the Node host gives when an action leaves everything unchanged:
/// `updated_context` = the invocation's context, no payload.
pb::ActorInvocationResponse echo_response(const pb::ActorInvocation& invocation);

/// Packs `message` into an Any with type URL `type.googleapis.com/<full name>`.
google::protobuf::Any pack(const google::protobuf::Message& message);

/// Packs a JSON text as `JSONType{content}` (how JSON actors carry state and payloads).
google::protobuf::Any pack_json(std::string json);

}  // namespace spawn::testing
