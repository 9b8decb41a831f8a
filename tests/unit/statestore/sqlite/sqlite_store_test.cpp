#include "statestore/sqlite/sqlite_store.hpp"

#include <fstream>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "store_test_util.hpp"

namespace spawn::statestore::sqlite {
namespace {

using namespace std::string_literals;
using testing::read_database_files;
using testing::run_task;
using testing::TempDir;

// Runs `sql` on `file` through a connection of its own and returns the first column of the
// first row as text ("" when there is none).
std::string query(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string value;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(stmt, 0);
    value = text != nullptr ? reinterpret_cast<const char*>(text) : "";
  }
  sqlite3_finalize(stmt);
  sqlite3_close_v2(db);
  return value;
}

Snapshot make_snapshot(std::string data) {
  Snapshot snapshot;
  snapshot.status = ActorStatus::kActivated;
  snapshot.tags = {{"owner", "alice"}};
  snapshot.has_state = true;
  snapshot.type_url = "type.googleapis.com/example.Counter";
  snapshot.data = std::move(data);
  return snapshot;
}

class SqliteStoreTest : public ::testing::Test {
protected:
  std::unique_ptr<SqliteStore> open(Options options = {}) {
    Result<std::unique_ptr<SqliteStore>> store = SqliteStore::open(file_, std::move(options));
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(*store) : nullptr;
  }

  TempDir dir_;
  const std::filesystem::path file_ = dir_.path() / "a" / "b" / "state.db";
  const ActorKey key_{"sys", "counter"};
};

TEST_F(SqliteStoreTest, CreatesParentDirectoriesAndSchema) {
  { auto store = open(); }

  EXPECT_TRUE(std::filesystem::exists(file_));
  EXPECT_EQ(query(file_, "SELECT max(version) FROM schema_version"),
            std::to_string(SqliteStore::kSchemaVersion));
  EXPECT_EQ(query(file_, "PRAGMA journal_mode"), "wal");
}

TEST_F(SqliteStoreTest, ReopeningDoesNotMigrateAgain) {
  { auto store = open(); }
  { auto store = open(); }

  EXPECT_EQ(query(file_, "SELECT count(*) FROM schema_version"), "1");
}

TEST_F(SqliteStoreTest, RejectsNewerSchema) {
  { auto store = open(); }
  query(file_, "INSERT INTO schema_version (version, applied_at) VALUES (99, 'future')");

  Result<std::unique_ptr<SqliteStore>> store = SqliteStore::open(file_, {});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kConfig) << store.error().message;
  EXPECT_NE(store.error().message.find("schema version 99"), std::string::npos);
}

TEST_F(SqliteStoreTest, RejectsFileThatIsNotADatabase) {
  std::filesystem::create_directories(file_.parent_path());
  std::ofstream(file_) << std::string(4096, 'x');

  Result<std::unique_ptr<SqliteStore>> store = SqliteStore::open(file_, {});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kDataLoss) << store.error().message;
  EXPECT_NE(store.error().message.find(file_.string()), std::string::npos) << store.error().message;
}

TEST_F(SqliteStoreTest, UnopenableFileIsUnavailable) {
  std::filesystem::create_directories(dir_.path() / "blocker");
  Result<std::unique_ptr<SqliteStore>> store = SqliteStore::open(dir_.path() / "blocker", {});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kUnavailable) << store.error().message;
}

TEST_F(SqliteStoreTest, KeepsSupersededRevisionsInHistory) {
  auto store = open();
  for (int revision = 1; revision <= 3; ++revision) {
    ASSERT_TRUE(
        run_task(store->save(key_, make_snapshot("v" + std::to_string(revision)), revision - 1)));
  }
  store.reset();

  EXPECT_EQ(query(file_, "SELECT count(*) FROM snapshots"), "1");
  EXPECT_EQ(query(file_,
                  "SELECT group_concat(revision) FROM (SELECT revision FROM "
                  "historical_snapshots ORDER BY revision)"),
            "1,2");
  EXPECT_EQ(query(file_, "SELECT count(*) FROM historical_snapshots WHERE valid_to >= valid_from"),
            "2");
  EXPECT_EQ(query(file_, "SELECT tags FROM snapshots"), R"({"owner":"alice"})");
  EXPECT_EQ(query(file_, "SELECT status FROM snapshots"), "ACTIVATED");
}

TEST_F(SqliteStoreTest, StoresDataAsGivenWithoutEncryption) {
  auto store = open();
  ASSERT_TRUE(run_task(store->save(key_, make_snapshot("PLAINTEXT-MARKER-7f3a9c"), 0)));
  store.reset();

  // The control for StoreConformanceTest.EncryptedFileHoldsNoPlaintext: the marker is findable.
  EXPECT_NE(read_database_files(file_).find("PLAINTEXT-MARKER-7f3a9c"), std::string::npos);
}

