#include "statestore/sqlite/connection.hpp"

#include <utility>

#include <sqlite3.h>

namespace spawn::statestore::sqlite {

Error sqlite_error(sqlite3* db, int rc) {
  ErrorCode code = ErrorCode::kInternal;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
      code = ErrorCode::kUnavailable;
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      code = ErrorCode::kDataLoss;
      break;
    default:
      break;
  }
  const char* file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return fail(code, std::string("sqlite '") + (file != nullptr ? file : "?") + "': " + message);
}

Statement::Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

void Statement::bind_text(int index, std::string_view text) {
  sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

void Statement::bind_blob(int index, std::string_view bytes) {
  // A null pointer would bind NULL; an empty blob must stay an empty blob.
  static constexpr char kEmpty = 0;
  sqlite3_bind_blob64(stmt_, index, bytes.empty() ? &kEmpty : bytes.data(), bytes.size(),
                      SQLITE_STATIC);
}

void Statement::bind_int64(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
}

void Statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  return sqlite_error(sqlite3_db_handle(stmt_), rc);
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void Statement::reset_keeping_bindings() {
  sqlite3_reset(stmt_);
}

std::string_view Statement::column_text(int index) const {
  const auto* text = sqlite3_column_text(stmt_, index);
  const int size = sqlite3_column_bytes(stmt_, index);
  if (text == nullptr) {
    return {};
  }
  return {reinterpret_cast<const char*>(text), static_cast<std::size_t>(size)};
}

std::string_view Statement::column_blob(int index) const {
  const void* blob = sqlite3_column_blob(stmt_, index);
  const int size = sqlite3_column_bytes(stmt_, index);
  if (blob == nullptr) {
    return {};
  }
  return {static_cast<const char*>(blob), static_cast<std::size_t>(size)};
}

std::int64_t Statement::column_int64(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

namespace {

// SQLite keeps allocation statistics for sqlite3_status() by default, which takes a global mutex
// around every malloc and free of every connection; nothing here reads them. Switched off once,
// before the first connection initializes the library. sqlite3_config() must not run beside other
// SQLite calls: the statestore is this process's only SQLite user, and the static makes the first
// open do it. If the library was initialized already, it refuses (SQLITE_MISUSE) and nothing
// changes.
void configure_library() {
  static const int configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)configured;
}

}  // namespace

Result<Connection> Connection::open(const std::filesystem::path& file, bool create,
                                    int busy_timeout_ms) {
  configure_library();
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX
                    | SQLITE_OPEN_EXRESCODE;
  const int rc = sqlite3_open_v2(file.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    // sqlite3_db_filename() is empty when opening failed; name the file ourselves.
    Error error{ErrorCode::kUnavailable,
                "sqlite '" + file.string()
                    + "': " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc))};
    sqlite3_close_v2(db);
    return error;
  }
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return Connection(db);
}

Connection::Connection(Connection&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

Connection::~Connection() {
  sqlite3_close_v2(db_);
}

Result<void> Connection::exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    return error(rc);
  }
  return ok();
}

Result<std::optional<std::string>> Connection::query_text(const char* sql) {
  Result<Statement> statement = prepare(sql);
  if (!statement) {
    return std::move(statement).error();
  }
  Result<bool> row = statement->step();
  if (!row) {
    return std::move(row).error();
  }
  if (!*row) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(statement->column_text(0));
}

std::int64_t Connection::changes() const {
  return sqlite3_changes64(db_);
}

std::int64_t Connection::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

Result<Statement> Connection::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return error(rc);
  }
  return Statement(stmt);
}

}  // namespace spawn::statestore::sqlite
