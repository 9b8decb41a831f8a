#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "spawn/result.hpp"

#include "statestore/store.hpp"

namespace spawn::statestore {

/// Which statestore to build and how; filled from the environment by the proxy's config.
struct StoreConfig {
  /// The backend: "sqlite" (persistent, encrypted), "postgres", "cockroachdb", "mysql" or
  /// "mariadb" (database servers, encrypted) or "memory" (lost at exit). Which server backends
  /// exist depends on the build (SPAWN_WITH_POSTGRES, SPAWN_WITH_MYSQL).
  std::string type = "sqlite";
  /// The backend's database; for sqlite, the file path (parent directories are created); for
  /// the servers, the database name (it must exist; the tables are created at open).
  std::string name;
  /// Database server address; port 0 means the backend's default (5432 postgres, 26257
  /// cockroachdb, 3306 mysql/mariadb).
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  /// Database server credentials; the password never appears in a message.
  std::string username = "admin";
  std::string password = "admin";
  /// Reader connections (each on its own thread) of a database server backend.
  std::size_t pool_size = 4;
  /// TLS to the database server; with `ssl_verify`, the server certificate and name are checked.
  bool ssl = false;
  bool ssl_verify = false;
  /// `SPAWN_STATESTORE_KEY`: base64 of 32 bytes. Required by persistent backends.
  std::optional<std::string> key_b64;
  /// This node's name, recorded with every snapshot it writes.
  std::string node;
  /// Batch concurrent writes into one transaction; false only for benchmarks.
  bool group_commit = true;
};

/// Builds the store `config` describes. Persistent backends come wrapped in `EncryptedStore`.
///
/// Fails with kConfig on an unknown type (the message lists the supported ones), on a missing or
/// malformed key for a persistent backend, or on a missing sqlite file name; otherwise with the
/// backend's own open error (e.g. kUnavailable for a file that cannot be created or a database
/// server that cannot be reached, kConfig for wrong credentials). The key is checked before any
/// file or server is touched. Blocks while opening: call it at start-up.
Result<std::unique_ptr<Store>> make_store(const StoreConfig& config);

}  // namespace spawn::statestore
