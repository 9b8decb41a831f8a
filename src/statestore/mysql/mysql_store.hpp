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

namespace spawn::statestore::mysql {

/// Settings of the MySQL/MariaDB store.
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
/// Same tables and semantics as the PostgreSQL store: one writer thread with its own connection
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
///
/// The schema version this build creates and reads (table `schema_version`).
inline constexpr int kSchemaVersion = 1;

/// Connects, creates or upgrades the schema and starts the threads; the store is the shared
/// `QueuedStore` (group commit, reader threads) over this database's writer and readers.
/// `transactions()` counts the write transactions begun (retries count). Fails with
/// kUnavailable when the server cannot be reached, kConfig for wrong credentials, an unknown
/// database or a schema newer than this build; the message names host:port/database and the
/// user, never the password. Blocks while opening: call it at start-up, not on a shard.
Result<std::unique_ptr<QueuedStore>> open_store(Options options);

}  // namespace spawn::statestore::mysql
