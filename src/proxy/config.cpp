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
      {"SPAWN_USE_INTERNAL_NATS", "false",
       "join the cluster of the proxies on the same NATS (docs/cluster.md)"},
      {"SPAWN_INTERNAL_NATS_HOSTS", "nats://127.0.0.1:4222", "NATS servers, comma-separated"},
      {"SPAWN_INTERNAL_NATS_TLS", "false", "TLS to NATS"},
      {"SPAWN_INTERNAL_NATS_TLS_CA", "(system)", "PEM file of the CAs trusted for NATS TLS"},
      {"SPAWN_INTERNAL_NATS_AUTH", "false", "authenticate to NATS"},
      {"SPAWN_INTERNAL_NATS_AUTH_TYPE", "simple",
       "simple (user and password), token (the password is the token) or jwt (a .creds file)"},
      {"SPAWN_INTERNAL_NATS_AUTH_USER", "(none)", "NATS user"},
      {"SPAWN_INTERNAL_NATS_AUTH_PASS", "(none)", "NATS password or token"},
      {"SPAWN_INTERNAL_NATS_AUTH_JWT", "(none)", "path of the NATS .creds file (jwt)"},
      {"SPAWN_PUBSUB_ADAPTER", "native",
       "broadcast transport: native (this process) or nats (every node and any NATS client)"},
      {"SPAWN_PUBSUB_NATS_HOSTS", "(SPAWN_INTERNAL_NATS_HOSTS)",
       "NATS servers for broadcasts; SPAWN_PUBSUB_NATS_{TLS,TLS_CA,AUTH,AUTH_TYPE,AUTH_USER,"
       "AUTH_PASS,AUTH_JWT} as for SPAWN_INTERNAL_NATS_*"},
      {"SPAWN_CLUSTER_PREFIX", "spawn",
       "first token of the cluster's NATS subjects and KV buckets (letters, digits, - and _)"},
      {"SPAWN_CLUSTER_HEARTBEAT_INTERVAL", "1000", "ms between a node's heartbeats"},
      {"SPAWN_CLUSTER_NODE_TIMEOUT", "3000",
       "ms without a heartbeat after which a node is dead and its actors move"},
      {"SPAWN_CLUSTER_PLACEMENT", "round-robin",
       "how a new actor's node is chosen among those whose host registered it: round-robin or "
       "random"},
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

/// Reads the NATS settings under `prefix` (SPAWN_INTERNAL_NATS or SPAWN_PUBSUB_NATS).
Result<cluster::NatsSettings> nats_settings(const std::string& prefix,
                                            const std::string& default_hosts) {
  cluster::NatsSettings settings;
  settings.servers.clear();
  auto hosts = env_or(prefix + "_HOSTS", default_hosts);
  std::size_t start = 0;
  while (start <= hosts.size()) {
    auto end = hosts.find(',', start);
    if (end == std::string::npos) {
      end = hosts.size();
    }
    auto host = hosts.substr(start, end - start);
    host.erase(0, host.find_first_not_of(' '));
    host.erase(host.find_last_not_of(' ') + 1);
    if (!host.empty()) {
      if (host.find("://") == std::string::npos) {
        host = "nats://" + host;
      }
      settings.servers.push_back(host);
    }
    start = end + 1;
  }
  if (settings.servers.empty()) {
    return fail(ErrorCode::kConfig, prefix + "_HOSTS names no server");
  }
  settings.tls = env_bool(prefix + "_TLS", false);
  settings.ca_file = env_or(prefix + "_TLS_CA", "");
  if (env_bool(prefix + "_AUTH", false)) {
    settings.auth_type = env_or(prefix + "_AUTH_TYPE", "simple");
    settings.user = env_or(prefix + "_AUTH_USER", "");
    settings.password = env_or(prefix + "_AUTH_PASS", "");
    settings.token = settings.password;
    settings.credentials_file = env_or(prefix + "_AUTH_JWT", "");
    if (settings.auth_type != "simple" && settings.auth_type != "token"
        && settings.auth_type != "jwt") {
      return fail(ErrorCode::kConfig, prefix + "_AUTH_TYPE='" + settings.auth_type
                                          + "' is not one of simple, token, jwt");
    }
    if (settings.auth_type == "jwt" && settings.credentials_file.empty()) {
      return fail(ErrorCode::kConfig, prefix + "_AUTH_TYPE=jwt needs " + prefix + "_AUTH_JWT");
    }
  }
  return settings;
}

/// Reads the cluster settings (SPAWN_USE_INTERNAL_NATS=true).
Result<cluster::ClusterSettings> cluster_settings(const Config& config) {
  cluster::ClusterSettings settings;
  auto nats = nats_settings("SPAWN_INTERNAL_NATS", "nats://127.0.0.1:4222");
  if (!nats) {
    return std::move(nats).error();
  }
  settings.nats = std::move(*nats);
  settings.prefix = env_or("SPAWN_CLUSTER_PREFIX", settings.prefix);
  settings.node = cluster::make_node_name(config.node);
  settings.address = host_name() + ":" + std::to_string(config.http_port);
  auto heartbeat = env_ms("SPAWN_CLUSTER_HEARTBEAT_INTERVAL", 1000);
  if (!heartbeat) {
    return std::move(heartbeat).error();
  }
  auto timeout = env_ms("SPAWN_CLUSTER_NODE_TIMEOUT", 3000);
  if (!timeout) {
    return std::move(timeout).error();
  }
  if (heartbeat->count() < 10) {
    return fail(ErrorCode::kConfig, "SPAWN_CLUSTER_HEARTBEAT_INTERVAL must be at least 10 ms");
  }
  settings.heartbeat = *heartbeat;
  settings.node_timeout = *timeout;
  auto placement = env_or("SPAWN_CLUSTER_PLACEMENT", "round-robin");
  if (placement == "random") {
    settings.placement = cluster::ClusterSettings::Placement::kRandom;
  } else if (placement != "round-robin") {
    return fail(ErrorCode::kConfig,
                "SPAWN_CLUSTER_PLACEMENT='" + placement + "' is not one of round-robin, random");
  }
  return settings;
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
  if (env_bool("SPAWN_USE_INTERNAL_NATS", false)) {
    auto settings = cluster_settings(config);
    if (!settings) {
      return std::move(settings).error();
    }
    config.cluster = std::move(*settings);
  }
  auto adapter = env_or("SPAWN_PUBSUB_ADAPTER", "native");
  if (adapter == "nats") {
    auto settings = nats_settings("SPAWN_PUBSUB_NATS",
                                  env_or("SPAWN_INTERNAL_NATS_HOSTS", "nats://127.0.0.1:4222"));
    if (!settings) {
      return std::move(settings).error();
    }
    config.pubsub_nats = std::move(*settings);
  } else if (adapter != "native") {
    return fail(ErrorCode::kConfig,
                "SPAWN_PUBSUB_ADAPTER='" + adapter + "' is not one of native, nats");
  }
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
