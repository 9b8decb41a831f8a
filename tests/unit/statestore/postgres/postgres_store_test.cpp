// The PostgreSQL store beyond the conformance suite: opening (errors, migrations), group
// commit, and compare-and-set between two stores (two proxies) on one database. Needs the test
// server in SPAWN_TEST_POSTGRES (scripts/start-databases.sh); skips without it, fails under
// CI=true.

#include "statestore/postgres/postgres_store.hpp"

#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "sql_test_servers.hpp"
#include "store_test_util.hpp"

namespace spawn::statestore::postgres {
namespace {

using statestore::testing::run_task;
using statestore::testing::ServerSettings;
using statestore::testing::TempDir;
namespace pg = statestore::testing::pg;

constexpr const char* kVariable = "SPAWN_TEST_POSTGRES";

Snapshot make_snapshot(std::string data) {
  Snapshot snapshot;
  snapshot.status = ActorStatus::kActivated;
  snapshot.tags = {{"k", "v"}};
  snapshot.has_state = true;
  snapshot.type_url = "type.googleapis.com/example.Counter";
  snapshot.data = std::move(data);
  return snapshot;
}

class PostgresStoreTest : public ::testing::TestWithParam<Dialect> {
protected:
  void SetUp() override {
    const std::string missing = statestore::testing::server_missing(kVariable);
    if (!missing.empty()) {
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") {
        FAIL() << "CI=true and the postgres server is missing: " << missing;
      }
      GTEST_SKIP() << missing;
    }
    server_ = *statestore::testing::server_from_env(kVariable);
    database_ = dir_.path().filename().string();
    pg::create_database(server_, database_);
    created_ = true;
  }

  void TearDown() override {
    if (created_) {
      pg::drop_database(server_, database_);
    }
  }

  Options options() const {
    Options options;
    options.host = server_.host;
    options.port = server_.port;
    options.database = database_;
    options.user = server_.user;
    options.password = server_.password;
    options.dialect = GetParam();
    options.readers = 2;
    options.node = "node-1";
    return options;
  }

  std::unique_ptr<QueuedStore> open(Options options) {
    Result<std::unique_ptr<QueuedStore>> store = open_store(std::move(options));
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(*store) : nullptr;
  }

  TempDir dir_;
  ServerSettings server_;
  std::string database_;
  bool created_ = false;
};

TEST_P(PostgresStoreTest, UnreachableServerIsUnavailableNamingTheAddress) {
  Options unreachable = options();
  unreachable.port = 1;

  Result<std::unique_ptr<QueuedStore>> store = open_store(unreachable);

  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable) << store.error().message;
  EXPECT_NE(store.error().message.find("127.0.0.1:1/" + database_), std::string::npos)
      << store.error().message;
  EXPECT_EQ(store.error().message.find('\n'), std::string::npos) << store.error().message;
}

TEST_P(PostgresStoreTest, WrongPasswordIsConfigErrorThatKeepsTheSecret) {
  Options wrong = options();
  wrong.password = "not-the-password-4711";

  Result<std::unique_ptr<QueuedStore>> store = open_store(wrong);

  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig) << store.error().message;
  EXPECT_NE(store.error().message.find(database_), std::string::npos) << store.error().message;
  EXPECT_EQ(store.error().message.find("not-the-password-4711"), std::string::npos)
      << store.error().message;
}

TEST_P(PostgresStoreTest, MissingDatabaseIsConfigError) {
  Options missing = options();
  missing.database = database_ + "-missing";

  Result<std::unique_ptr<QueuedStore>> store = open_store(missing);

  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig) << store.error().message;
}

TEST_P(PostgresStoreTest, OpenRecordsTheSchemaVersionOnce) {
  open(options()).reset();
  open(options()).reset();

  EXPECT_EQ(pg::table_bytes(server_, database_), "");  // no state rows yet
  pg::exec(server_, database_,
           "DO $$ BEGIN IF (SELECT count(*) FROM schema_version) <> 1 OR "
           "(SELECT max(version) FROM schema_version) <> 1 THEN "
           "RAISE EXCEPTION 'expected exactly version 1'; END IF; END $$");
}

TEST_P(PostgresStoreTest, RefusesADatabaseWithANewerSchema) {
  open(options()).reset();
  pg::exec(server_, database_, "INSERT INTO schema_version VALUES (99, now())");

  Result<std::unique_ptr<QueuedStore>> store = open_store(options());

  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig) << store.error().message;
  EXPECT_NE(store.error().message.find("schema version 99"), std::string::npos)
      << store.error().message;
}

TEST_P(PostgresStoreTest, ConcurrentOpensOfAFreshDatabaseBothSucceed) {
  std::vector<std::thread> threads;
  std::vector<std::string> errors(4);
  for (std::size_t i = 0; i < errors.size(); ++i) {
    threads.emplace_back([this, i, &errors] {
      Result<std::unique_ptr<QueuedStore>> store = open_store(options());
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

TEST_P(PostgresStoreTest, GroupCommitBatchesConcurrentWrites) {
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

TEST_P(PostgresStoreTest, WithoutGroupCommitEachWriteIsItsOwnTransaction) {
  Options single = options();
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

TEST_P(PostgresStoreTest, TwoStoresOnOneDatabaseNeverBothWinARevision) {
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

INSTANTIATE_TEST_SUITE_P(Dialects, PostgresStoreTest,
                         ::testing::Values(Dialect::kPostgres, Dialect::kCockroach),
                         [](const ::testing::TestParamInfo<Dialect>& dialect) {
                           return dialect.param == Dialect::kPostgres
                                      ? std::string("postgres")
                                      : std::string("cockroachdb_on_postgres");
                         });

}  // namespace
}  // namespace spawn::statestore::postgres
