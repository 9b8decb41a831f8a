#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "spawn/result.hpp"

// libmariadb's types, without its header in ours.
struct st_mysql;
struct st_mysql_res;

namespace spawn::statestore::mysql {

/// Where and how to connect; the password never appears in a message.
struct ConnectionSettings {
  std::string host;
  std::uint16_t port = 3306;
  std::string database;
  std::string user;
  std::string password;
  /// TLS required (MYSQL_OPT_SSL_ENFORCE); with `ssl_verify`, the server certificate is checked
  /// (MYSQL_OPT_SSL_VERIFY_SERVER_CERT).
  bool ssl = false;
  bool ssl_verify = false;
  std::chrono::seconds connect_timeout{5};

  /// Returns "<host>:<port>/<database>", the address every message names.
  [[nodiscard]] std::string address() const;
};

/// The rows of a statement, all values as bytes (the text protocol sends blobs as they are).
class Rows {
public:
  Rows() = default;
  Rows(st_mysql_res* result, std::uint64_t affected);

  [[nodiscard]] std::size_t count() const { return rows_.size(); }

  [[nodiscard]] bool is_null(std::size_t row, std::size_t column) const;
  [[nodiscard]] const std::string& bytes(std::size_t row, std::size_t column) const;
  [[nodiscard]] std::int64_t int64(std::size_t row, std::size_t column) const;

  /// Rows an INSERT/UPDATE/DELETE changed (an upsert that changed nothing counts 0).
  [[nodiscard]] std::uint64_t affected() const { return affected_; }

private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<std::vector<bool>> nulls_;
  std::uint64_t affected_ = 0;
};

/// One libmariadb connection, used by one thread at a time. Blocking: only store threads use it.
///
/// Statements are text with literals escaped by quote() and blob(). Failures are kUnavailable
/// when the connection is lost or the server is busy (deadlock, lock wait timeout, shutdown),
/// kInvalidArgument for data that does not fit, kConfig for bad credentials or an unknown
/// database, kInternal otherwise; every message starts with "mysql <host>:<port>/<database>: ".
class Connection {
public:
  /// Connects. An unreachable server is kUnavailable, wrong credentials or an unknown database
  /// kConfig.
  static Result<std::unique_ptr<Connection>> open(ConnectionSettings settings);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  /// Runs one statement and returns its rows (none for commands).
  Result<Rows> exec(std::string_view sql);

  /// Returns `text` as an escaped, quoted string literal.
  [[nodiscard]] std::string quote(std::string_view text) const;

  /// Returns `bytes` as a hex literal (X'...'), safe for any bytes.
  [[nodiscard]] static std::string blob(std::string_view bytes);

  /// Returns true once a statement found the connection lost (the server went away).
  [[nodiscard]] bool broken() const { return broken_; }

  /// Reconnects when broken(); otherwise does nothing.
  Result<void> ensure_connected();

  /// The server error number of the last failed statement (0 when none).
  [[nodiscard]] unsigned last_errno() const { return last_errno_; }

  /// Returns "mysql <host>:<port>/<database>".
  [[nodiscard]] std::string name() const { return "mysql " + settings_.address(); }

private:
  explicit Connection(ConnectionSettings settings) : settings_(std::move(settings)) {}

  Result<void> connect();
  Error failure();

  ConnectionSettings settings_;
  st_mysql* conn_ = nullptr;
  bool broken_ = true;
  unsigned last_errno_ = 0;
};

/// Returns true for the errors after which a transaction may simply run again (deadlock, lock
/// wait timeout).
bool is_retryable(unsigned error_number);

}  // namespace spawn::statestore::mysql
