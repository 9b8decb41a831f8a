#include "sql_test_servers.hpp"

#include <chrono>
#include <cstdlib>
#include <future>
#include <list>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#if SPAWN_WITH_POSTGRES
#include <libpq-fe.h>
#endif
#if SPAWN_WITH_MYSQL
#include <mysql.h>
#endif

namespace spawn::statestore::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

[[noreturn, maybe_unused]] void abort_test(const std::string& message) {
  // Admin steps are set-up: failing them makes the test meaningless, so stop loudly.
  ADD_FAILURE() << message;
  throw std::runtime_error(message);
}

[[maybe_unused]] const char* const kTables[] = {"snapshots", "historical_snapshots",
                                                "scheduled_invocations"};

}  // namespace

std::optional<ServerSettings> server_from_env(const char* variable) {
  const char* raw = std::getenv(variable);
  if (raw == nullptr || *raw == '\0') {
    return std::nullopt;
  }
  ServerSettings settings;
  std::istringstream words(raw);
  std::string word;
  while (words >> word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    const std::string key = word.substr(0, eq);
    const std::string value = word.substr(eq + 1);
    if (key == "host") {
      settings.host = value;
    } else if (key == "port") {
      settings.port = static_cast<std::uint16_t>(std::atoi(value.c_str()));
    } else if (key == "user") {
      settings.user = value;
    } else if (key == "password") {
      settings.password = value;
    }
  }
  return settings;
}

std::string server_missing(const char* variable) {
  if (server_from_env(variable)) {
    return "";
  }
  return std::string(variable)
         + " is not set; run: eval \"$(scripts/start-databases.sh)\" (needs postgresql and "
           "mariadb-server, see scripts/setup.sh)";
}

#if SPAWN_WITH_POSTGRES
namespace pg {

namespace {

std::string quote(const std::string& identifier) {
  return "\"" + identifier + "\"";
}

struct Conn {
  explicit Conn(const ServerSettings& server, const std::string& database) {
    const std::string port = std::to_string(server.port);
    const char* keys[] = {"host", "port", "dbname", "user", "password", "sslmode", nullptr};
    const char* values[] = {
        server.host.c_str(),     port.c_str(), database.c_str(), server.user.c_str(),
        server.password.c_str(), "disable",    nullptr};
    conn = PQconnectdbParams(keys, values, 0);
    if (PQstatus(conn) != CONNECTION_OK) {
      const std::string message = PQerrorMessage(conn);
      PQfinish(conn);
      conn = nullptr;
      abort_test("test postgres: connect to " + database + ": " + message);
    }
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
  }

  ~Conn() { PQfinish(conn); }

  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  PGresult* query(const std::string& sql, bool binary = false) const {
    PGresult* result =
        PQexecParams(conn, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, binary ? 1 : 0);
    const ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const std::string message = PQresultErrorMessage(result);
      PQclear(result);
      abort_test("test postgres: " + sql + ": " + message);
    }
    return result;
  }

  void run(const std::string& sql) const { PQclear(query(sql)); }

  PGconn* conn = nullptr;
};

}  // namespace

void create_database(const ServerSettings& server, const std::string& name) {
  Conn admin(server, "postgres");
  PGresult* found = admin.query("SELECT 1 FROM pg_database WHERE datname = '" + name + "'");
  const bool exists = PQntuples(found) > 0;
  PQclear(found);
  if (!exists) {
    admin.run("CREATE DATABASE " + quote(name));
  }
}

