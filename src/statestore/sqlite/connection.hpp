#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "spawn/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace spawn::statestore::sqlite {

/// Builds the `Error` for SQLite result code `rc` on `db`: "sqlite '<file>': <errmsg>".
/// Busy, locked, I/O, disk-full and cannot-open errors are kUnavailable (worth retrying later),
/// corruption is kDataLoss, everything else kInternal.
Error sqlite_error(sqlite3* db, int rc);

/// One prepared statement; owned by the thread that owns its connection.
///
/// Text and blob parameters are bound without copying, so the bound values must outlive the
/// statement's next `reset()`.
class Statement {
public:
  Statement() = default;

  /// Takes ownership of `stmt`.
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}

  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  /// Binds parameter `index` (1-based). SQLite only fails these on a bad index, a programming
  /// error, so they return nothing; a misuse shows as an error at `step()`.
  void bind_text(int index, std::string_view text);
  void bind_blob(int index, std::string_view bytes);
  void bind_int64(int index, std::int64_t value);
  void bind_null(int index);

  /// Runs the statement one step. Returns true when a row is available, false when done.
  Result<bool> step();

  /// Makes the statement ready to run again and drops its bindings.
  void reset();
  /// As reset() but keeps the bound values: only for a statement whose every parameter is
  /// bound again before its next step or bound to memory that outlives the statement (text and
  /// blobs are bound without a copy, so a kept binding may point at memory that is gone).
  void reset_keeping_bindings();

  /// Column accessors for the current row (0-based). Views stay valid until the next step or
  /// reset. A NULL column reads as "" or 0.
  [[nodiscard]] std::string_view column_text(int index) const;
  [[nodiscard]] std::string_view column_blob(int index) const;
  [[nodiscard]] std::int64_t column_int64(int index) const;

private:
  sqlite3_stmt* stmt_ = nullptr;
};

/// One SQLite connection to one database file, used by one thread at a time (it is opened in
/// SQLite's multi-thread mode, which does no locking of its own).
class Connection {
public:
  /// Opens `file`; `create` also creates the file when missing (its parent must exist). Sets a
  /// busy timeout so a lock held by another connection is waited for, not failed at once.
  static Result<Connection> open(const std::filesystem::path& file, bool create,
                                 int busy_timeout_ms);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  ~Connection();

  /// Runs one or more SQL statements, discarding any rows.
  Result<void> exec(const char* sql);

  /// Runs a statement that returns one text value (e.g. a PRAGMA); nullopt when it returns none.
  Result<std::optional<std::string>> query_text(const char* sql);

  /// Returns how many rows the last INSERT, UPDATE or DELETE that finished on this connection
  /// changed (rows changed by triggers not counted).
  [[nodiscard]] std::int64_t changes() const;

  /// Returns the rowid of the row the last successful INSERT on this connection added.
  [[nodiscard]] std::int64_t last_insert_rowid() const;

  /// Compiles `sql` into a reusable statement.
  Result<Statement> prepare(std::string_view sql);

  /// Returns the error for result code `rc` on this connection (see sqlite_error()).
  [[nodiscard]] Error error(int rc) const { return sqlite_error(db_, rc); }

private:
  explicit Connection(sqlite3* db) : db_(db) {}

  sqlite3* db_ = nullptr;
};

}  // namespace spawn::statestore::sqlite
