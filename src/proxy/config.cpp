#include "proxy/config.hpp"

#include <algorithm>
#include <array>
#include <thread>

#include <unistd.h>

#include "common/env.hpp"

namespace spawn::proxy {

using common::env;
using common::env_bool;
using common::env_int;
using common::env_or;

const std::vector<ConfigVariable>& config_variables() {
  static const std::vector<ConfigVariable> kVariables = {
      {"PROXY_HTTP_PORT", "9001", "port of the HTTP API"},
      {"SPAWN_PROXY_BIND_ADDRESS", "0.0.0.0", "address the HTTP API listens on"},
      {"PROXY_ACTOR_SYSTEM_NAME", "spawn-system", "name of this proxy's default actor system"},
      {"PROXY_DEPLOYMENT_MODE", "sidecar", "only 'sidecar' is supported"},
      {"USER_FUNCTION_HOST", "0.0.0.0", "host of the user function (0.0.0.0 means 127.0.0.1)"},
      {"USER_FUNCTION_PORT", "8090", "port of the user function"},
      {"PROXY_HTTP_CLIENT_ADAPTER_POOL_SIZE", "128",
       "idle keep-alive connections kept to the user function, per shard"},
      {"SPAWN_PROXY_HOST_TIMEOUT_MS", "60000", "how long one call to the user function may take"},
      {"SPAWN_PROXY_REQUEST_TIMEOUT_MS", "10000",
       "how long an unreachable user function is retried, unless the request's metadata "
       "'request-timeout' says otherwise"},
      {"PROXY_DATABASE_TYPE", "sqlite",
       "statestore: sqlite (a file), postgres, cockroachdb, mysql, mariadb or memory (nothing "
       "kept)"},
      {"PROXY_DATABASE_NAME", "eigr-functions-db",
       "sqlite: path of the database file; servers: the database (must exist)"},
      {"PROXY_DATABASE_HOST", "127.0.0.1", "database server host"},
      {"PROXY_DATABASE_PORT", "(per type)",
       "database server port: 5432 postgres, 26257 cockroachdb, 3306 mysql/mariadb"},
      {"PROXY_DATABASE_USERNAME", "admin", "database server user"},
      {"PROXY_DATABASE_SECRET", "admin", "database server password"},
      {"PROXY_DATABASE_POOL_SIZE", "4", "database server reader connections (one thread each)"},
      {"PROXY_DATABASE_SSL", "false", "TLS to the database server"},
      {"PROXY_DATABASE_SSL_VERIFY", "false",
       "TLS with the server certificate and host name verified"},
      {"SPAWN_STATESTORE_KEY", "(none)",
       "base64 of a 32-byte AES-256 key encrypting state at rest; required by every type but "
       "memory (create one: openssl rand -base64 32)"},
      {"SPAWN_PROXY_GROUP_COMMIT", "true", "batch concurrent state writes into one transaction"},
      {"SPAWN_PROXY_MAX_BODY_BYTES", "8388608", "largest request body accepted (larger: 413)"},
      {"SPAWN_PROXY_SHUTDOWN_DRAIN_MS", "2000",
       "after SIGTERM, how long readiness answers 503 with the listener open"},
      {"SPAWN_PROXY_SHARDS", "(cores)", "event loops (threads) that own actors"},
      {"SPAWN_PROXY_NODE", "(host name)", "node name recorded with each snapshot"},
      {"SPAWN_PROXY_LOGGER_LEVEL", "info", "trace, debug, info, warning, error, critical or off"},
  };
  return kVariables;
}

std::string usage() {
  std::string text =
      "spawn-proxy: the Spawn actor sidecar (HTTP API on PROXY_HTTP_PORT, user function on\n"
      "USER_FUNCTION_HOST:USER_FUNCTION_PORT, state in PROXY_DATABASE_TYPE).\n\n"
      "usage: spawn-proxy [--help] [--version]\n\n"
      "Configuration comes from the environment (an empty value counts as unset):\n\n";
  for (const auto& variable : config_variables()) {
    text += "  " + std::string(variable.name);
    text.append(std::max<std::size_t>(2, 38 - variable.name.size()), ' ');
    text += std::string(variable.meaning) + " [default: " + std::string(variable.fallback) + "]\n";
  }
  return text;
}

namespace {

Result<std::chrono::milliseconds> env_ms(std::string_view name, std::int64_t fallback) {
  auto value = env_int(name, fallback, 0, 24LL * 3600 * 1000);
  if (!value) {
    return std::move(value).error();
  }
  return std::chrono::milliseconds(*value);
}

std::string host_name() {
  std::array<char, 256> buffer{};
  if (gethostname(buffer.data(), buffer.size() - 1) != 0) {
    return "spawn-proxy";
  }
  return std::string(buffer.data());
}

}  // namespace

Result<Config> Config::from_env() {
  Config config;
  auto port = env_int("PROXY_HTTP_PORT", 9001, 1, 65535);
  auto host_port = env_int("USER_FUNCTION_PORT", 8090, 1, 65535);
  // Spawn's 30 sizes a whole pool; ours bounds idle connections per shard, and a smaller one
  // churns connections at 64 concurrent callers (docs/performance.md).
  auto pool = env_int("PROXY_HTTP_CLIENT_ADAPTER_POOL_SIZE", 128, 0, 100000);
  auto body = env_int("SPAWN_PROXY_MAX_BODY_BYTES", 8 * 1024 * 1024, 1024, 1LL << 31);
  auto shards = env_int("SPAWN_PROXY_SHARDS", 0, 0, 1024);
  auto database_port = env_int("PROXY_DATABASE_PORT", 0, 0, 65535);
  auto database_pool = env_int("PROXY_DATABASE_POOL_SIZE", 4, 1, 1024);
  auto host_timeout = env_ms("SPAWN_PROXY_HOST_TIMEOUT_MS", 60000);
  auto request_timeout = env_ms("SPAWN_PROXY_REQUEST_TIMEOUT_MS", 10000);
  auto drain = env_ms("SPAWN_PROXY_SHUTDOWN_DRAIN_MS", 2000);
  for (const Result<std::int64_t>* value :
       {&port, &host_port, &pool, &body, &shards, &database_port, &database_pool}) {
    if (!*value) {
      return value->error();
    }
  }
  for (const Result<std::chrono::milliseconds>* value : {&host_timeout, &request_timeout, &drain}) {
    if (!*value) {
      return value->error();
    }
  }
  config.http_port = static_cast<std::uint16_t>(*port);
  config.user_function_port = static_cast<std::uint16_t>(*host_port);
  config.host_pool_size = static_cast<std::size_t>(*pool);
  config.max_body_bytes = static_cast<std::size_t>(*body);
  config.shards = static_cast<std::size_t>(*shards);
  config.host_timeout = *host_timeout;
  config.request_timeout = *request_timeout;
  config.drain = *drain;
  config.bind_address = env_or("SPAWN_PROXY_BIND_ADDRESS", config.bind_address);
  config.actor_system_name = env_or("PROXY_ACTOR_SYSTEM_NAME", config.actor_system_name);
  config.user_function_host = env_or("USER_FUNCTION_HOST", config.user_function_host);
  config.database_type = env_or("PROXY_DATABASE_TYPE", config.database_type);
  config.database_name = env_or("PROXY_DATABASE_NAME", config.database_name);
  config.database_host = env_or("PROXY_DATABASE_HOST", config.database_host);
  config.database_port = static_cast<std::uint16_t>(*database_port);
  config.database_username = env_or("PROXY_DATABASE_USERNAME", config.database_username);
  config.database_secret = env_or("PROXY_DATABASE_SECRET", config.database_secret);
  config.database_pool_size = static_cast<std::size_t>(*database_pool);
  config.database_ssl = env_bool("PROXY_DATABASE_SSL", false);
  config.database_ssl_verify = env_bool("PROXY_DATABASE_SSL_VERIFY", false);
  config.statestore_key = env("SPAWN_STATESTORE_KEY");
  config.group_commit = env_bool("SPAWN_PROXY_GROUP_COMMIT", true);
  config.log_level = env_or("SPAWN_PROXY_LOGGER_LEVEL", config.log_level);
  config.node = env_or("SPAWN_PROXY_NODE", host_name());
  auto mode = env_or("PROXY_DEPLOYMENT_MODE", "sidecar");
  if (mode != "sidecar") {
    return fail(ErrorCode::kConfig,
                "PROXY_DEPLOYMENT_MODE='" + mode + "' is not supported; only 'sidecar' is");
  }
  static constexpr std::array<std::string_view, 7> kLevels = {
      "trace", "debug", "info", "warning", "error", "critical", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), config.log_level) == kLevels.end()) {
    return fail(ErrorCode::kConfig,
                "SPAWN_PROXY_LOGGER_LEVEL='" + config.log_level
                    + "' is not one of trace, debug, info, warning, error, critical, off");
  }
  return config;
}

}  // namespace spawn::proxy
