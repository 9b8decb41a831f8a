#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "statestore/store.hpp"

namespace spawn::statestore {
class QueuedStore;
}  // namespace spawn::statestore

namespace spawn::statestore::sqlite {

/// Settings of a `SqliteStore`.
struct Options {
  /// Recorded as the writing node of a snapshot whose own `node` is empty.
  std::string node;
  /// Batch concurrent saves into one transaction (one fsync). false: one transaction per save,
  /// for benchmarks that measure what group commit buys.
  bool group_commit = true;
  /// The most saves one transaction takes.
  std::size_t max_batch = 1024;
  /// Threads (each with its own connection) serving load() and load_revision().
  std::size_t reader_threads = 2;
  /// How long a connection waits for a lock held by another process before failing.
  std::chrono::milliseconds busy_timeout{5000};
};

/// A `Store` in one SQLite file: the embedded default, zero set-up (src/statestore/README.md).
///
/// The file holds `snapshots` (the current revision of each actor), `snapshot_history` (every
/// revision saved, the current one included) and `scheduled_invocations`. Writes (saves, puts and
/// removes of scheduled invocations) go to one writer thread that commits whatever is queued as one
/// transaction (group commit) in WAL mode with synchronous=FULL, so a completed write has been
/// committed and fsynced. Reads run on a small pool of reader threads with their
/// own connections. Callers never block beyond taking a mutex briefly: every method suspends
/// and completes by a post to the awaiting coroutine's executor, whose execution context must
/// outlive the call. Data is stored as given: wrap the store in `EncryptedStore` to encrypt it.
///
/// Thread safe. Destroying the store first finishes every queued read and write (their
/// coroutines still complete), then stops the threads and closes the file.
class SqliteStore final : public Store {
public:
  /// The schema version this build creates and reads (table `schema_version`).
  static constexpr int kSchemaVersion = 3;

  /// Opens `file`, creating it, its parent directories and the schema when missing, and
  /// upgrading an older schema. Fails with kUnavailable when the file cannot be created or
  /// opened, kConfig when it holds a newer schema than this build knows, kDataLoss when it is
  /// not a SQLite database. Blocks while opening; call it at start-up, not on a shard.
  static Result<std::unique_ptr<SqliteStore>> open(std::filesystem::path file, Options options);

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;
  ~SqliteStore() override;

  /// As `Store::load`. SQLite failures are kUnavailable/kInternal naming the file; a row that
  /// cannot be decoded (broken tags JSON) is kDataLoss.
  Task<Result<std::optional<Snapshot>>> load(ActorKey key) override;

  /// As `Store::load_revision`; the current revision is found as well as historical ones.
  Task<Result<std::optional<Snapshot>>> load_revision(ActorKey key, std::int64_t revision) override;

  /// As `Store::save`. Completes after the transaction holding this save has committed. A stale
  /// `expected_revision` is kConflict and leaves the rest of its batch unaffected; of two saves
  /// of one actor at the same revision, the one queued first wins. Tags that are not valid UTF-8
  /// are kInvalidArgument; a negative `expected_revision` is too.
  Task<Result<std::int64_t>> save(ActorKey key, Snapshot snapshot,
                                  std::int64_t expected_revision) override;

  /// As `Store::put_scheduled`. Completes after the transaction holding this put has committed;
  /// shares transactions with concurrent saves and removes.
  Task<Result<void>> put_scheduled(ScheduledInvocation invocation) override;

  /// As `Store::due_scheduled`; one statement on a reader thread, a range scan of the
  /// (due_ms, id) index.
  Task<Result<std::vector<ScheduledInvocation>>> due_scheduled(std::int64_t until_ms,
                                                               std::size_t limit) override;

  /// As `Store::remove_scheduled`. All ids are deleted in one transaction, with other queued
  /// writes; an empty list completes at once.
  Task<Result<void>> remove_scheduled(std::vector<std::string> ids) override;

  /// As `Store::count_scheduled`.
  Task<Result<std::int64_t>> count_scheduled() override;

  /// Returns the database file.
  [[nodiscard]] const std::filesystem::path& file() const;

  /// Returns how many write transactions the writer has begun so far (a batch that failed and
  /// was retried one by one counts each attempt), so tests can see group commit at work.
  [[nodiscard]] std::uint64_t transactions_for_test() const;

private:
  SqliteStore(std::filesystem::path file, std::unique_ptr<QueuedStore> queued);

  std::filesystem::path file_;
  std::unique_ptr<QueuedStore> queued_;
};

}  // namespace spawn::statestore::sqlite
