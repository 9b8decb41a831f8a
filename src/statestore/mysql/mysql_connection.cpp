#include "statestore/mysql/mysql_connection.hpp"

#include <cstdlib>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "statestore/snapshot_codec.hpp"

namespace spawn::statestore::mysql {

namespace {

// Errors that mean the connection is gone: the server went away, was restarted or killed it.
bool is_connection_lost(unsigned error_number) {
  switch (error_number) {
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case ER_CONNECTION_KILLED:
    case ER_SERVER_SHUTDOWN:
    case ER_QUERY_INTERRUPTED:
      return true;
    default:
      return false;
  }
}

ErrorCode code_for(unsigned error_number) {
  if (is_connection_lost(error_number) || is_retryable(error_number)) {
    return ErrorCode::kUnavailable;
  }
  switch (error_number) {
    case ER_ACCESS_DENIED_ERROR:
    case ER_DBACCESS_DENIED_ERROR:
    case ER_BAD_DB_ERROR:
      return ErrorCode::kConfig;
    case ER_DATA_TOO_LONG:
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
      return ErrorCode::kInvalidArgument;
    default:
      return ErrorCode::kInternal;
  }
}

}  // namespace

bool is_retryable(unsigned error_number) {
  return error_number == ER_LOCK_DEADLOCK || error_number == ER_LOCK_WAIT_TIMEOUT;
}

std::string ConnectionSettings::address() const {
  return host + ":" + std::to_string(port) + "/" + database;
}

Rows::Rows(st_mysql_res* result, std::uint64_t affected) : affected_(affected) {
  if (result == nullptr) {
    return;
  }
  const unsigned columns = mysql_num_fields(result);
  while (MYSQL_ROW row = mysql_fetch_row(result)) {
    const unsigned long* lengths = mysql_fetch_lengths(result);
    std::vector<std::string> values;
    std::vector<bool> nulls;
    values.reserve(columns);
    nulls.reserve(columns);
    for (unsigned column = 0; column < columns; ++column) {
      nulls.push_back(row[column] == nullptr);
      values.emplace_back(row[column] == nullptr ? "" : std::string(row[column], lengths[column]));
    }
    rows_.push_back(std::move(values));
    nulls_.push_back(std::move(nulls));
  }
  mysql_free_result(result);
}

bool Rows::is_null(std::size_t row, std::size_t column) const {
  return nulls_[row][column];
}

const std::string& Rows::bytes(std::size_t row, std::size_t column) const {
  return rows_[row][column];
}

std::int64_t Rows::int64(std::size_t row, std::size_t column) const {
  return std::strtoll(rows_[row][column].c_str(), nullptr, 10);
}

Result<std::unique_ptr<Connection>> Connection::open(ConnectionSettings settings) {
  std::unique_ptr<Connection> connection(new Connection(std::move(settings)));
  if (Result<void> connected = connection->connect(); !connected) {
    return std::move(connected).error();
  }
  return connection;
}

Connection::~Connection() {
  if (conn_ != nullptr) {
    mysql_close(conn_);
  }
}

Result<void> Connection::connect() {
  if (conn_ != nullptr) {
    mysql_close(conn_);
  }
  conn_ = mysql_init(nullptr);
  if (conn_ == nullptr) {
    return fail(ErrorCode::kInternal, name() + ": out of memory");
  }
  const unsigned connect_timeout =
      static_cast<unsigned>(std::max<std::int64_t>(settings_.connect_timeout.count(), 1));
  // A server that vanished without closing the socket fails a statement after 30 s instead of
  // blocking the writer forever.
  const unsigned io_timeout = 30;
  const my_bool no = 0;
  const my_bool yes = 1;
  mysql_options(conn_, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(conn_, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
  mysql_options(conn_, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
  // We reconnect ourselves, between transactions, never silently inside one.
  mysql_options(conn_, MYSQL_OPT_RECONNECT, &no);
  mysql_options(conn_, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if (settings_.ssl || settings_.ssl_verify) {
    mysql_options(conn_, MYSQL_OPT_SSL_ENFORCE, &yes);
  }
  mysql_options(conn_, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, settings_.ssl_verify ? &yes : &no);
  if (mysql_real_connect(conn_, settings_.host.c_str(), settings_.user.c_str(),
                         settings_.password.c_str(), settings_.database.c_str(), settings_.port,
                         nullptr, 0)
      == nullptr) {
    last_errno_ = mysql_errno(conn_);
    const std::string message = one_line(mysql_error(conn_));
    mysql_close(conn_);
    conn_ = nullptr;
    broken_ = true;
    const ErrorCode code =
        code_for(last_errno_) == ErrorCode::kConfig ? ErrorCode::kConfig : ErrorCode::kUnavailable;
    return fail(code, name() + " as user '" + settings_.user + "': cannot connect: " + message);
  }
  broken_ = false;
  // Compare-and-set locks the row it reads (SELECT ... FOR UPDATE); READ COMMITTED takes no gap
  // locks, so writers of different actors never block each other. utf8mb4_bin compares bytes.
  for (const char* setting :
       {"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "SET NAMES utf8mb4 COLLATE utf8mb4_bin", "SET SESSION time_zone = '+00:00'"}) {
    if (Result<Rows> set = exec(setting); !set) {
      return set.error().with_context("configure session");
    }
  }
  return ok();
}

Result<Rows> Connection::exec(std::string_view sql) {
  if (conn_ == nullptr || broken_) {
    broken_ = true;
    return fail(ErrorCode::kUnavailable, name() + ": not connected");
  }
  if (mysql_real_query(conn_, sql.data(), sql.size()) != 0) {
    return failure();
  }
  MYSQL_RES* result = mysql_store_result(conn_);
  if (result == nullptr && mysql_field_count(conn_) != 0) {
    return failure();
  }
  const std::uint64_t affected = result == nullptr ? mysql_affected_rows(conn_) : 0;
  return Rows(result, affected);
}

std::string Connection::quote(std::string_view text) const {
  std::string escaped(text.size() * 2 + 3, '\0');
  escaped[0] = '\'';
  const unsigned long length =
      mysql_real_escape_string(conn_, escaped.data() + 1, text.data(), text.size());
  escaped.resize(length + 1);
  escaped += '\'';
  return escaped;
}

std::string Connection::blob(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string literal;
  literal.reserve(bytes.size() * 2 + 3);
  literal += "X'";
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    literal += kHex[byte >> 4];
    literal += kHex[byte & 0xf];
  }
  literal += '\'';
  return literal;
}

Result<void> Connection::ensure_connected() {
  if (!broken_ && conn_ != nullptr) {
    return ok();
  }
  return connect();
}

Error Connection::failure() {
  last_errno_ = mysql_errno(conn_);
  if (is_connection_lost(last_errno_)) {
    broken_ = true;
  }
  std::string message = one_line(mysql_error(conn_));
  if (broken_) {
    message = "connection lost: " + message;
  }
  return fail(code_for(last_errno_), name() + ": " + message);
}

}  // namespace spawn::statestore::mysql
