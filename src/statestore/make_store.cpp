#include "statestore/make_store.hpp"

#include <utility>

#include "statestore/cipher.hpp"
#include "statestore/encrypted_store.hpp"
#include "statestore/memory/memory_store.hpp"
#include "statestore/sqlite/sqlite_store.hpp"
#if SPAWN_WITH_POSTGRES
#include "statestore/postgres/postgres_store.hpp"
#endif
#if SPAWN_WITH_MYSQL
#include "statestore/mysql/mysql_store.hpp"
#endif

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

// Opens a persistent backend with `open(config)` and wraps it in EncryptedStore. The key is
// checked first, so a bad start-up leaves no file or table behind.
template <class Open>
Result<std::unique_ptr<Store>> encrypted(const StoreConfig& config, Open open) {
  Result<Cipher> cipher = cipher_for(config);
  if (!cipher) {
    return std::move(cipher).error();
  }
  auto store = open(config);
  if (!store) {
    return std::move(store).error();
  }
  return std::unique_ptr<Store>(
      std::make_unique<EncryptedStore>(std::move(*store), std::move(*cipher)));
}

Result<std::unique_ptr<sqlite::SqliteStore>> open_sqlite(const StoreConfig& config) {
  if (config.name.empty()) {
    return fail(ErrorCode::kConfig,
                "the sqlite statestore needs a database file path (PROXY_DATABASE_NAME)");
  }
  sqlite::Options options;
  options.node = config.node;
  options.group_commit = config.group_commit;
  return sqlite::SqliteStore::open(config.name, std::move(options));
}

#if SPAWN_WITH_POSTGRES
Result<std::unique_ptr<QueuedStore>> open_postgres(const StoreConfig& config,
                                                   postgres::Dialect dialect) {
  if (config.name.empty()) {
    return fail(ErrorCode::kConfig,
                "the " + config.type + " statestore needs a database name (PROXY_DATABASE_NAME)");
  }
  postgres::Options options;
  options.host = config.host;
  options.port = config.port;
  options.database = config.name;
  options.user = config.username;
  options.password = config.password;
  options.ssl = config.ssl;
  options.ssl_verify = config.ssl_verify;
  options.dialect = dialect;
  options.node = config.node;
  options.group_commit = config.group_commit;
  options.readers = config.pool_size;
  return postgres::open_store(std::move(options));
}
#endif

#if SPAWN_WITH_MYSQL
Result<std::unique_ptr<QueuedStore>> open_mysql(const StoreConfig& config) {
  if (config.name.empty()) {
    return fail(ErrorCode::kConfig,
                "the " + config.type + " statestore needs a database name (PROXY_DATABASE_NAME)");
  }
  mysql::Options options;
  options.host = config.host;
  options.port = config.port;
  options.database = config.name;
  options.user = config.username;
  options.password = config.password;
  options.ssl = config.ssl;
  options.ssl_verify = config.ssl_verify;
  options.node = config.node;
  options.group_commit = config.group_commit;
  options.readers = config.pool_size;
  return mysql::open_store(std::move(options));
}
#endif

// The types this build supports, for the unknown-type message.
constexpr const char* kSupported =
    "sqlite"
#if SPAWN_WITH_POSTGRES
    ", postgres, cockroachdb"
#endif
#if SPAWN_WITH_MYSQL
    ", mysql, mariadb"
#endif
    ", memory";

}  // namespace

Result<std::unique_ptr<Store>> make_store(const StoreConfig& config) {
  if (config.type == "sqlite") {
    return encrypted(config, open_sqlite);
  }
#if SPAWN_WITH_POSTGRES
  if (config.type == "postgres") {
    return encrypted(config, [](const StoreConfig& c) {
      return open_postgres(c, postgres::Dialect::kPostgres);
    });
  }
  if (config.type == "cockroachdb") {
    return encrypted(config, [](const StoreConfig& c) {
      return open_postgres(c, postgres::Dialect::kCockroach);
    });
  }
#endif
#if SPAWN_WITH_MYSQL
  if (config.type == "mysql" || config.type == "mariadb") {
    return encrypted(config, open_mysql);
  }
#endif
  if (config.type == "memory") {
    // Nothing reaches a disk, so there is nothing to encrypt and no key is needed.
    return std::unique_ptr<Store>(std::make_unique<memory::InMemoryStore>());
  }
  return fail(ErrorCode::kConfig,
              "unknown statestore type '" + config.type + "' (supported: " + kSupported + ")");
}

}  // namespace spawn::statestore
