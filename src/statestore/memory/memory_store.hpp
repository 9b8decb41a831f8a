#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "statestore/store.hpp"

namespace spawn::statestore::memory {

/// A `Store` that keeps every revision of every actor in process memory.
///
/// For tests, and for the `memory` statestore type when nothing needs to survive a restart.
/// Same revision, compare-and-set, history and scheduling rules as the persistent stores;
/// "durable" here only means visible to later calls. Thread safe: one mutex guards the maps,
/// held only for a lookup or an update. Every call finishes without suspending, so it completes on
/// the awaiting executor.
class InMemoryStore final : public Store {
public:
  InMemoryStore() = default;
  InMemoryStore(const InMemoryStore&) = delete;
  InMemoryStore& operator=(const InMemoryStore&) = delete;

  Task<Result<std::optional<Snapshot>>> load(ActorKey key) override;

  Task<Result<std::optional<Snapshot>>> load_revision(ActorKey key, std::int64_t revision) override;

  Task<Result<std::int64_t>> save(ActorKey key, Snapshot snapshot,
                                  std::int64_t expected_revision) override;

  Task<Result<void>> put_scheduled(ScheduledInvocation invocation) override;

  Task<Result<std::vector<ScheduledInvocation>>> due_scheduled(std::int64_t until_ms,
                                                               std::size_t limit) override;

  Task<Result<void>> remove_scheduled(std::vector<std::string> ids) override;

  Task<Result<std::int64_t>> count_scheduled() override;

private:
  std::optional<Snapshot> find(const ActorKey& key, std::int64_t revision) const;
  Result<std::int64_t> store(ActorKey key, Snapshot snapshot, std::int64_t expected_revision);

  mutable std::mutex mutex_;
  /// Every revision of each actor, oldest first; revision i is at index i - 1. Guarded by mutex_.
  std::unordered_map<ActorKey, std::vector<Snapshot>> revisions_;
  /// Scheduled invocations by id. Guarded by mutex_.
  std::unordered_map<std::string, ScheduledInvocation> scheduled_;
  /// (due_ms, id) of every entry of scheduled_, in the order due_scheduled() returns them.
  /// Guarded by mutex_.
  std::set<std::pair<std::int64_t, std::string>> schedule_;
};

}  // namespace spawn::statestore::memory
