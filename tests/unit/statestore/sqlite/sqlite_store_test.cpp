#include "statestore/sqlite/sqlite_store.hpp"

#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
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

// Runs `sql` (one or more statements) on `file`, creating the file when missing.
void exec(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
            SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close_v2(db);
}

// The details of SQLite's plan for `sql` on `file`, joined by "; ".
std::string query_plan(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  const std::string explain = "EXPLAIN QUERY PLAN " + sql;
  EXPECT_EQ(sqlite3_prepare_v2(db, explain.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string plan;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const auto* detail = sqlite3_column_text(stmt, 3);
    plan += (plan.empty() ? "" : "; ") + std::string(reinterpret_cast<const char*>(detail));
  }
  sqlite3_finalize(stmt);
  sqlite3_close_v2(db);
  return plan;
}

// The schema SqliteStore version 1 created (kMigrations[0]), with one actor's snapshot at
// revision 2 and its revision 1 in history: what a file written by the previous release holds.
constexpr const char* kVersionOneDatabase = R"sql(
  PRAGMA journal_mode = WAL;
  CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL);
  INSERT INTO schema_version VALUES (1, '2024-01-01T00:00:00.000Z');
  CREATE TABLE snapshots (
    system TEXT NOT NULL, actor TEXT NOT NULL, status TEXT NOT NULL, node TEXT NOT NULL,
    revision INTEGER NOT NULL, tags TEXT NOT NULL, data_type TEXT NOT NULL, data BLOB,
    has_state INTEGER NOT NULL, inserted_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (system, actor));
  CREATE TABLE historical_snapshots (
    system TEXT NOT NULL, actor TEXT NOT NULL, revision INTEGER NOT NULL, status TEXT NOT NULL,
    node TEXT NOT NULL, tags TEXT NOT NULL, data_type TEXT NOT NULL, data BLOB,
    has_state INTEGER NOT NULL, inserted_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    valid_from TEXT NOT NULL, valid_to TEXT NOT NULL, PRIMARY KEY (system, actor, revision));
  INSERT INTO snapshots VALUES ('sys', 'counter', 'ACTIVATED', 'old-node', 2, '{"owner":"bob"}',
    'type.googleapis.com/example.Counter', X'7632', 1, '2024-01-01T00:00:00.000Z',
    '2024-01-01T00:00:01.000Z');
  INSERT INTO historical_snapshots VALUES ('sys', 'counter', 1, 'ACTIVATED', 'old-node',
    '{"owner":"bob"}', 'type.googleapis.com/example.Counter', X'7631', 1,
    '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z',
    '2024-01-01T00:00:01.000Z');
)sql";

ScheduledInvocation make_invocation(std::string id, std::int64_t due_ms) {
  return {.id = std::move(id),
          .due_ms = due_ms,
          .system = "sys",
          .actor = "counter",
          .request = "request"};
}

/// Expects a save of sys/counter lost to a revision conflict whose message says `words`.
void expect_conflict(const Result<std::int64_t>& lost, const std::string& words) {
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, ErrorCode::kConflict);
  EXPECT_EQ(lost.error().message,
            "save state of actor 'sys/counter': revision conflict (" + words + ")");
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

  EXPECT_EQ(query(file_, "SELECT count(*) FROM schema_version"),
            std::to_string(SqliteStore::kSchemaVersion));
}

