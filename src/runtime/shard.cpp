#include "runtime/shard.hpp"

#include <algorithm>
#include <random>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <google/protobuf/arena.h>
#include <spdlog/spdlog.h>

#include "common/log.hpp"

namespace spawn::runtime {

namespace pb = protocol::pb;
namespace pba = protocol::pba;
using statestore::ActorKey;
using statestore::ActorStatus;

namespace {

/// How many spare host calls, and spare replies of checkpoints, a shard keeps (as many as were in
/// flight at once, up to this), and the largest buffer one may hold: a larger one would stay
/// allocated for as long as the shard lives, so such a spare is deleted instead.
constexpr std::size_t kMaxSpares = 256;
constexpr std::size_t kMaxSpareBytes = 64 * 1024;

std::string describe(const ActorKey& key) {
  return key.system + "/" + key.name;
}

/// The context of an activation's errors: made only for an error, not for every activation.
std::string activation_context(const Entity& entity) {
  return "activate actor '" + describe(entity.key) + "'";
}

const std::string& type_url_of(const Entity& entity) {
  static const std::string kNone;
  return entity.type_url ? *entity.type_url : kNone;
}

/// Returns true when `any` holds the entity's state: an entity without a state compares as an
/// empty Any.
bool same_state(const Entity& entity, const google::protobuf::Any& any) {
  return any.type_url() == type_url_of(entity) && any.value() == entity.value;
}

void copy_state(const Entity& entity, google::protobuf::Any* any) {
  // Compared first: the shard's scratch invocation mostly holds the same type URL already, and a
  // compare costs less than protobuf's Set().
  const std::string& type_url = type_url_of(entity);
  if (any->type_url() != type_url) {
    any->set_type_url(type_url);
  }
  any->set_value(entity.value);
}

/// Makes `id` equal to `from`, setting only the strings that differ (the scratch invocation's
/// context mostly names the same system and no parent already).
void copy_id(const pba::ActorId& from, pba::ActorId& id) {
  if (id.name() != from.name()) {
    id.set_name(from.name());
  }
  if (id.system() != from.system()) {
    id.set_system(from.system());
  }
  if (id.parent() != from.parent()) {
    id.set_parent(from.parent());
  }
}

const Entity::Tags& tags_of(const Entity& entity) {
  static const Entity::Tags kNone;
  return entity.tags ? *entity.tags : kNone;
}

template <class Map>
void set_tags(Entity& entity, const Map& tags) {
  if (tags.empty()) {
    entity.tags.reset();
    return;
  }
  if (!entity.tags) {
    entity.tags = std::make_unique<Entity::Tags>();
  }
  entity.tags->clear();
  entity.tags->insert(tags.begin(), tags.end());
}

bool same_tags(const google::protobuf::Map<std::string, std::string>& a,
               const google::protobuf::Map<std::string, std::string>& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (const auto& [key, value] : a) {
    auto it = b.find(key);
    if (it == b.end() || it->second != value) {
      return false;
    }
  }
  return true;
}

}  // namespace

/// What a call to a host that suspends has of its own: the invocation, and the response when the
/// request has no arena to make it on. Both keep their parts allocated from call to call.
struct Shard::HostCall {
  pb::ActorInvocation invocation;
  pb::ActorInvocationResponse response;
};

Shard::Shard(std::size_t index, const HostFactory& host_factory, statestore::Store* store,
             ShardOptions options)
    : index_(index),
      host_(host_factory(io_.get_executor())),
      store_(store),
      options_(std::move(options)),
      wakeup_timer_(io_) {}

Shard::~Shard() {
  stop();
  // Retired entities that only wakeups kept alive; the others go with slots_.
  while (!wakeups_.empty()) {
    Entity* entity = wakeups_.top().entity;
    wakeups_.pop();
    if (--entity->wakeups == 0 && entity->retired) {
      delete entity;
    }
  }
}

const Shard::Slot* Shard::find_registration(const ActorKey& key) const {
  auto it = slots_.find(key);
  return it == slots_.end() || !it->second.definition ? nullptr : &it->second;
}

Entity* Shard::entity_of(KeyRef key) const {
  auto it = slots_.find(key);
  return it == slots_.end() ? nullptr : it->second.entity.get();
}

void Shard::retire(const ActorKey& key) {
  auto it = slots_.find(key);
  if (it == slots_.end() || !it->second.entity) {
    return;
  }
  Entity* entity = it->second.entity.release();
  --entity_count_;
  if (!it->second.definition) {
    slots_.erase(it);  // a pool member: nothing registered under its key
  }
  entity->retired = true;
  if (entity->wakeups == 0) {
    delete entity;
  }
}

void Shard::start() {
  asio::co_spawn(io_, run_wakeups(),
                 [](std::exception_ptr e) { common::log_exception(e, "shard wakeups"); });
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(io_);
    io_.run();
  });
}

