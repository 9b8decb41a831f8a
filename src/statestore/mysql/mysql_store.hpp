#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "statestore/store.hpp"

namespace spawn::statestore {
class QueuedStore;
}  // namespace spawn::statestore

namespace spawn::statestore::mysql {

/// Settings of a `MysqlStore`.
struct Options {
  std::string host = "127.0.0.1";
  /// 0: 3306.
  std::uint16_t port = 0;
  std::string database = "eigr-functions-db";
  std::string user = "admin";
  std::string password = "admin";
  /// TLS required; with `ssl_verify`, the server certificate is verified too.
  bool ssl = false;
  bool ssl_verify = false;
  /// Recorded as the writing node of a snapshot whose own `node` is empty.
  std::string node;
  /// Batch concurrent writes into one transaction; false: one transaction per write.
  bool group_commit = true;
  /// The most writes one transaction takes.
  std::size_t max_batch = 1024;
  /// Reader connections, each on its own thread.
  std::size_t readers = 4;
  /// How long one connection attempt may take.
  std::chrono::seconds connect_timeout{5};
};

/// A `Store` in a MariaDB or MySQL database (InnoDB), through libmariadb
/// (src/statestore/README.md).
///
/// Same tables and semantics as `PostgresStore`: one writer thread with its own connection
/// commits whatever is queued as one transaction (group commit); each save locks the actor's
/// row (SELECT ... FOR UPDATE), compares the revision, archives the old row to
/// `historical_snapshots` and writes the new one, so a stale revision is kConflict and changes
/// nothing, even against another process. Readers run on their own threads and connections. No
/// caller ever blocks on libmariadb: every method suspends and completes by a post to the
/// awaiting coroutine's executor. Text columns are utf8mb4 with binary collation (names compare
/// and sort bytewise); `system` and `actor` are at most 255 characters.
///
/// The database going away fails the operations that need it with kUnavailable; every batch
/// and read first reconnects a broken connection, and one that lost its connection before
/// COMMIT was sent is retried once on a fresh one. A connection lost during COMMIT is
/// kUnavailable ("may or may not have been applied"). Deadlocks and lock wait timeouts with
/// other processes retry the batch. Data is stored as given: wrap the store in `EncryptedStore`.
class MysqlStore final : public Store {
public:
  /// The schema version this build creates and reads (table `schema_version`).
  static constexpr int kSchemaVersion = 1;

  /// Connects, creates or upgrades the schema and starts the threads. Fails with kUnavailable
  /// when the server cannot be reached, kConfig for wrong credentials, an unknown database or a
  /// schema newer than this build; the message names host:port/database and the user, never the
  /// password. Blocks while opening: call it at start-up, not on a shard.
  static Result<std::unique_ptr<MysqlStore>> open(Options options);

  MysqlStore(const MysqlStore&) = delete;
  MysqlStore& operator=(const MysqlStore&) = delete;
  ~MysqlStore() override;

  /// As `Store::load`.
  Task<Result<std::optional<Snapshot>>> load(ActorKey key) override;
  /// As `Store::load_revision`; one statement reads the current and the historical table.
  Task<Result<std::optional<Snapshot>>> load_revision(ActorKey key, std::int64_t revision) override;
  /// As `Store::save`; completes after the transaction holding it has committed.
  Task<Result<std::int64_t>> save(ActorKey key, Snapshot snapshot,
                                  std::int64_t expected_revision) override;
  /// As `Store::put_scheduled`.
  Task<Result<void>> put_scheduled(ScheduledInvocation invocation) override;
  /// As `Store::due_scheduled`; a range scan of the (due_ms, id) index.
  Task<Result<std::vector<ScheduledInvocation>>> due_scheduled(std::int64_t until_ms,
                                                               std::size_t limit) override;
  /// As `Store::remove_scheduled`; all ids are deleted in one transaction.
  Task<Result<void>> remove_scheduled(std::vector<std::string> ids) override;
  /// As `Store::count_scheduled`.
  Task<Result<std::int64_t>> count_scheduled() override;

  /// Returns how many write transactions the writer has begun (retries count), for tests.
  [[nodiscard]] std::uint64_t transactions_for_test() const;

private:
  explicit MysqlStore(std::unique_ptr<QueuedStore> queued);

  std::unique_ptr<QueuedStore> queued_;
};

}  // namespace spawn::statestore::mysql
