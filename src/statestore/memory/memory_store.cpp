#include "statestore/memory/memory_store.hpp"

#include <utility>

namespace spawn::statestore::memory {

namespace {

// Stands for "the newest revision" in find().
constexpr std::int64_t kNewest = 0;

}  // namespace

Task<Result<std::optional<Snapshot>>> InMemoryStore::load(ActorKey key) {
  co_return find(key, kNewest);
}

Task<Result<std::optional<Snapshot>>> InMemoryStore::load_revision(ActorKey key,
                                                                   std::int64_t revision) {
  if (revision <= 0) {
    co_return std::optional<Snapshot>();
  }
  co_return find(key, revision);
}

Task<Result<std::int64_t>> InMemoryStore::save(ActorKey key, Snapshot snapshot,
                                               std::int64_t expected_revision) {
  co_return store(std::move(key), std::move(snapshot), expected_revision);
}

std::optional<Snapshot> InMemoryStore::find(const ActorKey& key, std::int64_t revision) const {
  const std::lock_guard lock(mutex_);
  const auto it = revisions_.find(key);
  if (it == revisions_.end() || it->second.empty()) {
    return std::nullopt;
  }
  const std::vector<Snapshot>& history = it->second;
  if (revision == kNewest) {
    return history.back();
  }
  if (static_cast<std::size_t>(revision) > history.size()) {
    return std::nullopt;
  }
  return history[static_cast<std::size_t>(revision) - 1];
}

Result<std::int64_t> InMemoryStore::store(ActorKey key, Snapshot snapshot,
                                          std::int64_t expected_revision) {
  if (!snapshot.has_state) {
    snapshot.type_url.clear();
    snapshot.data.clear();
  }
  const std::lock_guard lock(mutex_);
  std::vector<Snapshot>& history = revisions_[key];
  const auto stored = static_cast<std::int64_t>(history.size());
  if (stored != expected_revision) {
    return fail(ErrorCode::kConflict, "save state of actor '" + key.system + "/" + key.name
                                          + "': revision conflict (expected "
                                          + std::to_string(expected_revision) + ", stored "
                                          + std::to_string(stored) + ")");
  }
  snapshot.revision = stored + 1;
  history.push_back(std::move(snapshot));
  return stored + 1;
}

Task<Result<void>> InMemoryStore::put_scheduled(ScheduledInvocation invocation) {
  if (invocation.id.empty()) {
    co_return fail(ErrorCode::kInvalidArgument, "put scheduled invocation: the id is empty");
  }
  const std::lock_guard lock(mutex_);
  if (const auto it = scheduled_.find(invocation.id); it != scheduled_.end()) {
    schedule_.erase({it->second.due_ms, it->first});
  }
  schedule_.emplace(invocation.due_ms, invocation.id);
  std::string id = invocation.id;
  scheduled_.insert_or_assign(std::move(id), std::move(invocation));
  co_return ok();
}

Task<Result<std::vector<ScheduledInvocation>>> InMemoryStore::due_scheduled(std::int64_t until_ms,
                                                                            std::size_t limit) {
  std::vector<ScheduledInvocation> due;
  const std::lock_guard lock(mutex_);
  for (auto it = schedule_.begin();
       it != schedule_.end() && it->first <= until_ms && due.size() < limit; ++it) {
    due.push_back(scheduled_.at(it->second));
  }
  co_return std::move(due);
}

Task<Result<void>> InMemoryStore::remove_scheduled(std::vector<std::string> ids) {
  const std::lock_guard lock(mutex_);
  for (const std::string& id : ids) {
    if (const auto it = scheduled_.find(id); it != scheduled_.end()) {
      schedule_.erase({it->second.due_ms, id});
      scheduled_.erase(it);
    }
  }
  co_return ok();
}

Task<Result<std::int64_t>> InMemoryStore::count_scheduled() {
  const std::lock_guard lock(mutex_);
  co_return static_cast<std::int64_t>(scheduled_.size());
}

}  // namespace spawn::statestore::memory
