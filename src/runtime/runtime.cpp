#include "runtime/runtime.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include "common/log.hpp"
#include "protocol/status.hpp"

namespace spawn::runtime {

namespace pb = protocol::pb;
namespace pba = protocol::pba;
using statestore::ActorKey;

namespace {

/// The system of the actor a request names: the actor id's, else the request's.
const std::string& system_of(const pb::InvocationRequest& request) {
  const auto& id = request.actor().id();
  return id.system().empty() ? request.system().name() : id.system();
}

}  // namespace

/// What a workflow needs to know about the invocation that produced it.
struct Runtime::WorkflowContext {
  std::string system;
  /// The acting actor as a caller: {name, system}.
  pba::ActorId self;
  google::protobuf::Map<std::string, std::string> metadata;

  /// Made only for a reply that has a workflow (most have none), from the request the outcome
  /// gives back.
  static std::shared_ptr<const WorkflowContext> of(const pb::InvocationRequest& request) {
    const auto& id = request.actor().id();
    auto context = std::make_shared<WorkflowContext>();
    context->system = system_of(request);
    context->self.set_name(id.name());
    context->self.set_system(context->system);
    context->metadata = request.metadata();
    return context;
  }
};

namespace {

class InFlight {
public:
  explicit InFlight(std::atomic<std::int64_t>& counter) : counter_(counter) { ++counter_; }

  ~InFlight() { --counter_; }

  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

private:
  std::atomic<std::int64_t>& counter_;
};

/// The answer to a request taken to run later (scheduled or async): OK and no payload.
std::optional<pb::InvocationResponse> accepted() {
  std::optional<pb::InvocationResponse> response(std::in_place);
  response->mutable_status()->set_status(pb::OK);  // protocol::ok_status(), without a copy
  return response;
}

/// The spawn of `key` as a child of `parent`: what spawn() takes.
std::vector<pba::ActorId> child_of(const ActorKey& key, const std::string& parent) {
  std::vector<pba::ActorId> children(1);
  children.front().set_name(key.name);
  children.front().set_system(key.system);
  children.front().set_parent(parent);
  return children;
}

bool is_empty(const pb::Workflow& workflow) {
  return workflow.effects_size() == 0 && !workflow.has_broadcast()
         && workflow.routing_case() == pb::Workflow::ROUTING_NOT_SET;
}

bool has_workflow(const pb::ActorInvocationResponse& reply) {
  return reply.has_workflow() && !is_empty(reply.workflow());
}

/// The caller's response to the host's `reply`: OK and the reply's payload, taken from it. (The
/// echo of the request's system and actor is the HTTP API's (PROTOCOL.md §3): the proxy's server
/// adds it; embedded callers never read it.)
///
/// Into `response`, which may hold an earlier call's (a caller's reused message): its status and
/// payload are set, an Any it has already is swapped with the reply's (nothing is allocated).
void answer(pb::ActorInvocationResponse& reply, pb::InvocationResponse& response) {
  auto* status = response.mutable_status();
  status->set_status(pb::OK);  // protocol::ok_status(), without a copy
  status->clear_message();
  if (!reply.has_value()) {
    if (reply.has_noop()) {
      response.mutable_noop();
    } else {
      response.clear_payload();
    }
  } else if (response.has_value()) {
    response.mutable_value()->Swap(reply.mutable_value());
  } else {
    response.set_allocated_value(reply.release_value());
  }
}

pb::InvocationResponse response_to(pb::ActorInvocationResponse& reply) {
  pb::InvocationResponse response;
  answer(reply, response);
  return response;
}

template <class From, class To>
void copy_payload(const From& from, To& to) {
  if (from.has_value()) {
    *to.mutable_value() = from.value();
  } else if (from.has_noop()) {
    to.mutable_noop();
  }
}

Task<Result<void>> add_definitions_on(Shard* shard, std::string system,
                                      std::vector<std::shared_ptr<const ActorDefinition>> defs) {
  shard->add_definitions(std::move(system), std::move(defs));
  co_return ok();
}

Task<Result<void>> spawn_on(Shard* shard, pba::ActorId id, std::optional<std::int64_t> revision) {
  co_return shard->spawn(id, revision);
}

}  // namespace

Runtime::Runtime(RuntimeOptions options, const HostFactory& host_factory, statestore::Store* store,
                 std::unique_ptr<PubSub> pubsub, Cluster* cluster)
    : pubsub_(pubsub ? std::move(pubsub) : std::make_unique<LocalPubSub>()),
      cluster_(cluster),
      default_request_timeout_(options.shard.default_request_timeout),
      store_(store) {
  pubsub_->on_message([this](const BroadcastMessage& message) { external_.deliver(message); });
  std::size_t count = options.shards;
  if (count == 0) {
    count = std::max(1U, std::thread::hardware_concurrency());
  }
  shards_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    shards_.push_back(std::make_unique<Shard>(i, host_factory, store, options.shard));
    shards_.back()->set_dispatcher([this, shard = shards_.back().get()](pb::InvocationRequest r) {
      if (shutting_down_) {
        return false;
      }
      if (cluster_ != nullptr) {
        // A timer runs where its actor lives: once the actor moved (this node was paused or cut
        // off), the new owner runs its own and this one stops.
        ActorKey key{r.actor().id().system(), r.actor().id().name()};
        if (cluster_->owns(key) == false) {
          spdlog::info("actor={}/{} timer '{}' stops here: the actor lives on another node",
                       key.system, key.name, r.action_name());
          return false;
        }
      }
      dispatch(shard->executor(), std::move(r), "timer");
      return true;
    });
  }
  if (store != nullptr) {
    scheduler_ = std::make_unique<Scheduler>(
        shards_.front()->executor(), *store,
        [this](statestore::ScheduledInvocation entry) { return run_scheduled(std::move(entry)); });
  }
  if (cluster_ != nullptr) {
    cluster_->attach(
        [this](pb::InvocationRequest request, int hops) { return route(std::move(request), hops); },
        [this](const ActorKey& key) { return shard_for(key).executor(); },
        [this] { return active_count(); },
        [this] {
          asio::co_spawn(shards_.front()->executor(), deactivate_all(), [](std::exception_ptr e) {
            common::log_exception(e, "releasing every actor");
          });
        });
    if (scheduler_) {
      // One node of the cluster runs the stored invocations, so that each runs once.
      scheduler_->set_gate([cluster] { return cluster->runs_scheduler(); });
    }
  }
}

