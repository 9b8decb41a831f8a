#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "spawn/actor_id.hpp"
#include "spawn/detail/invocation_view.hpp"
#include "spawn/payload.hpp"
#include "spawn/value.hpp"

namespace spawn {

/// What an action handler knows about the invocation it serves: the actor's current state and
/// tags, the call's metadata, who called, and who the actor is.
///
/// A Context lives for one handler call, on the thread that runs it; don't keep references to it
/// or to what it returns after the handler returns.
template <class S = NoState>
class Context {
public:
  /// Made by the SDK for each call; `state` is the actor's current state (default-constructed
  /// when it has none yet).
  Context(const detail::InvocationView& view, S state) : view_(view), state_(std::move(state)) {}

  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// Returns the actor's current state.
  const S& state() const requires Payload<S> { return state_; }

  /// Moves the current state out (to change it and return it without a copy). state() is
  /// unspecified afterwards.
  S take_state() requires Payload<S> { return std::move(state_); }

  /// Returns the actor's persistent tags.
  const detail::WireMap& tags() const { return view_.tags(); }

  /// Returns the tag `key`, or nullopt.
  std::optional<std::string_view> tag(const std::string& key) const {
    return find(view_.tags(), key);
  }

  /// Returns this invocation's metadata (set by the caller; not stored).
  const detail::WireMap& metadata() const { return view_.metadata(); }

  /// Returns metadata `key`, or nullopt.
  std::optional<std::string_view> metadata(const std::string& key) const {
    return find(view_.metadata(), key);
  }

  /// Returns the invoking actor, or nullopt for a call from outside the actor system.
  std::optional<ActorId> caller() const { return view_.caller(); }

  /// Returns this actor's id (with `parent` for a spawned child).
  ActorId self() const { return view_.self(); }

  /// Returns the name of the action being run.
  const std::string& action() const { return view_.action(); }

  /// Returns an empty `Value` of this actor's state type, to build the answer from:
  /// `return ctx.value().state(next).reply(out);`.
  Value<S> value() const { return Value<S>(); }

private:
  static std::optional<std::string_view> find(const detail::WireMap& map, const std::string& key) {
    auto it = map.find(key);
    if (it == map.end()) {
      return std::nullopt;
    }
    return std::string_view(it->second);
  }

  const detail::InvocationView& view_;
  S state_;
};

}  // namespace spawn
