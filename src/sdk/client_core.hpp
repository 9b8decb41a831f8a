#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "spawn/client.hpp"
#include "spawn/result.hpp"

#include "protocol/messages.hpp"
#include "sdk/dispatcher.hpp"

namespace spawn::sdk {

/// Receives the outcome of one invocation exactly once and hands its payload (null: none) or its
/// error to the caller's function. A transport that drops it unanswered (its node stopped with
/// the call still queued) answers kShuttingDown from the destructor, so no caller waits forever.
/// While it runs the caller's function, blocking Client calls from that thread are refused (they
/// would wait on the thread that must answer them).
class ReplyHandler {
public:
  explicit ReplyHandler(detail::ReplyFn fn) : fn_(std::move(fn)) {}

  ReplyHandler(ReplyHandler&& other) noexcept = default;
  ReplyHandler& operator=(ReplyHandler&&) = delete;
  ReplyHandler(const ReplyHandler&) = delete;
  ReplyHandler& operator=(const ReplyHandler&) = delete;
  ~ReplyHandler();

  /// Answers with `response`, which stays the transport's (a message it reuses): the caller's
  /// function borrows its payload and may move from it. `actor` and `action` name the call (for
  /// the errors of unpacking the payload).
  void operator()(protocol::pb::InvocationResponse& response, std::string_view actor,
                  std::string_view action);

  /// Answers with `outcome`: a response (destroyed afterwards) or an error (which needs no names).
  void operator()(Result<protocol::pb::InvocationResponse> outcome, std::string_view actor = {},
                  std::string_view action = {});

  /// Returns true while the calling thread runs a reply function.
  static bool in_reply();

private:
  void run(detail::Reply& reply);

  detail::ReplyFn fn_;
};

/// Counts a transport's calls from their start until their reply handler has run (or was
/// dropped), so that a stopping node can wait for them.
class InFlightCalls {
public:
  /// Held by one call; releasing it (destruction) ends the call.
  class Token {
  public:
    /// Sequentially consistent, so that a transport may count a call first and then check
    /// whether it was closed, while closing sets its flag first and then waits (no lock).
    explicit Token(InFlightCalls* calls) : calls_(calls) { calls_->count_.fetch_add(1); }

    Token(Token&& other) noexcept : calls_(std::exchange(other.calls_, nullptr)) {}

    Token& operator=(Token&&) = delete;
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;
    ~Token();

  private:
    InFlightCalls* calls_;
  };

  Token start() { return Token(this); }

  /// Waits until no call is in flight.
  void wait_idle();

  /// Waits until no call is in flight or `max_wait` passed; returns whether none is.
  bool wait_idle_for(std::chrono::milliseconds max_wait);

private:
  std::atomic<std::int64_t> count_{0};
  std::mutex mutex_;  // with idle_: wait_idle() waits for count_ == 0
  std::condition_variable idle_;
};

/// A request a call is built in.
using RequestPtr = std::unique_ptr<protocol::pb::InvocationRequest>;

/// Returns a request from this thread's pool of spare ones, or a new one. A spare one keeps the
/// messages and strings of the call it served (they are assigned, not allocated, when the next
/// call is built in it), and that call's fields: make_request() sets every one.
RequestPtr take_request();

/// Gives a finished call's `request` (may be null) to this thread's pool, for the calls built on
/// this thread next (deleted when the pool is full).
void recycle_request(RequestPtr request) noexcept;

/// How a Client reaches the runtime: directly (embedded) or through the proxy's HTTP API.
/// Implementations are thread-safe.
class Transport {
public:
  virtual ~Transport() = default;

  /// Starts `request` and returns; `done` gets the response on one of the transport's
  /// threads (a protocol error, status not OK, as an Error), or on this thread when it is refused
  /// at once.
  ///
  /// A transport that keeps the request past this call takes it (leaving `request` null; it
  /// recycles it once the call ran, recycle_request()); one that does not leaves it as it was,
  /// for the caller's next call.
  virtual void invoke(RequestPtr& request, ReplyHandler done) = 0;

  /// Spawns `ids` (PROTOCOL.md §5.7); blocks the caller.
  virtual Result<void> spawn(std::string system, std::vector<protocol::pba::ActorId> ids,
                             std::optional<std::int64_t> revision) = 0;
};

}  // namespace spawn::sdk

namespace spawn::detail {

/// What every Client handle of one Node shares: the node's system (for checks done before
/// sending) and its transport.
class ClientCore {
public:
  ClientCore(std::shared_ptr<const sdk::Dispatcher> dispatcher,
             std::shared_ptr<sdk::Transport> transport)
      : dispatcher_(std::move(dispatcher)), transport_(std::move(transport)) {}

  const std::string& system() const { return dispatcher_->system(); }

  using BlockingReply = Result<std::optional<google::protobuf::Any>>;

  /// Runs the call and blocks until its reply (or acceptance, for async calls).
  BlockingReply call(CallSpec spec) const;

  /// Starts the call; `done` gets the reply on a transport thread (see Client::invoke_then).
  void call_then(CallSpec spec, ReplyFn&& done) const;

  Result<void> spawn(std::string_view name, std::string_view parent,
                     const SpawnOptions& options) const;

private:
  Result<void> check(const CallSpec& spec, protocol::pb::InvocationRequest& request) const;
  /// Builds the request of `spec` into `request`, setting every field (it may hold an earlier
  /// call's).
  Result<void> make_request(CallSpec& spec, protocol::pb::InvocationRequest& request) const;

  std::shared_ptr<const sdk::Dispatcher> dispatcher_;
  std::shared_ptr<sdk::Transport> transport_;
};

}  // namespace spawn::detail