Runtime::~Runtime() {
  stop();
}

void Runtime::start() {
  for (auto& shard : shards_) {
    shard->start();
  }
  if (scheduler_) {
    scheduler_->start();
  }
}

void Runtime::begin_shutdown() {
  shutting_down_ = true;
  if (scheduler_) {
    scheduler_->stop();
  }
}

void Runtime::stop() {
  for (auto& shard : shards_) {
    shard->stop();
  }
}

Shard& Runtime::shard_for(const ActorKey& key) {
  return *shards_[statestore::key_hash(key.system, key.name) % shards_.size()];
}

Task<Result<void>> Runtime::register_system(pba::ActorSystem system) {
  if (shutting_down_) {
    co_return fail(ErrorCode::kShuttingDown, "proxy is shutting down: registration refused");
  }
  const std::string name = system.name();
  if (name.empty()) {
    co_return fail(ErrorCode::kInvalidArgument,
                   "register: the request names no actor system (actor_system.name is empty)");
  }
  std::vector<std::shared_ptr<const ActorDefinition>> definitions;
  for (auto& [registry_key, actor] : *system.mutable_registry()->mutable_actors()) {
    if (actor.id().name().empty()) {
      // The key is normally ignored (PROTOCOL.md §2.1); it names an actor whose id does not.
      actor.mutable_id()->set_name(registry_key);
    }
    if (actor.id().name().empty()) {
      co_return fail(ErrorCode::kInvalidArgument,
                     "register system '" + name + "': an actor has no name");
    }
    if (actor.id().system().empty()) {
      actor.mutable_id()->set_system(name);
    }
    definitions.push_back(std::make_shared<const ActorDefinition>(std::move(actor)));
  }
  for (auto& shard : shards_) {
    auto added =
        co_await run_on(shard->executor(), add_definitions_on(shard.get(), name, definitions));
    if (!added) {
      co_return added;
    }
  }
  if (cluster_ != nullptr) {
    std::vector<RegisteredActor> announced;
    announced.reserve(definitions.size());
    for (const auto& definition : definitions) {
      RegisteredActor actor{definition->name(), definition->is_pooled(), {}};
      for (const auto& channel : definition->actor().metadata().channel_group()) {
        actor.subscriptions.emplace_back(channel.topic(),
                                         channel.action().empty() ? "receive" : channel.action());
      }
      announced.push_back(std::move(actor));
    }
    cluster_->registered(name, std::move(announced));
  }
  // Warm-up (PROTOCOL.md §5.1 item 4) runs after the reply, in the background. In a cluster
  // an actor activates where the directory places it, at its first invocation.
  if (cluster_ == nullptr) {
    for (const auto& definition : definitions) {
      auto kind = definition->kind();
      if (!definition->is_stateful() || kind == pba::POOLED || kind == pba::UNNAMED) {
        continue;
      }
      ActorKey key{definition->actor().id().system(), definition->name()};
      Shard* owner = &shard_for(key);
      asio::post(owner->executor(), [owner, key] { owner->warm_up(key); });
    }
  }
  spdlog::info("system={} registered actors={}", name, definitions.size());
  co_return ok();
}

