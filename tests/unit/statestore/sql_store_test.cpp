// The SQL server stores (PostgreSQL, CockroachDB's dialect on PostgreSQL, MySQL/MariaDB) beyond
// the conformance suite: opening (errors, migrations), group commit, and compare-and-set between
// two stores (two proxies) on one database. Needs the test servers in SPAWN_TEST_POSTGRES and
// SPAWN_TEST_MYSQL (scripts/start-databases.sh); skips without them, fails under CI=true.

#include <cstdlib>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "sql_test_servers.hpp"
#include "statestore/queued_store.hpp"
#include "store_test_util.hpp"
#ifdef SPAWN_WITH_POSTGRES
#include "statestore/postgres/postgres_store.hpp"
#endif
#ifdef SPAWN_WITH_MYSQL
#include "statestore/mysql/mysql_store.hpp"
#endif

namespace spawn::statestore {
namespace {

using statestore::testing::run_task;
using statestore::testing::ServerSettings;
using statestore::testing::TempDir;

/// What a test sets; each backend turns it into its own options.
struct Settings {
  std::string host;
  std::uint16_t port = 0;
  std::string database;
  std::string user;
  std::string password;
  bool group_commit = true;
};

/// One SQL server backend as these tests drive it.
struct Backend {
  std::string name;
  const char* variable;
  const char* server;
  void (*create_database)(const ServerSettings&, const std::string&);
  void (*drop_database)(const ServerSettings&, const std::string&);
  std::string (*table_bytes)(const ServerSettings&, const std::string&);
  void (*exec)(const ServerSettings&, const std::string&, const std::string&);
  /// SQL that fails unless schema_version holds exactly one row, version 1.
  const char* check_one_version;
  /// SQL that records a schema version newer than this build's.
  const char* insert_newer_version;
  Result<std::unique_ptr<QueuedStore>> (*open)(const Settings&);
};

void PrintTo(const Backend& backend, std::ostream* out) {
  *out << backend.name;
}

template <class Options>
Options common_options(const Settings& settings) {
  Options options;
  options.host = settings.host;
  options.port = settings.port;
  options.database = settings.database;
  options.user = settings.user;
  options.password = settings.password;
  options.group_commit = settings.group_commit;
  options.readers = 2;
  options.node = "node-1";
  return options;
}

std::vector<Backend> backends() {
  std::vector<Backend> list;
#ifdef SPAWN_WITH_POSTGRES
  namespace pg = statestore::testing::pg;
  for (auto dialect : {postgres::Dialect::kPostgres, postgres::Dialect::kCockroach}) {
    const bool plain = dialect == postgres::Dialect::kPostgres;
    list.push_back(Backend{
        plain ? "postgres" : "cockroachdb_on_postgres", "SPAWN_TEST_POSTGRES", "postgres",
        pg::create_database, pg::drop_database, pg::table_bytes, pg::exec,
        "DO $$ BEGIN IF (SELECT count(*) FROM schema_version) <> 1 OR "
        "(SELECT max(version) FROM schema_version) <> 1 THEN "
        "RAISE EXCEPTION 'expected exactly version 1'; END IF; END $$",
        "INSERT INTO schema_version VALUES (99, now())",
        plain ? +[](const Settings& settings) {
          auto options = common_options<postgres::Options>(settings);
          options.dialect = postgres::Dialect::kPostgres;
          return postgres::open_store(std::move(options));
        }
              : +[](const Settings& settings) {
                  auto options = common_options<postgres::Options>(settings);
                  options.dialect = postgres::Dialect::kCockroach;
                  return postgres::open_store(std::move(options));
                }});
  }
#endif
#ifdef SPAWN_WITH_MYSQL
  namespace my = statestore::testing::my;
  list.push_back(Backend{
      "mariadb", "SPAWN_TEST_MYSQL", "mariadb", my::create_database, my::drop_database,
      my::table_bytes, my::exec,
      "IF (SELECT COUNT(*) FROM schema_version) <> 1 OR "
      "(SELECT MAX(version) FROM schema_version) <> 1 THEN "
      "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'expected exactly version 1'; END IF",
      "INSERT INTO schema_version VALUES (99, UTC_TIMESTAMP(6))", [](const Settings& settings) {
        return mysql::open_store(common_options<mysql::Options>(settings));
      }});
#endif
  return list;
}

Snapshot make_snapshot(std::string data) {
  Snapshot snapshot;
  snapshot.status = ActorStatus::kActivated;
  snapshot.tags = {{"k", "v"}};
  snapshot.has_state = true;
  snapshot.type_url = "type.googleapis.com/example.Counter";
  snapshot.data = std::move(data);
  return snapshot;
}

class SqlStoreTest : public ::testing::TestWithParam<Backend> {
protected:
  void SetUp() override {
    const std::string missing = statestore::testing::server_missing(backend().variable);
    if (!missing.empty()) {
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") {
        FAIL() << "CI=true and the " << backend().server << " server is missing: " << missing;
      }
      GTEST_SKIP() << missing;
    }
    server_ = *statestore::testing::server_from_env(backend().variable);
    database_ = dir_.path().filename().string();
    backend().create_database(server_, database_);
    created_ = true;
  }

