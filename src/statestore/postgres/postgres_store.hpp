#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spawn/result.hpp"

#include "statestore/queued_store.hpp"
#include "statestore/store.hpp"

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

/// Settings of the PostgreSQL/CockroachDB store.
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
/// The schema version this build creates and reads (table `schema_version`).
inline constexpr int kSchemaVersion = 1;

/// Connects, creates or upgrades the schema and starts the threads; the store is the shared
/// `QueuedStore` (group commit, reader threads) over this database's writer and readers.
/// `transactions()` counts the write transactions begun (retries count). Fails with
/// kUnavailable when the server cannot be reached, kConfig for wrong credentials, an unknown
/// database or a schema newer than this build; the message names host:port/database and the
/// user, never the password. Blocks while opening: call it at start-up, not on a shard.
Result<std::unique_ptr<QueuedStore>> open_store(Options options);

}  // namespace spawn::statestore::postgres