void drop_database(const ServerSettings& server, const std::string& name) {
  Conn admin(server, "postgres");
  // An autovacuum worker (another role) may still be in the fresh database, which FORCE may not
  // end without pg_signal_backend: it leaves within moments, so try again.
  const std::string sql = "DROP DATABASE IF EXISTS " + quote(name) + " WITH (FORCE)";
  for (int attempt = 0; attempt < 100; ++attempt) {
    PGresult* result = PQexec(admin.conn, sql.c_str());
    const bool dropped = PQresultStatus(result) == PGRES_COMMAND_OK;
    PQclear(result);
    if (dropped) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  admin.run(sql);
}

std::string table_bytes(const ServerSettings& server, const std::string& name) {
  Conn db(server, name);
  std::string bytes;
  for (const char* table : kTables) {
    PGresult* rows = db.query(std::string("SELECT * FROM ") + table, /*binary=*/true);
    for (int row = 0; row < PQntuples(rows); ++row) {
      for (int column = 0; column < PQnfields(rows); ++column) {
        bytes.append(PQgetvalue(rows, row, column),
                     static_cast<std::size_t>(PQgetlength(rows, row, column)));
        bytes += '|';
      }
    }
    PQclear(rows);
  }
  return bytes;
}

void terminate_connections(const ServerSettings& server, const std::string& name) {
  Conn admin(server, "postgres");
  // The timeout makes pg_terminate_backend wait until each backend has exited, so the store's
  // next statement finds its connection gone rather than racing the termination.
  admin.run("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '" + name
            + "' AND pid <> pg_backend_pid() AND usename = current_user");
}

void exec(const ServerSettings& server, const std::string& name, const std::string& sql) {
  Conn db(server, name);
  db.run(sql);
}

}  // namespace pg
#endif

#if SPAWN_WITH_MYSQL
namespace my {

namespace {

std::string quote(const std::string& identifier) {
  return "`" + identifier + "`";
}

struct Conn {
  Conn(const ServerSettings& server, const std::string& database) {
    conn = mysql_init(nullptr);
    if (mysql_real_connect(conn, server.host.c_str(), server.user.c_str(), server.password.c_str(),
                           database.empty() ? nullptr : database.c_str(), server.port, nullptr, 0)
        == nullptr) {
      const std::string message = mysql_error(conn);
      mysql_close(conn);
      conn = nullptr;
      abort_test("test mysql: connect to '" + database + "': " + message);
    }
  }

  ~Conn() { mysql_close(conn); }

  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Runs `sql`; returns its rows (may be null for commands). Caller frees.
  MYSQL_RES* query(const std::string& sql) const {
    if (mysql_real_query(conn, sql.data(), sql.size()) != 0) {
      abort_test("test mysql: " + sql + ": " + mysql_error(conn));
    }
    return mysql_store_result(conn);
  }

  void run(const std::string& sql) const { mysql_free_result(query(sql)); }