  void TearDown() override {
    if (created_) {
      backend().drop_database(server_, database_);
    }
  }

  static const Backend& backend() { return GetParam(); }

  Settings options() const {
    return Settings{server_.host, server_.port, database_, server_.user, server_.password};
  }

  static Result<std::unique_ptr<QueuedStore>> open_with(const Settings& settings) {
    return backend().open(settings);
  }

  std::unique_ptr<QueuedStore> open(const Settings& settings) {
    Result<std::unique_ptr<QueuedStore>> store = open_with(settings);
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(*store) : nullptr;
  }

  TempDir dir_;
  ServerSettings server_;
  std::string database_;
  bool created_ = false;
};

TEST_P(SqlStoreTest, UnreachableServerIsUnavailableNamingTheAddress) {
  Settings unreachable = options();
  unreachable.port = 1;

  Result<std::unique_ptr<QueuedStore>> store = open_with(unreachable);

  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable) << store.error().message;
  EXPECT_NE(store.error().message.find("127.0.0.1:1/" + database_), std::string::npos)
      << store.error().message;
  EXPECT_EQ(store.error().message.find('\n'), std::string::npos) << store.error().message;
}

TEST_P(SqlStoreTest, WrongPasswordIsConfigErrorThatKeepsTheSecret) {
  Settings wrong = options();
  wrong.password = "not-the-password-4711";

  Result<std::unique_ptr<QueuedStore>> store = open_with(wrong);

  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig) << store.error().message;
  EXPECT_NE(store.error().message.find(database_), std::string::npos) << store.error().message;
  EXPECT_EQ(store.error().message.find("not-the-password-4711"), std::string::npos)
      << store.error().message;
}

TEST_P(SqlStoreTest, MissingDatabaseIsConfigError) {
  Settings missing = options();
  missing.database = database_ + "-missing";

  Result<std::unique_ptr<QueuedStore>> store = open_with(missing);

  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig) << store.error().message;
}

TEST_P(SqlStoreTest, OpenRecordsTheSchemaVersionOnce) {
  open(options()).reset();
  open(options()).reset();

  EXPECT_EQ(backend().table_bytes(server_, database_), "");  // no state rows yet
  backend().exec(server_, database_, backend().check_one_version);
}

TEST_P(SqlStoreTest, RefusesADatabaseWithANewerSchema) {
  open(options()).reset();
  backend().exec(server_, database_, backend().insert_newer_version);

  Result<std::unique_ptr<QueuedStore>> store = open_with(options());

  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig) << store.error().message;
  EXPECT_NE(store.error().message.find("schema version 99"), std::string::npos)
      << store.error().message;
}

