// The behaviour every Store implementation shares (STYLE §6: one suite, one instance per backend).

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "sql_test_servers.hpp"
#include "statestore/base64.hpp"
#include "statestore/make_store.hpp"
#include "statestore/sqlite/sqlite_store.hpp"
#include "statestore/store.hpp"
#include "store_test_util.hpp"

namespace spawn::statestore {
namespace {

using namespace std::string_literals;
using testing::read_database_files;
using testing::run_task;
using testing::TempDir;

const std::string kKey = base64_encode(std::string(32, 'a'));
const std::string kOtherKey = base64_encode(std::string(32, 'b'));
const std::string kMarker = "PLAINTEXT-MARKER-7f3a9c";

using OpenStore = std::function<Result<std::unique_ptr<Store>>(const std::filesystem::path& dir,
                                                               const std::string& key_b64)>;

/// One backend under test.
struct Backend {
  std::string name;
  /// Opens the store kept in `dir` (the same dir reopens the same data when persistent), with
  /// `key_b64` for backends that encrypt. Server backends keep a database named after `dir`.
  OpenStore open;
  bool persistent = false;
  bool encrypted = false;
  /// Every byte the backend keeps for `dir`, for the plaintext checks; unset: the SQLite files.
  std::function<std::string(const std::filesystem::path& dir)> stored_bytes = nullptr;
  /// Server backends: why the server is missing, or "" when it is there.
  std::function<std::string()> missing = nullptr;
  /// Server backends: drops the database of `dir`.
  std::function<void(const std::filesystem::path& dir)> cleanup = nullptr;
  /// Server backends: ends the store's connections server-side.
  std::function<void(const std::filesystem::path& dir)> end_connections = nullptr;
  /// Server backends: opens the store of `dir` through 127.0.0.1:`port` instead of the server's
  /// own address, and the address to forward to.
  std::function<Result<std::unique_ptr<Store>>(const std::filesystem::path& dir,
                                               const std::string& key_b64, std::uint16_t port)>
      open_via = nullptr;
  std::function<testing::ServerSettings()> server = nullptr;
};

// Names the backend in test output (GoogleTest would otherwise dump its bytes).
void PrintTo(const Backend& backend, std::ostream* out) {
  *out << backend.name;
}

std::filesystem::path database_file(const std::filesystem::path& dir) {
  return dir / "state" / "spawn.db";
}

Backend memory_backend() {
  return {"memory",
          [](const std::filesystem::path&, const std::string&) {
            StoreConfig config;
            config.type = "memory";
            return make_store(config);
          },
          false, false};
}

Backend sqlite_backend() {
  return {
      "sqlite",
      [](const std::filesystem::path& dir, const std::string&) -> Result<std::unique_ptr<Store>> {
        sqlite::Options options;
        options.node = "node-1";
        Result<std::unique_ptr<sqlite::SqliteStore>> store =
            sqlite::SqliteStore::open(database_file(dir), options);
        if (!store) {
          return std::move(store).error();
        }
        return std::unique_ptr<Store>(std::move(*store));
      },
      true, false};
}

Backend encrypted_sqlite_backend() {
  return {"encrypted_sqlite",
          [](const std::filesystem::path& dir, const std::string& key_b64) {
            StoreConfig config;
            config.type = "sqlite";
            config.name = database_file(dir).string();
            config.key_b64 = key_b64;
            config.node = "node-1";
            return make_store(config);
          },
          true, true};
}

bool under_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

#if SPAWN_WITH_POSTGRES || SPAWN_WITH_MYSQL
// A server database per test, named after the test's temp dir (unique on this machine).
std::string database_name(const std::filesystem::path& dir) {
  return dir.filename().string();
}

// A server backend (postgres, cockroachdb or mysql) opened through make_store(), the way the
// proxy opens it, against the test server in `variable`.
Backend server_backend(std::string name, std::string type, const char* variable,
                       void (*create)(const testing::ServerSettings&, const std::string&),
                       void (*drop)(const testing::ServerSettings&, const std::string&),
                       std::string (*bytes)(const testing::ServerSettings&, const std::string&),
                       void (*end)(const testing::ServerSettings&, const std::string&)) {
  auto server = [variable] {
    return testing::server_from_env(variable).value();
  };
  auto open_via = [type, server, create](const std::filesystem::path& dir,
                                         const std::string& key_b64,
                                         std::uint16_t port) -> Result<std::unique_ptr<Store>> {
    const testing::ServerSettings settings = server();
    create(settings, database_name(dir));
    StoreConfig config;
    config.type = type;
    config.name = database_name(dir);
    config.host = settings.host;
    config.port = port;
    config.username = settings.user;
    config.password = settings.password;
    config.pool_size = 2;
    config.key_b64 = key_b64;
    config.node = "node-1";
    return make_store(config);
  };
  Backend backend;
  backend.name = std::move(name);
  backend.open = [open_via, server](const std::filesystem::path& dir, const std::string& key_b64) {
    return open_via(dir, key_b64, server().port);
  };
  backend.persistent = true;
  backend.encrypted = true;
  backend.stored_bytes = [server, bytes](const std::filesystem::path& dir) {
    return bytes(server(), database_name(dir));
  };
  backend.missing = [variable] {
    return testing::server_missing(variable);
  };
  backend.cleanup = [server, drop](const std::filesystem::path& dir) {
    drop(server(), database_name(dir));
  };
  backend.end_connections = [server, end](const std::filesystem::path& dir) {
    end(server(), database_name(dir));
  };
  backend.open_via = open_via;
  backend.server = server;
  return backend;
}
#endif

#if SPAWN_WITH_POSTGRES
Backend postgres_backend() {
  return server_backend("postgres", "postgres", "SPAWN_TEST_POSTGRES", testing::pg::create_database,
                        testing::pg::drop_database, testing::pg::table_bytes,
                        testing::pg::terminate_connections);
}

// No CockroachDB server runs here: its dialect (no advisory lock, no "C" collation, retries on
// 40001) runs against PostgreSQL, which accepts the same SQL.
Backend cockroach_on_postgres_backend() {
  return server_backend("cockroachdb_on_postgres", "cockroachdb", "SPAWN_TEST_POSTGRES",
                        testing::pg::create_database, testing::pg::drop_database,
                        testing::pg::table_bytes, testing::pg::terminate_connections);
}
#endif

#if SPAWN_WITH_MYSQL
Backend mariadb_backend() {
  return server_backend("mariadb", "mariadb", "SPAWN_TEST_MYSQL", testing::my::create_database,
                        testing::my::drop_database, testing::my::table_bytes,
                        testing::my::terminate_connections);
}
#endif

Snapshot make_snapshot(std::string data) {
  Snapshot snapshot;
  snapshot.status = ActorStatus::kActivated;
  snapshot.node = "node-1";
  snapshot.tags = {{"owner", "alice"}, {"empty", ""}};
  snapshot.has_state = true;
  snapshot.type_url = "type.googleapis.com/example.Counter";
  snapshot.data = std::move(data);
  return snapshot;
}

ScheduledInvocation make_invocation(std::string id, std::int64_t due_ms,
                                    std::string request = "request") {
  return {.id = std::move(id),
          .due_ms = due_ms,
          .system = "spawn-system",
          .actor = "counter",
          .request = std::move(request)};
}

// The ids of `invocations`, in order.
std::vector<std::string> ids_of(const std::vector<ScheduledInvocation>& invocations) {
  std::vector<std::string> ids;
  for (const ScheduledInvocation& invocation : invocations) {
    ids.push_back(invocation.id);
  }
  return ids;
}

class StoreConformanceTest : public ::testing::TestWithParam<Backend> {
protected:
  void SetUp() override {
    if (GetParam().missing) {
      const std::string missing = GetParam().missing();
      if (!missing.empty()) {
        server_missing_ = true;
        if (under_ci()) {
          FAIL() << "CI=true and the " << GetParam().name << " server is missing: " << missing;
        }
        GTEST_SKIP() << missing;
      }
    }
    store_ = open(kKey);
  }