void Shard::stop() {
  io_.stop();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Shard::add_definitions(std::string system,
                            std::vector<std::shared_ptr<const ActorDefinition>> definitions) {
  systems_.insert(std::move(system));
  for (auto& definition : definitions) {
    ActorKey key{definition->actor().id().system(), definition->name()};
    systems_.insert(key.system);
    for (auto& [topic, subscribers] : topics_) {
      std::erase_if(subscribers, [&](const Subscription& s) { return s.actor == key; });
    }
    for (const auto& channel : definition->actor().metadata().channel_group()) {
      topics_[channel.topic()].push_back(
          Subscription{key, channel.action().empty() ? "receive" : channel.action()});
    }
    has_pools_ = has_pools_ || definition->is_pooled();
    start_revisions_.erase(key);
    auto& slot = slots_[key];
    slot.definition = definition;
    // A running actor keeps its state; it picks up the new definition (actions, settings).
    if (slot.entity) {
      slot.entity->definition = definition;
    }
  }
}

std::shared_ptr<const ActorDefinition> Shard::definition(const ActorKey& key) const {
  const Slot* slot = find_registration(key);
  return slot == nullptr ? nullptr : slot->definition;
}

Result<void> Shard::spawn(const pba::ActorId& id, std::optional<std::int64_t> revision) {
  const Slot* parent = find_registration(ActorKey{id.system(), id.parent()});
  // A template is registered under its own name; a spawned child cannot be one.
  if (id.parent().empty() || parent == nullptr || parent->definition->name() != id.parent()) {
    return fail(ErrorCode::kNotFound,
                "spawn actor '" + id.name() + "' on system '" + id.system()
                    + "': trying to create an actor from an Unnamed actor that has never been "
                      "registered (parent '"
                    + id.parent() + "')");
  }
  auto definition = parent->definition;
  ActorKey key{id.system(), id.name()};
  if (revision) {
    start_revisions_.insert_or_assign(key, *revision);
  } else {
    start_revisions_.erase(key);
  }
  auto& slot = slots_[std::move(key)];
  slot.definition = definition;
  if (slot.entity) {
    slot.entity->definition = definition;
  }
  return ok();
}

std::vector<ActorInfo> Shard::actors(const std::string& system) const {
  std::vector<ActorInfo> result;
  for (const auto& [key, entry] : slots_) {
    if (key.system != system || !entry.definition) {
      continue;
    }
    ActorInfo info;
    info.name = key.name;
    if (key.name != entry.definition->name()) {
      info.parent = entry.definition->name();
    }
    info.kind = entry.definition->kind();
    info.stateful = entry.definition->is_stateful();
    for (const auto& action : entry.definition->actor().actions()) {
      info.actions.push_back(action.name());
    }
    result.push_back(std::move(info));
  }
  return result;
}

std::vector<Subscription> Shard::subscribers(const std::string& topic) const {
  auto it = topics_.find(topic);
  return it == topics_.end() ? std::vector<Subscription>{} : it->second;
}

Result<Entity*> Shard::find_or_create(const ActorKey& registered, const ActorKey& instance) {
  auto own = slots_.find(instance);
  if (own != slots_.end() && own->second.entity) {
    return own->second.entity.get();
  }
  // One lookup, not two, for an actor that is its own registration (all but pool members).
  auto entry = registered == instance ? own : slots_.find(registered);
  if (entry == slots_.end() || !entry->second.definition) {
    if (!systems_.contains(registered.system)) {
      return fail(ErrorCode::kNotFound,
                  "ActorSystem " + registered.system + " is not registered on this proxy");
    }
    return fail(ErrorCode::kNotFound,
                "Actor " + registered.name + " not found on ActorSystem " + registered.system);
  }
  auto definition = entry->second.definition;
  std::optional<std::int64_t> revision;
  if (!start_revisions_.empty()) {
    if (auto start = start_revisions_.find(registered); start != start_revisions_.end()) {
      revision = start->second;
      start_revisions_.erase(start);
    }
  }
  // A pool member gets a slot of its own. (Inserting moves slots: `entry` is not used after.)
  auto it = registered == instance ? entry : slots_.try_emplace(instance).first;
  it->second.entity = std::make_unique<Entity>(it->first, std::move(definition), revision);
  ++entity_count_;
  return it->second.entity.get();
}

Result<Entity*> Shard::accept(const ActorKey& registered, const ActorKey& instance,
                              const std::string& action) {
  auto found = find_or_create(registered, instance);
  if (!found) {
    return found;
  }
  const auto& definition = *(*found)->definition;
  if (!definition.has_action(action) && !definition.answers_get_itself(action)) {
    return fail(ErrorCode::kNotFound,
                "Action [" + action + "] not found for Actor [" + registered.name + "]");
  }
  return found;
}

bool Shard::is_pooled(const ActorKey& key) const {
  if (!has_pools_) {
    return false;  // no lookup (the invocation's own comes next, Runtime::invoke_from())
  }
  const Slot* slot = find_registration(key);
  return slot != nullptr && slot->definition->is_pooled();
}

std::optional<ActorKey> Shard::pool_member_for(const ActorKey& key) {
  if (!has_pools_) {
    return std::nullopt;
  }
  const Slot* slot = find_registration(key);
  if (slot == nullptr || !slot->definition->is_pooled()) {
    return std::nullopt;
  }
  auto instance = pool_cursor_++ % static_cast<std::uint64_t>(slot->definition->pool_size());
  // The unit separator cannot appear in names SDKs send, so pool members never collide with actors.
  return ActorKey{key.system, key.name + '\x1f' + std::to_string(instance)};
}

Task<Result<Outcome>> Shard::invoke(const ActorKey& registered, const ActorKey& instance,
                                    pb::InvocationRequest& request) {
  auto found = accept(registered, instance, request.action_name());
  if (!found) {
    co_return std::move(found).error();
  }
  Entity& entity = **found;
  if (entity.running || !entity.mailbox.empty()) {
    co_return co_await enqueue_and_wait(entity, request);
  }
  // An idle actor: activate it if needed and run the invocation here, as the mailbox loop would
  // (running keeps everything else queued behind it), without an envelope, a loop coroutine and
  // a posted completion (docs/performance.md, sidecar hop and cold activations).
  entity.running = true;
  if (!entity.active) {
    auto activated = co_await activate(entity);
    if (!activated) {
      spdlog::warn("actor={} activation failed: {}", describe(entity.key),
                   activated.error().message);
      end_inline_run(entity);
      co_return std::move(activated).error();
    }
  }
  Result<Outcome> result = co_await handle(entity, request);
  end_inline_run(entity);
  co_return std::move(result);
}

void Shard::end_inline_run(Entity& entity) {
  if (!entity.mailbox.empty()) {
    start_mailbox(entity);  // work queued meanwhile: the mailbox loop takes over
  } else if (!entity.active) {
    retire(entity.key);  // activation failed, or a revision conflict fenced it, as in drive()
  } else {
    entity.running = false;
  }
}

asio::awaitable<Result<Outcome>> Shard::enqueue_and_wait(Entity& entity,
                                                         pb::InvocationRequest& request) {
  // A plain function, not a coroutine: GCC 12 mishandles async_initiate lambdas written inside
  // a co_await expression. The waiting caller keeps the request; the envelope points at it.
  return asio::async_initiate<decltype(asio::use_awaitable), void(Result<Outcome>)>(
      [this, &entity, &request](auto handler) {
        enqueue(entity, Envelope(&request, std::move(handler)));
      },
      asio::use_awaitable);
}

Result<void> Shard::post(const ActorKey& registered, const ActorKey& instance,
                         pb::InvocationRequest request,
                         asio::any_completion_handler<void(Result<Outcome>)> done) {
  auto found = accept(registered, instance, request.action_name());
  if (!found) {
    return std::move(found).error();
  }
  enqueue(**found,
          Envelope(std::make_unique<pb::InvocationRequest>(std::move(request)), std::move(done)));
  return ok();
}

void Shard::warm_up(const ActorKey& key) {
  auto found = find_or_create(key, key);
  if (found) {
    enqueue(**found, Envelope(Envelope::Kind::kActivate));
  }
}

void Shard::enqueue(Entity& entity, Envelope envelope) {
  entity.mailbox.push_back(std::move(envelope));
  if (!entity.running) {
    start_mailbox(entity);
  }
}

void Shard::start_mailbox(Entity& entity) {
  entity.running = true;
  asio::co_spawn(io_, drive(entity.key),
                 [](std::exception_ptr e) { common::log_exception(e, "actor mailbox"); });
}

void Shard::complete(Envelope& envelope, Result<Outcome> result) {
  if (!envelope.done) {
    if (!result && envelope.kind == Envelope::Kind::kInvoke) {
      spdlog::warn("async invocation failed: {}", result.error().message);
    }
    return;
  }
  // Resume the caller later, never inline inside this mailbox loop. Every completion handler
  // here belongs to a coroutine (or a bound handler) of this same shard: cross-shard callers
  // hop with run_on(), whose own completion returns them to their executor.
  asio::post(io_, [done = std::move(envelope.done), result = std::move(result)]() mutable {
    std::move(done)(std::move(result));
  });
}

Task<void> Shard::drive(ActorKey key) {
  Entity* found = entity_of(key);
  if (found == nullptr) {
    co_return;
  }
  Entity& entity = *found;
  while (!entity.mailbox.empty()) {
    Envelope envelope = std::move(entity.mailbox.front());
    entity.mailbox.pop_front();
    switch (envelope.kind) {
      case Envelope::Kind::kInvoke:
      case Envelope::Kind::kActivate: {
        if (!entity.active) {
          auto activated = co_await activate(entity);
          if (!activated) {
            spdlog::warn("actor={} activation failed: {}", describe(key),
                         activated.error().message);
            complete(envelope, std::move(activated).error());
            continue;
          }
        }
        if (envelope.kind == Envelope::Kind::kActivate) {
          complete(envelope, Outcome{});
          continue;
        }
        auto handled = co_await handle(entity, *envelope.request);
        if (handled && envelope.owned) {
          handled->request = std::move(envelope.owned);  // for the posted invocation's workflow
        }
        complete(envelope, std::move(handled));
        break;
      }
      case Envelope::Kind::kSnapshot: {
        if (entity.active && entity.state_changed) {
          auto saved = co_await save(entity, ActorStatus::kActivated);
          if (!saved) {
            spdlog::warn("actor={} snapshot failed: {}", describe(key), saved.error().message);
          }
        }
        complete(envelope, Outcome{});
        break;
      }
      case Envelope::Kind::kDeactivate: {
        const bool forced = static_cast<bool>(envelope.done);
        if (!forced && !entity.mailbox.empty()) {
          // New work arrived since the idle check: stay active.
          schedule_check(entity);
          continue;
        }
        if (entity.active && entity.dirty) {
          auto saved = co_await save(entity, ActorStatus::kDeactivated);
          if (!saved && saved.error().code != ErrorCode::kConflict) {
            if (!forced) {
              spdlog::warn("actor={} not deactivated, state not saved: {}", describe(key),
                           saved.error().message);
              entity.last_used = Clock::now();
              schedule_check(entity);
              continue;
            }
            spdlog::error("actor={} state lost at shutdown: {}", describe(key),
                          saved.error().message);
          }
        }
        if (!forced && !entity.mailbox.empty()) {
          schedule_check(entity);
          continue;
        }
        spdlog::debug("actor={} deactivated", describe(key));
        complete(envelope, Outcome{});
        if (entity.mailbox.empty()) {
          retire(key);
          co_return;
        }
        entity.active = false;
        break;
      }
    }
  }
  if (!entity.active) {
    // Activation failed, or a revision conflict fenced this activation: nothing to keep.
    retire(key);
    co_return;
  }
  entity.running = false;
}

Task<Result<void>> Shard::activate(Entity& entity) {
  // Cold paths (a start revision, the init action) run in coroutines of their own, and tasks are
  // made before the statement awaiting them: GCC 12 keeps every local and co_await temporary in
  // the frame, which must stay under the 1,020 bytes Asio recycles (src/common/CMakeLists.txt).
  // The definition is held, not referred to: a re-registration while the load is awaited
  // replaces the entity's.
  const std::shared_ptr<const ActorDefinition> held = entity.definition;
  const ActorDefinition& definition = *held;
  const auto& initial = definition.actor().state();
  entity.has_state = initial.has_state();
  entity.type_url = share_type_url(initial.state().type_url());
  entity.value = initial.state().value();
  set_tags(entity, initial.tags());
  entity.revision = 0;
  if (definition.is_stateful() && !definition.is_pooled() && store_ != nullptr) {
    auto loading = store_->load(entity.key);
    auto current = co_await std::move(loading);
    if (!current) {
      co_return std::move(current).error().with_context(activation_context(entity));
    }
    std::optional<statestore::Snapshot>& snapshot = *current;
    if (snapshot) {
      entity.revision = snapshot->revision;
    }
    if (entity.has_start_revision) {
      auto loading_revision = load_start_revision(entity, snapshot);
      auto historical = co_await std::move(loading_revision);
      if (!historical) {
        co_return std::move(historical).error();
      }
    }
    if (snapshot) {
      set_tags(entity, snapshot->tags);
      entity.has_state = snapshot->has_state;
      entity.type_url = share_type_url(snapshot->type_url);
      entity.value = std::move(snapshot->data);
    }
  }
  auto now = Clock::now();
  entity.active = true;
  entity.dirty = false;
  entity.state_changed = false;
  entity.last_used = now;
  if (auto interval = definition.snapshot_interval()) {
    entity.next_snapshot = now + *interval;
  }
  schedule_check(entity);
  start_timers(entity);
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("actor={} activated rev={}", describe(entity.key), entity.revision);
  }
  if (const auto& init = definition.init_action()) {
    auto initializing = run_init(entity, *init);
    co_await std::move(initializing);
  }
  co_return ok();
}

