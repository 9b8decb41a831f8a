#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "spawn/detail/actor_spec.hpp"
#include "spawn/detail/handler.hpp"
#include "spawn/payload.hpp"

namespace spawn {

/// Declares one actor of an `ActorSystem`: its kind, persistence, timers, subscriptions and typed
/// actions. Every setter returns the builder, so a definition reads as one chain:
///
/// ```cpp
/// system.actor<Account>("account")
///     .deactivate_after(30s).snapshot_every(2s)
///     .action("deposit", [](spawn::Context<Account>& ctx, const Deposit& in) {
///       Account next = ctx.state();
///       next.set_balance(next.balance() + in.amount());
///       Balance out;
///       out.set_amount(next.balance());
///       return ctx.value().state(next).reply(out);
///     });
/// ```
///
/// `S` is the state type: a protobuf message, `Json`, or `NoState`. A builder writes into its
/// `ActorSystem`; define every actor before starting a `Node` with it.
template <class S = NoState>
class ActorBuilder {
public:
  static_assert(Payload<S> || std::is_same_v<S, NoState>,
                "an actor's state type is a protobuf message, spawn::Json or spawn::NoState");

  /// Made by ActorSystem::actor().
  explicit ActorBuilder(detail::ActorSpec& spec) : spec_(&spec) {}

  /// Returns the actor's name.
  const std::string& name() const { return spec_->name; }

  /// Persists the state in the statestore (the default for actors with a state type) or not.
  ActorBuilder& stateful(bool on = true) {
    spec_->stateful = on;
    return *this;
  }

  /// Deactivates the actor (saving its state first) after it was idle this long; default 10 s.
  ActorBuilder& deactivate_after(std::chrono::milliseconds timeout) {
    spec_->deactivate_after = timeout;
    return *this;
  }

  /// Saves the state this often while it changes; without it, state is saved at deactivation,
  /// at shutdown and on `checkpoint()`.
  ActorBuilder& snapshot_every(std::chrono::milliseconds interval) {
    spec_->snapshot_every = interval;
    return *this;
  }

  /// Makes the actor a template: instances are spawned at run time with `Client::spawn()` (or
  /// `InvokeOptions::spawn_from`) and run this definition under their own names and state.
  ActorBuilder& unnamed() {
    spec_->kind = ActorKind::kUnnamed;
    return *this;
  }

  /// Makes the actor a pool of `size` stateless instances that serve calls concurrently
  /// (0: the runtime's default). Pooled actors are never persisted.
  ActorBuilder& pooled(int size = 0) {
    spec_->kind = ActorKind::kPooled;
    spec_->stateful = false;
    spec_->min_pool_size = size > 0 ? size : 1;
    spec_->max_pool_size = size;
    return *this;
  }

  /// Sets the state a new actor starts from (before init runs); default: `S{}`.
  ActorBuilder& initial_state(const S& state) requires Payload<S> {
    spec_->initial_state = pack(state);
    return *this;
  }

  /// Sets a tag the actor starts with.
  ActorBuilder& tag(std::string key, std::string value) {
    spec_->tags[std::move(key)] = std::move(value);
    return *this;
  }

  /// Adds action `name`. `handler` is any callable `(Context<S>&) -> Value<S, R>` or
  /// `(Context<S>&, const In&) -> Value<S, R>`; `In` and `R` are protobuf messages or `Json`.
  /// It may also return `Result<Value<S, R>>` (an Error fails the call) or void (nothing
  /// changes). The input type is deduced from the signature; for generic lambdas name it:
  /// `action<In>(...)` (`action<void>` for none). `Out`, when given, is checked against `R`.
  ///
  /// A handler runs on a runtime thread, one call at a time per actor; keep it short and
  /// non-blocking, and don't call `Client` from it (use effects, pipe or forward). An exception
  /// it throws fails the call with an Error (kBadHostResponse); so does an input of another type.
  template <class In = detail::Deduce, class Out = detail::Deduce, class F>
  ActorBuilder& action(std::string name, F handler) {
    using Input = std::conditional_t<std::is_same_v<In, detail::Deduce>, detail::InputOf<F>, In>;
    if constexpr (!std::is_same_v<Out, detail::Deduce>) {
      using Returned = detail::ReturnOf<S, Input, F>;
      static_assert(std::is_same_v<typename detail::ReplyOf<typename Returned::type>::type, Out>,
                    "the handler's reply type differs from the Out named in action<In, Out>()");
    }
    spec_->add_action(std::move(name), detail::make_action<S, Input>(std::move(handler)));
    return *this;
  }

  /// Adds the `init` action, run at every activation before any other invocation; its state and
  /// tags are applied, its reply and workflow ignored.
  template <class F>
  ActorBuilder& init(F handler) {
    return action<void>("init", std::move(handler));
  }

  /// Invokes action `action` every `period`, first `period` after activation, forever (also
  /// while the actor is deactivated: each firing reactivates it). The action gets no input.
  ActorBuilder& timer(std::string action, std::chrono::milliseconds period) {
    spec_->timers.emplace_back(std::move(action), period);
    return *this;
  }

  /// Adds action `action` with `handler` and runs it every `period` (see the other timer()).
  template <class F>
  ActorBuilder& timer(std::string action, std::chrono::milliseconds period, F handler) {
    this->action<void>(action, std::move(handler));
    return timer(std::move(action), period);
  }

  /// Subscribes to broadcast topic `topic`: every broadcast on it invokes `action` with the
  /// broadcast's payload and the broadcasting actor as caller.
  ActorBuilder& subscribe(std::string topic, std::string action = "receive") {
    spec_->channels.emplace_back(std::move(topic), std::move(action));
    return *this;
  }

private:
  detail::ActorSpec* spec_;
};

/// A named set of actors: what a program registers with the runtime, embedded or through a proxy.
///
/// Define the actors first, then start a `Node` with the system. Not thread-safe while actors are
/// being defined; a running Node keeps its own reference to the definitions.
class ActorSystem {
public:
  /// Makes an empty system called `name`.
  explicit ActorSystem(std::string name) : spec_(std::make_shared<detail::SystemSpec>()) {
    spec_->name = std::move(name);
  }

  /// Returns the system's name.
  const std::string& name() const { return spec_->name; }

  /// Defines actor `name` with state type `S` (stateful by default when `S` is not `NoState`)
  /// and returns its builder. Defining a name again starts that actor's definition over.
  template <class S = NoState>
  ActorBuilder<S> actor(std::string name) {
    auto spec = std::make_unique<detail::ActorSpec>();
    spec->name = std::move(name);
    if constexpr (Payload<S>) {
      spec->stateful = true;
      spec->state_type_url = type_url_of<S>();
    }
    return ActorBuilder<S>(spec_->define(std::move(spec)));
  }

  /// Returns the definitions (SDK internal).
  const std::shared_ptr<detail::SystemSpec>& spec() const { return spec_; }

private:
  std::shared_ptr<detail::SystemSpec> spec_;
};

}  // namespace spawn