  void TearDown() override {
    store_.reset();
    if (GetParam().cleanup && !server_missing_) {
      GetParam().cleanup(dir_.path());
    }
  }

  // What the backend keeps on disk or in its tables for this test.
  std::string stored_bytes() const {
    if (GetParam().stored_bytes) {
      return GetParam().stored_bytes(dir_.path());
    }
    return read_database_files(database_file(dir_.path()));
  }

  std::unique_ptr<Store> open(const std::string& key_b64) {
    Result<std::unique_ptr<Store>> store = GetParam().open(dir_.path(), key_b64);
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(*store) : nullptr;
  }

  void reopen() {
    store_.reset();
    store_ = open(kKey);
  }

  Result<std::optional<Snapshot>> load(const ActorKey& key) { return run_task(store_->load(key)); }

  Result<std::optional<Snapshot>> load_revision(const ActorKey& key, std::int64_t revision) {
    return run_task(store_->load_revision(key, revision));
  }

  Result<std::int64_t> save(const ActorKey& key, Snapshot snapshot, std::int64_t expected) {
    return run_task(store_->save(key, std::move(snapshot), expected));
  }

  Result<void> put_scheduled(ScheduledInvocation invocation) {
    return run_task(store_->put_scheduled(std::move(invocation)));
  }

