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

  /// Commits `batch` and sets the result of every request in it (success, conflict or failure);
  /// the caller then resumes them. Runs on the writer thread only. Returns how many transactions
  /// it began.
  virtual std::size_t write(std::span<WriteRequest> batch) = 0;
};

/// The reader side of a thread-backed backend: owns one read connection.
class RequestReader {
public:
  virtual ~RequestReader() = default;

  /// Runs `request` and sets its result. Runs on this reader's own thread only.
  virtual void serve(ReadRequest& request) = 0;

  /// Serves each of `batch` (the requests that were queued together); the caller then resumes
  /// them. Backends that can read them all in one transaction override it.
  virtual void serve_all(std::span<ReadRequest> batch) {
    for (ReadRequest& request : batch) {
      serve(request);
    }
  }
};

/// Settings of a `QueuedStore`.
struct QueueOptions {
  /// Recorded as the writing node of a snapshot whose own `node` is empty.
  std::string node;
  /// Batch queued writes into one transaction; false: one transaction per write.
  bool group_commit = true;
  /// The most writes one transaction takes.
  std::size_t max_batch = 1024;
  /// The most reads a reader thread takes from the queue at once. More than one suits a backend
  /// whose reads cost no round trip (SQLite); a server backend serves one at a time per
  /// connection, so its readers share the queue one read each.
  std::size_t max_read_batch = 1;
};

/// The thread and queue half of the SQL backends (SQLite, PostgreSQL, MySQL): one writer thread
/// that hands whatever is queued (up to max_batch) to the backend's `BatchWriter` as one batch
/// (group commit), and one thread per `RequestReader`, each taking whatever reads are queued (up
/// to max_read_batch) at once. Callers only take a mutex briefly: every method validates its
/// arguments on the caller, queues a request and suspends; the store thread resumes the callers
/// of a batch by one post per awaiting executor (see store_requests.hpp).
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
  /// The queues are shared with what they post to callers: the wake-ups (see RequestQueue) and the
  /// completions, which give their batch vectors back (RequestQueue::recycle).
  std::shared_ptr<RequestQueue<WriteRequest>> writes_ =
      std::make_shared<RequestQueue<WriteRequest>>();
  std::shared_ptr<RequestQueue<ReadRequest>> reads_ = std::make_shared<RequestQueue<ReadRequest>>();
  std::thread writer_thread_;
  std::vector<std::thread> reader_threads_;
  std::atomic<std::uint64_t> transactions_ = 0;
};

}  // namespace spawn::statestore