TEST_F(SqliteStoreTest, RecordsOptionsNodeWhenSnapshotNamesNone) {
  Options options;
  options.node = "node-7";
  auto store = open(options);
  ASSERT_TRUE(run_task(store->save(key_, make_snapshot("x"), 0)));
  Snapshot named = make_snapshot("y");
  named.node = "elsewhere";
  ASSERT_TRUE(run_task(store->save(key_, named, 1)));

  Result<std::optional<Snapshot>> first = run_task(store->load_revision(key_, 1));
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ((*first)->node, "node-7");
  Result<std::optional<Snapshot>> second = run_task(store->load(key_));
  ASSERT_TRUE(second && second->has_value());
  EXPECT_EQ((*second)->node, "elsewhere");
}

TEST_F(SqliteStoreTest, RejectsNegativeExpectedRevision) {
  auto store = open();
  Result<std::int64_t> saved = run_task(store->save(key_, make_snapshot("x"), -1));
  ASSERT_FALSE(saved);
  EXPECT_EQ(saved.error().code, ErrorCode::kInvalidArgument) << saved.error().message;
}

TEST_F(SqliteStoreTest, RejectsTagsThatAreNotUtf8) {
  auto store = open();
  Snapshot snapshot = make_snapshot("x");
  snapshot.tags = {{"bad", "\xff\xfe"}};
  Result<std::int64_t> saved = run_task(store->save(key_, snapshot, 0));
  ASSERT_FALSE(saved);
  EXPECT_EQ(saved.error().code, ErrorCode::kInvalidArgument) << saved.error().message;
}

TEST_F(SqliteStoreTest, WithoutGroupCommitStillOneWriterWins) {
  Options options;
  options.group_commit = false;
  auto store = open(options);
  asio::io_context io;
  int wins = 0;
  int conflicts = 0;
  for (int i = 0; i < 8; ++i) {
    asio::co_spawn(io, store->save(key_, make_snapshot(std::to_string(i)), 0),
                   [&](std::exception_ptr, Result<std::int64_t> result) {
                     if (result) {
                       ++wins;
                     } else if (result.error().code == ErrorCode::kConflict) {
                       ++conflicts;
                     }
                   });
  }
  io.run();

  EXPECT_EQ(wins, 1);
  EXPECT_EQ(conflicts, 7);
}

TEST_F(SqliteStoreTest, DestructionCompletesQueuedWrites) {
  constexpr int kWrites = 64;
  auto store = open();
  asio::io_context io;
  int succeeded = 0;
  for (int i = 0; i < kWrites; ++i) {
    asio::co_spawn(io, store->save({"sys", "actor-" + std::to_string(i)}, make_snapshot("x"), 0),
                   [&succeeded](std::exception_ptr, Result<std::int64_t> result) {
                     succeeded += result ? 1 : 0;
                   });
  }
  // Runs every coroutine up to its suspension, so all saves are queued, none delivered yet.
  io.poll();
  store.reset();
  io.run();

  EXPECT_EQ(succeeded, kWrites);
  EXPECT_EQ(query(file_, "SELECT count(*) FROM snapshots"), std::to_string(kWrites));
}

TEST_F(SqliteStoreTest, ConflictInABatchLeavesTheOtherSavesCommitted) {
  auto store = open();
  ASSERT_TRUE(run_task(store->save(key_, make_snapshot("v1"), 0)));
  asio::io_context io;
  std::vector<Result<std::int64_t>> results(3);
  asio::co_spawn(io, store->save({"sys", "a"}, make_snapshot("a"), 0),
                 [&](std::exception_ptr, Result<std::int64_t> r) { results[0] = std::move(r); });
  asio::co_spawn(io, store->save(key_, make_snapshot("stale"), 0),
                 [&](std::exception_ptr, Result<std::int64_t> r) { results[1] = std::move(r); });
  asio::co_spawn(io, store->save({"sys", "b"}, make_snapshot("b"), 0),
                 [&](std::exception_ptr, Result<std::int64_t> r) { results[2] = std::move(r); });
  io.run();

  EXPECT_TRUE(results[0]) << results[0].error().message;
  ASSERT_FALSE(results[1]);
  EXPECT_EQ(results[1].error().message,
            "save state of actor 'sys/counter': revision conflict (expected 0, stored 1)");
  EXPECT_TRUE(results[2]) << results[2].error().message;
  Result<std::optional<Snapshot>> b = run_task(store->load({"sys", "b"}));
  ASSERT_TRUE(b && b->has_value());
  EXPECT_EQ((*b)->data, "b");
}

}  // namespace
}  // namespace spawn::statestore::sqlite