Task<Result<void>> Shard::load_start_revision(Entity& entity,
                                              std::optional<statestore::Snapshot>& snapshot) {
  auto revision = entity.start_revision;
  entity.has_start_revision = false;
  auto loading = store_->load_revision(entity.key, revision);
  auto historical = co_await std::move(loading);
  if (!historical) {
    co_return std::move(historical).error().with_context(activation_context(entity));
  }
  if (!*historical) {
    co_return fail(ErrorCode::kNotFound, activation_context(entity) + ": revision "
                                             + std::to_string(revision) + " does not exist");
  }
  snapshot = std::move(*historical);
  co_return ok();
}

Task<void> Shard::run_init(Entity& entity, const std::string& init) {
  const pba::ActorId id = entity.actor_id();
  pb::ActorInvocation invocation;
  *invocation.mutable_actor() = id;
  invocation.set_action_name(init);
  invocation.mutable_noop();
  *invocation.mutable_caller() = id;
  auto* context = invocation.mutable_current_context();
  if (entity.has_state) {
    copy_state(entity, context->mutable_state());
  }
  *context->mutable_tags() = tags_of(entity);
  *context->mutable_caller() = id;
  context->mutable_self()->set_name(id.name());
  context->mutable_self()->set_system(id.system());
  pb::ActorInvocationResponse reply;
  auto calling = host_->invoke(invocation, reply);  // not retried
  auto called = co_await std::move(calling);
  if (called) {
    apply(entity, reply);
  } else {
    // PROTOCOL.md §5.10: an init failure is logged and the actor stays active.
    spdlog::warn("actor={} init action '{}' failed: {}", describe(entity.key), init,
                 called.error().message);
  }
}

