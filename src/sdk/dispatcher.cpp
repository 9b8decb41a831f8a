#include "sdk/dispatcher.hpp"

#include <chrono>
#include <exception>
#include <typeinfo>
#include <utility>

#include <spdlog/spdlog.h>

#include "spawn/detail/invocation_view.hpp"

namespace spawn::sdk {

namespace pb = protocol::pb;
namespace pba = protocol::pba;

namespace {

thread_local int handler_depth = 0;

struct HandlerScope {
  HandlerScope() { ++handler_depth; }

  ~HandlerScope() { --handler_depth; }

  HandlerScope(const HandlerScope&) = delete;
  HandlerScope& operator=(const HandlerScope&) = delete;
};

pba::Kind to_kind(ActorKind kind) {
  switch (kind) {
    case ActorKind::kNamed:
      return pba::NAMED;
    case ActorKind::kUnnamed:
      return pba::UNNAMED;
    case ActorKind::kPooled:
      return pba::POOLED;
  }
  return pba::NAMED;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error handler_failed(std::string message) {
  return fail(ErrorCode::kBadHostResponse, std::move(message));
}

/// Turns the handler's Value into `response` (PROTOCOL.md §2.2), setting every field a handler's
/// answer has: `response` may hold an earlier call's (Host::invoke_now()'s reused response).
void respond(pb::ActorInvocation& invocation, detail::ValueData& value,
             pb::ActorInvocationResponse& response) {
  const pba::ActorId& self = invocation.actor();
  pb::Context* context = response.mutable_updated_context();
  // The returned tags replace the stored ones (PROTOCOL.md §5.4), so the current ones are handed
  // back (moved, not copied) unless the action changed them. An unset state keeps the current one.
  auto* tags = context->mutable_tags();
  if (value.tags) {
    tags->clear();
    tags->insert(value.tags->begin(), value.tags->end());
  } else {
    tags->swap(*invocation.mutable_current_context()->mutable_tags());
  }
  for (auto& [key, change] : value.tag_changes) {
    if (change) {
      (*tags)[key] = std::move(*change);
    } else {
      tags->erase(key);
    }
  }
  // The state and the reply are swapped in where `response` has an Any already: the box gets the
  // old one, for the thread's pool (detail::take_any()), and nothing is allocated.
  if (!value.state) {
    context->clear_state();
  } else if (context->has_state()) {
    context->mutable_state()->Swap(&*value.state);
  } else {
    context->set_allocated_state(value.state.release());
  }
  if (!value.reply) {
    response.clear_payload();
  } else if (response.has_value()) {
    response.mutable_value()->Swap(&*value.reply);
  } else {
    response.set_allocated_value(value.reply.release());
  }
  response.set_checkpoint(value.checkpoint);

  const bool has_workflow =
      !value.effects.empty() || value.has_broadcast || value.route != detail::RouteKind::kNone;
  if (!has_workflow) {
    response.clear_workflow();
    return;
  }
  response.clear_workflow();
  pb::Workflow* workflow = response.mutable_workflow();
  const std::int64_t now = value.effects.empty() ? 0 : now_ms();
  for (auto& effect : value.effects) {
    pb::InvocationRequest* request = workflow->add_effects()->mutable_request();
    const std::string& system = effect.system.empty() ? self.system() : effect.system;
    request->mutable_system()->set_name(system);
    request->mutable_actor()->mutable_id()->set_name(std::move(effect.actor));
    request->mutable_actor()->mutable_id()->set_system(system);
    request->set_action_name(std::move(effect.action));
    if (effect.payload) {
      *request->mutable_value() = std::move(*effect.payload);
    } else {
      request->mutable_noop();
    }
    request->set_async(true);
    request->mutable_caller()->set_name(self.name());
    request->mutable_caller()->set_system(self.system());
    for (auto& [key, item] : effect.metadata) {
      (*request->mutable_metadata())[key] = std::move(item);
    }
    if (effect.scheduled_to_ms != 0) {
      request->set_scheduled_to(effect.scheduled_to_ms);
    } else if (effect.delay_ms > 0) {
      request->set_scheduled_to(now + effect.delay_ms);
    }
    request->set_register_ref(std::move(effect.spawn_from));
    request->set_pooled(effect.pooled);
  }
  if (value.has_broadcast) {
    pb::Broadcast* broadcast = workflow->mutable_broadcast();
    broadcast->set_channel_group(std::move(value.broadcast_topic));
    if (value.broadcast_payload) {
      *broadcast->mutable_value() = std::move(*value.broadcast_payload);
    } else {
      broadcast->mutable_noop();
    }
  }
  if (value.route == detail::RouteKind::kPipe) {
    workflow->mutable_pipe()->set_actor(std::move(value.route_actor));
    workflow->mutable_pipe()->set_action_name(std::move(value.route_action));
  } else if (value.route == detail::RouteKind::kForward) {
    workflow->mutable_forward()->set_actor(std::move(value.route_actor));
    workflow->mutable_forward()->set_action_name(std::move(value.route_action));
  }
}

/// Runs the handler of `action`; what it throws is an error.
Result<detail::ValueData> run(const detail::ActionSpec& action,
                              const pb::ActorInvocation& invocation) {
  try {
    HandlerScope scope;
    return action.fn(detail::InvocationView(invocation));
  } catch (const std::exception& e) {
    return handler_failed("the handler threw: " + std::string(e.what()));
  } catch (...) {
    return handler_failed("the handler threw a non-standard exception");
  }
}

}  // namespace

Dispatcher::Dispatcher(std::shared_ptr<const detail::SystemSpec> spec) : spec_(std::move(spec)) {
  for (const auto& actor : spec_->actors) {
    actors_.emplace(actor->name, actor.get());
  }
}

Result<std::shared_ptr<const Dispatcher>> Dispatcher::make(
    std::shared_ptr<const detail::SystemSpec> spec) {
  if (spec->name.empty()) {
    return fail(ErrorCode::kInvalidArgument, "an actor system needs a name");
  }
  for (const auto& actor : spec->actors) {
    const std::string where = "system '" + spec->name + "' actor '" + actor->name + "'";
    if (actor->name.empty()) {
      return fail(ErrorCode::kInvalidArgument,
                  "system '" + spec->name + "': an actor has an empty name");
    }
    for (const auto& [action, period] : actor->timers) {
      if (actor->find(action) == nullptr) {
        return fail(ErrorCode::kInvalidArgument,
                    where + ": timer '" + action + "' names no action of the actor");
      }
      if (period.count() <= 0) {
        return fail(ErrorCode::kInvalidArgument,
                    where + ": timer '" + action + "' needs a positive period");
      }
    }
    for (const auto& [topic, action] : actor->channels) {
      if (topic.empty()) {
        return fail(ErrorCode::kInvalidArgument, where + ": a subscription has no topic");
      }
      if (actor->find(action) == nullptr) {
        return fail(ErrorCode::kInvalidArgument, where + ": subscription to '" + topic
                                                     + "' names action '" + action
                                                     + "', which the actor does not have");
      }
    }
  }
  return std::shared_ptr<const Dispatcher>(new Dispatcher(std::move(spec)));
}

const detail::ActorSpec* Dispatcher::actor(const std::string& name) const {
  auto it = actors_.find(name);
  return it == actors_.end() ? nullptr : it->second;
}

pba::ActorSystem Dispatcher::registration() const {
  pba::ActorSystem system;
  system.set_name(spec_->name);
  auto& registry = *system.mutable_registry()->mutable_actors();
  for (const auto& spec : spec_->actors) {
    pba::Actor& actor = registry[spec->name];
    actor.mutable_id()->set_name(spec->name);
    actor.mutable_id()->set_system(spec_->name);
    if (spec->kind == ActorKind::kUnnamed) {
      actor.mutable_id()->set_parent(spec->name);  // as the Node SDK does (PROTOCOL.md §2.1)
    }
    pba::ActorState* state = actor.mutable_state();
    state->mutable_tags()->insert(spec->tags.begin(), spec->tags.end());
    if (spec->initial_state) {
      *state->mutable_state() = *spec->initial_state;
    } else if (!spec->state_type_url.empty()) {
      // The default value of the state type, so that `get` on a new actor answers a typed value.
      state->mutable_state()->set_type_url(spec->state_type_url);
    }
    pba::ActorSettings* settings = actor.mutable_settings();
    settings->set_kind(to_kind(spec->kind));
    settings->set_stateful(spec->stateful);
    if (spec->snapshot_every) {
      settings->mutable_snapshot_strategy()->mutable_timeout()->set_timeout(
          spec->snapshot_every->count());
    }
    if (spec->deactivate_after) {
      settings->mutable_deactivation_strategy()->mutable_timeout()->set_timeout(
          spec->deactivate_after->count());
    }
    if (spec->kind == ActorKind::kPooled) {
      settings->set_min_pool_size(spec->min_pool_size);
      settings->set_max_pool_size(spec->max_pool_size);
    }
    for (const auto& name : spec->action_order) {
      actor.add_actions()->set_name(name);
    }
    for (const auto& [action, period] : spec->timers) {
      auto* timer = actor.add_timer_actions();
      timer->set_seconds(static_cast<std::int32_t>(period.count()));  // ms (PROTOCOL.md §2.1)
      timer->mutable_action()->set_name(action);
    }
    for (const auto& [topic, action] : spec->channels) {
      auto* channel = actor.mutable_metadata()->add_channel_group();
      channel->set_topic(topic);
      channel->set_action(action);
    }
  }
  return system;
}

bool Dispatcher::in_handler() {
  return handler_depth > 0;
}

Result<pb::ActorInvocationResponse> Dispatcher::dispatch(pb::ActorInvocation& invocation) const {
  pb::ActorInvocationResponse response;
  Result<void> dispatched = dispatch(invocation, response);
  if (!dispatched) {
    return std::move(dispatched).error();
  }
  return response;
}

Result<void> Dispatcher::dispatch(pb::ActorInvocation& invocation,
                                  pb::ActorInvocationResponse& response) const {
  const detail::ActorSpec* actor = this->actor(invocation.actor().name());
  if (actor == nullptr && !invocation.actor().parent().empty()) {
    actor = this->actor(invocation.actor().parent());
  }
  if (actor == nullptr) {
    return fail(ErrorCode::kNotFound, "actor '" + invocation.actor().name()
                                          + "' is not defined in system '" + spec_->name + "'");
  }
  const detail::ActionSpec* action = actor->find(invocation.action_name());
  if (action == nullptr) {
    return fail(ErrorCode::kNotFound,
                "actor '" + actor->name + "' has no action '" + invocation.action_name() + "'");
  }

  Result<detail::ValueData> value = run(*action, invocation);
  if (!value) {
    return handler_failed(value.error().message);
  }
  respond(invocation, *value, response);
  return ok();
}

}  // namespace spawn::sdk
