#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

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

/// The persistent home of actor state: revisioned, compare-and-set, safe to call from any thread.
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
};

}  // namespace spawn::statestore

template <>
struct std::hash<spawn::statestore::ActorKey> {
  std::size_t operator()(const spawn::statestore::ActorKey& key) const noexcept {
    std::size_t h = std::hash<std::string>{}(key.system);
    return h ^ (std::hash<std::string>{}(key.name) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  }
};