namespace {

std::string describe_call(const std::string& action, const Entity& entity) {
  return "invoke '" + action + "' on actor '" + entity.key.name + "'";
}

}  // namespace

void Shard::lend(const Entity& entity, pb::InvocationRequest& request,
                 pb::ActorInvocation& invocation) {
  // Every field is set: `invocation` may hold an earlier call's.
  auto* actor = invocation.mutable_actor();
  entity.write_actor_id(*actor);
  if (invocation.action_name() != request.action_name()) {
    invocation.set_action_name(request.action_name());
  }
  auto* context = invocation.mutable_current_context();
  if (entity.has_state) {
    copy_state(entity, context->mutable_state());
  } else {
    context->clear_state();
  }
  *context->mutable_tags() = tags_of(entity);
  copy_id(*actor, *context->mutable_self());
  if (request.has_caller()) {
    *context->mutable_caller() = request.caller();
    *invocation.mutable_caller() = request.caller();
  } else {
    context->clear_caller();
    invocation.clear_caller();
  }
  // The payload and the metadata are lent, not copied, and given back to the request once the
  // host is done (the host leaves them as they were; a forward sends the payload on). The
  // metadata of a request on an arena (the proxy's) is copied instead, once: protobuf swaps maps
  // of different arenas by copying them three times.
  auto& metadata = *context->mutable_metadata();
  if (request.GetArena() == nullptr) {
    metadata.swap(*request.mutable_metadata());
  } else {
    metadata = request.metadata();
  }
  if (request.has_value()) {
    invocation.set_allocated_value(request.release_value());
  } else if (request.has_noop()) {
    invocation.mutable_noop();
  } else {
    invocation.clear_payload();
  }
}

