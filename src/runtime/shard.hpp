#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "spawn/result.hpp"

#include "common/asio.hpp"
#include "runtime/actor_definition.hpp"
#include "runtime/entity.hpp"
#include "runtime/host.hpp"
#include "statestore/store.hpp"

namespace spawn::runtime {

/// A subscriber of a broadcast topic (PROTOCOL.md §5.8 item 2).
struct Subscription {
  statestore::ActorKey actor;
  std::string action;
};

/// Sends a request through the router in the background (timers use it, so that their
/// invocations run workflows like any other). Returns false when the runtime takes no more work,
/// or (in a cluster) the actor lives on another node: the timer then stops here.
using Dispatcher = std::function<bool(protocol::pb::InvocationRequest)>;

/// What the runtime tells about one registered or spawned actor.
struct ActorInfo {
  std::string name;
  /// The template a spawned child was made from; empty otherwise.
  std::string parent;
  protocol::pba::Kind kind = protocol::pba::NAMED;
  bool stateful = false;
  std::vector<std::string> actions;
};

/// Settings every shard shares.
struct ShardOptions {
  /// Name recorded with every snapshot this process writes.
  std::string node = "spawn-proxy";
  /// Retry window for an unreachable host when the request's metadata names no `request-timeout`.
  std::chrono::milliseconds default_request_timeout{10000};
};

/// One event loop on one thread with the actors that hash to it (DESIGN.md decision 2).
///
/// Every member function except the constructor, executor() and the thread control runs on the
/// shard's own thread (callers hop there with run_on()). Nothing here takes a lock.
class Shard {
public:
  /// An actor's key by its names, not owning them: finds a slot without making an ActorKey.
  struct KeyRef {
    KeyRef(std::string_view system_name, std::string_view actor_name)
        : system(system_name), name(actor_name) {}

    KeyRef(const statestore::ActorKey& key)  // NOLINT(google-explicit-constructor)
        : system(key.system), name(key.name) {}

    std::string_view system;
    std::string_view name;
  };

  Shard(std::size_t index, const HostFactory& host_factory, statestore::Store* store,
        ShardOptions options);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  std::size_t index() const { return index_; }

  asio::any_io_executor executor() { return io_.get_executor(); }

  /// Sets how timer invocations reach the router; call before start().
  void set_dispatcher(Dispatcher dispatcher) { dispatcher_ = std::move(dispatcher); }

  /// Starts the shard's thread.
  void start();

  /// Stops the event loop and joins the thread. Pending work is abandoned.
  void stop();

  /// Adds or replaces the definitions registered for `system` (on every shard alike).
  void add_definitions(std::string system,
                       std::vector<std::shared_ptr<const ActorDefinition>> definitions);

  /// Returns true when `system` was registered.
  bool has_system(const std::string& system) const { return systems_.contains(system); }

  /// Returns the definition registered (or spawned) under `key`; null when there is none.
  std::shared_ptr<const ActorDefinition> definition(const statestore::ActorKey& key) const;

  /// Registers child `id` (name, system, parent) from the registered parent definition; on the
  /// child's owner shard. kNotFound when the parent was never registered.
  Result<void> spawn(const protocol::pba::ActorId& id, std::optional<std::int64_t> revision);

  /// Runs `request` on the actor `instance` whose definition is registered under `registered`
  /// (the same key except for pool instances) and returns what it produced. Fails at once with
  /// kNotFound for an unknown system, actor or action. Suspends; completes on this shard. The
  /// arguments stay the caller's and must live until it completes (an awaiting caller's frame
  /// does); `request` is left as it was.
  Task<Result<Outcome>> invoke(const statestore::ActorKey& registered,
                               const statestore::ActorKey& instance,
                               protocol::pb::InvocationRequest& request);

  /// What invoke_now() did: the outcome when the call ran to the end at once; otherwise the rest
  /// of a call that started (a checkpoint to save), to await; neither when it did not start.
  struct Now {
    std::optional<Result<Outcome>> outcome;
    std::optional<Task<Result<Outcome>>> rest;
    /// Instead of an outcome, when the host answered at once: its response, the shard's own
    /// message (reused from call to call), lent to the caller until the shard runs anything else.
    /// The caller reads it (and may take its parts) or moves it away.
    protocol::pb::ActorInvocationResponse* reply = nullptr;
    /// With a rest: whether the reply it saves carries a workflow (which needs the request).
    bool workflow = false;
  };

