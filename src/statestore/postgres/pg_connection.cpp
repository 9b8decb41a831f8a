#include "statestore/postgres/pg_connection.hpp"

#include <array>
#include <cstring>

#include <libpq-fe.h>

#include "statestore/snapshot_codec.hpp"

namespace spawn::statestore::postgres {

namespace {

// Notices ("relation already exists, skipping") would go to stderr; they carry nothing we need.
void ignore_notice(void* /*arg*/, const char* /*message*/) {}

// What a SQLSTATE means for the caller (PostgreSQL and CockroachDB share the codes).
ErrorCode code_for(std::string_view sqlstate) {
  const std::string_view klass = sqlstate.substr(0, std::min<std::size_t>(2, sqlstate.size()));
  if (klass == "08" || klass == "53" || klass == "57" || sqlstate == "40001"
      || sqlstate == "40P01") {
    return ErrorCode::kUnavailable;
  }
  if (klass == "22") {
    return ErrorCode::kInvalidArgument;
  }
  if (klass == "28" || klass == "3D") {
    return ErrorCode::kConfig;
  }
  return ErrorCode::kInternal;
}

}  // namespace

std::string ConnectionSettings::address() const {
  return host + ":" + std::to_string(port) + "/" + database;
}

Params& Params::add(const char* data, std::size_t length) {
  // A zero-length value still needs a non-null pointer, or libpq sends NULL.
  values_.push_back(length == 0 ? "" : data);
  lengths_.push_back(static_cast<int>(length));
  formats_.push_back(1);
  return *this;
}

Params& Params::int64(std::int64_t value) {
  std::string encoded(8, '\0');
  auto bits = static_cast<std::uint64_t>(value);
  for (int i = 7; i >= 0; --i) {
    encoded[static_cast<std::size_t>(i)] = static_cast<char>(bits & 0xff);
    bits >>= 8;
  }
  owned_.push_back(std::move(encoded));
  return add(owned_.back().data(), 8);
}

Params& Params::boolean(bool value) {
  owned_.emplace_back(1, value ? '\1' : '\0');
  return add(owned_.back().data(), 1);
}

Rows::Rows(pg_result* result) : result_(result) {}

Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

Rows::~Rows() {
  PQclear(result_);
}

int Rows::count() const {
  return result_ == nullptr ? 0 : PQntuples(result_);
}

bool Rows::is_null(int row, int column) const {
  return PQgetisnull(result_, row, column) != 0;
}

std::string_view Rows::bytes(int row, int column) const {
  return {PQgetvalue(result_, row, column),
          static_cast<std::size_t>(PQgetlength(result_, row, column))};
}

std::int64_t Rows::int64(int row, int column) const {
  const std::string_view raw = bytes(row, column);
  std::uint64_t bits = 0;
  for (const char c : raw) {
    bits = (bits << 8) | static_cast<unsigned char>(c);
  }
  if (raw.size() == 4) {
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(bits));
  }
  return static_cast<std::int64_t>(bits);
}

bool Rows::boolean(int row, int column) const {
  const std::string_view raw = bytes(row, column);
  return !raw.empty() && raw[0] != 0;
}

Result<std::unique_ptr<Connection>> Connection::open(ConnectionSettings settings) {
  std::unique_ptr<Connection> connection(new Connection(std::move(settings)));
  if (Result<void> connected = connection->connect(); !connected) {
    return std::move(connected).error();
  }
  return connection;
}

Connection::~Connection() {
  PQfinish(conn_);
}

