#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>

#include <boost/asio/steady_timer.hpp>

#include "spawn/result.hpp"

#include "common/asio.hpp"
#include "statestore/store.hpp"

namespace spawn::runtime {

struct SchedulerOptions {
  /// How often the store is asked for what is due, when nothing wakes the scheduler earlier.
  std::chrono::milliseconds poll{100};
  /// Entries fetched per query.
  std::size_t batch = 1000;
  /// Entries taken and not yet finished at most; the store is not asked for more until some
  /// finish (so a large backlog is not read again and again).
  std::size_t max_in_flight = 4000;
  /// A run that fails because its actor or system is not (yet) known, e.g. right after a restart
  /// before the host registered again, is retried this often...
  std::chrono::milliseconds retry{1000};
  /// ...until it is this late; then it is dropped with an error in the log.
  std::chrono::milliseconds give_up_after{std::chrono::minutes(5)};
};

/// Runs stored invocations at their due time (PROTOCOL.md §5.6), durably: an entry is written to
/// the statestore before add() returns and removed only after it ran, so it survives a restart or
/// a crash and runs once (a crash in the instant between the run and the removal runs it again
/// after the restart).
///
/// The loop runs on one executor; add() may be awaited from any executor. Thread-safe.
class Scheduler {
public:
  /// Runs one due entry and returns whether it is done (removed) or was stored again by the
  /// runner itself (kept). kShuttingDown keeps the entry for the next start; kNotFound and
  /// kUnavailable (its node or host is gone for now) are retried (see SchedulerOptions); any other
  /// error removes it.
  using Runner = std::function<Task<Result<bool>>(statestore::ScheduledInvocation)>;

  Scheduler(asio::any_io_executor executor, statestore::Store& store, Runner runner,
            SchedulerOptions options = {});

  /// Makes the loop take due entries only while `gate` answers true (in a cluster, only one
  /// node runs them). Call before start().
  void set_gate(std::function<bool()> gate) { gate_ = std::move(gate); }

  /// Starts the loop.
  void start();

  /// Stops taking due entries; entries not yet run stay stored.
  void stop();

  /// Stores `invocation` durably (kUnavailable and friends when the store fails); it runs at
  /// `due_ms`, or at once when that has passed.
  Task<Result<void>> add(statestore::ScheduledInvocation invocation);

  /// Returns a new random id for an entry.
  static std::string new_id();

private:
  Task<void> run();
  Task<void> fire(statestore::ScheduledInvocation entry);

  asio::any_io_executor executor_;
  statestore::Store& store_;
  Runner runner_;
  std::function<bool()> gate_;
  SchedulerOptions options_;
  asio::steady_timer wake_;
  std::atomic<bool> stopped_{false};
  /// Entries taken from the store and not yet finished; touched on executor_ only.
  std::unordered_set<std::string> in_flight_;
  /// True while a due_scheduled() query is under way.
  bool querying_ = false;
  /// Entries removed while the current query was under way: its answer may still list them
  /// (it may have read before the removal), so they must not run again.
  std::unordered_set<std::string> removed_during_query_;
  /// True while the loop waits for in_flight_ to shrink below max_in_flight.
  bool waiting_for_room_ = false;
};

/// Returns the current time as Unix epoch milliseconds.
std::int64_t epoch_ms();

}  // namespace spawn::runtime
