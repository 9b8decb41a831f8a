#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "spawn/actor_id.hpp"
#include "spawn/detail/value_data.hpp"
#include "spawn/payload.hpp"

namespace spawn {

/// An invocation an action asks for as a side effect: it starts after the action's new state is
/// applied, in the background, and its result is ignored (PROTOCOL.md §5.8).
///
/// ```cpp
/// spawn::Effect::to("account-b", "credit").with(credit).after(500ms)
/// ```
class Effect {
public:
  /// An invocation of `action` on actor `actor` of the invoking actor's system, with no payload.
  static Effect to(std::string actor, std::string action) {
    Effect effect;
    effect.data_.actor = std::move(actor);
    effect.data_.action = std::move(action);
    return effect;
  }

  /// Sends `payload` as the input.
  template <Payload P>
  Effect& with(const P& payload) & {
    data_.payload = pack(payload);
    return *this;
  }

  template <Payload P>
  Effect&& with(const P& payload) && {
    return std::move(with(payload));
  }

  /// Runs it `delay` after the action returns (stored by the runtime: survives a restart).
  Effect& after(std::chrono::milliseconds delay) & {
    data_.delay_ms = delay.count();
    return *this;
  }

  Effect&& after(std::chrono::milliseconds delay) && { return std::move(after(delay)); }

  /// Runs it at `time` (stored by the runtime: survives a restart).
  Effect& at(std::chrono::system_clock::time_point time) & {
    data_.scheduled_to_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
    return *this;
  }

  Effect&& at(std::chrono::system_clock::time_point time) && { return std::move(at(time)); }

  /// Targets an actor of another system.
  Effect& in_system(std::string system) & {
    data_.system = std::move(system);
    return *this;
  }

  Effect&& in_system(std::string system) && { return std::move(in_system(std::move(system))); }

  /// Spawns the target from unnamed actor `parent` first, if it does not exist yet.
  Effect& spawn_from(std::string parent) & {
    data_.spawn_from = std::move(parent);
    return *this;
  }

  Effect&& spawn_from(std::string parent) && { return std::move(spawn_from(std::move(parent))); }

  /// Adds per-invocation metadata (the invoking call's own metadata is passed on as well).
  Effect& metadata(std::string key, std::string value) & {
    data_.metadata[std::move(key)] = std::move(value);
    return *this;
  }

  Effect&& metadata(std::string key, std::string value) && {
    return std::move(metadata(std::move(key), std::move(value)));
  }

  /// Routes it to any instance of a pooled actor.
  Effect& pooled() & {
    data_.pooled = true;
    return *this;
  }

  Effect&& pooled() && { return std::move(pooled()); }

  /// Returns the type-erased form (SDK internal).
  detail::EffectData&& release() && { return std::move(data_); }

private:
  detail::EffectData data_;
};

/// What an action returns, built fluently: the actor's new state, the reply to the caller, tags,
/// a checkpoint, and the workflow that follows (side effects, broadcast, pipe or forward).
///
/// `S` is the actor's state type (a protobuf message, `Json`, or `NoState`), `R` the reply type
/// (a protobuf message, `Json`, or `void` for no reply). Whatever is left unset stays as it was:
/// no `state()` keeps the current state, no `tags()` keeps the current tags.
///
/// ```cpp
/// return spawn::Value<Account, Balance>().state(next).reply(balance).checkpoint();
/// return ctx.value().state(next).reply(balance);   // the same; R deduced from reply()
/// ```
/// Every setter has an lvalue and an rvalue form, so a chain on a temporary moves, never copies.
template <class S = NoState, class R = void>
class Value {
public:
  using state_type = S;
  using reply_type = R;

private:
  struct NoReply {};

  using ReplyArg = std::conditional_t<std::is_void_v<R>, NoReply, R>;

public:
  Value() = default;

  /// Makes a Value from the erased form (used by reply() to change `R`).
  explicit Value(detail::ValueData&& data) : data_(std::move(data)) {}

  /// Sets the actor's new state.
  Value& state(const S& state) & requires Payload<S> {
    detail::pack_into(data_.state.emplace(), state);
    return *this;
  }

