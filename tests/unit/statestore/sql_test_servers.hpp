#pragma once

// The database servers the SQL statestore tests run against (started by
// scripts/start-databases.sh), and a TCP forwarder that lets a test cut and restore the network
// between a store and its server.
//
// SPAWN_TEST_POSTGRES / SPAWN_TEST_MYSQL hold "host=... port=... user=... password=..." (the
// user may create databases). Each test gets a fresh database named after its temp dir.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace spawn::statestore::testing {

/// Connection settings of a test server, from its environment variable.
struct ServerSettings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string user;
  std::string password;
};

/// Parses "host=h port=p user=u password=s" from `variable`; nullopt when it is unset/empty.
std::optional<ServerSettings> server_from_env(const char* variable);

/// Returns "" when tests that need `variable` can run. Otherwise the reason they cannot; the
/// caller skips with it, or fails when CI=true (STYLE.md §6: under CI a missing server fails).
std::string server_missing(const char* variable);

/// Admin operations on the PostgreSQL test server; every failure aborts the test with a message.
namespace pg {

/// Creates database `name` unless it exists.
void create_database(const ServerSettings& server, const std::string& name);
/// Drops database `name`, ending its connections first.
void drop_database(const ServerSettings& server, const std::string& name);
/// Returns every byte of every row of the statestore tables in `name`, read raw (binary), so a
/// plaintext check sees exactly what the server stores.
std::string table_bytes(const ServerSettings& server, const std::string& name);
/// Ends every other connection to database `name` server-side (pg_terminate_backend).
void terminate_connections(const ServerSettings& server, const std::string& name);
/// Runs `sql` in database `name`.
void exec(const ServerSettings& server, const std::string& name, const std::string& sql);

}  // namespace pg

/// Admin operations on the MariaDB/MySQL test server; every failure aborts the test.
namespace my {

void create_database(const ServerSettings& server, const std::string& name);
void drop_database(const ServerSettings& server, const std::string& name);
std::string table_bytes(const ServerSettings& server, const std::string& name);
/// Ends every other connection to database `name` server-side (KILL CONNECTION).
void terminate_connections(const ServerSettings& server, const std::string& name);
void exec(const ServerSettings& server, const std::string& name, const std::string& sql);

}  // namespace my

/// Forwards TCP connections from 127.0.0.1:<port()> to a target, on a thread of its own, until
/// cut(): then every forwarded connection is closed and new ones are refused, as when a database
/// server goes away; restore() accepts again on the same port.
class TcpForwarder {
public:
  TcpForwarder(std::string target_host, std::uint16_t target_port);
  ~TcpForwarder();
  TcpForwarder(const TcpForwarder&) = delete;
  TcpForwarder& operator=(const TcpForwarder&) = delete;

  [[nodiscard]] std::uint16_t port() const;
  /// Closes the listener and every forwarded connection; returns once they are closed.
  void cut();
  /// Listens again on the same port.
  void restore();

private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spawn::statestore::testing
