#pragma once

#include <memory>
#include <optional>
#include <string>

#include "spawn/result.hpp"

#include "statestore/store.hpp"

namespace spawn::statestore {

/// Which statestore to build and how; filled from the environment by the proxy's config.
struct StoreConfig {
  /// The backend: "sqlite" (persistent, encrypted) or "memory" (lost at exit).
  std::string type = "sqlite";
  /// The backend's database; for sqlite, the file path (parent directories are created).
  std::string name;
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
/// backend's own open error (e.g. kUnavailable for a file that cannot be created). Blocks while
/// opening: call it at start-up.
Result<std::unique_ptr<Store>> make_store(const StoreConfig& config);

}  // namespace spawn::statestore