void Shard::give_back(pb::ActorInvocation& invocation, pb::InvocationRequest& request) {
  auto& metadata = *invocation.mutable_current_context()->mutable_metadata();
  if (request.GetArena() == nullptr) {
    request.mutable_metadata()->swap(metadata);
  } else {
    metadata.clear();  // a copy (lend()): the request has its own
  }
  if (invocation.has_value()) {
    request.set_allocated_value(invocation.release_value());
  }
}

Outcome Shard::answer_get(const Entity& entity) {
  // Only the value: the runtime reads nothing else of a get's outcome (no workflow, no state to
  // apply), so the context a host's reply carries is not built.
  Outcome outcome;
  if (entity.has_state) {
    copy_state(entity, outcome.response.mutable_value());
  }
  return outcome;
}

bool Shard::take_reply(Entity& entity, pb::ActorInvocationResponse& reply) {
  apply(entity, reply);
  // The current definition: a re-registration while the host was called replaced the first.
  return reply.checkpoint() && entity.definition->is_stateful() && !entity.definition->is_pooled()
         && store_ != nullptr;
}

namespace {

Outcome outcome_of(pb::ActorInvocationResponse& reply) {
  Outcome outcome;
  outcome.response = std::move(reply);
  return outcome;
}

/// The outcome of `reply`: all of it, or of a reply made on an arena (the request's), the parts
/// the caller reads (the payload and the workflow; the rest is the shard's, applied already),
/// the value's strings swapped out of the arena's strings rather than copied.
Outcome take_outcome(pb::ActorInvocationResponse& reply) {
  if (reply.GetArena() == nullptr) {
    return outcome_of(reply);
  }
  Outcome outcome;
  auto& response = outcome.response;
  if (reply.has_value()) {
    auto& from = *reply.mutable_value();
    auto& to = *response.mutable_value();
    to.mutable_type_url()->swap(*from.mutable_type_url());
    to.mutable_value()->swap(*from.mutable_value());
  } else if (reply.has_noop()) {
    response.mutable_noop();
  }
  if (reply.has_workflow()) {
    *response.mutable_workflow() = reply.workflow();
  }
  return outcome;
}

}  // namespace

Task<Result<Outcome>> Shard::handle(Entity& entity, pb::InvocationRequest& request) {
  const ActorDefinition& definition = *entity.definition;
  const std::string& action = request.action_name();
  if (definition.answers_get_itself(action)) {
    entity.last_used = Clock::now();
    co_return answer_get(entity);
  }

  // The retry window for an unreachable host (PROTOCOL.md §5.10).
  const auto window = request_timeout(request, options_.default_request_timeout);
  // The invocation is built in the shard's scratch message, whose parts stay allocated from one
  // call to the next, so a host that answers at once (in-process) costs no allocation for it and
  // answers in reply_. A host that suspends takes it over into a spare call (other calls run on
  // this shard meanwhile), which goes back to the shard's spares afterwards: its parts stay
  // allocated too.
  std::unique_ptr<HostCall> call;
  pb::ActorInvocation* invocation = &scratch_;
  if (scratch_in_use_) {
    call = take_spare_call();
    invocation = &call->invocation;
  }
  scratch_in_use_ = true;
  lend(entity, request, *invocation);
  pb::ActorInvocationResponse* reply = &reply_;
  auto answered = host_->invoke_now(*invocation, reply_);
  if (!answered) {
    if (invocation == &scratch_) {
      call = take_spare_call();
      call->invocation.Swap(&scratch_);
      invocation = &call->invocation;
      scratch_in_use_ = false;
    }
    // Its response is made on the request's arena when it has one (the proxy's server parses
    // each request on its connection's arena, reset per request): it lives no longer than the
    // request, and its parts cost no malloc and no destruction each.
    google::protobuf::Arena* arena = request.GetArena();
    reply = arena != nullptr
                ? google::protobuf::Arena::CreateMessage<pb::ActorInvocationResponse>(arena)
                : &call->response;
    // The first try is awaited here, not in a coroutine of its own: one frame fewer per call
    // (Asio's per-thread recycling cache misses more the more frames a call interleaves).
    const auto deadline = Clock::now() + window;
    auto calling = host_->invoke(*invocation, *reply);
    auto called = co_await std::move(calling);
    if (!called && called.error().code == ErrorCode::kUnavailable && Clock::now() < deadline) {
      auto retrying = call_host_again(entity, *invocation, *reply, deadline);
      auto retried = co_await std::move(retrying);
      called = std::move(retried);
    }
    answered.emplace(std::move(called));
  }
  give_back(*invocation, request);
  if (invocation == &scratch_) {
    scratch_in_use_ = false;
  }
  entity.last_used = Clock::now();
  if (!*answered) {
    keep_spare_call(std::move(call));
    co_return std::move(*answered).error().with_context(describe_call(action, entity));
  }
  const bool checkpoint = take_reply(entity, *reply);
  // Out of reply_ (or the call's response) before anything else runs here.
  Outcome outcome = take_outcome(*reply);
  keep_spare_call(std::move(call));
  if (checkpoint) {
    // The store's task awaited here, as in finish_checkpoint(): no frame of save() in between.
    auto storing = store_snapshot(entity, ActorStatus::kActivated);
    auto stored = co_await std::move(storing);
    Result<void> checkpointed = saved(entity, std::move(stored));
    if (!checkpointed) {
      co_return std::move(checkpointed)
          .error()
          .with_context(describe_call(action, entity) + ": checkpoint");
    }
  }
  co_return std::move(outcome);
}

