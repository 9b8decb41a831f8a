#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "spawn/result.hpp"

#include "common/asio.hpp"
#include "protocol/messages.hpp"
#include "runtime/cluster.hpp"
#include "runtime/host.hpp"
#include "runtime/pubsub.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/shard.hpp"
#include "statestore/store.hpp"

namespace spawn::runtime {

struct RuntimeOptions {
  /// Event loops (threads); 0 means one per core.
  std::size_t shards = 0;
  ShardOptions shard;
};

/// The actor system of one process: its shards, and the router that sends every request to the
/// shard that owns the actor (DESIGN.md "The runtime: one picture").
///
/// All coroutines may be awaited from any executor (an HTTP session's shard, a test's
/// io_context) and complete there; they hop to the owning shard internally. Thread-safe.
class Runtime {
public:
  /// `store` may be null (nothing is persisted); it must outlive the Runtime. `pubsub` carries
  /// broadcasts to the external subscribers of every node; null means this process alone
  /// (LocalPubSub). `cluster` (may be null: alone) must outlive the Runtime.
  Runtime(RuntimeOptions options, const HostFactory& host_factory, statestore::Store* store,
          std::unique_ptr<PubSub> pubsub = nullptr, Cluster* cluster = nullptr);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Starts the shard threads.
  void start();

  /// Stops the shard threads; work still queued is abandoned (call drain() first).
  void stop();

  std::size_t shard_count() const { return shards_.size(); }

  /// Returns the executor of shard `index`, e.g. to run an HTTP listener on it.
  asio::any_io_executor executor(std::size_t index) { return shards_[index]->executor(); }

  /// Registers (or re-registers) the actors of `system` (PROTOCOL.md §5.1), then warms up its
  /// stateful named actors in the background. kShuttingDown while shutting down.
  Task<Result<void>> register_system(protocol::pba::ActorSystem system);

  /// Spawns children of registered UNNAMED actors (PROTOCOL.md §5.7). Stops at the first
  /// failure (kNotFound for an unknown parent); children before it stay spawned.
  Task<Result<void>> spawn(std::vector<protocol::pba::ActorId> ids,
                           std::optional<std::int64_t> revision);

  /// Returns the actors of `system` (registered and spawned), sorted by name. kNotFound for a
  /// system never registered here.
  Task<Result<std::vector<ActorInfo>>> actors(std::string system);

  /// Runs one invocation request to the end, workflow included (PROTOCOL.md §5.4–5.8), and
  /// returns the response for the caller: its status and payload (the HTTP API's echo of the
  /// request's system and actor is the proxy server's to add). Expected failures are values:
  /// kInvalidArgument, kNotFound, kUnavailable, kTimeout, kBadHostResponse, kConflict, kDataLoss,
  /// kShuttingDown.
  Task<Result<protocol::pb::InvocationResponse>> invoke(protocol::pb::InvocationRequest request);

  /// invoke() on a request that stays the caller's (e.g. one made on the caller's protobuf arena,
  /// which invoke() would copy): it must outlive the call and is left valid but unspecified (the
  /// runtime may move parts of it away), except for its `system` and `actor`, which are left as
  /// they were when it is on an arena (the proxy's server echoes them): the runtime only ever
  /// moves such a request whole, which copies it.
  Task<Result<protocol::pb::InvocationResponse>> invoke_lent(
      protocol::pb::InvocationRequest& request);

  /// Counts a call invoke_now() started as in flight (in_flight(), which drain() waits for) until
  /// it goes. Movable; a default-made one counts nothing.
  class Accepted {
  public:
    Accepted() = default;

    explicit Accepted(std::atomic<std::int64_t>& counter) : counter_(&counter) { ++counter; }

    Accepted(Accepted&& other) noexcept : counter_(std::exchange(other.counter_, nullptr)) {}

    Accepted& operator=(Accepted&& other) noexcept {
      std::swap(counter_, other.counter_);
      return *this;
    }

    Accepted(const Accepted&) = delete;
    Accepted& operator=(const Accepted&) = delete;

    ~Accepted() {
      if (counter_ != nullptr) {
        --*counter_;
      }
    }

  private:
    std::atomic<std::int64_t>* counter_ = nullptr;
  };

