#include "statestore/queued_store.hpp"

#include <algorithm>
#include <limits>
#include <system_error>
#include <utility>

#include "statestore/snapshot_codec.hpp"

namespace spawn::statestore {

QueuedStore::QueuedStore(QueueOptions options, std::unique_ptr<BatchWriter> writer,
                         std::vector<std::unique_ptr<RequestReader>> readers)
    : options_(std::move(options)), writer_(std::move(writer)), readers_(std::move(readers)) {}

Result<std::unique_ptr<QueuedStore>> QueuedStore::start(
    QueueOptions options, std::unique_ptr<BatchWriter> writer,
    std::vector<std::unique_ptr<RequestReader>> readers) {
  std::unique_ptr<QueuedStore> store(
      new QueuedStore(std::move(options), std::move(writer), std::move(readers)));
  try {
    store->writer_thread_ = std::thread([raw = store.get()] { raw->run_writer(); });
    for (std::unique_ptr<RequestReader>& reader : store->readers_) {
      store->reader_threads_.emplace_back(
          [raw = store.get(), r = reader.get()] { raw->run_reader(*r); });
    }
  } catch (const std::system_error& e) {
    return fail(ErrorCode::kInternal, std::string("start statestore threads: ") + e.what());
  }
  return store;
}

QueuedStore::~QueuedStore() {
  writes_->close();
  reads_->close();
  if (writer_thread_.joinable()) {
    writer_thread_.join();
  }
  for (std::thread& thread : reader_threads_) {
    thread.join();
  }
}

void QueuedStore::run_writer() {
  const std::size_t max_batch =
      options_.group_commit ? std::max<std::size_t>(options_.max_batch, 1) : 1;
  for (;;) {
    std::vector<WriteRequest> batch = writes_->pop(max_batch);
    if (batch.empty()) {
      return;
    }
    transactions_.fetch_add(writer_->write(batch), std::memory_order_relaxed);
    post_completions(writes_, std::move(batch));
  }
}

void QueuedStore::run_reader(RequestReader& reader) {
  const std::size_t max_batch = std::max<std::size_t>(options_.max_read_batch, 1);
  for (;;) {
    std::vector<ReadRequest> batch = reads_->pop(max_batch);
    if (batch.empty()) {
      return;
    }
    reader.serve_all(batch);
    post_completions(reads_, std::move(batch));
  }
}

Task<Result<std::optional<Snapshot>>> QueuedStore::load(ActorKey key) {
  return submit<std::optional<Snapshot>>(*reads_, Load{.key = std::move(key)});
}

Task<Result<std::optional<Snapshot>>> QueuedStore::load_revision(ActorKey key,
                                                                 std::int64_t revision) {
  if (revision <= 0) {
    co_return std::optional<Snapshot>();
  }
  Load request{.key = std::move(key), .revision = revision};
  co_return co_await submit<std::optional<Snapshot>>(*reads_, std::move(request));
}

Task<Result<std::int64_t>> QueuedStore::save(ActorKey key, Snapshot snapshot,
                                             std::int64_t expected_revision) {
  // Not a coroutine: the caller awaits the queued request itself, with no frame of this function
  // between them (one allocation and one resumption fewer per save).
  if (expected_revision < 0) {
    return completed<std::int64_t>(fail(ErrorCode::kInvalidArgument,
                                        actor_context("save", key) + ": negative expected revision "
                                            + std::to_string(expected_revision)));
  }
  // Serialized here, not on the writer thread, so bad tags fail only this save.
  Result<std::string> tags = tags_to_json(snapshot.tags);
  if (!tags) {
    return completed<std::int64_t>(tags.error().with_context(actor_context("save", key)));
  }
  if (snapshot.node.empty()) {
    snapshot.node = options_.node;
  }
  // Made in its box, not moved there (store_requests.hpp, SaveOp).
  return submit<std::int64_t>(
      *writes_, std::unique_ptr<Save>(new Save{.key = std::move(key),
                                               .snapshot = std::move(snapshot),
                                               .tags_json = std::move(*tags),
                                               .expected_revision = expected_revision}));
}

Task<Result<void>> QueuedStore::put_scheduled(ScheduledInvocation invocation) {
  if (invocation.id.empty()) {
    co_return fail(ErrorCode::kInvalidArgument, "put scheduled invocation: the id is empty");
  }
  PutScheduled request{.invocation = std::move(invocation)};
  co_return co_await submit<void>(*writes_, std::move(request));
}

Task<Result<std::vector<ScheduledInvocation>>> QueuedStore::due_scheduled(std::int64_t until_ms,
                                                                          std::size_t limit) {
  if (limit == 0) {
    co_return std::vector<ScheduledInvocation>();
  }
  constexpr auto kMaxLimit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  DueScheduled request{.until_ms = until_ms,
                       .limit = static_cast<std::int64_t>(std::min(limit, kMaxLimit))};
  co_return co_await submit<std::vector<ScheduledInvocation>>(*reads_, request);
}

Task<Result<void>> QueuedStore::remove_scheduled(std::vector<std::string> ids) {
  if (ids.empty()) {
    co_return ok();
  }
  RemoveScheduled request{.ids = std::move(ids)};
  co_return co_await submit<void>(*writes_, std::move(request));
}

Task<Result<std::int64_t>> QueuedStore::count_scheduled() {
  return submit<std::int64_t>(*reads_, CountScheduled{});
}

}  // namespace spawn::statestore