  /// invoke() without suspending, for a caller on this shard's thread: runs `request` on the
  /// registered actor `key` here and now when it is active and idle and its action is answered
  /// at once (a default get, or a host whose Host::invoke_now() answers). Otherwise it does
  /// nothing (an empty Now: await invoke() instead), e.g. for an actor to activate, a busy one,
  /// a pool, an unknown actor or action, or a host that suspends. A reply that asks for a
  /// checkpoint returns the save as the rest to await; the actor stays running until it is done.
  /// `request` is left as it was. The host's answer comes as Now::reply, or as the outcome of a
  /// default get or an error.
  Now invoke_now(KeyRef key, protocol::pb::InvocationRequest& request);

  /// Takes back the response of a checkpointed call's outcome (Now::rest) once its caller read
  /// it: it holds the reply of a later checkpointed call, with its parts allocated, instead of a
  /// new one. Keeps a bounded number, none with a large state or payload.
  void keep_spare_reply(protocol::pb::ActorInvocationResponse& reply);

  /// Returns true on this shard's own thread.
  bool running_here() { return io_.get_executor().running_in_this_thread(); }

  /// Queues `request` like invoke() and returns once it is in the mailbox, which is the ordering
  /// guarantee of async invocations (PROTOCOL.md §5.5); `done` runs on completion.
  Result<void> post(const statestore::ActorKey& registered, const statestore::ActorKey& instance,
                    protocol::pb::InvocationRequest request,
                    asio::any_completion_handler<void(Result<Outcome>)> done);

  /// Returns the pool member that serves `key` next when it is a POOLED actor (round-robin);
  /// nullopt when `key` serves itself.
  std::optional<statestore::ActorKey> pool_member_for(const statestore::ActorKey& key);
  /// Whether `key` is registered as a POOLED actor (pool_member_for() would name a member).
  bool is_pooled(const statestore::ActorKey& key) const;

  /// Queues activation of a registered actor (warm-up after registration).
  void warm_up(const statestore::ActorKey& key);

  /// Returns the actors of `system` this shard knows: every registered one, and the children
  /// spawned on this shard.
  std::vector<ActorInfo> actors(const std::string& system) const;

  /// Returns the subscribers of `topic` among the registered actors.
  std::vector<Subscription> subscribers(const std::string& topic) const;

  /// Saves and deactivates every entity once its queued work is done. Suspends until all are gone.
  Task<void> deactivate_all();

  /// Returns the number of entities in memory.
  std::size_t entity_count() const { return entity_count_; }

private:
  /// What the shard knows under one key: the registration of an actor or a spawned child, its
  /// entity while it is in memory, or both. A spawned child's definition is its template's, whose
  /// name (not the key's) says which one it is. One map entry serves both, which halves what the
  /// shard's maps cost per actor (docs/performance.md, optimisation log: memory per actor). A
  /// spawned child's start revision, rare, is kept apart (start_revisions_).
  struct Slot {
    /// The registration under this key; null for a pool member, which has only an entity.
    std::shared_ptr<const ActorDefinition> definition;
    std::unique_ptr<Entity> entity;
  };

  /// A due check of one entity. It points at the entity rather than holding its key (16 bytes
  /// instead of 72 per entry); an entity removed while wakeups still point at it is kept, retired,
  /// until the last of them is popped (retire()).
  struct Wakeup {
    Clock::time_point at;
    Entity* entity;

    bool operator>(const Wakeup& other) const { return at > other.at; }
  };

