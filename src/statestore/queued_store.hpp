#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "spawn/result.hpp"

#include "statestore/store.hpp"
#include "statestore/store_requests.hpp"

namespace spawn::statestore {

/// The writer side of a thread-backed backend: owns the one write connection.
class BatchWriter {
public:
  virtual ~BatchWriter() = default;

  /// Commits `batch` and completes every request in it (success, conflict or failure). Runs on
  /// the writer thread only. Returns how many transactions it began.
  virtual std::size_t write(std::span<WriteRequest> batch) = 0;
};

/// The reader side of a thread-backed backend: owns one read connection.
class RequestReader {
public:
  virtual ~RequestReader() = default;

  /// Runs `request` and completes it. Runs on this reader's own thread only.
  virtual void serve(ReadRequest& request) = 0;
};

/// Settings of a `QueuedStore`.
struct QueueOptions {
  /// Recorded as the writing node of a snapshot whose own `node` is empty.
  std::string node;
  /// Batch queued writes into one transaction; false: one transaction per write.
  bool group_commit = true;
  /// The most writes one transaction takes.
  std::size_t max_batch = 1024;
};

/// The thread and queue half of the SQL server backends (PostgreSQL, MySQL): one writer thread
/// that hands whatever is queued (up to max_batch) to the backend's `BatchWriter` as one batch
/// (group commit), and one thread per `RequestReader`. Callers only take a mutex briefly: every
/// method validates its arguments on the caller, queues a request and suspends; the store thread
/// completes it by a post to the awaiting coroutine's executor (see store_requests.hpp).
///
/// Thread safe. Destruction first finishes every queued request, then joins the threads and
/// destroys the readers, then the writer.
class QueuedStore final : public Store {
public:
  /// Starts the threads. Fails with kInternal when a thread cannot start.
  static Result<std::unique_ptr<QueuedStore>> start(
      QueueOptions options, std::unique_ptr<BatchWriter> writer,
      std::vector<std::unique_ptr<RequestReader>> readers);

  QueuedStore(const QueuedStore&) = delete;
  QueuedStore& operator=(const QueuedStore&) = delete;
  ~QueuedStore() override;

  Task<Result<std::optional<Snapshot>>> load(ActorKey key) override;
  Task<Result<std::optional<Snapshot>>> load_revision(ActorKey key, std::int64_t revision) override;
  /// As `Store::save`; a negative `expected_revision` or tags that are not valid UTF-8 are
  /// kInvalidArgument, found before anything is queued.
  Task<Result<std::int64_t>> save(ActorKey key, Snapshot snapshot,
                                  std::int64_t expected_revision) override;
  Task<Result<void>> put_scheduled(ScheduledInvocation invocation) override;
  Task<Result<std::vector<ScheduledInvocation>>> due_scheduled(std::int64_t until_ms,
                                                               std::size_t limit) override;
  Task<Result<void>> remove_scheduled(std::vector<std::string> ids) override;
  Task<Result<std::int64_t>> count_scheduled() override;

  /// Returns how many write transactions the writer has begun so far.
  [[nodiscard]] std::uint64_t transactions() const {
    return transactions_.load(std::memory_order_relaxed);
  }

private:
  QueuedStore(QueueOptions options, std::unique_ptr<BatchWriter> writer,
              std::vector<std::unique_ptr<RequestReader>> readers);

  void run_writer();
  void run_reader(RequestReader& reader);

  QueueOptions options_;
  // writer_ before readers_: members are destroyed in reverse, so the readers close first.
  std::unique_ptr<BatchWriter> writer_;
  std::vector<std::unique_ptr<RequestReader>> readers_;
  RequestQueue<WriteRequest> writes_;
  RequestQueue<ReadRequest> reads_;
  std::thread writer_thread_;
  std::vector<std::thread> reader_threads_;
  std::atomic<std::uint64_t> transactions_ = 0;
};

}  // namespace spawn::statestore
