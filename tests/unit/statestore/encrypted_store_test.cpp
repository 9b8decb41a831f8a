#include "statestore/encrypted_store.hpp"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "statestore/base64.hpp"
#include "statestore/memory/memory_store.hpp"
#include "store_test_util.hpp"

namespace spawn::statestore {
namespace {

using namespace std::string_literals;
using testing::run_task;

Cipher make_cipher(char fill) {
  Result<Cipher> cipher = Cipher::from_base64_key(base64_encode(std::string(32, fill)));
  EXPECT_TRUE(cipher) << cipher.error().message;
  return *cipher;
}

// An EncryptedStore over an InMemoryStore the test can still look into.
class EncryptedStoreTest : public ::testing::Test {
protected:
  EncryptedStoreTest() {
    auto inner = std::make_unique<memory::InMemoryStore>();
    inner_ = inner.get();
    store_ = std::make_unique<EncryptedStore>(std::move(inner), make_cipher('k'));
  }

  static Snapshot make_snapshot(std::string data) {
    Snapshot snapshot;
    snapshot.tags = {{"owner", "alice"}};
    snapshot.has_state = true;
    snapshot.type_url = "type.googleapis.com/example.Counter";
    snapshot.data = std::move(data);
    return snapshot;
  }

  memory::InMemoryStore* inner_ = nullptr;
  std::unique_ptr<EncryptedStore> store_;
  const ActorKey key_{"sys", "name"};
};

TEST_F(EncryptedStoreTest, StoresOnlyDataEncrypted) {
  ASSERT_TRUE(run_task(store_->save(key_, make_snapshot("plain state"), 0)));

  Result<std::optional<Snapshot>> raw = run_task(inner_->load(key_));
  ASSERT_TRUE(raw && raw->has_value());
  EXPECT_EQ((*raw)->data.substr(0, 12), "\x01\x0a"s + "AES.GCM.V1");
  EXPECT_EQ((*raw)->data.find("plain state"), std::string::npos);
  EXPECT_EQ((*raw)->tags.at("owner"), "alice");
  EXPECT_EQ((*raw)->type_url, "type.googleapis.com/example.Counter");
}

TEST_F(EncryptedStoreTest, LoadAndLoadRevisionDecrypt) {
  ASSERT_TRUE(run_task(store_->save(key_, make_snapshot("one"), 0)));
  ASSERT_TRUE(run_task(store_->save(key_, make_snapshot("two"), 1)));

  Result<std::optional<Snapshot>> newest = run_task(store_->load(key_));
  ASSERT_TRUE(newest && newest->has_value());
  EXPECT_EQ((*newest)->data, "two");
  Result<std::optional<Snapshot>> first = run_task(store_->load_revision(key_, 1));
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ((*first)->data, "one");
}

TEST_F(EncryptedStoreTest, LeavesSnapshotWithoutStateAlone) {
  Snapshot snapshot;
  snapshot.has_state = false;
  ASSERT_TRUE(run_task(store_->save(key_, snapshot, 0)));

  Result<std::optional<Snapshot>> raw = run_task(inner_->load(key_));
  ASSERT_TRUE(raw && raw->has_value());
  EXPECT_EQ((*raw)->data, "");
  Result<std::optional<Snapshot>> loaded = run_task(store_->load(key_));
  ASSERT_TRUE(loaded && loaded->has_value());
  EXPECT_FALSE((*loaded)->has_state);
}

TEST_F(EncryptedStoreTest, UndecryptableDataIsDataLossNamingTheActor) {
  ASSERT_TRUE(run_task(inner_->save(key_, make_snapshot("never encrypted"), 0)));

  Result<std::optional<Snapshot>> loaded = run_task(store_->load(key_));
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::kDataLoss);
  EXPECT_EQ(loaded.error().message,
            "load state of actor 'sys/name': decrypt: not an encrypted blob (first byte 110, "
            "expected 1)");
  Result<std::optional<Snapshot>> by_revision = run_task(store_->load_revision(key_, 1));
  ASSERT_FALSE(by_revision);
  EXPECT_EQ(by_revision.error().code, ErrorCode::kDataLoss);
  EXPECT_EQ(by_revision.error().message.rfind("load state of actor 'sys/name' at revision 1: ", 0),
            0u)
      << by_revision.error().message;
}

TEST_F(EncryptedStoreTest, StoresOnlyScheduledRequestEncrypted) {
  const ScheduledInvocation invocation{
      .id = "inv-1", .due_ms = 42, .system = "sys", .actor = "name", .request = "plain request"};
  ASSERT_TRUE(run_task(store_->put_scheduled(invocation)));

  Result<std::vector<ScheduledInvocation>> raw = run_task(inner_->due_scheduled(42, 10));
  ASSERT_TRUE(raw && raw->size() == 1);
  const ScheduledInvocation& stored = raw->front();
  EXPECT_EQ(stored.request.substr(0, 12), "\x01\x0a"s + "AES.GCM.V1");
  EXPECT_EQ(stored.request.find("plain request"), std::string::npos);
  EXPECT_EQ(stored.id, "inv-1");
  EXPECT_EQ(stored.due_ms, 42);
  EXPECT_EQ(stored.system, "sys");
  EXPECT_EQ(stored.actor, "name");

  Result<std::vector<ScheduledInvocation>> due = run_task(store_->due_scheduled(42, 10));
  ASSERT_TRUE(due && due->size() == 1);
  EXPECT_EQ(due->front(), invocation);
}

TEST_F(EncryptedStoreTest, UndecryptableScheduledRequestIsDataLossNamingTheId) {
  ASSERT_TRUE(run_task(inner_->put_scheduled(
      {.id = "good", .due_ms = 1, .system = "sys", .actor = "name", .request = ""})));
  ASSERT_TRUE(run_task(store_->put_scheduled(
      {.id = "fine", .due_ms = 1, .system = "sys", .actor = "name", .request = "x"})));
  ASSERT_TRUE(run_task(inner_->put_scheduled(
      {.id = "raw", .due_ms = 2, .system = "sys", .actor = "name", .request = "never"})));

  Result<std::vector<ScheduledInvocation>> due = run_task(store_->due_scheduled(1, 10));
  ASSERT_FALSE(due);
  EXPECT_EQ(due.error().code, ErrorCode::kDataLoss);
  EXPECT_EQ(due.error().message.rfind("load scheduled invocation 'good': decrypt: ", 0), 0u)
      << due.error().message;
  ASSERT_TRUE(run_task(store_->remove_scheduled({"good"})));
  Result<std::vector<ScheduledInvocation>> after = run_task(store_->due_scheduled(1, 10));
  ASSERT_TRUE(after) << after.error().message;
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ(after->front().request, "x");
  Result<std::int64_t> count = run_task(store_->count_scheduled());
  ASSERT_TRUE(count && *count == 2);
}

TEST_F(EncryptedStoreTest, PassesConflictsThrough) {
  ASSERT_TRUE(run_task(store_->save(key_, make_snapshot("one"), 0)));

  Result<std::int64_t> stale = run_task(store_->save(key_, make_snapshot("again"), 0));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict) << stale.error().message;
}

}  // namespace
}  // namespace spawn::statestore