  /// Returns the registration under `key`, null when there is none.
  const Slot* find_registration(const statestore::ActorKey& key) const;
  /// Returns the entity of `key`, null when it has none in memory.
  Entity* entity_of(KeyRef key) const;
  Result<Entity*> find_or_create(const statestore::ActorKey& registered,
                                 const statestore::ActorKey& instance);
  Result<Entity*> accept(const statestore::ActorKey& registered,
                         const statestore::ActorKey& instance, const std::string& action);
  void enqueue(Entity& entity, Envelope envelope);
  /// Marks the entity running and starts its mailbox loop, drive().
  void start_mailbox(Entity& entity);
  /// Ends an invocation invoke() ran itself: hands queued work to the mailbox loop, removes an
  /// entity left inactive (failed activation, fenced revision), or marks it idle.
  void end_inline_run(Entity& entity);
  asio::awaitable<Result<Outcome>> enqueue_and_wait(Entity& entity,
                                                    protocol::pb::InvocationRequest& request);
  Task<void> drive(statestore::ActorKey key);
  Task<Result<void>> activate(Entity& entity);
  /// Loads the revision the entity was spawned at into `snapshot` (activate(), cold path).
  Task<Result<void>> load_start_revision(Entity& entity,
                                         std::optional<statestore::Snapshot>& snapshot);
  /// Runs the definition's init action `init` on the entity (activate(), cold path).
  Task<void> run_init(Entity& entity, const std::string& init);
  /// Runs `request` (the caller's: lent for the call, given back as it was) on the entity.
  Task<Result<Outcome>> handle(Entity& entity, protocol::pb::InvocationRequest& request);
  /// The answer to a default get action, from memory: the state as the reply's value.
  static Outcome answer_get(const Entity& entity);
  /// Applies the host's `reply` to the entity (its state is swapped out); returns true when the
  /// reply asks for a checkpoint the entity must save before answering.
  bool take_reply(Entity& entity, protocol::pb::ActorInvocationResponse& reply);
  /// The rest of a call invoke_now() ran, whose reply asked for a checkpoint: saves, then ends
  /// the run (the entity was marked running).
  Task<Result<Outcome>> finish_checkpoint(Entity& entity, Outcome outcome, std::string action);
  /// What a call to a host that suspends has of its own (handle()): the invocation, and a
  /// response for a request that has no arena to make it on.
  struct HostCall;
  /// A spare call (handle()), or a new one when there is none.
  std::unique_ptr<HostCall> take_spare_call();
  /// Keeps `call`, which a host had, for a later take_spare_call().
  void keep_spare_call(std::unique_ptr<HostCall> call);
  /// Sets every field of `invocation` for running `request` on `entity`; the request's payload
  /// and metadata are lent to it (give_back() returns them).
  static void lend(const Entity& entity, protocol::pb::InvocationRequest& request,
                   protocol::pb::ActorInvocation& invocation);
  static void give_back(protocol::pb::ActorInvocation& invocation,
                        protocol::pb::InvocationRequest& request);
  /// Calls the host again for `invocation`, whose first try found it unreachable: waits with
  /// backoff and retries while it stays unreachable, until `deadline`; answers in `response`.
  Task<Result<void>> call_host_again(Entity& entity, protocol::pb::ActorInvocation& invocation,
                                     protocol::pb::ActorInvocationResponse& response,
                                     Clock::time_point deadline);
  /// Takes the new state and tags from `response` (its state value is swapped with the entity's
  /// old one).
  void apply(Entity& entity, protocol::pb::ActorInvocationResponse& response);
  /// Saves the entity's state as its next revision, when it persists (stateful, not pooled, with
  /// a store); a conflict deactivates it (fencing). store_snapshot() and saved() are its halves,
  /// for a coroutine that awaits the store's task itself (one frame fewer per checkpoint).
  Task<Result<void>> save(Entity& entity, statestore::ActorStatus status);
  /// Starts saving a persisting entity's state: the store's task, to await and hand to saved().
  Task<Result<std::int64_t>> store_snapshot(const Entity& entity, statestore::ActorStatus status);
  /// Takes the result of store_snapshot() into the entity: its new revision, or on a conflict
  /// deactivates it; the error names the actor.
  Result<void> saved(Entity& entity, Result<std::int64_t> stored);
  void complete(Envelope& envelope, Result<Outcome> result);

  /// Returns the shard's shared copy of `type_url` (null for an empty one), so that entities with
  /// the same state type keep one string between them.
  std::shared_ptr<const std::string> share_type_url(const std::string& type_url);

  void start_timers(const Entity& entity);
  Task<void> run_timer(statestore::ActorKey key, std::string action,
                       std::chrono::milliseconds period);
  bool has_timer(const statestore::ActorKey& key, const std::string& action) const;
  void schedule_check(Entity& entity);
  Task<void> run_wakeups();
  void on_wakeup(Entity& entity, Clock::time_point at);
  /// Removes the entity of `key` from the shard; it is deleted now, or when its last wakeup pops.
  void retire(const statestore::ActorKey& key);