  Result<std::vector<ScheduledInvocation>> due_scheduled(std::int64_t until_ms,
                                                         std::size_t limit = 100) {
    return run_task(store_->due_scheduled(until_ms, limit));
  }

  Result<void> remove_scheduled(std::vector<std::string> ids) {
    return run_task(store_->remove_scheduled(std::move(ids)));
  }

  // The ids due by `until_ms`, or one "error: ..." entry.
  std::vector<std::string> due_ids(std::int64_t until_ms, std::size_t limit = 100) {
    Result<std::vector<ScheduledInvocation>> due = due_scheduled(until_ms, limit);
    if (!due) {
      return {"error: " + due.error().message};
    }
    return ids_of(*due);
  }

  // Saves revisions 1..count of `key`, each with data "v<revision>".
  void save_revisions(const ActorKey& key, int count) {
    for (int revision = 1; revision <= count; ++revision) {
      Result<std::int64_t> saved =
          save(key, make_snapshot("v" + std::to_string(revision)), revision - 1);
      ASSERT_TRUE(saved) << saved.error().message;
      ASSERT_EQ(*saved, revision);
    }
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  const ActorKey key_{"spawn-system", "counter"};
  bool server_missing_ = false;
};

TEST_P(StoreConformanceTest, LoadOfUnknownActorIsEmpty) {
  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_FALSE(loaded->has_value());
}

TEST_P(StoreConformanceTest, FirstSaveIsRevisionOneAndRoundTripsEveryField) {
  const std::string data = "\0binary\0state\xff\x01"s + kMarker;
  Result<std::int64_t> saved = save(key_, make_snapshot(data), 0);
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(*saved, 1);

  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  const Snapshot& snapshot = **loaded;
  EXPECT_EQ(snapshot.revision, 1);
  EXPECT_EQ(snapshot.status, ActorStatus::kActivated);
  EXPECT_EQ(snapshot.node, "node-1");
  EXPECT_EQ(snapshot.tags, (std::map<std::string, std::string>{{"owner", "alice"}, {"empty", ""}}));
  EXPECT_TRUE(snapshot.has_state);
  EXPECT_EQ(snapshot.type_url, "type.googleapis.com/example.Counter");
  EXPECT_EQ(snapshot.data, data);
}

TEST_P(StoreConformanceTest, SnapshotWithoutStateRoundTrips) {
  Snapshot snapshot;
  snapshot.status = ActorStatus::kDeactivated;
  snapshot.tags = {{"k", "v"}};
  snapshot.has_state = false;
  ASSERT_TRUE(save(key_, snapshot, 0));

  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_FALSE((*loaded)->has_state);
  EXPECT_EQ((*loaded)->status, ActorStatus::kDeactivated);
  EXPECT_EQ((*loaded)->tags, snapshot.tags);
  EXPECT_EQ((*loaded)->type_url, "");
  EXPECT_EQ((*loaded)->data, "");
}

TEST_P(StoreConformanceTest, EmptyStateIsNotTheSameAsNoState) {
  ASSERT_TRUE(save(key_, make_snapshot(""), 0));

  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_TRUE((*loaded)->has_state);
  EXPECT_EQ((*loaded)->data, "");
}

TEST_P(StoreConformanceTest, EachSaveAdvancesTheRevisionByOne) {
  save_revisions(key_, 3);

  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->revision, 3);
  EXPECT_EQ((*loaded)->data, "v3");
}

TEST_P(StoreConformanceTest, RejectsWriteAtStaleRevisionAndKeepsState) {
  save_revisions(key_, 2);

  Result<std::int64_t> stale = save(key_, make_snapshot("lost update"), 1);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict) << stale.error().message;

  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->revision, 2);
  EXPECT_EQ((*loaded)->data, "v2");
}