  Value&& state(const S& state) && requires Payload<S> { return std::move(this->state(state)); }

  /// Sets the reply to the caller.
  Value& reply(const ReplyArg& reply) & requires Payload<R> {
    detail::pack_into(data_.reply.emplace(), reply);
    return *this;
  }

  Value&& reply(const ReplyArg& reply) && requires Payload<R> {
    return std::move(this->reply(reply));
  }

  /// Sets the reply of a Value that had no reply type yet, giving a `Value<S, R2>`.
  template <Payload R2>

  requires std::is_void_v<R> Value<S, R2> reply(const R2& reply) && {
    detail::pack_into(data_.reply.emplace(), reply);
    return Value<S, R2>(std::move(data_));
  }

  /// Replaces every tag of the actor with `tags`.
  Value& tags(StringMap tags) & {
    data_.tags = std::move(tags);
    data_.tag_changes.clear();
    return *this;
  }

  Value&& tags(StringMap tags) && { return std::move(this->tags(std::move(tags))); }

  /// Sets one tag, keeping the others.
  Value& tag(std::string key, std::string value) & {
    data_.tag_changes.emplace_back(std::move(key), std::move(value));
    return *this;
  }

  Value&& tag(std::string key, std::string value) && {
    return std::move(tag(std::move(key), std::move(value)));
  }

  /// Removes one tag.
  Value& erase_tag(std::string key) & {
    data_.tag_changes.emplace_back(std::move(key), std::nullopt);
    return *this;
  }

  Value&& erase_tag(std::string key) && { return std::move(erase_tag(std::move(key))); }

  /// Makes the new state durable before the caller gets the reply (stateful actors).
  Value& checkpoint(bool on = true) & {
    data_.checkpoint = on;
    return *this;
  }

  Value&& checkpoint(bool on = true) && { return std::move(checkpoint(on)); }

  /// Adds a side effect (see `Effect`).
  Value& effect(Effect effect) & {
    data_.effects.push_back(std::move(effect).release());
    return *this;
  }

  Value&& effect(Effect effect) && { return std::move(this->effect(std::move(effect))); }

  /// Publishes `payload` to every actor subscribed to `topic` (each gets an async invocation of
  /// its subscribed action, with this actor as the caller).
  template <Payload P>
  Value& broadcast(std::string topic, const P& payload) & {
    data_.has_broadcast = true;
    data_.broadcast_topic = std::move(topic);
    data_.broadcast_payload = pack(payload);
    return *this;
  }

  template <Payload P>
  Value&& broadcast(std::string topic, const P& payload) && {
    return std::move(broadcast(std::move(topic), payload));
  }

  /// Publishes a broadcast with no payload.
  Value& broadcast(std::string topic) & {
    data_.has_broadcast = true;
    data_.broadcast_topic = std::move(topic);
    data_.broadcast_payload.reset();
    return *this;
  }

  Value&& broadcast(std::string topic) && { return std::move(broadcast(std::move(topic))); }

  /// Invokes `action` on `actor` (same system) with this action's reply as input; the caller
  /// gets that actor's reply instead. At most one of pipe() and forward() applies.
  Value& pipe(std::string actor, std::string action) & {
    return route(detail::RouteKind::kPipe, std::move(actor), std::move(action));
  }

  Value&& pipe(std::string actor, std::string action) && {
    return std::move(pipe(std::move(actor), std::move(action)));
  }

  /// Invokes `action` on `actor` (same system) with this action's own input; the caller gets
  /// that actor's reply instead. At most one of pipe() and forward() applies.
  Value& forward(std::string actor, std::string action) & {
    return route(detail::RouteKind::kForward, std::move(actor), std::move(action));
  }

  Value&& forward(std::string actor, std::string action) && {
    return std::move(forward(std::move(actor), std::move(action)));
  }

  /// Returns the type-erased form (SDK internal).
  detail::ValueData&& release() && { return std::move(data_); }

private:
  Value& route(detail::RouteKind kind, std::string actor, std::string action) {
    data_.route = kind;
    data_.route_actor = std::move(actor);
    data_.route_action = std::move(action);
    return *this;
  }

  detail::ValueData data_;
};

}  // namespace spawn
