#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spawn/result.hpp"

// libpq's types, without its header in ours.
struct pg_conn;
struct pg_result;

namespace spawn::statestore::postgres {

/// Where and how to connect; the password never appears in a message.
struct ConnectionSettings {
  std::string host;
  std::uint16_t port = 5432;
  std::string database;
  std::string user;
  std::string password;
  /// sslmode=require; with `ssl_verify`, verify-full (CA from PGSSLROOTCERT or
  /// ~/.postgresql/root.crt).
  bool ssl = false;
  bool ssl_verify = false;
  std::chrono::seconds connect_timeout{5};

  /// Returns "<host>:<port>/<database>", the address every message names.
  [[nodiscard]] std::string address() const;
};

/// Parameters of one statement, all sent in binary format (so no escaping and no NUL
/// terminators). Types are fixed by the casts in the statement text.
class Params {
public:
  Params& text(std::string_view value) { return add(value.data(), value.size()); }

  Params& bytes(std::string_view value) { return add(value.data(), value.size()); }

  Params& null() {
    values_.push_back(nullptr);
    lengths_.push_back(0);
    formats_.push_back(1);
    return *this;
  }

  Params& int64(std::int64_t value);

  Params& boolean(bool value);

  [[nodiscard]] int size() const { return static_cast<int>(values_.size()); }

  [[nodiscard]] const char* const* values() const { return values_.data(); }

  [[nodiscard]] const int* lengths() const { return lengths_.data(); }

  [[nodiscard]] const int* formats() const { return formats_.data(); }

private:
  Params& add(const char* data, std::size_t length);

  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  // Encoded numbers; a deque never moves its elements, so values_ may point into them.
  std::deque<std::string> owned_;
};

/// The rows of a statement, read in binary format. Owns its PGresult.
class Rows {
public:
  explicit Rows(pg_result* result);

  Rows(Rows&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

  Rows& operator=(Rows&& other) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows();

  [[nodiscard]] int count() const;
  [[nodiscard]] bool is_null(int row, int column) const;
  [[nodiscard]] std::string_view bytes(int row, int column) const;
  /// A BIGINT column (8 bytes, network order); an INTEGER (4 bytes) column is read too.
  [[nodiscard]] std::int64_t int64(int row, int column) const;
  [[nodiscard]] bool boolean(int row, int column) const;

private:
  pg_result* result_;
};

/// One libpq connection, used by one thread at a time. Blocking: only store threads use it.
///
/// It remembers the statements prepared on it and prepares them again after a reconnect.
/// Failures are kUnavailable when the connection is lost or the server refuses work for now
/// (SQLSTATE classes 08, 53, 57P), kInvalidArgument for bad data (class 22), kConfig for bad
/// credentials or a missing database (28, 3D), kInternal otherwise; every message starts with
/// "postgres <host>:<port>/<database>: " and is one line.
class Connection {
public:
  /// Connects. A refused or unreachable server is kUnavailable, wrong credentials or an unknown
  /// database kConfig.
  static Result<std::unique_ptr<Connection>> open(ConnectionSettings settings);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  /// Prepares `sql` as statement `name`, now and after every reconnect.
  Result<void> prepare(std::string name, std::string sql);

  /// Runs a prepared statement and returns its rows (none for commands).
  Result<Rows> run(const std::string& name, const Params& params);

  /// Runs `sql` (one or more statements, no parameters) and returns the last one's rows.
  Result<Rows> exec(const std::string& sql);

  /// Returns true once libpq has found the connection broken (the server went away).
  [[nodiscard]] bool broken() const;

  /// Reconnects (and prepares the statements again) when broken(); otherwise does nothing.
  Result<void> ensure_connected();

  /// The SQLSTATE of the last failed statement ("" when it had none, e.g. a lost connection).
  [[nodiscard]] const std::string& last_sqlstate() const { return last_sqlstate_; }

  /// Returns "postgres <host>:<port>/<database>".
  [[nodiscard]] std::string name() const { return "postgres " + settings_.address(); }

  /// Returns the server process id of this connection (for tests that end it server-side).
  [[nodiscard]] int backend_pid() const;

private:
  explicit Connection(ConnectionSettings settings) : settings_(std::move(settings)) {}

  Result<void> connect();
  Error failure(pg_result* result);

  ConnectionSettings settings_;
  pg_conn* conn_ = nullptr;
  std::vector<std::pair<std::string, std::string>> prepared_;
  std::string last_sqlstate_;
};

}  // namespace spawn::statestore::postgres