Task<Result<void>> Runtime::spawn(std::vector<pba::ActorId> ids,
                                  std::optional<std::int64_t> revision) {
  if (shutting_down_) {
    co_return fail(ErrorCode::kShuttingDown, "proxy is shutting down: spawn refused");
  }
  for (auto& id : ids) {
    if (id.name().empty() || id.system().empty()) {
      co_return fail(ErrorCode::kInvalidArgument,
                     "spawn: every actor id needs a name and a system (got name '" + id.name()
                         + "', system '" + id.system() + "')");
    }
  }
  if (cluster_ == nullptr) {
    co_return co_await spawn_here(ids, revision);
  }
  // In a cluster the parent may be registered by other nodes' hosts only: the child is recorded
  // for the cluster, and spawned here too where this node's host registered its parent.
  for (const auto& id : ids) {
    std::vector<pba::ActorId> one(1, id);
    auto spawned = co_await spawn_here(one, revision);
    if (!spawned
        && (spawned.error().code != ErrorCode::kNotFound
            || !cluster_->registered_anywhere(id.system(), id.parent()))) {
      co_return spawned;
    }
  }
  co_return co_await cluster_->spawned(std::move(ids));
}

Task<Result<void>> Runtime::spawn_here(const std::vector<pba::ActorId>& ids,
                                       std::optional<std::int64_t> revision) {
  for (const auto& id : ids) {
    Shard& owner = shard_for(ActorKey{id.system(), id.name()});
    auto spawned = co_await run_on(owner.executor(), spawn_on(&owner, id, revision));
    if (!spawned) {
      co_return spawned;
    }
  }
  co_return ok();
}

Task<Result<std::vector<ActorInfo>>> Runtime::actors(std::string system) {
  std::map<std::string, ActorInfo> by_name;
  bool known = false;
  for (auto& shard : shards_) {
    auto listed = co_await run_on(
        shard->executor(),
        [](Shard* s, std::string sys) -> Task<std::pair<bool, std::vector<ActorInfo>>> {
          co_return std::pair{s->has_system(sys), s->actors(sys)};
        }(shard.get(), system));
    known = known || listed.first;
    for (auto& info : listed.second) {
      by_name.emplace(info.name, std::move(info));
    }
  }
  if (!known) {
    co_return fail(ErrorCode::kNotFound,
                   "ActorSystem " + system + " is not registered on this proxy");
  }
  std::vector<ActorInfo> result;
  result.reserve(by_name.size());
  for (auto& [name, info] : by_name) {
    result.push_back(std::move(info));
  }
  co_return result;
}

Task<Result<pb::InvocationResponse>> Runtime::invoke(pb::InvocationRequest request) {
  return route(std::move(request), 0);  // no coroutine of its own: one frame less per request
}

Task<Result<pb::InvocationResponse>> Runtime::invoke_lent(pb::InvocationRequest& request) {
  return route(pb::InvocationRequest(), 0, &request);
}

