#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spawn/result.hpp"

#include "cluster/nats_cluster.hpp"

namespace spawn::proxy {

/// The proxy's configuration, read from Spawn's environment variables (PROTOCOL.md §7) plus our
/// own `SPAWN_PROXY_*` ones. Every variable is listed by config_variables().
struct Config {
  std::uint16_t http_port = 9001;
  std::string bind_address = "0.0.0.0";
  std::string actor_system_name = "spawn-system";
  std::string user_function_host = "0.0.0.0";
  std::uint16_t user_function_port = 8090;
  std::size_t host_pool_size = 128;
  std::chrono::milliseconds host_timeout{60000};
  std::chrono::milliseconds request_timeout{10000};
  std::string database_type = "sqlite";
  std::string database_name = "eigr-functions-db";
  /// Database server settings (postgres, cockroachdb, mysql, mariadb); port 0 is the type's
  /// default (5432, 26257, 3306).
  std::string database_host = "127.0.0.1";
  std::uint16_t database_port = 0;
  std::string database_username = "admin";
  std::string database_secret = "admin";
  std::size_t database_pool_size = 4;
  bool database_ssl = false;
  bool database_ssl_verify = false;
  std::optional<std::string> statestore_key;
  bool group_commit = true;
  std::string log_level = "info";
  std::size_t max_body_bytes = 8 * 1024 * 1024;
  std::chrono::milliseconds drain{2000};
  std::size_t shards = 0;
  std::string node;
  /// SPAWN_USE_INTERNAL_NATS=true: the cluster to join; nullopt when this proxy runs alone.
  std::optional<cluster::ClusterSettings> cluster;
  /// SPAWN_PUBSUB_ADAPTER=nats: the NATS broadcasts travel on; nullopt for native (in process).
  std::optional<cluster::NatsSettings> pubsub_nats;

  /// Reads the environment. A malformed value is a kConfig error that names the variable.
  static Result<Config> from_env();
};

/// One documented environment variable.
struct ConfigVariable {
  std::string_view name;
  std::string_view fallback;
  std::string_view meaning;
};

/// Returns every variable the proxy reads, in the order `--help` prints them.
const std::vector<ConfigVariable>& config_variables();

/// Returns the `--help` text.
std::string usage();

}  // namespace spawn::proxy