TEST_F(SqliteStoreTest, UpgradesVersionOneFileInPlace) {
  std::filesystem::create_directories(file_.parent_path());
  exec(file_, kVersionOneDatabase);
  ASSERT_EQ(query(file_, "SELECT max(version) FROM schema_version"), "1");

  auto store = open();
  ASSERT_NE(store, nullptr);

  // The old data is still there, at its revisions.
  Result<std::optional<Snapshot>> current = run_task(store->load(key_));
  ASSERT_TRUE(current && current->has_value());
  EXPECT_EQ((*current)->revision, 2);
  EXPECT_EQ((*current)->data, "v2");
  EXPECT_EQ((*current)->tags.at("owner"), "bob");
  Result<std::optional<Snapshot>> first = run_task(store->load_revision(key_, 1));
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ((*first)->data, "v1");
  // And the new table works beside it.
  ASSERT_TRUE(run_task(store->put_scheduled(make_invocation("after-upgrade", 1))));
  Result<std::int64_t> saved = run_task(store->save(key_, make_snapshot("v3"), 2));
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(*saved, 3);
  store.reset();

  EXPECT_EQ(query(file_, "SELECT group_concat(version) FROM schema_version"), "1,2,3");
  EXPECT_EQ(query(file_, "SELECT id FROM scheduled_invocations"), "after-upgrade");
  { auto reopened = open(); }
  EXPECT_EQ(query(file_, "SELECT count(*) FROM schema_version"), "3");
}

// What a file written by the release with schema version 2 holds: version 1's tables (one actor
// at revision 3 with revisions 1 and 2 in `historical_snapshots`, another never saved again) plus
// the scheduled invocations.
constexpr const char* kVersionTwoDatabase = R"sql(
  PRAGMA journal_mode = WAL;
  CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL);
  INSERT INTO schema_version VALUES (1, '2024-01-01T00:00:00.000Z');
  INSERT INTO schema_version VALUES (2, '2024-02-01T00:00:00.000Z');
  CREATE TABLE snapshots (
    system TEXT NOT NULL, actor TEXT NOT NULL, status TEXT NOT NULL, node TEXT NOT NULL,
    revision INTEGER NOT NULL, tags TEXT NOT NULL, data_type TEXT NOT NULL, data BLOB,
    has_state INTEGER NOT NULL, inserted_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (system, actor));
  CREATE TABLE historical_snapshots (
    system TEXT NOT NULL, actor TEXT NOT NULL, revision INTEGER NOT NULL, status TEXT NOT NULL,
    node TEXT NOT NULL, tags TEXT NOT NULL, data_type TEXT NOT NULL, data BLOB,
    has_state INTEGER NOT NULL, inserted_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    valid_from TEXT NOT NULL, valid_to TEXT NOT NULL, PRIMARY KEY (system, actor, revision));
  CREATE TABLE scheduled_invocations (
    id TEXT NOT NULL PRIMARY KEY, due_ms INTEGER NOT NULL, system TEXT NOT NULL,
    actor TEXT NOT NULL, request BLOB NOT NULL, inserted_at TEXT NOT NULL);
  CREATE INDEX scheduled_invocations_due ON scheduled_invocations (due_ms, id);
  INSERT INTO snapshots VALUES ('sys', 'counter', 'ACTIVATED', 'node-3', 3, '{"owner":"carol"}',
    'type.googleapis.com/example.Counter', X'7633', 1, '2024-01-01T00:00:00.000Z',
    '2024-01-01T00:00:03.000Z');
  INSERT INTO snapshots VALUES ('sys', 'empty', 'DEACTIVATED', 'node-1', 1, '{}', '', NULL, 0,
    '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z');
  INSERT INTO historical_snapshots VALUES ('sys', 'counter', 1, 'ACTIVATED', 'node-1',
    '{"owner":"alice"}', 'type.googleapis.com/example.Counter', X'7631', 1,
    '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:01.000Z', '2024-01-01T00:00:01.000Z',
    '2024-01-01T00:00:02.000Z');
  INSERT INTO historical_snapshots VALUES ('sys', 'counter', 2, 'DEACTIVATED', 'node-2',
    '{"owner":"bob"}', 'type.googleapis.com/example.Counter', X'7632', 1,
    '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:02.000Z', '2024-01-01T00:00:02.000Z',
    '2024-01-01T00:00:03.000Z');
  INSERT INTO scheduled_invocations VALUES ('kept', 5, 'sys', 'counter', X'72', '2024-02-01');
  INSERT INTO snapshots VALUES ('sys', 'long', 'ACTIVATED', 'n', 150, '{}', 't', 'r150', 1,
    '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z');
  INSERT INTO historical_snapshots
  WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 149)
  SELECT 'sys', 'long', n, 'ACTIVATED', 'n', '{}', 't', 'r' || n, 1, '2024-01-01T00:00:00.000Z',
    '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z' FROM r;
)sql";