TEST_P(StoreConformanceTest, RejectsWriteAtRevisionNotYetStored) {
  Result<std::int64_t> ahead = save(key_, make_snapshot("x"), 4);
  ASSERT_FALSE(ahead);
  EXPECT_EQ(ahead.error().code, ErrorCode::kConflict) << ahead.error().message;

  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_FALSE(loaded->has_value());
}

TEST_P(StoreConformanceTest, KeysDoNotCollideAcrossSystemAndName) {
  const ActorKey first{"a/b", "c"};
  const ActorKey second{"a", "b/c"};
  ASSERT_TRUE(save(first, make_snapshot("first"), 0));
  ASSERT_TRUE(save(second, make_snapshot("second"), 0));

  Result<std::optional<Snapshot>> loaded = load(first);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->data, "first");
}

TEST_P(StoreConformanceTest, LoadRevisionReturnsHistoricalAndCurrentRevisions) {
  save_revisions(key_, 3);

  for (int revision = 1; revision <= 3; ++revision) {
    Result<std::optional<Snapshot>> loaded = load_revision(key_, revision);
    ASSERT_TRUE(loaded) << loaded.error().message;
    ASSERT_TRUE(loaded->has_value()) << "revision " << revision;
    EXPECT_EQ((*loaded)->revision, revision);
    EXPECT_EQ((*loaded)->data, "v" + std::to_string(revision));
    EXPECT_EQ((*loaded)->tags.at("owner"), "alice");
  }
}

TEST_P(StoreConformanceTest, LoadRevisionOfMissingRevisionIsEmpty) {
  save_revisions(key_, 2);

  for (const std::int64_t revision : {std::int64_t{-1}, std::int64_t{0}, std::int64_t{3}}) {
    Result<std::optional<Snapshot>> loaded = load_revision(key_, revision);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_FALSE(loaded->has_value()) << "revision " << revision;
  }
  Result<std::optional<Snapshot>> unknown = load_revision({"spawn-system", "nobody"}, 1);
  ASSERT_TRUE(unknown) << unknown.error().message;
  EXPECT_FALSE(unknown->has_value());
}

TEST_P(StoreConformanceTest, ConcurrentCoroutinesAtSameRevisionExactlyOneWins) {
  constexpr int kWriters = 16;
  asio::io_context io;
  std::vector<Result<std::int64_t>> results;
  for (int i = 0; i < kWriters; ++i) {
    asio::co_spawn(io, store_->save(key_, make_snapshot("writer " + std::to_string(i)), 0),
                   [&results](std::exception_ptr, Result<std::int64_t> result) {
                     results.push_back(std::move(result));
                   });
  }
  io.run();

  ASSERT_EQ(results.size(), kWriters);
  int wins = 0;
  for (const Result<std::int64_t>& result : results) {
    if (result) {
      ++wins;
      EXPECT_EQ(*result, 1);
    } else {
      EXPECT_EQ(result.error().code, ErrorCode::kConflict) << result.error().message;
    }
  }
  EXPECT_EQ(wins, 1);
  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded && loaded->has_value());
  EXPECT_EQ((*loaded)->revision, 1);
}

