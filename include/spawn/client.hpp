#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <google/protobuf/any.pb.h>

#include "spawn/actor_id.hpp"
#include "spawn/payload.hpp"
#include "spawn/result.hpp"

namespace spawn {

/// Options of one invocation.
struct InvokeOptions {
  /// Per-invocation metadata: reaches the handler as `Context::metadata()`; not stored. The key
  /// `request-timeout` (ms) bounds how long the runtime retries an unreachable host.
  StringMap metadata{};
  /// Spawns the target from this unnamed actor first if it does not exist yet (`register_ref`).
  std::string spawn_from{};
  /// Routes the call to any instance of a pooled actor. Set automatically for pooled actors of
  /// the node's own system.
  bool pooled = false;
};

/// Options of `Client::spawn()`.
struct SpawnOptions {
  /// The system of the template; empty: the node's own system.
  std::string system{};
  /// Starts the child from this historical revision of its stored state (SQL statestores).
  std::optional<std::int64_t> revision{};
};

namespace detail {

class ClientCore;

/// One call as the typed front end hands it to the transport.
struct CallSpec {
  enum class Mode : std::uint8_t { kSync, kAsync };

  std::string_view system;
  std::string_view actor;
  std::string_view action;
  /// The input, packed (JSON and Any inputs); unset when there is none or `message` holds it.
  std::optional<google::protobuf::Any> payload;
  /// The payload's type URL before packing ("" for none), to check it against the action.
  std::string_view payload_type;
  /// A protobuf message input, packed with `payload_type` where the request is built (into a
  /// message whose strings are reused); it lives until the call was handed to the transport.
  const google::protobuf::Message* message = nullptr;
  const InvokeOptions* options = nullptr;
  Mode mode = Mode::kSync;
  std::int64_t scheduled_to_ms = 0;
};

Error reply_missing(std::string_view actor, std::string_view action, std::string_view expected);

/// A call's reply as a transport hands it to the typed front end: the payload (null when there is
/// none), lent for the call of the reply function, which may move from it; or the error. With the
/// names of the call's actor and action, which the errors of unpacking the payload mention (not
/// kept by the reply function: moving it then moves no strings).
struct Reply {
  Result<google::protobuf::Any*> payload;
  std::string_view actor{};
  std::string_view action{};
};

/// The function a call's reply goes to (a move-only `void(Reply&)`), kept inline: making one and
/// moving it allocate nothing, which a `std::function` of the typed callback and the names the
/// errors mention would.
class ReplyFn {
public:
  ReplyFn() = default;

  template <class F>

  requires(!std::is_same_v<std::remove_cvref_t<F>, ReplyFn>) explicit ReplyFn(F&& fn) {
    using T = std::remove_cvref_t<F>;
    static_assert(sizeof(T) <= kSize && alignof(T) <= alignof(std::max_align_t),
                  "a reply function must fit ReplyFn's storage");
    static_assert(std::is_nothrow_move_constructible_v<T>);
    ::new (static_cast<void*>(storage_)) T(std::forward<F>(fn));
    ops_ = &kOps<T>;
  }

  ReplyFn(ReplyFn&& other) noexcept : ops_(other.ops_) {
    if (ops_ != nullptr) {
      ops_->move(storage_, other.storage_);
      other.ops_ = nullptr;
    }
  }

  ReplyFn& operator=(ReplyFn&& other) noexcept {
    if (this != &other) {
      reset();
      if (other.ops_ != nullptr) {
        other.ops_->move(storage_, other.storage_);
        ops_ = std::exchange(other.ops_, nullptr);
      }
    }
    return *this;
  }

  ReplyFn(const ReplyFn&) = delete;
  ReplyFn& operator=(const ReplyFn&) = delete;

  ~ReplyFn() { reset(); }

  explicit operator bool() const { return ops_ != nullptr; }

  void operator()(Reply& reply) { ops_->call(storage_, reply); }

