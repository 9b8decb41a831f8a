#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_completion_handler.hpp>

#include "spawn/result.hpp"

#include "protocol/messages.hpp"
#include "runtime/actor_definition.hpp"
#include "statestore/store.hpp"

namespace spawn::runtime {

using Clock = std::chrono::steady_clock;

/// What one processed invocation produced: the host's response (or the proxy's own answer to a
/// default get action), whose payload, workflow and checkpoint the router acts on.
struct Outcome {
  protocol::pb::ActorInvocationResponse response;
  /// A posted (async) invocation's request, handed back for its workflow (PROTOCOL.md §5.8); null
  /// for a waiting caller, which keeps its own request.
  std::unique_ptr<protocol::pb::InvocationRequest> request;
};

/// One unit of work in an actor's mailbox. Work is processed strictly in order, one at a time.
struct Envelope {
  enum class Kind : std::uint8_t {
    kInvoke,      ///< run `request` (activating first when needed)
    kActivate,    ///< activate if not active (warm-up)
    kSnapshot,    ///< save the state if it changed since the last save
    kDeactivate,  ///< save and stop, unless more work is queued behind
  };
  using Done = asio::any_completion_handler<void(Result<Outcome>)>;

  /// Work other than an invocation.
  explicit Envelope(Kind work, Done completion = {}) : kind(work), done(std::move(completion)) {}

  /// An invocation whose caller waits for it and keeps `waiting` until then.
  Envelope(protocol::pb::InvocationRequest* waiting, Done completion)
      : request(waiting), done(std::move(completion)) {}

  /// A posted invocation: the envelope keeps its request.
  Envelope(std::unique_ptr<protocol::pb::InvocationRequest> posted, Done completion)
      : request(posted.get()), owned(std::move(posted)), done(std::move(completion)) {}

  Kind kind = Kind::kInvoke;
  /// The request of a kInvoke: the waiting caller's (its frame outlives the envelope), or `owned`.
  protocol::pb::InvocationRequest* request = nullptr;
  /// A posted invocation's request, which nobody else keeps.
  std::unique_ptr<protocol::pb::InvocationRequest> owned;
  /// Completion for the waiting caller; empty for fire-and-forget work.
  Done done;
};

/// One activated (or activating) actor instance. Lives on exactly one shard and is touched only by
/// that shard's thread; the shard's mailbox loop is the only code that changes it.
struct Entity {
  using Tags = google::protobuf::Map<std::string, std::string>;

  Entity(statestore::ActorKey actor_key, std::shared_ptr<const ActorDefinition> actor_definition,
         std::optional<std::int64_t> start_at)
      : key(std::move(actor_key)),
        definition(std::move(actor_definition)),
        start_revision(start_at.value_or(0)),
        has_start_revision(start_at.has_value()) {}

  /// Returns the id sent to the host: name, system, and parent for spawned children. Derived from
  /// the key and the definition when needed rather than kept: a pool member is known to the host
  /// by its pool's name, a spawned child (a key other than its definition's name) names its
  /// template as parent (docs/performance.md, optimisation log: memory per actor).
  protocol::pba::ActorId actor_id() const {
    protocol::pba::ActorId id;
    write_actor_id(id);
    return id;
  }

  /// Sets every field of `id` to actor_id()'s, without a temporary. A string `id` holds already
  /// (a reused message: mostly the same system, no parent) is compared, not assigned again.
  void write_actor_id(protocol::pba::ActorId& id) const {
    const bool pooled = definition->is_pooled();
    const std::string& name = pooled ? definition->name() : key.name;
    if (id.name() != name) {
      id.set_name(name);
    }
    if (id.system() != key.system) {
      id.set_system(key.system);
    }
    if (!pooled && key.name != definition->name()) {
      if (id.parent() != definition->name()) {
        id.set_parent(definition->name());
      }
    } else {
      id.clear_parent();
    }
  }

  /// The actor's key, a copy of its shard map entry's: the shard's map keeps its entries in one
  /// array (open addressing), where they move when it grows, so the entity cannot refer to it.
  const statestore::ActorKey key;
  std::shared_ptr<const ActorDefinition> definition;
  /// Historical revision to start from (spawn `?revision=N`) when has_start_revision; used by the
  /// first activation only. (Not a std::optional: its flag lies with the others, which keeps the
  /// entity 8 bytes smaller, in a smaller allocation.)
  std::int64_t start_revision = 0;

  bool has_start_revision = false;
  bool active = false;
  /// True while the mailbox loop runs for this entity.
  bool running = false;
  /// Tags or state changed since the last save.
  bool dirty = false;
  /// The state bytes changed since the last save (periodic snapshots look only at this).
  bool state_changed = false;
  /// Whether the actor has a state (its `ActorState.state` Any is set, even if empty).
  bool has_state = false;
  /// Removed from the shard (its map entry no longer owns it); only pending wakeups keep it.
  bool retired = false;
  /// Wakeups in the shard's heap that point at this entity.
  std::uint32_t wakeups = 0;
  /// The stored revision this activation read or last wrote; 0 when nothing is stored.
  std::int64_t revision = 0;

  /// The actor's current state and tags: the fields of a protobuf `ActorState`, kept without
  /// one. An `ActorState` with its `Any` and three heap strings cost about 320 bytes and four
  /// allocations per active actor (docs/performance.md, optimisation log: memory per actor).
  ///
  /// The state Any's type URL, shared by the entities of a shard that have the same one
  /// (Shard::share_type_url); null when empty.
  std::shared_ptr<const std::string> type_url;
  /// The state Any's value (a small state fits in the string itself).
  std::string value;
  /// The tags; null when there are none.
  std::unique_ptr<Tags> tags;

  Clock::time_point last_used{};
  Clock::time_point next_snapshot{};
  /// When the shard's wakeup for this entity is due; stale wakeups are ignored.
  Clock::time_point next_check{};

  /// A list, not a deque: libstdc++'s deque allocates a 512-byte block (and its map) as soon as
  /// it is constructed, which an idle actor kept for nothing (about 440 bytes of the ~1,700 an
  /// activated actor cost; docs/performance.md, optimisation log).
  std::list<Envelope> mailbox;
};

}  // namespace spawn::runtime