TEST_P(StoreConformanceTest, ConcurrentThreadsAtSameRevisionExactlyOneWins) {
  save_revisions(key_, 1);
  constexpr int kThreads = 4;
  std::atomic<int> wins = 0;
  std::atomic<int> conflicts = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Result<std::int64_t> result =
          run_task(store_->save(key_, make_snapshot("thread " + std::to_string(t)), 1));
      if (result) {
        ++wins;
      } else if (result.error().code == ErrorCode::kConflict) {
        ++conflicts;
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(wins, 1);
  EXPECT_EQ(conflicts, kThreads - 1);
}

TEST_P(StoreConformanceTest, ConcurrentActorsEachKeepTheirOwnHistory) {
  constexpr int kActors = 8;
  constexpr int kRevisions = 10;
  asio::io_context io;
  int failures = 0;
  for (int a = 0; a < kActors; ++a) {
    auto writer = [](Store* store, ActorKey key) -> Task<int> {
      int failed = 0;
      for (int revision = 1; revision <= kRevisions; ++revision) {
        Result<std::int64_t> saved = co_await store->save(
            key, make_snapshot(key.name + " v" + std::to_string(revision)), revision - 1);
        if (!saved || *saved != revision) {
          ++failed;
        }
      }
      co_return failed;
    };
    asio::co_spawn(io, writer(store_.get(), {"spawn-system", "actor-" + std::to_string(a)}),
                   [&failures](std::exception_ptr, int failed) { failures += failed; });
  }
  io.run();
  EXPECT_EQ(failures, 0);

  for (int a = 0; a < kActors; ++a) {
    const ActorKey key{"spawn-system", "actor-" + std::to_string(a)};
    Result<std::optional<Snapshot>> middle = load_revision(key, 5);
    ASSERT_TRUE(middle && middle->has_value());
    EXPECT_EQ((*middle)->data, key.name + " v5");
    Result<std::optional<Snapshot>> newest = load(key);
    ASSERT_TRUE(newest && newest->has_value());
    EXPECT_EQ((*newest)->revision, kRevisions);
  }
}

TEST_P(StoreConformanceTest, DataSurvivesReopening) {
  if (!GetParam().persistent) {
    GTEST_SKIP() << GetParam().name << " is not persistent";
  }
  const std::string data = "\0durable\0"s;
  save_revisions(key_, 2);
  ASSERT_TRUE(save(key_, make_snapshot(data), 2));

  reopen();

  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->revision, 3);
  EXPECT_EQ((*loaded)->data, data);
  Result<std::optional<Snapshot>> first = load_revision(key_, 1);
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ((*first)->data, "v1");
  Result<std::int64_t> next = save(key_, make_snapshot("after reopen"), 3);
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(*next, 4);
}

TEST_P(StoreConformanceTest, EncryptedFileHoldsNoPlaintext) {
  if (!GetParam().encrypted) {
    GTEST_SKIP() << GetParam().name << " does not encrypt";
  }
  ASSERT_TRUE(save(key_, make_snapshot("v1 " + kMarker), 0));
  ASSERT_TRUE(save(key_, make_snapshot("v2 " + kMarker), 1));
  const std::string live = stored_bytes();
  store_.reset();
  const std::string closed = stored_bytes();

  ASSERT_FALSE(closed.empty());
  EXPECT_EQ(live.find(kMarker), std::string::npos);
  EXPECT_EQ(closed.find(kMarker), std::string::npos);
  // Tags stay in clear (PROTOCOL.md §6).
  EXPECT_NE(closed.find("alice"), std::string::npos);
}

TEST_P(StoreConformanceTest, LoadUnderAnotherKeyIsDataLoss) {
  if (!GetParam().encrypted) {
    GTEST_SKIP() << GetParam().name << " does not encrypt";
  }
  ASSERT_TRUE(save(key_, make_snapshot("secret"), 0));
  store_.reset();
  store_ = open(kOtherKey);

  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kDataLoss) << loaded.error().message;
  EXPECT_EQ(loaded.error().message,
            "load state of actor 'spawn-system/counter': decrypt: authentication failed (state "
            "written under another SPAWN_STATESTORE_KEY?)");
}

