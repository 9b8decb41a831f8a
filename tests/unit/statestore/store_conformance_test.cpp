// The behaviour every Store implementation shares (STYLE §6: one suite, one instance per backend).

#include <atomic>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

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

/// One backend under test.
struct Backend {
  std::string name;
  /// Opens the store kept in `dir` (the same dir reopens the same data when persistent), with
  /// `key_b64` for backends that encrypt.
  std::function<Result<std::unique_ptr<Store>>(const std::filesystem::path& dir,
                                               const std::string& key_b64)>
      open;
  bool persistent = false;
  bool encrypted = false;
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

class StoreConformanceTest : public ::testing::TestWithParam<Backend> {
protected:
  void SetUp() override { store_ = open(kKey); }

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
  const std::string live = read_database_files(database_file(dir_.path()));
  store_.reset();
  const std::string closed = read_database_files(database_file(dir_.path()));

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

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest,
                         ::testing::Values(memory_backend(), sqlite_backend(),
                                           encrypted_sqlite_backend()),
                         [](const ::testing::TestParamInfo<Backend>& backend) {
                           return backend.param.name;
                         });

}  // namespace
}  // namespace spawn::statestore