Task<Result<pb::InvocationResponse>> Runtime::route(pb::InvocationRequest owned, int hops,
                                                    pb::InvocationRequest* lent) {
  // This frame stays under the 1,020 bytes Asio recycles (src/common/CMakeLists.txt), so a call
  // costs no malloc for it: GCC 12 keeps every local and co_await temporary of the whole function
  // in the frame, taken branch or not, so the rarer ways live in coroutines of their own
  // (route_elsewhere(), follow_workflow()) and tasks are made before the statement awaiting them.
  if (shutting_down_) {
    co_return fail(ErrorCode::kShuttingDown, "proxy is shutting down: invocation refused");
  }
  InFlight in_flight(in_flight_);
  pb::InvocationRequest& request = lent != nullptr ? *lent : owned;
  const auto& id = request.actor().id();
  std::string system = system_of(request);
  if (id.name().empty()) {
    co_return fail(ErrorCode::kInvalidArgument,
                   "invoke: the request names no actor (actor.id.name is empty)");
  }
  if (system.empty()) {
    co_return fail(ErrorCode::kInvalidArgument,
                   "invoke actor '" + id.name() + "': the request names no actor system");
  }
  if (request.action_name().empty()) {
    co_return fail(ErrorCode::kInvalidArgument,
                   "invoke actor '" + id.name() + "': the request names no action");
  }
  ActorKey key{std::move(system), id.name()};
  if (!request.register_ref().empty() || request.scheduled_to() != 0 || cluster_ != nullptr
      || request.async()) {
    auto elsewhere = route_elsewhere(key, request, hops);
    auto routed = co_await std::move(elsewhere);
    if (!routed) {
      co_return std::move(routed).error();
    }
    if (*routed) {
      co_return std::move(**routed);
    }
  }

  Shard& owner = shard_for(key);
  // The key and the request stay in this frame, which outlives the call: the layers below borrow
  // them.
  auto here = co_await asio::this_coro::executor;
  auto task = invoke_from(here, owner, key, request);
  auto outcome = co_await std::move(task);
  if (!outcome) {
    co_return std::move(outcome).error();
  }
  auto& reply = outcome->response;
  if (!has_workflow(reply)) {
    co_return response_to(reply);
  }
  auto following = follow_workflow(reply, request);
  co_return co_await std::move(following);
}

std::size_t Runtime::shard_of(const pb::InvocationRequest& request) const {
  return statestore::key_hash(system_of(request), request.actor().id().name()) % shards_.size();
}

Runtime::Now Runtime::invoke_now(std::size_t shard, pb::InvocationRequest& request,
                                 pb::InvocationResponse& response) {
  Now now;
  const auto& id = request.actor().id();
  const std::string& system = system_of(request);
  // A plain synchronous call only: everything else, errors included, takes route().
  if (shutting_down_ || cluster_ != nullptr || request.async() || request.scheduled_to() != 0
      || !request.register_ref().empty() || id.name().empty() || system.empty()
      || request.action_name().empty()) {
    return now;
  }
  Shard& owner = *shards_[shard];
  if (!owner.running_here()) {
    return now;
  }
  auto ran = owner.invoke_now(Shard::KeyRef(system, id.name()), request);
  if (ran.reply != nullptr) {
    if (!has_workflow(*ran.reply)) {
      answer(*ran.reply, response);  // the shard's message, read before it runs anything else
      now.answered.emplace();
      return now;
    }
    Outcome outcome;
    outcome.response = std::move(*ran.reply);
    ran.outcome.emplace(std::move(outcome));
    ran.reply = nullptr;
  }
  if (!ran.outcome && !ran.rest) {
    return now;
  }
  if (ran.outcome && !*ran.outcome) {
    now.answered.emplace(std::move(*ran.outcome).error());
    return now;
  }
  if (ran.rest && !ran.workflow) {
    // A checkpoint and nothing after it: the request stays the caller's, whole, for its next
    // call (taking it over cost a durable call its destruction and the next one its rebuilding).
    // The caller awaits the shard's save itself and answers with answer_saved().
    now.saving.emplace(std::move(*ran.rest));
    now.accepted = Accepted(in_flight_);
    return now;
  }
  if (ran.rest || has_workflow((*ran.outcome)->response)) {
    now.rest.emplace(finish_now(std::move(request), std::move(ran)));
    return now;
  }
  answer((*ran.outcome)->response, response);
  now.answered.emplace();
  return now;
}