Result<void> Connection::connect() {
  PQfinish(conn_);
  conn_ = nullptr;
  const std::string port = std::to_string(settings_.port);
  const std::string timeout =
      std::to_string(std::max<std::int64_t>(settings_.connect_timeout.count(), 2));
  const char* sslmode = settings_.ssl_verify ? "verify-full"
                        : settings_.ssl      ? "require"
                                             : "disable";
  // Keepalives and tcp_user_timeout make a server that vanished without closing the socket (a
  // network partition) a failed statement after ~30 s instead of a writer stuck forever.
  const std::array<const char*, 15> keys = {"host",
                                            "port",
                                            "dbname",
                                            "user",
                                            "password",
                                            "sslmode",
                                            "connect_timeout",
                                            "application_name",
                                            "keepalives",
                                            "keepalives_idle",
                                            "keepalives_interval",
                                            "keepalives_count",
                                            "tcp_user_timeout",
                                            "client_encoding",
                                            nullptr};
  const std::array<const char*, 15> values = {settings_.host.c_str(),
                                              port.c_str(),
                                              settings_.database.c_str(),
                                              settings_.user.c_str(),
                                              settings_.password.c_str(),
                                              sslmode,
                                              timeout.c_str(),
                                              "spawn-proxy",
                                              "1",
                                              "10",
                                              "5",
                                              "3",
                                              "30000",
                                              "UTF8",
                                              nullptr};
  conn_ = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/0);
  if (conn_ == nullptr) {
    return fail(ErrorCode::kInternal, name() + ": out of memory");
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = one_line(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    // libpq gives no SQLSTATE for a failed connection; the server's words tell the cases apart.
    const bool refused_login = message.find("authentication failed") != std::string::npos
                               || message.find("does not exist") != std::string::npos
                               || message.find("no pg_hba.conf entry") != std::string::npos
                               || message.find("password") != std::string::npos;
    return fail(refused_login ? ErrorCode::kConfig : ErrorCode::kUnavailable,
                name() + " as user '" + settings_.user + "': cannot connect: " + message);
  }
  PQsetNoticeProcessor(conn_, ignore_notice, nullptr);
  for (const auto& [statement, sql] : prepared_) {
    PGresult* result = PQprepare(conn_, statement.c_str(), sql.c_str(), 0, nullptr);
    if (PQresultStatus(result) != PGRES_COMMAND_OK) {
      Error error = failure(result);
      PQclear(result);
      return error.with_context("prepare '" + statement + "'");
    }
    PQclear(result);
  }
  return ok();
}

Result<void> Connection::prepare(std::string name, std::string sql) {
  PGresult* result = PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr);
  if (PQresultStatus(result) != PGRES_COMMAND_OK) {
    Error error = failure(result);
    PQclear(result);
    return error.with_context("prepare '" + name + "'");
  }
  PQclear(result);
  prepared_.emplace_back(std::move(name), std::move(sql));
  return ok();
}

Result<Rows> Connection::run(const std::string& statement, const Params& params) {
  if (conn_ == nullptr) {
    return fail(ErrorCode::kUnavailable, name() + ": not connected");
  }
  PGresult* result = PQexecPrepared(conn_, statement.c_str(), params.size(), params.values(),
                                    params.lengths(), params.formats(), /*resultFormat=*/1);
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Error error = failure(result);
    PQclear(result);
    return error;
  }
  return Rows(result);
}

Result<Rows> Connection::exec(const std::string& sql) {
  if (conn_ == nullptr) {
    return fail(ErrorCode::kUnavailable, name() + ": not connected");
  }
  PGresult* result = PQexec(conn_, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Error error = failure(result);
    PQclear(result);
    return error;
  }
  return Rows(result);
}

bool Connection::broken() const {
  return conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK;
}

Result<void> Connection::ensure_connected() {
  if (!broken()) {
    return ok();
  }
  return connect();
}

int Connection::backend_pid() const {
  return conn_ == nullptr ? 0 : PQbackendPID(conn_);
}

Error Connection::failure(pg_result* result) {
  const char* sqlstate = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  last_sqlstate_ = sqlstate == nullptr ? "" : sqlstate;
  const char* message = result == nullptr ? "" : PQresultErrorMessage(result);
  if (message == nullptr || *message == '\0') {
    message = PQerrorMessage(conn_);
  }
  ErrorCode code = code_for(last_sqlstate_);
  if (broken()) {
    code = ErrorCode::kUnavailable;
  }
  std::string text = one_line(message);
  if (broken() && last_sqlstate_.empty()) {
    text = "connection lost: " + text;
  }
  return fail(code, name() + ": " + text);
}

}  // namespace spawn::statestore::postgres
