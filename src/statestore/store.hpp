#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spawn/result.hpp"

#include "common/asio.hpp"

namespace spawn::statestore {

/// Identifies one actor's stored state.
struct ActorKey {
  std::string system;
  std::string name;

  friend bool operator==(const ActorKey&, const ActorKey&) = default;
};

/// The lifecycle status recorded with a snapshot (PROTOCOL.md §6).
enum class ActorStatus : std::uint8_t { kUnknown, kActivated, kDeactivated };

/// One stored state of one actor. `data` is plaintext at this interface; encryption at rest is
/// the job of `EncryptedStore`, which wraps every persistent backend (see make_store()).
struct Snapshot {
  /// The revision this record holds; 1 for the first write of an actor.
  std::int64_t revision = 0;
  ActorStatus status = ActorStatus::kUnknown;
  /// The node that wrote it.
  std::string node;
  /// The actor's tags, stored in clear.
  std::map<std::string, std::string> tags;
  /// Whether the actor has a state at all; when false, type_url and data are empty.
  bool has_state = false;
  /// The state Any's `type_url`, byte for byte.
  std::string type_url;
  /// The state Any's `value`, byte for byte.
  std::string data;
};

/// A request stored to run later: an invocation with `scheduled_to` set (PROTOCOL.md §5.6), kept
/// in the store from before the client is answered until the runtime has delivered it.
struct ScheduledInvocation {
  /// Unique, chosen by the caller (e.g. 128 random bits in hex); never empty.
  std::string id;
  /// When it is due, in Unix epoch milliseconds.
  std::int64_t due_ms = 0;
  /// The target's actor system and actor name, stored in clear for listing and diagnostics.
  std::string system;
  std::string actor;
  /// Opaque bytes (a serialized InvocationRequest). Plaintext at this interface; encrypted at
  /// rest by `EncryptedStore` like state data, since payloads may be sensitive.
  std::string request;

  friend bool operator==(const ScheduledInvocation&, const ScheduledInvocation&) = default;
};

/// The persistent home of actor state and of scheduled invocations: revisioned, compare-and-set,
/// safe to call from any thread.
///
/// Every method may be awaited from any executor; it completes on that awaiting executor and
/// never blocks it (backends do their I/O on threads of their own). Failures are values: a
/// database that cannot be reached is kUnavailable, unreadable data is kDataLoss.
class Store {
public:
  virtual ~Store() = default;

  /// Loads the newest snapshot of `key`. Returns nullopt when nothing was ever stored.
  virtual Task<Result<std::optional<Snapshot>>> load(ActorKey key) = 0;

  /// Loads the snapshot that had revision `revision` (current or historical). Returns nullopt
  /// when there is no such revision.
  virtual Task<Result<std::optional<Snapshot>>> load_revision(ActorKey key,
                                                              std::int64_t revision) = 0;

  /// Stores `snapshot` as the next revision of `key`, only if the stored revision is still
  /// `expected_revision` (0: nothing stored yet). The previous record is kept as history.
  ///
  /// On success the write is durable (committed) and the new revision, `expected_revision + 1`,
  /// is returned. When another writer got there first the result is kConflict and nothing
  /// changes. `snapshot.revision` is ignored. Concurrent saves are batched into one transaction
  /// (group commit) by backends that can.
  virtual Task<Result<std::int64_t>> save(ActorKey key, Snapshot snapshot,
                                          std::int64_t expected_revision) = 0;

  /// Stores `invocation` to be run at `invocation.due_ms`; an invocation with the same id is
  /// replaced whole.
  ///
  /// On success the write is durable (committed), so the caller may then acknowledge the
  /// request: it survives a restart or a kill until remove_scheduled() deletes it. On failure
  /// nothing changed (an earlier invocation with this id is kept). An empty id is
  /// kInvalidArgument. Backends that group-commit batch puts with concurrent saves and removes.
  virtual Task<Result<void>> put_scheduled(ScheduledInvocation invocation) = 0;

  /// Returns up to `limit` stored invocations with `due_ms <= until_ms`, ordered by `due_ms`
  /// and then by id (bytewise), each exactly as it was put.
  ///
  /// Reading claims nothing: an invocation is returned by every call until it is removed, so
  /// the caller must not poll again before it has removed (or is done with) what it got. Which
  /// side of a crash the removal falls on decides the guarantee: remove before running for
  /// at-most-once, after running for at-least-once. Sees every put and remove that completed
  /// before the call. An invocation that cannot be read back fails the whole call with
  /// kDataLoss naming its id (e.g. "load scheduled invocation '<id>': decrypt: ..."); removing
  /// that id gets past it.
  virtual Task<Result<std::vector<ScheduledInvocation>>> due_scheduled(std::int64_t until_ms,
                                                                       std::size_t limit) = 0;

  /// Deletes the invocations with these ids; ids that are not stored are ignored.
  ///
  /// On success the deletion is durable (committed); on failure nothing was deleted. Batched
  /// with concurrent writes like put_scheduled().
  virtual Task<Result<void>> remove_scheduled(std::vector<std::string> ids) = 0;

  /// Returns how many invocations are stored, due or not.
  virtual Task<Result<std::int64_t>> count_scheduled() = 0;
};

/// The hash of the key {system, name} (std::hash<ActorKey>), without making the key.
inline std::size_t key_hash(std::string_view system, std::string_view name) noexcept {
  const std::size_t h = std::hash<std::string_view>{}(system);
  return h ^ (std::hash<std::string_view>{}(name) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

}  // namespace spawn::statestore

template <>
struct std::hash<spawn::statestore::ActorKey> {
  std::size_t operator()(const spawn::statestore::ActorKey& key) const noexcept {
    return spawn::statestore::key_hash(key.system, key.name);
  }
};
