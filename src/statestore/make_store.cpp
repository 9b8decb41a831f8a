#include "statestore/make_store.hpp"

#include <utility>

#include "statestore/cipher.hpp"
#include "statestore/encrypted_store.hpp"
#include "statestore/memory/memory_store.hpp"
#include "statestore/sqlite/sqlite_store.hpp"

namespace spawn::statestore {

namespace {

Result<Cipher> cipher_for(const StoreConfig& config) {
  if (!config.key_b64) {
    return fail(ErrorCode::kConfig, "SPAWN_STATESTORE_KEY is not set; the " + config.type
                                        + " statestore encrypts state at rest. Create a key "
                                          "with: openssl rand -base64 32");
  }
  return Cipher::from_base64_key(*config.key_b64);
}

Result<std::unique_ptr<Store>> make_sqlite_store(const StoreConfig& config) {
  // The key is checked before the file is touched, so a bad start-up leaves nothing behind.
  Result<Cipher> cipher = cipher_for(config);
  if (!cipher) {
    return std::move(cipher).error();
  }
  if (config.name.empty()) {
    return fail(ErrorCode::kConfig,
                "the sqlite statestore needs a database file path (PROXY_DATABASE_NAME)");
  }
  sqlite::Options options;
  options.node = config.node;
  options.group_commit = config.group_commit;
  Result<std::unique_ptr<sqlite::SqliteStore>> store =
      sqlite::SqliteStore::open(config.name, std::move(options));
  if (!store) {
    return std::move(store).error();
  }
  return std::unique_ptr<Store>(
      std::make_unique<EncryptedStore>(std::move(*store), std::move(*cipher)));
}

}  // namespace

Result<std::unique_ptr<Store>> make_store(const StoreConfig& config) {
  if (config.type == "sqlite") {
    return make_sqlite_store(config);
  }
  if (config.type == "memory") {
    // Nothing reaches a disk, so there is nothing to encrypt and no key is needed.
    return std::unique_ptr<Store>(std::make_unique<memory::InMemoryStore>());
  }
  return fail(ErrorCode::kConfig, "unknown statestore type '" + config.type
                                      + "' (supported: sqlite, memory; postgres and mysql "
                                        "arrive later)");
}

}  // namespace spawn::statestore