Task<Result<pb::InvocationResponse>> Runtime::finish_now(pb::InvocationRequest request,
                                                         Shard::Now ran) {
  InFlight in_flight(in_flight_);
  if (!ran.outcome) {
    auto rest = std::move(*ran.rest);
    auto saved = co_await std::move(rest);
    ran.outcome.emplace(std::move(saved));
  }
  auto& outcome = *ran.outcome;
  if (!outcome) {
    co_return std::move(outcome).error();
  }
  auto& reply = outcome->response;
  if (!has_workflow(reply)) {
    co_return response_to(reply);
  }
  auto following = follow_workflow(reply, request);
  co_return co_await std::move(following);
}

Result<void> Runtime::answer_saved(std::size_t shard, Result<Outcome>& saved,
                                   pb::InvocationResponse& response) {
  if (!saved) {
    return std::move(saved).error();
  }
  answer(saved->response, response);
  shards_[shard]->keep_spare_reply(saved->response);
  return ok();
}

Task<Result<std::optional<pb::InvocationResponse>>> Runtime::route_elsewhere(
    ActorKey& key, pb::InvocationRequest& request, int hops) {
  if (!request.register_ref().empty()) {
    auto spawning = spawn(child_of(key, request.register_ref()), std::nullopt);
    auto spawned = co_await std::move(spawning);
    if (!spawned) {
      co_return std::move(spawned).error();
    }
  }
  if (request.scheduled_to() != 0) {
    auto scheduling = schedule(std::move(key), std::move(request));
    auto scheduled = co_await std::move(scheduling);
    if (!scheduled) {
      co_return std::move(scheduled).error();
    }
    co_return accepted();
  }
  if (cluster_ != nullptr) {
    auto running = run_remote(key, request, hops);
    auto remote = co_await std::move(running);
    if (!remote || *remote) {
      co_return std::move(remote);
    }
  }
  if (request.async()) {
    Shard& owner = shard_for(key);
    auto posting = run_on(owner.executor(), post_on_owner(std::move(key), std::move(request)));
    auto posted = co_await std::move(posting);
    if (!posted) {
      co_return std::move(posted).error();
    }
    co_return accepted();  // no payload at all (PROTOCOL.md §5.5)
  }
  co_return std::nullopt;
}

Task<Result<Outcome>> Runtime::invoke_from(const asio::any_io_executor& here, Shard& owner,
                                           const ActorKey& key, pb::InvocationRequest& request) {
  // run_on() spelled out, without a coroutine of its own: on the owner shard already (always with
  // one shard) the invocation is awaited directly, one coroutine frame and one move of the
  // outcome fewer; an actor that is no pool goes to the shard without invoke_on_owner()'s frame
  // either (Asio's per-thread recycling cache misses more the more frames a call interleaves).
  auto there = owner.executor();
  if (here == there) {
    if (!owner.is_pooled(key)) {
      return owner.invoke(key, key, request);
    }
    return invoke_on_owner(owner, key, request);
  }
  auto task = invoke_on_owner(owner, key, request);
  return asio::co_spawn(std::move(there), std::move(task), asio::use_awaitable);
}

Task<Result<pb::InvocationResponse>> Runtime::follow_workflow(pb::ActorInvocationResponse& reply,
                                                              pb::InvocationRequest& request) {
  pb::InvocationResponse response = response_to(reply);
  auto context = WorkflowContext::of(request);
  auto running = run_workflow(std::move(context), std::move(reply), response, std::move(request));
  auto routed = co_await std::move(running);
  if (!routed) {
    co_return std::move(routed).error();
  }
  if (*routed) {
    auto& result = **routed;
    response.clear_value();
    response.clear_noop();
    copy_payload(result, response);
  }
  co_return std::move(response);
}

