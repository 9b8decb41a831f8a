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

namespace spawn::statestore::postgres {

/// Which server speaks the PostgreSQL protocol on the other end.
enum class Dialect : std::uint8_t {
  /// PostgreSQL: READ COMMITTED, migrations serialized by an advisory lock.
  kPostgres,
  /// CockroachDB: SERIALIZABLE only, no advisory locks and no "C" collation, so migrations rely
  /// on transaction retries and ids sort bytewise by default. A transaction that fails with
  /// SQLSTATE 40001 ("restart transaction") is retried whole.
  kCockroach,
};

/// Settings of a `PostgresStore`.
struct Options {
  std::string host = "127.0.0.1";
  /// 0: the dialect's default, 5432 (PostgreSQL) or 26257 (CockroachDB).
  std::uint16_t port = 0;
  std::string database = "eigr-functions-db";
  std::string user = "admin";
  std::string password = "admin";
  /// TLS to the server (sslmode=require); with `ssl_verify`, the certificate and host name are
  /// checked too (sslmode=verify-full; CA from PGSSLROOTCERT or ~/.postgresql/root.crt).
  bool ssl = false;
  bool ssl_verify = false;
  Dialect dialect = Dialect::kPostgres;
  /// Recorded as the writing node of a snapshot whose own `node` is empty.
  std::string node;
  /// Batch concurrent writes into one transaction; false: one transaction per write.
  bool group_commit = true;
  /// The most writes one transaction takes.
  std::size_t max_batch = 1024;
  /// Reader connections, each on its own thread, serving loads and scheduled-invocation reads.
  std::size_t readers = 4;
  /// How long one connection attempt may take.
  std::chrono::seconds connect_timeout{5};
};

/// A `Store` in a PostgreSQL (or CockroachDB) database (src/statestore/README.md).
///
/// Same tables and semantics as `SqliteStore`: `snapshots` holds each actor's current revision,
/// `historical_snapshots` every revision it replaced, `scheduled_invocations` the delayed
/// invocations; `schema_version` records the migrations run at open. One writer thread with
/// its own connection commits whatever is queued as one transaction (group commit); each save
/// is one compare-and-set statement, so a stale revision is kConflict and changes nothing even
/// when another process writes the same actor. `readers` threads with their own connections
/// serve reads. No caller ever blocks on libpq: every method suspends and completes by a post
/// to the awaiting coroutine's executor, whose execution context must outlive the call.
///
/// The database going away fails the operations that need it with kUnavailable; every batch
/// and every read first reconnects a broken connection, and a batch or read that lost its
/// connection before COMMIT is sent is retried once on a fresh one. A connection lost during
/// COMMIT is kUnavailable ("outcome unknown"): that write may or may not have been applied, and
/// the caller's retry at the same revision tells which (kConflict when it was).
///
/// Data is stored as given: wrap the store in `EncryptedStore` to encrypt it. Thread safe.
/// Destruction finishes every queued request first.
class PostgresStore final : public Store {
public:
  /// The schema version this build creates and reads (table `schema_version`).
  static constexpr int kSchemaVersion = 1;

  /// Connects, creates or upgrades the schema and starts the threads. Fails with kUnavailable
  /// when the server cannot be reached, kConfig for wrong credentials, a missing database or a
  /// schema newer than this build; the message names host:port/database and the user, never the
  /// password. Blocks while opening: call it at start-up, not on a shard.
  static Result<std::unique_ptr<PostgresStore>> open(Options options);

  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;
  ~PostgresStore() override;

  /// As `Store::load`.
  Task<Result<std::optional<Snapshot>>> load(ActorKey key) override;

  /// As `Store::load_revision`; one statement reads the current and the historical table.
  Task<Result<std::optional<Snapshot>>> load_revision(ActorKey key, std::int64_t revision) override;

  /// As `Store::save`. Completes after the transaction holding it has committed. Of two saves of
  /// one actor at the same revision in one batch, the one queued first wins.
  Task<Result<std::int64_t>> save(ActorKey key, Snapshot snapshot,
                                  std::int64_t expected_revision) override;

  /// As `Store::put_scheduled`; shares transactions with concurrent saves and removes.
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
  explicit PostgresStore(std::unique_ptr<QueuedStore> queued);

  std::unique_ptr<QueuedStore> queued_;
};

}  // namespace spawn::statestore::postgres