  /// Destroys the function (it is empty afterwards).
  void reset() noexcept {
    if (ops_ != nullptr) {
      ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

private:
  /// Room for a typed callback (a std::function).
  static constexpr std::size_t kSize = sizeof(std::function<void()>);

  struct Ops {
    void (*call)(void* fn, Reply& reply);
    /// Move-constructs at `to` from `from` and destroys `from`.
    void (*move)(void* to, void* from) noexcept;
    void (*destroy)(void* fn) noexcept;
  };

  template <class T>
  static constexpr Ops kOps{
      [](void* fn, Reply& reply) { (*static_cast<T*>(fn))(reply); },
      [](void* to, void* from) noexcept {
        ::new (to) T(std::move(*static_cast<T*>(from)));
        static_cast<T*>(from)->~T();
      },
      [](void* fn) noexcept { static_cast<T*>(fn)->~T(); },
  };

  alignas(std::max_align_t) unsigned char storage_[kSize];
  const Ops* ops_ = nullptr;
};

inline std::int64_t epoch_ms(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

}  // namespace detail

class ActorRef;

/// Invokes actors and spawns them: the caller's side of an actor system, the same in both modes.
///
/// `invoke_then()` starts a call and returns at once; its callback gets the reply. Every other
/// call blocks until the runtime answered (synchronous invocations) or accepted the call
/// (async, delayed and scheduled ones). Both return errors as values:
/// kNotFound (no such actor, action or system), kInvalidArgument (a payload of the wrong type,
/// or a reply of another type than `Out`), kBadHostResponse (the handler threw, returned an
/// error, or could not read its input), kUnavailable / kTimeout (the proxy or the host cannot
/// be reached in time), kShuttingDown (the node is stopping).
///
/// A Client is a cheap handle (copy it freely) and thread-safe. Don't call it from inside an
/// action handler: that is refused with kInvalidArgument, since a synchronous call from a
/// handler can wait on itself; use the Value's effects, pipe or forward instead. For the same
/// reason an `invoke_then()` callback may start further `invoke_then()` calls but no blocking
/// ones (refused with kInvalidArgument).
class Client {
public:
  /// Made by `Node::client()`.
  explicit Client(std::shared_ptr<detail::ClientCore> core) : core_(std::move(core)) {}

  /// Returns the node's own system (the default of `actor()` and `spawn()`).
  const std::string& system() const;

  /// Returns a handle to actor `name` of the node's own system.
  ActorRef actor(std::string name) const;

  /// Returns a handle to actor `name` of system `system`.
  ActorRef actor(std::string system, std::string name) const;

  /// Invokes `action` on `actor` of `system` with `input`, waits for the reply and unpacks it as
  /// `Out` (void: ignore any reply; `google::protobuf::Any`: take it as it is).
  template <class Out = void, Payload In>
  Result<Out> invoke(std::string_view system, std::string_view actor, std::string_view action,
                     const In& input, const InvokeOptions& options = {}) const {
    return finish<Out>(call(with_input(system, actor, action, input, options)), actor, action);
  }

  /// Invokes `action` with no input (Noop); see the other invoke().
  template <class Out = void>
  Result<Out> invoke(std::string_view system, std::string_view actor, std::string_view action,
                     const InvokeOptions& options = {}) const {
    return finish<Out>(call(no_input(system, actor, action, options)), actor, action);
  }

  /// Invokes `action` on `actor` of `system` with `input` without waiting: returns at once, and
  /// `done` gets the reply unpacked as `Out` (as invoke() returns it) exactly once, on one of the
  /// node's threads (embedded: the runtime's thread that ran the call; sidecar: the client's
  /// I/O thread). Keep `done` short and non-blocking: it holds up that thread. It may start
  /// further invoke_then() calls (a chain of calls costs no thread while it waits). Errors
  /// found before sending (a payload of the wrong type, a call from an action handler) reach
  /// `done` on this thread before invoke_then() returns; a call the node drops because it
  /// stops gets kShuttingDown.
  template <class Out = void, Payload In>
  void invoke_then(std::string_view system, std::string_view actor, std::string_view action,
                   const In& input, std::type_identity_t<std::function<void(Result<Out>)>> done,
                   const InvokeOptions& options = {}) const {
    call_then(with_input(system, actor, action, input, options), finisher<Out>(std::move(done)));
  }

  /// Invokes `action` with no input (Noop) without waiting; see the other invoke_then().
  template <class Out = void>
  void invoke_then(std::string_view system, std::string_view actor, std::string_view action,
                   std::type_identity_t<std::function<void(Result<Out>)>> done,
                   const InvokeOptions& options = {}) const {
    call_then(no_input(system, actor, action, options), finisher<Out>(std::move(done)));
  }

  /// Queues `action` on `actor` and returns once it is accepted: in the actor's mailbox, so a
  /// synchronous call made after this one sees its effect. Its reply and errors are not seen.
  template <Payload In>
  Result<void> invoke_async(std::string_view system, std::string_view actor,
                            std::string_view action, const In& input,
                            const InvokeOptions& options = {}) const {
    auto spec = with_input(system, actor, action, input, options);
    spec.mode = detail::CallSpec::Mode::kAsync;
    return discard(call(std::move(spec)));
  }

  /// Queues `action` with no input; see the other invoke_async().
  Result<void> invoke_async(std::string_view system, std::string_view actor,
                            std::string_view action, const InvokeOptions& options = {}) const {
    auto spec = no_input(system, actor, action, options);
    spec.mode = detail::CallSpec::Mode::kAsync;
    return discard(call(std::move(spec)));
  }

  /// Runs `action` at `time` (stored by the runtime before this returns: it survives a restart).
  /// The actor must exist now (kNotFound otherwise).
  template <Payload In>
  Result<void> invoke_at(std::chrono::system_clock::time_point time, std::string_view system,
                         std::string_view actor, std::string_view action, const In& input,
                         const InvokeOptions& options = {}) const {
    auto spec = with_input(system, actor, action, input, options);
    spec.mode = detail::CallSpec::Mode::kAsync;
    spec.scheduled_to_ms = detail::epoch_ms(time);
    return discard(call(std::move(spec)));
  }

  /// Runs `action` with no input at `time`; see the other invoke_at().
  Result<void> invoke_at(std::chrono::system_clock::time_point time, std::string_view system,
                         std::string_view actor, std::string_view action,
                         const InvokeOptions& options = {}) const {
    auto spec = no_input(system, actor, action, options);
    spec.mode = detail::CallSpec::Mode::kAsync;
    spec.scheduled_to_ms = detail::epoch_ms(time);
    return discard(call(std::move(spec)));
  }

  /// Runs `action` `delay` from now; see invoke_at().
  template <Payload In>
  Result<void> invoke_after(std::chrono::milliseconds delay, std::string_view system,
                            std::string_view actor, std::string_view action, const In& input,
                            const InvokeOptions& options = {}) const {
    return invoke_at(std::chrono::system_clock::now() + delay, system, actor, action, input,
                     options);
  }

  /// Runs `action` with no input `delay` from now; see invoke_at().
  Result<void> invoke_after(std::chrono::milliseconds delay, std::string_view system,
                            std::string_view actor, std::string_view action,
                            const InvokeOptions& options = {}) const {
    return invoke_at(std::chrono::system_clock::now() + delay, system, actor, action, options);
  }

  /// Spawns actor `name` from the unnamed actor `parent` (the node's system unless
  /// `options.system` says otherwise). It activates on its first invocation. Spawning an
  /// existing name succeeds. kNotFound when `parent` was never registered.
  Result<void> spawn(std::string_view name, std::string_view parent,
                     const SpawnOptions& options = {}) const;

private:
  template <Payload In>
  static detail::CallSpec with_input(std::string_view system, std::string_view actor,
                                     std::string_view action, const In& input,
                                     const InvokeOptions& options) {
    if constexpr (Message<In> && !std::is_same_v<In, google::protobuf::Any>) {
      return detail::CallSpec{system, actor,   action, std::nullopt, type_url_of<In>(),
                              &input, &options};
    } else {
      return detail::CallSpec{system,  actor,   action, pack(input), type_url_of<In>(),
                              nullptr, &options};
    }
  }

  static detail::CallSpec no_input(std::string_view system, std::string_view actor,
                                   std::string_view action, const InvokeOptions& options) {
    return detail::CallSpec{system, actor, action, std::nullopt, {}, nullptr, &options};
  }

  static Result<void> discard(Result<std::optional<google::protobuf::Any>> reply) {
    if (!reply) {
      return std::move(reply).error();
    }
    return ok();
  }

  template <class Out>
  static Result<Out> finish(Result<std::optional<google::protobuf::Any>> reply,
                            std::string_view actor, std::string_view action) {
    if (!reply) {
      detail::Reply failed{std::move(reply).error(), actor, action};
      return finish<Out>(failed);
    }
    detail::Reply lent{reply->has_value() ? &**reply : nullptr, actor, action};
    return finish<Out>(lent);
  }

  /// The typed result of `reply` (its payload may be moved from).
  template <class Out>
  static Result<Out> finish(detail::Reply& reply) {
    if (!reply.payload) {
      return std::move(reply.payload).error();
    }
    if constexpr (std::is_void_v<Out>) {
      return ok();
    } else {
      static_assert(Payload<Out>, "Out is a protobuf message, spawn::Json, or void");
      google::protobuf::Any* payload = *reply.payload;
      if (payload == nullptr) {
        return detail::reply_missing(reply.actor, reply.action, type_url_of<Out>());
      }
      if constexpr (std::is_same_v<Out, google::protobuf::Any>) {
        return std::move(*payload);
      } else {
        Result<Out> unpacked = unpack<Out>(*payload);
        if (!unpacked) {
          return unpacked.error().with_context("invoke '" + std::string(reply.action)
                                               + "' on actor '" + std::string(reply.actor)
                                               + "': reply");
        }
        return unpacked;
      }
    }
  }

  template <class Out>
  static detail::ReplyFn finisher(std::type_identity_t<std::function<void(Result<Out>)>> done) {
    return detail::ReplyFn(
        [done = std::move(done)](detail::Reply& reply) { done(finish<Out>(reply)); });
  }

  Result<std::optional<google::protobuf::Any>> call(detail::CallSpec spec) const;

  void call_then(detail::CallSpec spec, detail::ReplyFn&& done) const;

  std::shared_ptr<detail::ClientCore> core_;
};

/// A handle to one actor (Orleans' grain reference): invoke it without repeating its name.
///
/// ```cpp
/// auto account = client.actor("account");
/// spawn::Result<Balance> balance = account.invoke<Balance>("deposit", deposit);
/// ```
class ActorRef {
public:
  ActorRef(Client client, std::string system, std::string name)
      : client_(std::move(client)), system_(std::move(system)), name_(std::move(name)) {}

  const std::string& system() const { return system_; }

  const std::string& name() const { return name_; }

  /// See Client::invoke().
  template <class Out = void, Payload In>
  Result<Out> invoke(std::string_view action, const In& input,
                     const InvokeOptions& options = {}) const {
    return client_.invoke<Out>(system_, name_, action, input, options);
  }

  /// See Client::invoke().
  template <class Out = void>
  Result<Out> invoke(std::string_view action, const InvokeOptions& options = {}) const {
    return client_.invoke<Out>(system_, name_, action, options);
  }

  /// See Client::invoke_then().
  template <class Out = void, Payload In>
  void invoke_then(std::string_view action, const In& input,
                   std::type_identity_t<std::function<void(Result<Out>)>> done,
                   const InvokeOptions& options = {}) const {
    client_.invoke_then<Out>(system_, name_, action, input, std::move(done), options);
  }

  /// See Client::invoke_then().
  template <class Out = void>
  void invoke_then(std::string_view action,
                   std::type_identity_t<std::function<void(Result<Out>)>> done,
                   const InvokeOptions& options = {}) const {
    client_.invoke_then<Out>(system_, name_, action, std::move(done), options);
  }

  /// See Client::invoke_async().
  template <Payload In>
  Result<void> invoke_async(std::string_view action, const In& input,
                            const InvokeOptions& options = {}) const {
    return client_.invoke_async(system_, name_, action, input, options);
  }

  /// See Client::invoke_async().
  Result<void> invoke_async(std::string_view action, const InvokeOptions& options = {}) const {
    return client_.invoke_async(system_, name_, action, options);
  }

  /// See Client::invoke_at().
  template <Payload In>
  Result<void> invoke_at(std::chrono::system_clock::time_point time, std::string_view action,
                         const In& input, const InvokeOptions& options = {}) const {
    return client_.invoke_at(time, system_, name_, action, input, options);
  }

  /// See Client::invoke_at().
  Result<void> invoke_at(std::chrono::system_clock::time_point time, std::string_view action,
                         const InvokeOptions& options = {}) const {
    return client_.invoke_at(time, system_, name_, action, options);
  }

  /// See Client::invoke_after().
  template <Payload In>
  Result<void> invoke_after(std::chrono::milliseconds delay, std::string_view action,
                            const In& input, const InvokeOptions& options = {}) const {
    return client_.invoke_after(delay, system_, name_, action, input, options);
  }

  /// See Client::invoke_after().
  Result<void> invoke_after(std::chrono::milliseconds delay, std::string_view action,
                            const InvokeOptions& options = {}) const {
    return client_.invoke_after(delay, system_, name_, action, options);
  }

private:
  Client client_;
  std::string system_;
  std::string name_;
};

inline ActorRef Client::actor(std::string name) const {
  return ActorRef(*this, system(), std::move(name));
}

inline ActorRef Client::actor(std::string system, std::string name) const {
  return ActorRef(*this, std::move(system), std::move(name));
}

}  // namespace spawn