  MYSQL* conn = nullptr;
};

}  // namespace

void create_database(const ServerSettings& server, const std::string& name) {
  Conn admin(server, "");
  admin.run("CREATE DATABASE IF NOT EXISTS " + quote(name) + " CHARACTER SET utf8mb4");
}

void drop_database(const ServerSettings& server, const std::string& name) {
  terminate_connections(server, name);
  Conn admin(server, "");
  admin.run("DROP DATABASE IF EXISTS " + quote(name));
}

std::string table_bytes(const ServerSettings& server, const std::string& name) {
  Conn db(server, name);
  std::string bytes;
  for (const char* table : kTables) {
    MYSQL_RES* rows = db.query(std::string("SELECT * FROM ") + table);
    const unsigned columns = mysql_num_fields(rows);
    while (MYSQL_ROW row = mysql_fetch_row(rows)) {
      const unsigned long* lengths = mysql_fetch_lengths(rows);
      for (unsigned column = 0; column < columns; ++column) {
        if (row[column] != nullptr) {
          bytes.append(row[column], lengths[column]);
        }
        bytes += '|';
      }
    }
    mysql_free_result(rows);
  }
  return bytes;
}

void terminate_connections(const ServerSettings& server, const std::string& name) {
  Conn admin(server, "");
  MYSQL_RES* rows = admin.query("SELECT id FROM information_schema.processlist WHERE db = '" + name
                                + "' AND id <> connection_id()");
  std::vector<std::string> ids;
  while (MYSQL_ROW row = mysql_fetch_row(rows)) {
    ids.emplace_back(row[0]);
  }
  mysql_free_result(rows);
  for (const std::string& id : ids) {
    // The connection may have ended by itself in between: ignore "unknown thread id".
    const std::string sql = "KILL CONNECTION " + id;
    (void)mysql_real_query(admin.conn, sql.data(), sql.size());
  }
  if (ids.empty()) {
    return;
  }
  // KILL only marks a connection; wait until the server has closed them all, so the store's
  // next statement finds its connection gone rather than racing the kill.
  std::string in;
  for (const std::string& id : ids) {
    in += (in.empty() ? "" : ",") + id;
  }
  for (int attempt = 0; attempt < 500; ++attempt) {
    MYSQL_RES* alive =
        admin.query("SELECT COUNT(*) FROM information_schema.processlist WHERE id IN (" + in + ")");
    MYSQL_ROW row = mysql_fetch_row(alive);
    const bool gone = row != nullptr && std::string(row[0]) == "0";
    mysql_free_result(alive);
    if (gone) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void exec(const ServerSettings& server, const std::string& name, const std::string& sql) {
  Conn db(server, name);
  db.run(sql);
}

}  // namespace my
#endif

class TcpForwarder::Impl {
public:
  Impl(std::string target_host, std::uint16_t target_port)
      : target_(asio::ip::make_address(target_host), target_port),
        acceptor_(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
        port_(acceptor_.local_endpoint().port()),
        work_(io_.get_executor()) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~Impl() {
    work_.reset();
    on_io([this] {
      close_all();
      io_.stop();
    });
    thread_.join();
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  std::uint16_t port() const { return port_; }

  void cut() {
    on_io([this] { close_all(); });
  }

  void restore() {
    on_io([this] {
      boost::system::error_code ec;
      acceptor_.open(tcp::v4(), ec);
      acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
      acceptor_.bind(tcp::endpoint(asio::ip::address_v4::loopback(), port_), ec);
      acceptor_.listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        ADD_FAILURE() << "TcpForwarder: cannot listen again on port " << port_ << ": "
                      << ec.message();
        return;
      }
      accept();
    });
  }

private:
  struct Pair {
    explicit Pair(asio::io_context& io) : client(io), server(io) {}

    tcp::socket client;
    tcp::socket server;
    std::array<char, 16384> up{};
    std::array<char, 16384> down{};
  };

  // Runs `step` on the forwarder's thread and waits for it.
  void on_io(std::function<void()> step) {
    std::promise<void> done;
    asio::post(io_, [&] {
      step();
      done.set_value();
    });
    done.get_future().wait();
  }

  void close_all() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (const std::shared_ptr<Pair>& pair : pairs_) {
      pair->client.close(ec);
      pair->server.close(ec);
    }
    pairs_.clear();
  }

  void accept() {
    auto pair = std::make_shared<Pair>(io_);
    acceptor_.async_accept(pair->client, [this, pair](boost::system::error_code ec) {
      if (ec) {
        return;
      }
      pairs_.push_back(pair);
      pair->server.async_connect(target_, [this, pair](boost::system::error_code connect_ec) {
        if (connect_ec) {
          boost::system::error_code ignored;
          pair->client.close(ignored);
          return;
        }
        pump(pair, pair->client, pair->server, pair->up);
        pump(pair, pair->server, pair->client, pair->down);
      });
      accept();
    });
  }

  static void pump(const std::shared_ptr<Pair>& pair, tcp::socket& from, tcp::socket& to,
                   std::array<char, 16384>& buffer) {
    from.async_read_some(asio::buffer(buffer),
                         [pair, &from, &to, &buffer](boost::system::error_code ec, std::size_t n) {
                           if (ec) {
                             boost::system::error_code ignored;
                             to.shutdown(tcp::socket::shutdown_send, ignored);
                             return;
                           }
                           asio::async_write(to, asio::buffer(buffer.data(), n),
                                             [pair, &from, &to, &buffer](
                                                 boost::system::error_code write_ec, std::size_t) {
                                               if (write_ec) {
                                                 boost::system::error_code ignored;
                                                 from.close(ignored);
                                                 return;
                                               }
                                               pump(pair, from, to, buffer);
                                             });
                         });
  }

  asio::io_context io_;
  tcp::endpoint target_;
  tcp::acceptor acceptor_;
  std::uint16_t port_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::shared_ptr<Pair>> pairs_;
  std::thread thread_;
};

TcpForwarder::TcpForwarder(std::string target_host, std::uint16_t target_port)
    : impl_(std::make_unique<Impl>(std::move(target_host), target_port)) {}

TcpForwarder::~TcpForwarder() = default;

std::uint16_t TcpForwarder::port() const {
  return impl_->port();
}

void TcpForwarder::cut() {
  impl_->cut();
}

void TcpForwarder::restore() {
  impl_->restore();
}

}  // namespace spawn::statestore::testing