  /// What invoke_now() did: answered when the call ran to the end at once (ok: the response is in
  /// the caller's message; or the error); otherwise the rest of a call that started, to await:
  /// `saving` for a reply that asked for a checkpoint and carries no workflow (the commonest
  /// rest), else `rest` (a checkpoint and a workflow, or a workflow); none when it did not start.
  struct Now {
    std::optional<Result<void>> answered;
    std::optional<Task<Result<protocol::pb::InvocationResponse>>> rest;
    /// The shard's save of the checkpoint, to await on the thread of the shard (it completes
    /// there, once the state is durable), then to hand to answer_saved(). Not wrapped in a
    /// coroutine of the runtime's: the caller awaits it directly (one frame and one response
    /// message fewer per durable call).
    std::optional<Task<Result<Outcome>>> saving;
    /// With `saving`: the call, counted in flight; keep it until the caller is answered.
    Accepted accepted;
  };

  /// Answers a call from the outcome of its Now::saving, in `response` like invoke_now() (the
  /// caller's message, whose messages and strings are reused): its status and payload are set
  /// when the save succeeded; otherwise returns the error (it names the actor and the action).
  /// On the thread of shard `shard`, the one invoke_now() ran the call on: the outcome's reply
  /// goes back to that shard, for a later checkpoint.
  Result<void> answer_saved(std::size_t shard, Result<Outcome>& saved,
                            protocol::pb::InvocationResponse& response);

  /// invoke() without a coroutine, for a caller on the thread of the shard that owns the actor
  /// (shard_of(), running_on()): runs a plain synchronous request here and now when its actor is
  /// active and idle and answered at once (Shard::invoke_now()), and answers in `response`, the
  /// caller's message, which may hold an earlier call's response (its messages and strings are
  /// reused): its status and payload are set. Otherwise it does nothing and answers neither (await
  /// invoke() instead): another thread, an actor to activate or busy, a host that suspends, async,
  /// scheduled, spawning or clustered requests, and every error. `request` stays the caller's,
  /// as it was, unless a rest that runs a workflow is returned: that one takes its contents over
  /// (the message is left empty); Now::saving never does.
  /// `shard` is shard_of(request), which the caller found already (the key is not hashed again).
  Now invoke_now(std::size_t shard, protocol::pb::InvocationRequest& request,
                 protocol::pb::InvocationResponse& response);

  /// Returns the index of the shard that owns the actor `request` names.
  std::size_t shard_of(const protocol::pb::InvocationRequest& request) const;

  /// Returns true on the thread of shard `index`.
  bool running_on(std::size_t index) { return shards_[index]->running_here(); }

  /// Refuses new work from now on (kShuttingDown) and stops running scheduled invocations
  /// (they stay stored). Work already accepted goes on.
  void begin_shutdown();

  bool is_shutting_down() const { return shutting_down_; }

  /// Waits (at most `max_wait`) for accepted invocations to finish, then saves and deactivates
  /// every actor on every shard. Call after begin_shutdown(), from outside the shards.
  Task<void> drain(std::chrono::milliseconds max_wait);

  /// Saves and deactivates every actor on every shard; they activate again on their next
  /// invocation. Call from outside the shards.
  Task<void> deactivate_all();

  /// Returns the number of actors in memory on every shard.
  Task<std::size_t> active_count();

  /// Returns the cluster this runtime is part of; null when it runs alone.
  Cluster* cluster() const { return cluster_; }

  /// Handles stored entries of a reserved system name (e.g. the saga engine's "__saga"): the
  /// handler returns whether the entry is done. Call before start().
  using ScheduledHandler = std::function<Task<Result<bool>>(statestore::ScheduledInvocation)>;

  void on_scheduled(std::string system, ScheduledHandler handler) {
    scheduled_handlers_[std::move(system)] = std::move(handler);
  }

  /// Returns the statestore (null when nothing is persisted).
  statestore::Store* store() const { return store_; }

  /// Returns the subscribers of broadcasts outside the actor system (HTTP event streams).
  TopicHub& external_subscribers() { return external_; }

  /// Returns the number of invocations accepted and not yet answered.
  std::int64_t in_flight() const { return in_flight_; }

private:
  struct WorkflowContext;