TEST_P(StoreConformanceTest, PutScheduledThenDueReturnsItWithEveryField) {
  const ScheduledInvocation invocation =
      make_invocation("a1", 1'700'000'000'000, "\0invocation\xff\x01"s + kMarker);
  Result<void> put = put_scheduled(invocation);
  ASSERT_TRUE(put) << put.error().message;

  Result<std::vector<ScheduledInvocation>> due = due_scheduled(1'700'000'000'000);
  ASSERT_TRUE(due) << due.error().message;
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(due->front(), invocation);
}

TEST_P(StoreConformanceTest, ScheduledNotYetDueIsNotReturned) {
  ASSERT_TRUE(put_scheduled(make_invocation("later", 1000)));

  EXPECT_EQ(due_ids(999), std::vector<std::string>{});
  EXPECT_EQ(due_ids(1000), std::vector<std::string>{"later"});
}

TEST_P(StoreConformanceTest, DueScheduledIsOrderedByDueTimeThenId) {
  for (const auto& [id, due_ms] : std::vector<std::pair<std::string, std::int64_t>>{
           {"c", 20}, {"b", 10}, {"z", 5}, {"a", 20}, {"a0", 10}, {"late", 99}}) {
    ASSERT_TRUE(put_scheduled(make_invocation(id, due_ms)));
  }

  EXPECT_EQ(due_ids(50), (std::vector<std::string>{"z", "a0", "b", "a", "c"}));
}

TEST_P(StoreConformanceTest, DueScheduledHonoursTheLimit) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(put_scheduled(make_invocation("id-" + std::to_string(i), i)));
  }

  EXPECT_EQ(due_ids(100, 3), (std::vector<std::string>{"id-0", "id-1", "id-2"}));
  EXPECT_EQ(due_ids(100, 0), std::vector<std::string>{});
  EXPECT_EQ(due_ids(100, std::numeric_limits<std::size_t>::max()).size(), 5u);
}

TEST_P(StoreConformanceTest, RemoveScheduledMakesItDisappearAndIgnoresUnknownIds) {
  ASSERT_TRUE(put_scheduled(make_invocation("keep", 1)));
  ASSERT_TRUE(put_scheduled(make_invocation("drop-1", 2)));
  ASSERT_TRUE(put_scheduled(make_invocation("drop-2", 3)));

  Result<void> removed = remove_scheduled({"drop-1", "never-stored", "drop-2", "drop-1"});
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(due_ids(10), std::vector<std::string>{"keep"});
  Result<void> nothing = remove_scheduled({});
  EXPECT_TRUE(nothing) << nothing.error().message;
}

TEST_P(StoreConformanceTest, PutScheduledWithSameIdReplacesIt) {
  ASSERT_TRUE(put_scheduled(make_invocation("same", 5, "first")));
  ScheduledInvocation replacement = make_invocation("same", 50, "second");
  replacement.actor = "other-actor";
  ASSERT_TRUE(put_scheduled(replacement));

  EXPECT_EQ(due_ids(10), std::vector<std::string>{});
  Result<std::vector<ScheduledInvocation>> due = due_scheduled(50);
  ASSERT_TRUE(due) << due.error().message;
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(due->front(), replacement);
  Result<std::int64_t> count = run_task(store_->count_scheduled());
  ASSERT_TRUE(count) << count.error().message;
  EXPECT_EQ(*count, 1);
}

TEST_P(StoreConformanceTest, PutScheduledRejectsAnEmptyId) {
  Result<void> put = put_scheduled(make_invocation("", 1));
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, ErrorCode::kInvalidArgument) << put.error().message;
  EXPECT_EQ(due_ids(10), std::vector<std::string>{});
}