std::unique_ptr<Shard::HostCall> Shard::take_spare_call() {
  if (spare_calls_.empty()) {
    return std::make_unique<HostCall>();
  }
  auto spare = std::move(spare_calls_.back());
  spare_calls_.pop_back();
  return spare;
}

void Shard::keep_spare_call(std::unique_ptr<HostCall> call) {
  if (call == nullptr) {
    return;
  }
  // As many as calls were in flight at once, up to a bound; a large state is not kept, nor
  // anything of a response (take_outcome() moved it away unless the call failed).
  if (spare_calls_.size() < kMaxSpares
      && call->invocation.current_context().state().value().capacity() <= kMaxSpareBytes) {
    pb::ActorInvocationResponse().Swap(&call->response);
    spare_calls_.push_back(std::move(call));
  }
}

Shard::Now Shard::invoke_now(KeyRef key, pb::InvocationRequest& request) {
  Now now;
  // Only the common case, an active and idle actor: everything else (activation, a busy actor,
  // pools, errors) takes invoke(), which runs the same steps in a coroutine.
  Entity* found = entity_of(key);
  if (found == nullptr || !found->active || found->running || !found->mailbox.empty()
      || scratch_in_use_) {
    return now;
  }
  Entity& entity = *found;
  const ActorDefinition& definition = *entity.definition;
  const std::string& action = request.action_name();
  if (definition.is_pooled()) {
    return now;
  }
  if (definition.answers_get_itself(action)) {
    entity.last_used = Clock::now();
    now.outcome.emplace(answer_get(entity));
    return now;
  }
  if (!definition.has_action(action)) {
    return now;
  }
  scratch_in_use_ = true;
  lend(entity, request, scratch_);
  auto answered = host_->invoke_now(scratch_, reply_);
  give_back(scratch_, request);  // a host that does not answer at once leaves it as it was
  scratch_in_use_ = false;
  if (!answered) {
    return now;
  }
  entity.last_used = Clock::now();
  if (!*answered) {
    now.outcome.emplace(std::move(*answered).error().with_context(describe_call(action, entity)));
    return now;
  }
  if (!take_reply(entity, reply_)) {
    now.reply = &reply_;  // read by the caller before anything else runs here
    return now;
  }
  // Saving suspends: the actor runs (later calls queue) until the save is done.
  entity.running = true;
  now.workflow = reply_.has_workflow();
  // The reply goes with the rest; reply_ takes a spare's parts in exchange (a response given
  // back by an earlier checkpoint's caller), so the next call does not build them again.
  Outcome outcome;
  if (!spare_replies_.empty()) {
    outcome.response = std::move(spare_replies_.back());
    spare_replies_.pop_back();
  }
  outcome.response.Swap(&reply_);
  now.rest.emplace(finish_checkpoint(entity, std::move(outcome), action));
  return now;
}

void Shard::keep_spare_reply(pb::ActorInvocationResponse& reply) {
  // As many as checkpoints were saving at once, up to a bound; a large state or payload is not
  // kept.
  if (spare_replies_.size() < kMaxSpares && reply.GetArena() == nullptr
      && reply.updated_context().state().value().capacity() <= kMaxSpareBytes
      && reply.value().value().capacity() <= kMaxSpareBytes) {
    spare_replies_.emplace_back(std::move(reply));
  }
}