TEST_P(SqlStoreTest, ConcurrentOpensOfAFreshDatabaseBothSucceed) {
  std::vector<std::thread> threads;
  std::vector<std::string> errors(4);
  for (std::size_t i = 0; i < errors.size(); ++i) {
    threads.emplace_back([this, i, &errors] {
      Result<std::unique_ptr<QueuedStore>> store = open_with(options());
      if (!store) {
        errors[i] = store.error().message;
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  for (const std::string& error : errors) {
    EXPECT_EQ(error, "");
  }
}

TEST_P(SqlStoreTest, GroupCommitBatchesConcurrentWrites) {
  std::unique_ptr<QueuedStore> store = open(options());
  ASSERT_NE(store, nullptr);
  constexpr int kWrites = 2000;
  asio::io_context io;
  int failures = 0;
  for (int i = 0; i < kWrites; ++i) {
    asio::co_spawn(io, store->save({"sys", "actor-" + std::to_string(i)}, make_snapshot("x"), 0),
                   [&failures](std::exception_ptr e, Result<std::int64_t> saved) {
                     failures += (e || !saved) ? 1 : 0;
                   });
  }
  io.run();

  EXPECT_EQ(failures, 0);
  EXPECT_LT(store->transactions(), kWrites / 4);
}

TEST_P(SqlStoreTest, WithoutGroupCommitEachWriteIsItsOwnTransaction) {
  Settings single = options();
  single.group_commit = false;
  std::unique_ptr<QueuedStore> store = open(single);
  ASSERT_NE(store, nullptr);
  constexpr int kWrites = 50;
  asio::io_context io;
  for (int i = 0; i < kWrites; ++i) {
    asio::co_spawn(io, store->save({"sys", "a" + std::to_string(i)}, make_snapshot("x"), 0),
                   [](std::exception_ptr, Result<std::int64_t>) {});
  }
  io.run();
  // The writer counts a transaction after completing its writes; one more write makes sure the
  // count of the first kWrites is in.
  ASSERT_TRUE(run_task(store->save({"sys", "last"}, make_snapshot("x"), 0)));

  EXPECT_GE(store->transactions(), static_cast<std::uint64_t>(kWrites));
  EXPECT_LE(store->transactions(), static_cast<std::uint64_t>(kWrites + 1));
}

TEST_P(SqlStoreTest, TwoStoresOnOneDatabaseNeverBothWinARevision) {
  std::unique_ptr<QueuedStore> first = open(options());
  std::unique_ptr<QueuedStore> second = open(options());
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  constexpr int kActors = 50;
  constexpr int kRounds = 3;
  // Every round, both stores (two proxies) save every actor at the same expected revision, all
  // at once, so the two writer threads race on the same rows.
  for (int round = 0; round < kRounds; ++round) {
    asio::io_context io;
    std::vector<int> wins(kActors, 0);
    std::vector<int> conflicts(kActors, 0);
    for (int actor = 0; actor < kActors; ++actor) {
      const ActorKey key{"sys", "raced-" + std::to_string(actor)};
      for (QueuedStore* store : {first.get(), second.get()}) {
        asio::co_spawn(io, store->save(key, make_snapshot("x"), round),
                       [&wins, &conflicts, actor](std::exception_ptr, Result<std::int64_t> saved) {
                         if (saved) {
                           ++wins[static_cast<std::size_t>(actor)];
                         } else if (saved.error().code == ErrorCode::kConflict) {
                           ++conflicts[static_cast<std::size_t>(actor)];
                         }
                       });
      }
    }
    io.run();
    for (int actor = 0; actor < kActors; ++actor) {
      ASSERT_EQ(wins[static_cast<std::size_t>(actor)], 1)
          << "actor " << actor << " round " << round;
      ASSERT_EQ(conflicts[static_cast<std::size_t>(actor)], 1)
          << "actor " << actor << " round " << round;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Servers, SqlStoreTest, ::testing::ValuesIn(backends()),
                         [](const ::testing::TestParamInfo<Backend>& backend) {
                           return backend.param.name;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(SqlStoreTest);

}  // namespace
}  // namespace spawn::statestore