// Version 3 moves the history into `snapshot_history`, which also holds the current revisions:
// every revision of a version-2 file is still loadable, with all its fields, and saving goes on
// from the stored revision.
TEST_F(SqliteStoreTest, UpgradesVersionTwoFileKeepingItsHistory) {
  std::filesystem::create_directories(file_.parent_path());
  exec(file_, kVersionTwoDatabase);

  auto store = open();
  ASSERT_NE(store, nullptr);

  struct Expected {
    std::int64_t revision;
    ActorStatus status;
    std::string node;
    std::string owner;
    std::string data;
  };

  const Expected revisions[] = {{1, ActorStatus::kActivated, "node-1", "alice", "v1"},
                                {2, ActorStatus::kDeactivated, "node-2", "bob", "v2"},
                                {3, ActorStatus::kActivated, "node-3", "carol", "v3"}};
  for (const Expected& want : revisions) {
    Result<std::optional<Snapshot>> loaded = run_task(store->load_revision(key_, want.revision));
    ASSERT_TRUE(loaded && loaded->has_value()) << want.revision;
    const Snapshot& got = **loaded;
    EXPECT_EQ(got.revision, want.revision);
    EXPECT_EQ(got.status, want.status);
    EXPECT_EQ(got.node, want.node);
    EXPECT_EQ(got.tags.at("owner"), want.owner);
    EXPECT_TRUE(got.has_state);
    EXPECT_EQ(got.type_url, "type.googleapis.com/example.Counter");
    EXPECT_EQ(got.data, want.data);
  }
  Result<std::optional<Snapshot>> missing = run_task(store->load_revision(key_, 4));
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());
  Result<std::optional<Snapshot>> empty = run_task(store->load_revision({"sys", "empty"}, 1));
  ASSERT_TRUE(empty && empty->has_value());
  EXPECT_FALSE((*empty)->has_state);
  EXPECT_EQ((*empty)->status, ActorStatus::kDeactivated);

  // An actor with a long history (more than two anchors' spacing): every revision is found.
  const ActorKey long_key{"sys", "long"};
  for (std::int64_t revision = 1; revision <= 150; ++revision) {
    Result<std::optional<Snapshot>> loaded = run_task(store->load_revision(long_key, revision));
    ASSERT_TRUE(loaded && loaded->has_value()) << revision;
    EXPECT_EQ((*loaded)->revision, revision);
    EXPECT_EQ((*loaded)->data, "r" + std::to_string(revision));
  }
  ASSERT_TRUE(run_task(store->save(long_key, make_snapshot("r151"), 150)));
  Result<std::optional<Snapshot>> after = run_task(store->load_revision(long_key, 100));
  ASSERT_TRUE(after && after->has_value());
  EXPECT_EQ((*after)->data, "r100");

  Result<std::int64_t> stale = run_task(store->save(key_, make_snapshot("lost"), 2));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict);
  Result<std::int64_t> saved = run_task(store->save(key_, make_snapshot("v4"), 3));
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(*saved, 4);
  Result<std::optional<Snapshot>> third = run_task(store->load_revision(key_, 3));
  ASSERT_TRUE(third && third->has_value());
  EXPECT_EQ((*third)->data, "v3");
  store.reset();

  EXPECT_EQ(query(file_, "SELECT group_concat(version) FROM schema_version"), "1,2,3");
  EXPECT_EQ(query(file_, "SELECT count(*) FROM sqlite_master WHERE name = 'historical_snapshots'"),
            "0");
  EXPECT_EQ(query(file_,
                  "SELECT group_concat(saved_at, ' ') FROM (SELECT saved_at FROM snapshot_history "
                  "WHERE actor = 'counter' ORDER BY revision)"),
            "2024-01-01T00:00:01.000Z 2024-01-01T00:00:02.000Z 2024-01-01T00:00:03.000Z "
                + query(file_, "SELECT updated_at FROM snapshots WHERE actor = 'counter'"));
  EXPECT_EQ(query(file_, "SELECT id FROM scheduled_invocations"), "kept");
}

