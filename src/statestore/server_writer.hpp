#pragma once

// What the database-server backends (PostgreSQL, MySQL) share on top of QueuedStore: the writer's
// transaction and retry loop, and a read that reconnects once. Only those backends include it.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <spdlog/spdlog.h>

#include "spawn/result.hpp"

#include "statestore/queued_store.hpp"
#include "statestore/store_requests.hpp"

namespace spawn::statestore {

/// Sleeps a little more on each retry so racing transactions spread out.
inline void back_off(int attempt) {
  std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1 << attempt, 100)));
}

/// The writer of a server backend: one connection (`Connection` has exec(), broken(),
/// ensure_connected() and name()) that runs each batch as one transaction. A batch is run again
/// after a transient failure (up to `max_retries` times) and once after losing its connection
/// before COMMIT; a batch with a failing statement is retried one write at a time; a connection
/// lost during COMMIT fails the batch as "outcome unknown". Used only by the writer thread.
template <class Connection>
class ServerWriter : public BatchWriter {
public:
  std::size_t write(std::span<WriteRequest> batch) final {
    std::size_t transactions = 0;
    std::vector<WriteOutcome> results;
    results.reserve(batch.size());
    int retries = 0;
    bool reconnected = false;
    for (;;) {
      if (Result<void> up = db_->ensure_connected(); !up) {
        fail_all(batch, up.error());
        return transactions;
      }
      ++transactions;
      results.clear();
      std::optional<TxFailure> failed = transact(batch, results);
      if (!failed) {
        break;
      }
      switch (failed->kind) {
        case TxFailure::kRetry:
          if (++retries <= max_retries_) {
            back_off(retries);
            continue;
          }
          fail_all(batch, failed->error);
          return transactions;
        case TxFailure::kConnectionLost:
          // Nothing was committed (COMMIT was not sent), so the batch may run again.
          if (!reconnected) {
            reconnected = true;
            spdlog::warn("statestore={} connection lost; reconnecting and retrying {} write(s)",
                         db_->name(), batch.size());
            continue;
          }
          fail_all(batch, failed->error);
          return transactions;
        case TxFailure::kCommitUnknown:
          fail_all(batch, failed->error);
          return transactions;
        case TxFailure::kStatement:
          if (batch.size() == 1) {
            fail_all(batch, failed->error);
            return transactions;
          }
          // One failing write must not fail the writes batched with it: retry each on its own.
          for (WriteRequest& request : batch) {
            transactions += write(std::span(&request, 1));
          }
          return transactions;
      }
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      deliver(batch[i], std::move(results[i]));
    }
    return transactions;
  }

protected:
  /// `begin` is the statement that opens a transaction.
  ServerWriter(std::unique_ptr<Connection> db, std::string begin, int max_retries)
      : db_(std::move(db)), begin_(std::move(begin)), max_retries_(max_retries) {}

  /// Rolls back the open transaction and returns whether the statement failure that ended it
  /// (a serialization failure, deadlock or lock timeout) may simply run again.
  virtual bool roll_back_retryable() = 0;

  /// Applies one write inside the open transaction. A revision conflict is an outcome; an
  /// error aborts the transaction.
  virtual Result<WriteOutcome> apply(const Save& save) = 0;
  virtual Result<WriteOutcome> apply(const PutScheduled& put) = 0;
  virtual Result<WriteOutcome> apply(const RemoveScheduled& remove) = 0;

  std::unique_ptr<Connection> db_;

private:
  /// Why a transaction did not commit, which decides what write() does next.
  struct TxFailure {
    enum Kind : std::uint8_t {
      /// A statement failed (bad data, a constraint): retry the writes one by one.
      kStatement,
      /// Serialization failure, deadlock or lock timeout: run the same batch again.
      kRetry,
      /// The connection broke before COMMIT was sent: nothing committed, reconnect and retry.
      kConnectionLost,
      /// The connection broke during COMMIT: the outcome is unknown, fail without retrying.
      kCommitUnknown,
    };

    Kind kind;
    Error error;
  };

  static void fail_all(std::span<WriteRequest> batch, const Error& error) {
    for (WriteRequest& request : batch) {
      deliver(request, error.with_context(describe(request)));
    }
  }

  TxFailure classify(Error error, bool committing) {
    if (db_->broken()) {
      if (committing) {
        error.message += " (while committing: the write may or may not have been applied)";
        return {TxFailure::kCommitUnknown, std::move(error)};
      }
      return {TxFailure::kConnectionLost, std::move(error)};
    }
    if (roll_back_retryable()) {
      return {TxFailure::kRetry, std::move(error)};
    }
    return {TxFailure::kStatement, std::move(error)};
  }

  // Runs `requests` in one transaction, appending each one's outcome to `results`. A revision
  // conflict is an outcome, not a failure.
  std::optional<TxFailure> transact(std::span<WriteRequest> requests,
                                    std::vector<WriteOutcome>& results) {
    if (auto begun = db_->exec(begin_); !begun) {
      return classify(std::move(begun).error(), false);
    }
    for (WriteRequest& request : requests) {
      Result<WriteOutcome> applied =
          std::visit([&](const auto& op) { return apply(unbox(op.payload)); }, request);
      if (!applied) {
        results.clear();
        return classify(std::move(applied).error(), false);
      }
      results.push_back(std::move(*applied));
    }
    if (auto committed = db_->exec("COMMIT"); !committed) {
      results.clear();
      return classify(std::move(committed).error(), true);
    }
    return std::nullopt;
  }

  std::string begin_;
  int max_retries_;
};

/// Runs `request` with `read` (called with its payload, returning its Result) on `db` and
/// sets its result. A read is idempotent: when the connection turns out broken (the server
/// restarted since the last read), it reconnects and runs the read once more.
template <class Connection, class Read>
void serve_reconnecting(Connection& db, ReadRequest& request, Read read) {
  std::visit(
      [&db, &read](auto& op) {
        using Value = typename std::decay_t<decltype(read(op.payload))>::value_type;
        Result<Value> result = fail(ErrorCode::kInternal, "not run");
        for (int attempt = 0; attempt < 2; ++attempt) {
          if (Result<void> up = db.ensure_connected(); !up) {
            result = up.error();
            break;
          }
          result = read(op.payload);
          if (result || !db.broken()) {
            break;
          }
        }
        op.completion.set(std::move(result));
      },
      request);
}

}  // namespace spawn::statestore