TEST_P(StoreConformanceTest, CountScheduledCountsDueAndNotDue) {
  Result<std::int64_t> empty = run_task(store_->count_scheduled());
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_EQ(*empty, 0);
  ASSERT_TRUE(put_scheduled(make_invocation("past", 1)));
  ASSERT_TRUE(put_scheduled(make_invocation("future", 1'000'000)));
  ASSERT_TRUE(put_scheduled(make_invocation("gone", 2)));
  ASSERT_TRUE(remove_scheduled({"gone"}));

  Result<std::int64_t> count = run_task(store_->count_scheduled());
  ASSERT_TRUE(count) << count.error().message;
  EXPECT_EQ(*count, 2);
}

TEST_P(StoreConformanceTest, ScheduledIsIndependentOfSnapshots) {
  save_revisions(key_, 2);
  ASSERT_TRUE(put_scheduled(make_invocation("x", 1)));

  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded && loaded->has_value());
  EXPECT_EQ((*loaded)->revision, 2);
  ASSERT_TRUE(remove_scheduled({"x"}));
  Result<std::int64_t> next = save(key_, make_snapshot("v3"), 2);
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(*next, 3);
}

TEST_P(StoreConformanceTest, ScheduledSurvivesReopening) {
  if (!GetParam().persistent) {
    GTEST_SKIP() << GetParam().name << " is not persistent";
  }
  const ScheduledInvocation kept = make_invocation("kept", 7, "\0payload\0"s);
  ASSERT_TRUE(put_scheduled(kept));
  ASSERT_TRUE(put_scheduled(make_invocation("removed", 8)));
  ASSERT_TRUE(remove_scheduled({"removed"}));

  reopen();

  Result<std::vector<ScheduledInvocation>> due = due_scheduled(100);
  ASSERT_TRUE(due) << due.error().message;
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ(due->front(), kept);
}

TEST_P(StoreConformanceTest, EncryptedFileHoldsNoPlaintextScheduledRequest) {
  if (!GetParam().encrypted) {
    GTEST_SKIP() << GetParam().name << " does not encrypt";
  }
  ASSERT_TRUE(put_scheduled(make_invocation("secret-1", 1, "request " + kMarker)));
  ASSERT_TRUE(put_scheduled(make_invocation("secret-1", 2, "replaced " + kMarker)));
  const std::string live = stored_bytes();
  store_.reset();
  const std::string closed = stored_bytes();

  ASSERT_FALSE(closed.empty());
  EXPECT_EQ(live.find(kMarker), std::string::npos);
  EXPECT_EQ(closed.find(kMarker), std::string::npos);
  // The id stays in clear, for listing and removal.
  EXPECT_NE(closed.find("secret-1"), std::string::npos);
}

TEST_P(StoreConformanceTest, DueScheduledUnderAnotherKeyIsDataLossNamingTheId) {
  if (!GetParam().encrypted) {
    GTEST_SKIP() << GetParam().name << " does not encrypt";
  }
  ASSERT_TRUE(put_scheduled(make_invocation("inv-42", 1)));
  store_.reset();
  store_ = open(kOtherKey);

  Result<std::vector<ScheduledInvocation>> due = due_scheduled(10);
  ASSERT_FALSE(due);
  EXPECT_EQ(due.error().code, ErrorCode::kDataLoss) << due.error().message;
  EXPECT_EQ(due.error().message,
            "load scheduled invocation 'inv-42': decrypt: authentication failed (state written "
            "under another SPAWN_STATESTORE_KEY?)");
  // Still countable and removable without the key.
  Result<std::int64_t> count = run_task(store_->count_scheduled());
  ASSERT_TRUE(count) << count.error().message;
  EXPECT_EQ(*count, 1);
  ASSERT_TRUE(remove_scheduled({"inv-42"}));
  EXPECT_EQ(due_ids(10), std::vector<std::string>{});
}