  std::size_t index_;
  asio::io_context io_{1};
  std::thread thread_;
  std::unique_ptr<Host> host_;
  statestore::Store* store_;
  ShardOptions options_;

  std::unordered_set<std::string> systems_;

  /// Hashes and compares ActorKeys and KeyRefs alike (heterogeneous lookup).
  struct KeyHash {
    using is_transparent = void;

    std::size_t operator()(KeyRef key) const noexcept {
      return statestore::key_hash(key.system, key.name);
    }
  };

  struct KeyEqual {
    using is_transparent = void;

    bool operator()(KeyRef a, KeyRef b) const noexcept {
      return a.name == b.name && a.system == b.system;
    }
  };

  /// Registered actors, spawned children and the entities in memory (pool members have an entity
  /// only; a slot with neither goes). Open addressing, the slots in one array: a call's lookup
  /// reads the slot itself where std::unordered_map read a bucket, the node before and the node
  /// (cache misses with many actors). Slots move when the map grows: nothing keeps a pointer or
  /// reference to one (or its key) across an insertion; entities are apart and stay put.
  boost::unordered_flat_map<statestore::ActorKey, Slot, KeyHash, KeyEqual> slots_;
  std::size_t entity_count_ = 0;
  /// Historical revisions the first activation of a spawned child starts from (spawn
  /// `?revision=N`), by the child's key until it activates. Apart from the slots, which are
  /// smaller without (most actors never have one).
  std::unordered_map<statestore::ActorKey, std::int64_t, KeyHash, KeyEqual> start_revisions_;
  std::unordered_map<std::string, std::vector<Subscription>> topics_;
  /// The state type URLs of this shard's entities (share_type_url()); expired entries go once
  /// the table has doubled since the last sweep.
  std::unordered_map<std::string, std::weak_ptr<const std::string>> type_urls_;
  std::size_t type_urls_purge_at_ = 16;
  /// The type URL share_type_url() returned last (kept alive by this pointer).
  std::shared_ptr<const std::string> last_type_url_;
  std::uint64_t pool_cursor_ = 0;
  /// Whether a POOLED actor was ever registered here: until then no key needs looking up to know
  /// it is no pool (a spawned child's definition is a registered one).
  bool has_pools_ = false;
  Dispatcher dispatcher_;
  /// Timers running on this shard, as "system\x1fname\x1faction"; each runs until its actor's
  /// definition no longer has it.
  std::unordered_set<std::string> timers_;

  /// The invocation handed to the host (handle()): its messages and strings stay allocated from
  /// one call to the next. In use from when a call fills it until the host answered at once; a
  /// host that suspends takes its contents.
  protocol::pb::ActorInvocation scratch_;
  bool scratch_in_use_ = false;
  /// The response a host answering at once fills (Host::invoke_now()): like scratch_, its
  /// messages and strings stay allocated from one call to the next. Lent to invoke_now()'s caller
  /// (Now::reply), which reads it before the shard runs anything else; a call that needs its
  /// response longer (a workflow, an awaited call) moves it away, a checkpoint exchanges it for a
  /// spare reply.
  protocol::pb::ActorInvocationResponse reply_;
  /// Responses of checkpointed calls given back (keep_spare_reply()): a checkpoint's outcome
  /// takes one in exchange for reply_, whose parts stay allocated for the next call.
  std::vector<protocol::pb::ActorInvocationResponse> spare_replies_;
  /// Calls a suspending host had (handle()), kept for the next such calls with their parts
  /// allocated; every field of the invocation is set again before use (lend()).
  std::vector<std::unique_ptr<HostCall>> spare_calls_;

  std::priority_queue<Wakeup, std::vector<Wakeup>, std::greater<>> wakeups_;
  asio::steady_timer wakeup_timer_;
};

/// Runs `task` on `executor` and resumes the caller on its own executor with the result. Already
/// on `executor`, it just awaits `task` (no extra coroutine: this is the hot path).
template <class T>
Task<T> run_on(asio::any_io_executor executor, Task<T> task) {
  auto current = co_await asio::this_coro::executor;
  if (current == executor) {
    co_return co_await std::move(task);
  }
  co_return co_await asio::co_spawn(std::move(executor), std::move(task), asio::use_awaitable);
}

}  // namespace spawn::runtime