TEST_F(SqliteStoreTest, DueScheduledScansTheDueIndexWithoutSorting) {
  { auto store = open(); }

  const std::string plan =
      query_plan(file_,
                 "SELECT id, due_ms, system, actor, request FROM scheduled_invocations "
                 "WHERE due_ms <= 5 ORDER BY due_ms, id LIMIT 10");
  EXPECT_NE(plan.find("USING INDEX scheduled_invocations_due"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
}

TEST_F(SqliteStoreTest, StoresScheduledRowsAsGiven) {
  auto store = open();
  ASSERT_TRUE(run_task(store->put_scheduled(make_invocation("row-1", 1234))));
  store.reset();

  EXPECT_EQ(query(file_,
                  "SELECT id || '|' || due_ms || '|' || system || '|' || actor || '|' || "
                  "CAST(request AS TEXT) FROM scheduled_invocations"),
            "row-1|1234|sys|counter|request");
  EXPECT_EQ(query(file_, "SELECT typeof(request) FROM scheduled_invocations"), "blob");
  EXPECT_EQ(
      query(file_, "SELECT count(*) FROM scheduled_invocations WHERE inserted_at LIKE '20%Z'"),
      "1");
}

TEST_F(SqliteStoreTest, ConcurrentScheduledPutsShareTransactions) {
  // StoreConformanceTest.ConcurrentScheduledPutsAllLand checks that 10,000 land; this checks
  // that they are batched, on fewer puts to stay fast.
  constexpr int kPuts = 2'000;
  auto store = open();
  const std::uint64_t before = store->transactions_for_test();
  asio::io_context io;
  int succeeded = 0;
  for (int i = 0; i < kPuts; ++i) {
    asio::co_spawn(
        io, store->put_scheduled(make_invocation("id-" + std::to_string(i), i)),
        [&succeeded](std::exception_ptr, Result<void> put) { succeeded += put ? 1 : 0; });
  }
  io.run();

  EXPECT_EQ(succeeded, kPuts);
  // One transaction per put would be 2,000. Measured: about 14 for 10,000 puts, on disk and on
  // tmpfs alike, since the caller queues faster than the writer commits.
  const std::uint64_t transactions = store->transactions_for_test() - before;
  EXPECT_LE(transactions, static_cast<std::uint64_t>(kPuts / 10)) << transactions;
}

TEST_F(SqliteStoreTest, SavesQueuedInOnePassOfTheCallersLoopCommitTogether) {
  // The writer is woken once the caller's executor has run what it had queued, not by the first
  // save: the saves one pass of an event loop makes share one transaction (and one fsync) instead
  // of the first committing alone while the rest wait for it.
  constexpr int kSaves = 200;
  auto store = open();
  const std::uint64_t before = store->transactions_for_test();
  asio::io_context io;
  int succeeded = 0;
  for (int i = 0; i < kSaves; ++i) {
    asio::co_spawn(io,
                   store->save(ActorKey{"sys", "a" + std::to_string(i)}, make_snapshot("v1"), 0),
                   [&succeeded](std::exception_ptr, Result<std::int64_t> saved) {
                     succeeded += saved && *saved == 1 ? 1 : 0;
                   });
  }
  io.run();

  EXPECT_EQ(succeeded, kSaves);
  EXPECT_EQ(store->transactions_for_test() - before, 1U);
}

TEST_F(SqliteStoreTest, SavesPutsAndRemovesQueuedTogetherAllCommit) {
  auto store = open();
  ASSERT_TRUE(run_task(store->put_scheduled(make_invocation("old", 1))));
  asio::io_context io;
  Result<std::int64_t> saved = fail(ErrorCode::kInternal, "not run");
  Result<void> put = fail(ErrorCode::kInternal, "not run");
  Result<void> removed = fail(ErrorCode::kInternal, "not run");
  asio::co_spawn(io, store->save(key_, make_snapshot("v1"), 0),
                 [&](std::exception_ptr, Result<std::int64_t> r) { saved = std::move(r); });
  asio::co_spawn(io, store->put_scheduled(make_invocation("new", 2)),
                 [&](std::exception_ptr, Result<void> r) { put = std::move(r); });
  asio::co_spawn(io, store->remove_scheduled({"old"}),
                 [&](std::exception_ptr, Result<void> r) { removed = std::move(r); });
  io.run();

  ASSERT_TRUE(saved) << saved.error().message;
  ASSERT_TRUE(put) << put.error().message;
  ASSERT_TRUE(removed) << removed.error().message;
  store.reset();
  EXPECT_EQ(query(file_, "SELECT group_concat(id) FROM scheduled_invocations"), "new");
  EXPECT_EQ(query(file_, "SELECT revision FROM snapshots"), "1");
}

TEST_F(SqliteStoreTest, DestructionCompletesQueuedScheduledWrites) {
  auto store = open();
  asio::io_context io;
  int succeeded = 0;
  for (int i = 0; i < 32; ++i) {
    asio::co_spawn(
        io, store->put_scheduled(make_invocation("id-" + std::to_string(i), i)),
        [&succeeded](std::exception_ptr, Result<void> put) { succeeded += put ? 1 : 0; });
  }
  io.poll();
  store.reset();
  io.run();

  EXPECT_EQ(succeeded, 32);
  EXPECT_EQ(query(file_, "SELECT count(*) FROM scheduled_invocations"), "32");
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
  // Every revision saved is in the history, the current one included, each with its own data.
  EXPECT_EQ(query(file_,
                  "SELECT group_concat(revision || '=' || data, ',') FROM (SELECT revision, data "
                  "FROM snapshot_history ORDER BY revision)"),
            "1=v1,2=v2,3=v3");
  EXPECT_EQ(query(file_,
                  "SELECT count(*) FROM snapshot_history h JOIN snapshots s USING "
                  "(system, actor, revision) WHERE h.saved_at = s.updated_at"),
            "1");
  EXPECT_EQ(query(file_, "SELECT tags FROM snapshots"), R"({"owner":"alice"})");
  EXPECT_EQ(query(file_, "SELECT status FROM snapshots"), "ACTIVATED");
}

// The history is a log with a chain per actor and an anchor every 64 revisions: with two actors'
// saves interleaved, every revision of each is found (from below, at and above an anchor, the
// current one), and revisions never saved are not.
TEST_F(SqliteStoreTest, LoadsEveryRevisionOfInterleavedHistories) {
  auto store = open();
  const ActorKey other{"sys", "other"};
  constexpr int kRevisions = 200;
  for (int revision = 1; revision <= kRevisions; ++revision) {
    for (const ActorKey& key : {key_, other}) {
      Result<std::int64_t> saved = run_task(
          store->save(key, make_snapshot(key.name + std::to_string(revision)), revision - 1));
      ASSERT_TRUE(saved) << saved.error().message;
    }
  }
  for (const ActorKey& key : {key_, other}) {
    for (int revision = 1; revision <= kRevisions; ++revision) {
      Result<std::optional<Snapshot>> loaded = run_task(store->load_revision(key, revision));
      ASSERT_TRUE(loaded && loaded->has_value()) << key.name << " " << revision;
      EXPECT_EQ((*loaded)->revision, revision);
      EXPECT_EQ((*loaded)->data, key.name + std::to_string(revision));
    }
    Result<std::optional<Snapshot>> beyond = run_task(store->load_revision(key, kRevisions + 1));
    ASSERT_TRUE(beyond);
    EXPECT_FALSE(beyond->has_value());
  }
  Result<std::optional<Snapshot>> nobody = run_task(store->load_revision({"sys", "nobody"}, 1));
  ASSERT_TRUE(nobody);
  EXPECT_FALSE(nobody->has_value());
  store.reset();

  EXPECT_EQ(query(file_,
                  "SELECT group_concat(revision) FROM (SELECT revision FROM "
                  "snapshot_history_anchors WHERE actor = 'counter' ORDER BY revision)"),
            "64,128,192");
  // Saves append to the log: no index on it puts each row into a per-actor place.
  EXPECT_EQ(query(file_,
                  "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                  "AND tbl_name = 'snapshot_history'"),
            "0");
}

// A writer remembers the history id of each actor it saved so that its next save need not read
// the snapshot row first; the update still checks revision and id in the file. When another store
// on the same file saved the actor meanwhile, the stale writer's save is a conflict that leaves
// no history row behind, and its later saves (from the stored revision) go on.
TEST_F(SqliteStoreTest, WriterWithStaleHeadConflictsAndLeavesNoHistory) {
  auto first = open();
  ASSERT_TRUE(run_task(first->save(key_, make_snapshot("a1"), 0)));
  ASSERT_TRUE(run_task(first->save(key_, make_snapshot("a2"), 1)));
  {
    auto second = open();
    ASSERT_TRUE(run_task(second->save(key_, make_snapshot("b3"), 2)));
  }
  expect_conflict(run_task(first->save(key_, make_snapshot("lost"), 2)), "expected 2, stored 3");
  Result<std::int64_t> next = run_task(first->save(key_, make_snapshot("a4"), 3));
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(*next, 4);
  for (std::int64_t revision = 1; revision <= 4; ++revision) {
    Result<std::optional<Snapshot>> loaded = run_task(first->load_revision(key_, revision));
    ASSERT_TRUE(loaded && loaded->has_value()) << revision;
    EXPECT_EQ((*loaded)->data, std::string(revision == 3 ? "b" : "a") + std::to_string(revision));
  }
  first.reset();

  EXPECT_EQ(query(file_,
                  "SELECT group_concat(revision || '=' || data, ',') FROM (SELECT revision, data "
                  "FROM snapshot_history ORDER BY id)"),
            "1=a1,2=a2,3=b3,4=a4");
}

// A writer also remembers the rowid of each actor's snapshot row and updates the row found by it,
// but only while that row is still the actor's at the expected revision: when another process
// moved the rows (VACUUM renumbers rowids), the save finds the actor's row by key instead, and
// the row now at the remembered rowid is left alone.
TEST_F(SqliteStoreTest, WriterUpdatesTheActorsRowWhenItsRowidChanged) {
  auto store = open();
  const ActorKey other{"sys", "other"};
  ASSERT_TRUE(run_task(store->save(key_, make_snapshot("a1"), 0)));
  ASSERT_TRUE(run_task(store->save(other, make_snapshot("o1"), 0)));
  ASSERT_TRUE(run_task(store->save(key_, make_snapshot("a2"), 1)));
  ASSERT_TRUE(run_task(store->save(other, make_snapshot("o2"), 1)));
  const std::string counter_row =
      query(file_, "SELECT rowid FROM snapshots WHERE actor = 'counter'");
  const std::string other_row = query(file_, "SELECT rowid FROM snapshots WHERE actor = 'other'");
  ASSERT_NE(counter_row, other_row);
  exec(file_, "UPDATE snapshots SET rowid = 1000 WHERE actor = 'counter';"
              "UPDATE snapshots SET rowid = " + counter_row + " WHERE actor = 'other';"
              "UPDATE snapshots SET rowid = " + other_row + " WHERE actor = 'counter';");

  for (std::int64_t revision = 3; revision <= 4; ++revision) {
    Result<std::int64_t> saved =
        run_task(store->save(key_, make_snapshot("a" + std::to_string(revision)), revision - 1));
    ASSERT_TRUE(saved) << saved.error().message;
    EXPECT_EQ(*saved, revision);
  }
  Result<std::int64_t> saved = run_task(store->save(other, make_snapshot("o3"), 2));
  ASSERT_TRUE(saved) << saved.error().message;
  store.reset();

  EXPECT_EQ(query(file_,
                  "SELECT group_concat(actor || '=' || revision || '=' || data, ',') FROM "
                  "(SELECT actor, revision, data FROM snapshots ORDER BY actor)"),
            "counter=4=a4,other=3=o3");
  EXPECT_EQ(query(file_,
                  "SELECT group_concat(revision || '=' || data, ',') FROM (SELECT revision, data "
                  "FROM snapshot_history WHERE actor = 'counter' ORDER BY id)"),
            "1=a1,2=a2,3=a3,4=a4");
  EXPECT_EQ(query(file_,
                  "SELECT count(*) FROM snapshot_history s JOIN snapshots h ON "
                  "s.id = h.history_id AND s.revision = h.revision AND s.actor = h.actor"),
            "2");
}

// A writer binds the values consecutive saves mostly repeat (system, status, node, tags, type,
// has_state, the transaction's time) only when they change. Saves of two actors in two systems,
// alternating every one of those values (and states with and without data), each record exactly
// their own.
TEST_F(SqliteStoreTest, WriterRecordsEachSavesOwnValuesWhenConsecutiveSavesDiffer) {
  auto store = open(Options{.node = "default-node"});
  const std::vector<ActorKey> keys{{"sys", "counter"}, {"other-sys", "counter"}};
  const auto make = [](std::size_t i) {
    Snapshot snapshot = make_snapshot("d" + std::to_string(i));
    snapshot.status = i % 3 == 0 ? ActorStatus::kDeactivated : ActorStatus::kActivated;
    snapshot.node = i % 4 == 0 ? "" : "node-" + std::to_string(i % 2);
    snapshot.tags = {{"owner", i % 2 == 0 ? "alice" : "bob"}};
    snapshot.type_url = i % 5 == 0 ? "type.googleapis.com/example.Other" : snapshot.type_url;
    if (i % 7 == 3) {
      snapshot.has_state = false;
      snapshot.type_url.clear();
      snapshot.data.clear();
    }
    return snapshot;
  };
  std::string expected;
  for (std::size_t i = 0; i < 24; ++i) {
    const ActorKey& key = keys[(i / 3) % 2];
    const std::int64_t revision = static_cast<std::int64_t>(i / 6 * 3 + i % 3) + 1;
    Result<std::int64_t> saved = run_task(store->save(key, make(i), revision - 1));
    ASSERT_TRUE(saved) << i << ": " << saved.error().message;
    ASSERT_EQ(*saved, revision) << i;
    const Snapshot snapshot = make(i);
    expected += (expected.empty() ? "" : ",") + key.system + "/" + std::to_string(revision) + "/"
                + (i % 3 == 0 ? "DEACTIVATED" : "ACTIVATED") + "/"
                + (snapshot.node.empty() ? "default-node" : snapshot.node) + "/"
                + (i % 2 == 0 ? "alice" : "bob") + "/" + snapshot.type_url + "/"
                + (snapshot.has_state ? "1/" + snapshot.data : "0/");
  }
  for (const ActorKey& key : keys) {
    Result<std::optional<Snapshot>> loaded = run_task(store->load(key));
    ASSERT_TRUE(loaded && loaded->has_value());
    EXPECT_EQ((*loaded)->revision, 12);
  }
  store.reset();

  EXPECT_EQ(query(file_,
                  "SELECT group_concat(row, ',') FROM (SELECT system || '/' || revision || '/' || "
                  "status || '/' || node || '/' || json_extract(tags, '$.owner') || '/' || "
                  "data_type || '/' || has_state || '/' || coalesce(data, '') AS row "
                  "FROM snapshot_history ORDER BY id)"),
            expected);
  EXPECT_EQ(query(file_,
                  "SELECT count(*) FROM snapshots s JOIN snapshot_history h ON h.id = s.history_id "
                  "AND h.system = s.system AND h.revision = s.revision AND h.status = s.status "
                  "AND h.node = s.node AND h.tags = s.tags AND h.data_type = s.data_type "
                  "AND h.has_state = s.has_state AND h.data IS s.data "
                  "AND h.saved_at = s.updated_at"),
            "2");
}

// The compare-and-set is in the statements (append WHERE the snapshot row is at the expected
// revision, or has none): a save that loses records nothing, changes nothing and names the stored
// revision.
TEST_F(SqliteStoreTest, ConflictingSavesNameTheStoredRevisionAndRecordNothing) {
  auto store = open();
  ASSERT_TRUE(run_task(store->save(key_, make_snapshot("v1"), 0)));
  ASSERT_TRUE(run_task(store->save(key_, make_snapshot("v2"), 1)));
  const std::pair<std::int64_t, std::string> cases[] = {
      {0, "expected 0, stored 2"}, {1, "expected 1, stored 2"}, {3, "expected 3, stored 2"}};
  for (const auto& [expected, words] : cases) {
    SCOPED_TRACE(expected);
    expect_conflict(run_task(store->save(key_, make_snapshot("lost"), expected)), words);
  }
  Result<std::int64_t> nobody = run_task(store->save({"sys", "nobody"}, make_snapshot("x"), 2));
  ASSERT_FALSE(nobody);
  EXPECT_EQ(nobody.error().message,
            "save state of actor 'sys/nobody': revision conflict (expected 2, stored 0)");
  ASSERT_TRUE(run_task(store->save(key_, make_snapshot("v3"), 2)));
  store.reset();

  EXPECT_EQ(query(file_, "SELECT count(*) FROM snapshots"), "1");
  EXPECT_EQ(query(file_, "SELECT revision FROM snapshots"), "3");
  EXPECT_EQ(query(file_,
                  "SELECT group_concat(revision || '=' || data, ',') FROM (SELECT revision, data "
                  "FROM snapshot_history ORDER BY revision)"),
            "1=v1,2=v2,3=v3");
}

// Loads queued together are served as one batch and their callers resumed per executor: callers
// on two threads each get their own actor's state, on their own thread.
TEST_F(SqliteStoreTest, BatchedLoadsResumeEachCallerOnItsOwnThread) {
  auto store = open();
  constexpr int kActors = 200;
  for (int i = 0; i < kActors; ++i) {
    ASSERT_TRUE(run_task(
        store->save({"sys", "a" + std::to_string(i)}, make_snapshot("s" + std::to_string(i)), 0)));
  }
  auto load_all = [&](int parity, int* good) {
    asio::io_context io;
    const std::thread::id self = std::this_thread::get_id();
    for (int i = parity; i < kActors; i += 2) {
      asio::co_spawn(io, store->load({"sys", "a" + std::to_string(i)}),
                     [i, self, good](std::exception_ptr, Result<std::optional<Snapshot>> loaded) {
                       if (loaded && loaded->has_value()
                           && (*loaded)->data == "s" + std::to_string(i)
                           && std::this_thread::get_id() == self) {
                         ++*good;
                       }
                     });
    }
    io.run();
  };
  int even = 0;
  int odd = 0;
  std::thread other([&] { load_all(1, &odd); });
  load_all(0, &even);
  other.join();
  EXPECT_EQ(even, kActors / 2);
  EXPECT_EQ(odd, kActors / 2);
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
