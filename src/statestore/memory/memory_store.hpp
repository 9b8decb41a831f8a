#pragma once

#include <mutex>
#include <unordered_map>
#include <vector>

#include "statestore/store.hpp"

namespace spawn::statestore::memory {

/// A `Store` that keeps every revision of every actor in process memory.
///
/// For tests, and for the `memory` statestore type when nothing needs to survive a restart.
/// Same revision, compare-and-set and history rules as the persistent stores; "durable" here
/// only means visible to later loads. Thread safe: one mutex guards the map, held only for a
/// lookup or an append. Every call finishes without suspending, so it completes on the awaiting
/// executor.
class InMemoryStore final : public Store {
public:
  InMemoryStore() = default;
  InMemoryStore(const InMemoryStore&) = delete;
  InMemoryStore& operator=(const InMemoryStore&) = delete;

  Task<Result<std::optional<Snapshot>>> load(ActorKey key) override;

  Task<Result<std::optional<Snapshot>>> load_revision(ActorKey key, std::int64_t revision) override;

  Task<Result<std::int64_t>> save(ActorKey key, Snapshot snapshot,
                                  std::int64_t expected_revision) override;

private:
  std::optional<Snapshot> find(const ActorKey& key, std::int64_t revision) const;
  Result<std::int64_t> store(ActorKey key, Snapshot snapshot, std::int64_t expected_revision);

  mutable std::mutex mutex_;
  /// Every revision of each actor, oldest first; revision i is at index i - 1. Guarded by mutex_.
  std::unordered_map<ActorKey, std::vector<Snapshot>> revisions_;
};

}  // namespace spawn::statestore::memory