Task<Result<Outcome>> Shard::finish_checkpoint(Entity& entity, Outcome outcome,
                                               std::string action) {
  // take_reply() asks for a checkpoint only of an entity that persists: the store's task is
  // awaited here, without save()'s frame in between.
  auto storing = store_snapshot(entity, ActorStatus::kActivated);
  auto stored = co_await std::move(storing);
  Result<void> checkpointed = saved(entity, std::move(stored));
  Result<Outcome> result = std::move(outcome);
  if (!checkpointed) {
    result = std::move(checkpointed)
                 .error()
                 .with_context(describe_call(action, entity) + ": checkpoint");
  }
  end_inline_run(entity);  // may remove the entity (a conflict fenced it)
  co_return result;
}

Task<Result<void>> Shard::call_host_again(Entity& entity, pb::ActorInvocation& invocation,
                                          pb::ActorInvocationResponse& response,
                                          Clock::time_point deadline) {
  // Only an unreachable host is retried: the request never reached user code, so nothing runs
  // twice (PROTOCOL.md §5.10 retries every failure; we deliberately do not re-run actions).
  auto backoff = std::chrono::milliseconds(10);
  thread_local std::minstd_rand jitter(std::random_device{}());
  for (;;) {
    auto wait = backoff / 2 + std::chrono::milliseconds(jitter() % (backoff.count() / 2 + 1));
    wait = std::min<std::chrono::milliseconds>(
        wait, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    spdlog::debug("actor={} host unreachable, retrying in {} ms", describe(entity.key),
                  wait.count());
    asio::steady_timer timer(io_, wait);
    co_await timer.async_wait(kUseTask);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    // The host leaves the invocation intact when it fails with kUnavailable, the only retry.
    Result<void> called = co_await host_->invoke(invocation, response);
    if (called || called.error().code != ErrorCode::kUnavailable || Clock::now() >= deadline) {
      co_return called;
    }
  }
}

void Shard::apply(Entity& entity, pb::ActorInvocationResponse& response) {
  auto& context = *response.mutable_updated_context();
  if (context.has_state() && !same_state(entity, context.state())) {
    entity.has_state = true;
    if (context.state().type_url() != type_url_of(entity)) {
      entity.type_url = share_type_url(context.state().type_url());
    }
    // Swapped, not moved: the response (the shard's reused one) keeps a buffer for the next.
    entity.value.swap(*context.mutable_state()->mutable_value());
    entity.state_changed = true;
    entity.dirty = true;
  }
  // PROTOCOL.md §5.4 item 5: the returned tags replace the stored ones, even when empty.
  if (!same_tags(context.tags(), tags_of(entity))) {
    set_tags(entity, context.tags());
    entity.dirty = true;
  }
}

Task<Result<void>> Shard::save(Entity& entity, ActorStatus status) {
  if (!entity.definition->is_stateful() || entity.definition->is_pooled() || store_ == nullptr) {
    co_return ok();
  }
  auto storing = store_snapshot(entity, status);
  auto stored = co_await std::move(storing);
  co_return saved(entity, std::move(stored));
}

Task<Result<std::int64_t>> Shard::store_snapshot(const Entity& entity, ActorStatus status) {
  statestore::Snapshot snapshot;
  snapshot.status = status;
  snapshot.node = options_.node;
  snapshot.tags.insert(tags_of(entity).begin(), tags_of(entity).end());
  snapshot.has_state = entity.has_state;
  if (snapshot.has_state) {
    snapshot.type_url = type_url_of(entity);
    snapshot.data = entity.value;
  }
  return store_->save(entity.key, std::move(snapshot), entity.revision);
}

Result<void> Shard::saved(Entity& entity, Result<std::int64_t> stored) {
  if (!stored) {
    if (stored.error().code == ErrorCode::kConflict) {
      // Fencing: another activation wrote a newer revision. This one must not go on with stale
      // state; the next invocation activates afresh from the store.
      spdlog::warn(
          "actor={} revision conflict at rev={}: state was changed elsewhere; "
          "reloading on next use",
          describe(entity.key), entity.revision);
      entity.active = false;
    }
    return std::move(stored).error().with_context("save actor '" + describe(entity.key) + "'");
  }
  entity.revision = *stored;
  entity.dirty = false;
  entity.state_changed = false;
  return ok();
}

Task<void> Shard::deactivate_all() {
  std::size_t pending = 0;
  asio::steady_timer all_done(io_, Clock::time_point::max());
  std::vector<ActorKey> keys;
  keys.reserve(entity_count_);
  for (const auto& [key, slot] : slots_) {
    if (slot.entity) {
      keys.push_back(key);
    }
  }
  for (const auto& key : keys) {
    Entity* found = entity_of(key);
    if (found == nullptr) {
      continue;
    }
    ++pending;
    auto done = asio::bind_executor(io_.get_executor(), [&pending, &all_done](Result<Outcome>) {
      if (--pending == 0) {
        all_done.cancel();
      }
    });
    enqueue(*found, Envelope(Envelope::Kind::kDeactivate, std::move(done)));
  }
  if (pending > 0) {
    co_await all_done.async_wait(kUseTask);
  }
}

std::shared_ptr<const std::string> Shard::share_type_url(const std::string& type_url) {
  if (type_url.empty()) {
    return nullptr;
  }
  // Most entities of a shard share one type: a compare instead of a lookup (cold activations).
  if (last_type_url_ && *last_type_url_ == type_url) {
    return last_type_url_;
  }
  auto& shared = type_urls_[type_url];
  if (auto existing = shared.lock()) {
    last_type_url_ = existing;
    return existing;
  }
  auto made = std::make_shared<const std::string>(type_url);
  shared = made;
  last_type_url_ = made;
  if (type_urls_.size() >= type_urls_purge_at_) {
    // Forget the type URLs no entity uses any more, so the table stays as small as what is used.
    std::erase_if(type_urls_, [](const auto& entry) { return entry.second.expired(); });
    type_urls_purge_at_ = 2 * type_urls_.size() + 16;
  }
  return made;
}

void Shard::start_timers(const Entity& entity) {
  if (entity.definition->is_pooled() || !dispatcher_) {
    return;
  }
  for (const auto& timer : entity.definition->actor().timer_actions()) {
    const auto& action = timer.action().name();
    if (timer.seconds() <= 0 || action.empty()) {
      spdlog::warn("actor={} timer '{}' ignored: its period must be a positive number of ms",
                   describe(entity.key), action);
      continue;
    }
    // PROTOCOL.md §5.6: `seconds` is read as milliseconds, as the original does. A timer runs
    // on after passivation, so it starts once per actor, not once per activation.
    if (timers_.insert(entity.key.system + '\x1f' + entity.key.name + '\x1f' + action).second) {
      asio::co_spawn(io_, run_timer(entity.key, action, std::chrono::milliseconds(timer.seconds())),
                     [](std::exception_ptr e) { common::log_exception(e, "actor timer"); });
    }
  }
}

bool Shard::has_timer(const ActorKey& key, const std::string& action) const {
  const Slot* slot = find_registration(key);
  if (slot == nullptr) {
    return false;
  }
  const auto& timers = slot->definition->actor().timer_actions();
  return std::any_of(timers.begin(), timers.end(), [&](const auto& timer) {
    return timer.action().name() == action && timer.seconds() > 0;
  });
}

Task<void> Shard::run_timer(ActorKey key, std::string action, std::chrono::milliseconds period) {
  asio::steady_timer timer(io_);
  auto next = Clock::now() + period;
  for (;;) {
    timer.expires_at(next);
    co_await timer.async_wait(kUseTask);
    next += period;
    if (!has_timer(key, action)) {
      spdlog::info("actor={} timer '{}' stopped: no longer registered", describe(key), action);
      break;
    }
    pb::InvocationRequest request;
    request.mutable_system()->set_name(key.system);
    request.mutable_actor()->mutable_id()->set_name(key.name);
    request.mutable_actor()->mutable_id()->set_system(key.system);
    request.set_action_name(action);
    request.mutable_noop();
    request.set_async(true);
    request.mutable_caller()->set_name(key.name);
    request.mutable_caller()->set_system(key.system);
    if (!dispatcher_(std::move(request))) {
      break;
    }
    if (next < Clock::now()) {
      next = Clock::now() + period;  // fell behind (a slow host): do not fire a burst
    }
  }
  timers_.erase(key.system + '\x1f' + key.name + '\x1f' + action);
}

void Shard::schedule_check(Entity& entity) {
  auto next = entity.last_used + entity.definition->deactivation_timeout();
  if (auto interval = entity.definition->snapshot_interval(); interval && entity.state_changed) {
    next = std::min(next, entity.next_snapshot);
  }
  if (entity.next_check == next) {
    return;
  }
  entity.next_check = next;
  bool earliest = wakeups_.empty() || next < wakeups_.top().at;
  wakeups_.push(Wakeup{next, &entity});
  ++entity.wakeups;
  if (earliest) {
    wakeup_timer_.expires_at(next);
  }
}

Task<void> Shard::run_wakeups() {
  for (;;) {
    wakeup_timer_.expires_at(wakeups_.empty() ? Clock::time_point::max() : wakeups_.top().at);
    co_await wakeup_timer_.async_wait(kUseTask);  // woken early when an earlier wakeup arrives
    auto now = Clock::now();
    while (!wakeups_.empty() && wakeups_.top().at <= now) {
      Wakeup wakeup = wakeups_.top();
      wakeups_.pop();
      Entity* entity = wakeup.entity;
      if (--entity->wakeups == 0 && entity->retired) {
        delete entity;
        continue;
      }
      if (!entity->retired) {
        on_wakeup(*entity, wakeup.at);
      }
    }
  }
}

void Shard::on_wakeup(Entity& entity, Clock::time_point at) {
  if (entity.next_check != at) {
    return;  // a later check replaced this one
  }
  entity.next_check = {};
  auto now = Clock::now();
  if (!entity.active) {
    if (!entity.running && entity.mailbox.empty()) {
      retire(entity.key);
    }
    return;
  }
  if (entity.running || !entity.mailbox.empty()) {
    entity.last_used = std::max(entity.last_used, now);
    schedule_check(entity);
    return;
  }
  if (now >= entity.last_used + entity.definition->deactivation_timeout()) {
    enqueue(entity, Envelope(Envelope::Kind::kDeactivate));
    return;
  }
  if (auto interval = entity.definition->snapshot_interval();
      interval && entity.state_changed && now >= entity.next_snapshot) {
    entity.next_snapshot = now + *interval;
    enqueue(entity, Envelope(Envelope::Kind::kSnapshot));
  }
  schedule_check(entity);
}

}  // namespace spawn::runtime