Task<Result<std::optional<pb::InvocationResponse>>> Runtime::run_remote(
    const ActorKey& key, pb::InvocationRequest& request, int hops) {
  // A request crosses at most this many nodes: more means the directory changes under it.
  constexpr int kMaxHops = 4;
  const auto deadline = Clock::now() + request_timeout(request, default_request_timeout_);
  auto pause = std::chrono::milliseconds(10);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    auto locating = cluster_->locate(key);
    auto placement = co_await std::move(locating);
    if (!placement) {
      co_return std::move(placement).error();
    }
    if (placement->node.empty()) {
      if (!placement->parent.empty()) {
        // A child spawned on another node: this node serves it from now on.
        auto children = child_of(key, placement->parent);
        auto spawning = spawn_here(children, std::nullopt);
        auto spawned = co_await std::move(spawning);
        if (!spawned) {
          co_return std::move(spawned).error();
        }
      }
      co_return std::nullopt;
    }
    if (!placement->parent.empty() && request.register_ref().empty()) {
      request.set_register_ref(placement->parent);
    }
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (hops >= kMaxHops || remaining.count() <= 0) {
      co_return fail(ErrorCode::kUnavailable,
                     "invoke actor '" + key.name + "': no node of the cluster took it (last tried '"
                         + placement->node + "', " + std::to_string(hops) + " hops)");
    }
    auto calling = cluster_->call(placement->node, request, hops + 1, remaining);
    auto answer = co_await std::move(calling);
    if (!answer) {
      co_return std::move(answer).error();
    }
    if (*answer) {
      co_return std::move(answer);
    }
    // It did not run there (the node left, died, or handed the actor over): ask again.
    cluster_->forget(key);
    timer.expires_after(pause);
    co_await timer.async_wait(kUseTask);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

Task<Result<Outcome>> Runtime::invoke_on_owner(Shard& owner, const ActorKey& key,
                                               pb::InvocationRequest& request) {
  const auto member = owner.pool_member_for(key);
  if (!member) {
    co_return co_await owner.invoke(key, key, request);
  }
  Shard& target = shard_for(*member);
  if (&target == &owner) {
    co_return co_await owner.invoke(key, *member, request);
  }
  co_return co_await run_on(target.executor(), target.invoke(key, *member, request));
}

Task<Result<void>> Runtime::post_on_owner(ActorKey key, pb::InvocationRequest request) {
  Shard& owner = shard_for(key);
  auto pool_member = owner.pool_member_for(key);
  ActorKey instance = pool_member ? std::move(*pool_member) : key;
  Shard& target = shard_for(instance);
  auto executor = target.executor();
  // The workflow of an async invocation still runs once it is done; pipe and forward results
  // are dropped (PROTOCOL.md §5.5).
  auto done = asio::bind_executor(executor, [this, executor, key](Result<Outcome> outcome) mutable {
    if (!outcome) {
      spdlog::warn("async invocation on actor '{}/{}' failed: {}", key.system, key.name,
                   outcome.error().message);
      return;
    }
    auto& reply = outcome->response;
    if (!reply.has_workflow() || is_empty(reply.workflow())) {
      return;
    }
    pb::InvocationResponse output;
    copy_payload(reply, output);
    auto context = WorkflowContext::of(*outcome->request);
    asio::co_spawn(executor,
                   run_workflow(std::move(context), std::move(reply), std::move(output),
                                std::move(*outcome->request)),
                   [](std::exception_ptr e, auto) { common::log_exception(e, "async workflow"); });
  });
  if (&target == &owner) {
    co_return owner.post(key, instance, std::move(request), std::move(done));
  }
  // The task is made before the statement awaiting it: its arguments stay out of this frame.
  auto posting =
      run_on(executor,
             [](Shard* shard, ActorKey registered, ActorKey member, pb::InvocationRequest req,
                asio::any_completion_handler<void(Result<Outcome>)> handler) -> Task<Result<void>> {
               co_return shard->post(registered, member, std::move(req), std::move(handler));
             }(&target, std::move(key), std::move(instance), std::move(request), std::move(done)));
  co_return co_await std::move(posting);
}

Task<Result<void>> Runtime::schedule(ActorKey key, pb::InvocationRequest request) {
  Shard& owner = shard_for(key);
  auto check =
      co_await run_on(owner.executor(), [](Shard* shard, ActorKey k) -> Task<Result<void>> {
        if (shard->definition(k) == nullptr) {
          if (!shard->has_system(k.system)) {
            co_return fail(ErrorCode::kNotFound,
                           "ActorSystem " + k.system + " is not registered on this proxy");
          }
          co_return fail(ErrorCode::kNotFound,
                         "Actor " + k.name + " not found on ActorSystem " + k.system);
        }
        co_return ok();
      }(&owner, key));
  if (!check) {
    co_return check;
  }
  if (!scheduler_) {
    co_return fail(ErrorCode::kUnavailable,
                   "schedule invocation of actor '" + key.name + "': no statestore to keep it in");
  }
  // Stored before the reply, so it survives a restart (PROTOCOL.md §5.6 allows this
  // improvement over the original's in-memory scheduler).
  statestore::ScheduledInvocation entry;
  entry.id = Scheduler::new_id();
  entry.due_ms = request.scheduled_to();
  entry.system = key.system;
  entry.actor = key.name;
  request.set_scheduled_to(0);
  request.set_async(true);
  entry.request = request.SerializeAsString();
  co_return co_await scheduler_->add(std::move(entry));
}

Task<Result<bool>> Runtime::run_scheduled(statestore::ScheduledInvocation entry) {
  if (auto handler = scheduled_handlers_.find(entry.system); handler != scheduled_handlers_.end()) {
    co_return co_await handler->second(std::move(entry));
  }
  pb::InvocationRequest request;
  if (!request.ParseFromString(entry.request)) {
    co_return fail(ErrorCode::kDataLoss,
                   "scheduled invocation " + entry.id + " is not an InvocationRequest");
  }
  // Run it to the end (not just queued), so that it is removed only once it really ran.
  request.set_async(false);
  auto result = co_await invoke(std::move(request));
  if (!result) {
    co_return std::move(result).error();
  }
  co_return true;
}

Task<Result<std::optional<pb::InvocationResponse>>> Runtime::run_workflow(
    std::shared_ptr<const WorkflowContext> context, pb::ActorInvocationResponse response,
    pb::InvocationResponse output, pb::InvocationRequest input) {
  auto* workflow = response.mutable_workflow();
  for (auto& effect : *workflow->mutable_effects()) {
    auto* request = effect.mutable_request();
    // The original metadata goes along; the effect's own keys win (PROTOCOL.md §5.8).
    for (const auto& [k, v] : context->metadata) {
      request->mutable_metadata()->insert({k, v});
    }
    start_effect(std::move(*request));
  }
  if (workflow->has_broadcast()) {
    start_broadcast(*context, *workflow->mutable_broadcast());
  }
  if (workflow->routing_case() == pb::Workflow::ROUTING_NOT_SET) {
    co_return std::nullopt;
  }
  // The routed request is made in a plain function and the task before the statement awaiting
  // it: neither stays in this frame (under the 1,020 bytes Asio recycles).
  const bool is_pipe = workflow->has_pipe();
  const auto& target = is_pipe ? workflow->pipe().actor() : workflow->forward().actor();
  auto invoking = invoke(routed_request(*context, *workflow, output, input));
  auto result = co_await std::move(invoking);
  if (!result) {
    co_return std::move(result).error().with_context(std::string(is_pipe ? "pipe" : "forward")
                                                     + " from actor '" + context->self.name()
                                                     + "' to '" + target + "'");
  }
  co_return std::optional<pb::InvocationResponse>(std::move(*result));
}

pb::InvocationRequest Runtime::routed_request(const WorkflowContext& context,
                                              const pb::Workflow& workflow,
                                              const pb::InvocationResponse& output,
                                              const pb::InvocationRequest& input) {
  const bool is_pipe = workflow.has_pipe();
  const auto& target = is_pipe ? workflow.pipe().actor() : workflow.forward().actor();
  const auto& action = is_pipe ? workflow.pipe().action_name() : workflow.forward().action_name();
  const auto& ref = is_pipe ? workflow.pipe().register_ref() : workflow.forward().register_ref();
  pb::InvocationRequest routed;
  routed.mutable_system()->set_name(context.system);
  routed.mutable_actor()->mutable_id()->set_name(target);
  routed.mutable_actor()->mutable_id()->set_system(context.system);
  routed.set_action_name(action);
  *routed.mutable_caller() = context.self;
  *routed.mutable_metadata() = context.metadata;
  routed.set_register_ref(ref);
  if (is_pipe) {
    copy_payload(output, routed);
  } else {
    copy_payload(input, routed);
  }
  return routed;
}

void Runtime::start_broadcast(const WorkflowContext& context, pb::Broadcast& broadcast) {
  // Actors subscribed anywhere in the cluster are invoked from here, once each; the pubsub
  // carries the message to the external subscribers of every node.
  BroadcastMessage message{std::move(broadcast), context.self};
  pubsub_->publish(message);
  auto& shard =
      *shards_[std::hash<std::string>{}(message.broadcast.channel_group()) % shards_.size()];
  asio::co_spawn(shard.executor(), deliver_to_actors(std::move(message)),
                 [](std::exception_ptr e) { common::log_exception(e, "broadcast"); });
}

void Runtime::start_effect(pb::InvocationRequest request) {
  auto& shard = *shards_[std::hash<std::string>{}(request.actor().id().name()) % shards_.size()];
  dispatch(shard.executor(), std::move(request), "side effect");
}

void Runtime::dispatch(asio::any_io_executor executor, pb::InvocationRequest request,
                       const char* what) {
  asio::co_spawn(
      executor,
      [](Runtime* runtime, pb::InvocationRequest req, const char* kind) -> Task<void> {
        auto name = req.actor().id().name();
        auto action = req.action_name();
        auto result = co_await runtime->invoke(std::move(req));
        if (!result) {
          spdlog::warn("{} '{}' on actor '{}' failed: {}", kind, action, name,
                       result.error().message);
        }
      }(this, std::move(request), what),
      [](std::exception_ptr e) { common::log_exception(e, "background invocation"); });
}

Task<void> Runtime::deliver_to_actors(BroadcastMessage message) {
  const auto& topic = message.broadcast.channel_group();
  // Every shard holds every registered subscription; this one is the topic's.
  auto& shard = *shards_[std::hash<std::string>{}(topic) % shards_.size()];
  auto subscribers = shard.subscribers(topic);
  if (cluster_ != nullptr) {
    for (auto& remote : cluster_->subscribers(topic)) {
      if (std::none_of(subscribers.begin(), subscribers.end(),
                       [&](const Subscription& s) { return s.actor == remote.actor; })) {
        subscribers.push_back(std::move(remote));
      }
    }
  }
  if (subscribers.empty() && external_.count(topic) == 0) {
    spdlog::warn("broadcast from actor '{}' to topic '{}': no subscribers", message.caller.name(),
                 topic);
  }
  constexpr std::size_t kDeliveriesPerTurn = 16;
  std::size_t delivered = 0;
  const auto executor = co_await asio::this_coro::executor;
  for (const auto& subscriber : subscribers) {
    pb::InvocationRequest request;
    request.mutable_system()->set_name(subscriber.actor.system);
    request.mutable_actor()->mutable_id()->set_name(subscriber.actor.name);
    request.mutable_actor()->mutable_id()->set_system(subscriber.actor.system);
    request.set_action_name(subscriber.action);
    request.set_async(true);
    *request.mutable_caller() = message.caller;
    copy_payload(message.broadcast, request);
    auto result = co_await invoke(std::move(request));
    if (!result) {
      spdlog::warn("broadcast topic={} to actor '{}' failed: {}", topic, subscriber.actor.name,
                   result.error().message);
    }
    // Queuing on this shard completes without suspending: let the shard's other work (the
    // subscribers' own invocations, the sender's reply) run between deliveries.
    if (++delivered % kDeliveriesPerTurn == 0) {
      co_await asio::post(executor, asio::use_awaitable);
    }
  }
}

Task<void> Runtime::drain(std::chrono::milliseconds max_wait) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto deadline = Clock::now() + max_wait;
  while (in_flight_ > 0 && Clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(5));
    co_await timer.async_wait(kUseTask);
  }
  if (in_flight_ > 0) {
    spdlog::warn("shutdown: {} invocations still running after {} ms", in_flight_.load(),
                 max_wait.count());
  }
  co_await deactivate_all();
}

Task<void> Runtime::deactivate_all() {
  for (auto& shard : shards_) {
    co_await run_on(shard->executor(), shard->deactivate_all());
  }
}

Task<std::size_t> Runtime::active_count() {
  std::size_t count = 0;
  for (auto& shard : shards_) {
    count += co_await run_on(shard->executor(), [](Shard* s) -> Task<std::size_t> {
      co_return s->entity_count();
    }(shard.get()));
  }
  co_return count;
}

}  // namespace spawn::runtime