TEST_P(StoreConformanceTest, ConcurrentScheduledPutsAllLand) {
  constexpr int kPuts = 10'000;
  asio::io_context io;
  int failures = 0;
  for (int i = 0; i < kPuts; ++i) {
    asio::co_spawn(
        io, store_->put_scheduled(make_invocation("id-" + std::to_string(i), i % 100)),
        [&failures](std::exception_ptr e, Result<void> put) { failures += (e || !put) ? 1 : 0; });
  }
  io.run();
  EXPECT_EQ(failures, 0);

  Result<std::int64_t> count = run_task(store_->count_scheduled());
  ASSERT_TRUE(count) << count.error().message;
  EXPECT_EQ(*count, kPuts);
  Result<std::vector<ScheduledInvocation>> due = due_scheduled(99, kPuts + 1);
  ASSERT_TRUE(due) << due.error().message;
  ASSERT_EQ(due->size(), static_cast<std::size_t>(kPuts));
  EXPECT_TRUE(std::is_sorted(due->begin(), due->end(),
                             [](const ScheduledInvocation& a, const ScheduledInvocation& b) {
                               return std::pair(a.due_ms, a.id) < std::pair(b.due_ms, b.id);
                             }));
}

TEST_P(StoreConformanceTest, RecoversWhenTheServerEndsItsConnections) {
  if (!GetParam().end_connections) {
    GTEST_SKIP() << GetParam().name << " has no server";
  }
  save_revisions(key_, 1);
  ASSERT_TRUE(load(key_));

  // As after a server restart: every connection the store holds is gone.
  GetParam().end_connections(dir_.path());

  Result<std::int64_t> saved = save(key_, make_snapshot("v2"), 1);
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(*saved, 2);
  GetParam().end_connections(dir_.path());
  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->data, "v2");
  ASSERT_TRUE(put_scheduled(make_invocation("after-reconnect", 1)));
  EXPECT_EQ(due_ids(10), std::vector<std::string>{"after-reconnect"});
}

TEST_P(StoreConformanceTest, FailsUnavailableWhileTheServerIsAwayAndRecoversWithoutLoss) {
  if (!GetParam().open_via) {
    GTEST_SKIP() << GetParam().name << " has no server";
  }
  const testing::ServerSettings server = GetParam().server();
  testing::TcpForwarder network(server.host, server.port);
  store_.reset();
  Result<std::unique_ptr<Store>> opened = GetParam().open_via(dir_.path(), kKey, network.port());
  ASSERT_TRUE(opened) << opened.error().message;
  store_ = std::move(*opened);
  save_revisions(key_, 2);

  network.cut();
  Result<std::int64_t> lost = save(key_, make_snapshot("during outage"), 2);
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable) << lost.error().message;
  EXPECT_NE(lost.error().message.find("127.0.0.1:" + std::to_string(network.port())),
            std::string::npos)
      << lost.error().message;
  Result<std::optional<Snapshot>> unreadable = load(key_);
  ASSERT_FALSE(unreadable);
  EXPECT_EQ(unreadable.error().code, ErrorCode::kUnavailable) << unreadable.error().message;
  Result<void> not_put = put_scheduled(make_invocation("during-outage", 1));
  ASSERT_FALSE(not_put);
  EXPECT_EQ(not_put.error().code, ErrorCode::kUnavailable) << not_put.error().message;

  network.restore();
  // Nothing acknowledged was lost, and nothing that failed was applied.
  Result<std::optional<Snapshot>> loaded = load(key_);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->revision, 2);
  EXPECT_EQ((*loaded)->data, "v2");
  Result<std::int64_t> saved = save(key_, make_snapshot("v3"), 2);
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(*saved, 3);
  EXPECT_EQ(due_ids(10), std::vector<std::string>{});
}

// Every backend this build has (SPAWN_WITH_POSTGRES, SPAWN_WITH_MYSQL).
std::vector<Backend> all_backends() {
  std::vector<Backend> backends = {memory_backend(), sqlite_backend(), encrypted_sqlite_backend()};
#if SPAWN_WITH_POSTGRES
  backends.push_back(postgres_backend());
  backends.push_back(cockroach_on_postgres_backend());
#endif
#if SPAWN_WITH_MYSQL
  backends.push_back(mariadb_backend());
#endif
  return backends;
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest, ::testing::ValuesIn(all_backends()),
                         [](const ::testing::TestParamInfo<Backend>& backend) {
                           return backend.param.name;
                         });

}  // namespace
}  // namespace spawn::statestore