  Shard& shard_for(const statestore::ActorKey& key);
  Task<Result<void>> spawn_here(const std::vector<protocol::pba::ActorId>& ids,
                                std::optional<std::int64_t> revision);
  /// Runs `*lent`, or `owned` when `lent` is null (invoke(), invoke_lent()).
  Task<Result<protocol::pb::InvocationResponse>> route(
      protocol::pb::InvocationRequest owned, int hops,
      protocol::pb::InvocationRequest* lent = nullptr);
  /// The rarer ways of route(): spawns the child `request` registers, then schedules, sends to
  /// another node or posts the invocation; nullopt when it still has to run here, as a plain call.
  /// May move `key` and `request` away when it answers.
  Task<Result<std::optional<protocol::pb::InvocationResponse>>> route_elsewhere(
      statestore::ActorKey& key, protocol::pb::InvocationRequest& request, int hops);
  /// Runs invoke_on_owner() from `here`: awaited directly on the owner's shard (Shard::invoke()
  /// itself for an actor that is no pool), else hopping there. Not a coroutine.
  Task<Result<Outcome>> invoke_from(const asio::any_io_executor& here, Shard& owner,
                                    const statestore::ActorKey& key,
                                    protocol::pb::InvocationRequest& request);
  /// The caller's response to `reply`, the answer to `request`, after running the reply's
  /// workflow (a piped result replaces the payload). Takes `reply` and `request` over.
  Task<Result<protocol::pb::InvocationResponse>> follow_workflow(
      protocol::pb::ActorInvocationResponse& reply, protocol::pb::InvocationRequest& request);
  /// Sends `request` for `key` to its owner node until it ran there, or answers nullopt when
  /// this node is the owner (a child spawned elsewhere is spawned here first).
  Task<Result<std::optional<protocol::pb::InvocationResponse>>> run_remote(
      const statestore::ActorKey& key, protocol::pb::InvocationRequest& request, int hops);
  /// The rest of a call invoke_now() started: awaits the shard's rest, then runs the workflow.
  Task<Result<protocol::pb::InvocationResponse>> finish_now(protocol::pb::InvocationRequest request,
                                                            Shard::Now ran);
  /// Runs `request` on the shard of `key`'s instance; both stay the caller's (borrowed until it
  /// completes). On `owner`, the shard of `key`.
  Task<Result<Outcome>> invoke_on_owner(Shard& owner, const statestore::ActorKey& key,
                                        protocol::pb::InvocationRequest& request);
  Task<Result<void>> post_on_owner(statestore::ActorKey key,
                                   protocol::pb::InvocationRequest request);
  Task<Result<void>> schedule(statestore::ActorKey key, protocol::pb::InvocationRequest request);
  Task<Result<bool>> run_scheduled(statestore::ScheduledInvocation entry);
  Task<Result<std::optional<protocol::pb::InvocationResponse>>> run_workflow(
      std::shared_ptr<const WorkflowContext> context,
      protocol::pb::ActorInvocationResponse response, protocol::pb::InvocationResponse output,
      protocol::pb::InvocationRequest input);
  /// The request a workflow's pipe or forward sends on (run_workflow()).
  static protocol::pb::InvocationRequest routed_request(
      const WorkflowContext& context, const protocol::pb::Workflow& workflow,
      const protocol::pb::InvocationResponse& output, const protocol::pb::InvocationRequest& input);
  /// Publishes a workflow's broadcast and invokes its subscribers here (run_workflow()).
  void start_broadcast(const WorkflowContext& context, protocol::pb::Broadcast& broadcast);
  void start_effect(protocol::pb::InvocationRequest request);
  /// Runs `request` through invoke() in the background on `executor`; failures are logged.
  void dispatch(asio::any_io_executor executor, protocol::pb::InvocationRequest request,
                const char* what);
  Task<void> deliver_to_actors(BroadcastMessage message);

  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<PubSub> pubsub_;
  Cluster* cluster_ = nullptr;
  std::chrono::milliseconds default_request_timeout_;
  std::unique_ptr<Scheduler> scheduler_;
  statestore::Store* store_ = nullptr;
  std::unordered_map<std::string, ScheduledHandler> scheduled_handlers_;
  TopicHub external_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<std::int64_t> in_flight_{0};
};

}  // namespace spawn::runtime
