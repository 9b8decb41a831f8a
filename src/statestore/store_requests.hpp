#pragma once

// The machinery the thread-backed stores (SQLite, PostgreSQL, MySQL) share: requests that carry
// a suspended caller to a store thread, the queue between callers and those threads, and submit(),
// which suspends the caller until a store thread completes its request. Only backends include it.

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include "spawn/result.hpp"

#include "common/asio.hpp"
#include "statestore/store.hpp"

namespace spawn::statestore {

/// A suspended caller: its completion handler plus a tracked executor that keeps its execution
/// context from running out of work until the result is delivered. Made by make_completion().
///
/// A store thread first set()s the result, then hands the request to post_completions(), which
/// resumes the callers on their executors, one post for all requests of one executor.
template <class T>
class Completion {
public:
  Completion(asio::any_io_executor tracked_executor,
             asio::any_completion_handler<void(Result<T>)> handler)
      : executor_(std::move(tracked_executor)), handler_(std::move(handler)) {}

  /// Records the result the caller will get. Called once, from a store thread.
  void set(Result<T> result) { result_.emplace(std::move(result)); }

  /// The caller's executor (tracked: it keeps the caller's context running until resumed).
  [[nodiscard]] const asio::any_io_executor& executor() const { return executor_; }

  /// Resumes the caller with the result set(). Call it only on the caller's executor.
  void resume() {
    if (!result_) {
      result_.emplace(fail(ErrorCode::kInternal, "statestore request completed without a result"));
    }
    std::move(handler_)(std::move(*result_));
  }

private:
  asio::any_io_executor executor_;
  asio::any_completion_handler<void(Result<T>)> handler_;
  std::optional<Result<T>> result_;
};

/// Wraps the completion handler of an awaiting coroutine; call it on the caller's thread.
template <class T, class Handler>
Completion<T> make_completion(Handler handler) {
  // A custom operation must count as work itself: without this, io_context::run() would return
  // while the coroutine still waits for the store.
  asio::any_io_executor tracked = asio::prefer(asio::get_associated_executor(handler),
                                               asio::execution::outstanding_work.tracked);
  return Completion<T>(std::move(tracked), std::move(handler));
}

// What the store threads are asked to do. Each request is one of these payloads plus the
// completion of the coroutine waiting for it (Op).

/// A save, with its tags already serialized (so bad tags fail only that save, on the caller).
struct Save {
  ActorKey key;
  Snapshot snapshot;
  std::string tags_json;
  std::int64_t expected_revision = 0;
};

struct PutScheduled {
  ScheduledInvocation invocation;
};

struct RemoveScheduled {
  std::vector<std::string> ids;
};

/// The revision a Load asks for when it wants the newest.
inline constexpr std::int64_t kNewest = 0;

struct Load {
  ActorKey key;
  /// kNewest, or the revision wanted.
  std::int64_t revision = kNewest;
};

struct DueScheduled {
  std::int64_t until_ms = 0;
  std::int64_t limit = 0;
};

struct CountScheduled {};

/// A payload and the caller waiting for its `Result<T>`.
template <class Payload, class T>
struct Op {
  Payload payload;
  Completion<T> completion;
};

/// What a payload is, whether it travels by value or boxed.
template <class Payload>
const Payload& unbox(const Payload& payload) {
  return payload;
}

template <class Payload>
const Payload& unbox(const std::unique_ptr<Payload>& payload) {
  return *payload;
}

// A save travels boxed: its payload is a dozen strings and a map, and submit() hands it through
// Asio's async_initiate, which keeps its arguments by value and moved it three times on its way
// into the queue (about 780 instructions a save). Boxed, each of those moves, and every move of
// the request in the queue's vectors, is a pointer's.
using SaveOp = Op<std::unique_ptr<Save>, std::int64_t>;
using PutScheduledOp = Op<PutScheduled, void>;
using RemoveScheduledOp = Op<RemoveScheduled, void>;
using LoadOp = Op<Load, std::optional<Snapshot>>;
using DueScheduledOp = Op<DueScheduled, std::vector<ScheduledInvocation>>;
using CountScheduledOp = Op<CountScheduled, std::int64_t>;

// Every write goes through the one writer thread, so puts and removes of scheduled invocations
// share transactions (group commit) with snapshot saves.
using WriteRequest = std::variant<SaveOp, PutScheduledOp, RemoveScheduledOp>;
using ReadRequest = std::variant<LoadOp, DueScheduledOp, CountScheduledOp>;

/// Returns "<action> state of actor '<system>/<name>'", the context of every per-actor error.
inline std::string actor_context(std::string_view action, const ActorKey& key) {
  return std::string(action) + " state of actor '" + key.system + "/" + key.name + "'";
}

// What a failed write was doing, for its error message.
inline std::string describe(const Save& save) {
  return actor_context("save", save.key);
}

inline std::string describe(const PutScheduled& put) {
  return "put scheduled invocation '" + put.invocation.id + "'";
}

inline std::string describe(const RemoveScheduled& remove) {
  return "remove " + std::to_string(remove.ids.size()) + " scheduled invocation(s)";
}

inline std::string describe(const WriteRequest& request) {
  return std::visit([](const auto& op) { return describe(unbox(op.payload)); }, request);
}

/// How one write ended inside a transaction that went through: a save's new revision or its
/// revision conflict (kConflict); 0 for a write of scheduled invocations.
using WriteOutcome = Result<std::int64_t>;

/// Sets a write request's outcome, converted to the result type its caller awaits.
inline void deliver(WriteRequest& request, WriteOutcome outcome) {
  std::visit(
      [&outcome](auto& op) {
        using T = std::decay_t<decltype(op)>;
        if constexpr (std::is_same_v<T, SaveOp>) {
          op.completion.set(std::move(outcome));
        } else {
          op.completion.set(outcome ? ok() : Result<void>(std::move(outcome).error()));
        }
      },
      request);
}

/// A mutex-and-condvar queue between the callers and one kind of store thread.
///
/// A request does not wake a store thread by itself: the first request a caller's executor adds
/// posts one wake-up to that executor, which runs once the executor has run the handlers queued
/// before it; the requests those handlers add meanwhile join the queue quietly. What one pass of
/// a caller's event loop asks for thus reaches a store thread with one wake-up, as one batch,
/// instead of one request at a time: readers woke for batches of one or two loads (cold
/// activations), and the writer for a transaction of one save while the rest of the pass's saves
/// waited for its fsync (docs/performance.md). A thread that leaves requests behind when it takes
/// a batch wakes another one. Shared (`std::make_shared`) with the wake-ups it posts.
template <class Request>
class RequestQueue : public std::enable_shared_from_this<RequestQueue<Request>> {
public:
  /// Adds a request.
  void push(Request&& request) { emplace(std::move(request)); }

  /// Adds the request made of `args`, made in place (a request is large: a save's payload moves
  /// a dozen strings).
  template <class... Args>
  void emplace(Args&&... args) {
    std::optional<asio::any_io_executor> post_to;
    {
      const std::lock_guard lock(mutex_);
      const Request& request = items_.emplace_back(std::forward<Args>(args)...);
      const asio::any_io_executor& executor = executor_of(request);
      if (std::find(waking_.begin(), waking_.end(), executor) == waking_.end()) {
        waking_.push_back(executor);
        post_to = executor;
      }
    }
    if (post_to) {
      // The queue is shared so that a wake-up still pending when its store is gone is harmless.
      asio::post(*post_to, [queue = this->shared_from_this(), executor = *post_to] {
        queue->wake(executor);
      });
    }
  }

  /// Waits for requests and takes up to `max` of them, oldest first. Returns none only once the
  /// queue is closed and empty.
  std::vector<Request> pop(std::size_t max) {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return closed_ || !items_.empty(); });
    std::vector<Request> taken = take_spare();
    if (items_.size() <= max) {
      // The usual case: all of them, without moving one. The queue starts again with room for as
      // many, so that the next batch's requests do not move it from one growing buffer to the next.
      taken.swap(items_);
      items_.reserve(taken.size());
    } else {
      // Moved into another vector rather than erased from the front: requests are only ever
      // move-constructed (Boost's any_completion_handler move assignment recurses forever).
      std::vector<Request> rest = take_spare();
      taken.reserve(max);
      rest.reserve(items_.size() - max);
      for (std::size_t i = 0; i < items_.size(); ++i) {
        (i < max ? taken : rest).push_back(std::move(items_[i]));
      }
      items_.swap(rest);
      keep_spare(std::move(rest));
    }
    const bool more = !items_.empty();
    lock.unlock();
    if (more) {
      ready_.notify_one();
    }
    return taken;
  }

  /// Returns an empty vector to reuse: a spare if there is one (see recycle()), else a new one.
  std::vector<Request> spare() {
    const std::lock_guard lock(mutex_);
    return take_spare();
  }

  /// Takes back a vector handed out by pop() or spare() once its requests are done with (moved
  /// from or resumed), to hold later requests: a batch vector is then reused rather than freed
  /// on the thread that resumed its callers and grown again from nothing by the next pushes
  /// (freeing it there set off glibc's malloc_consolidate; docs/performance.md, Finding 8).
  /// Keeps at most kMaxSpares, none larger than kMaxSpareCapacity requests.
  void recycle(std::vector<Request> used) {
    if (used.capacity() == 0 || used.capacity() > kMaxSpareCapacity) {
      return;
    }
    used.clear();
    const std::lock_guard lock(mutex_);
    keep_spare(std::move(used));
  }

  /// The executor that awaits `request`.
  static const asio::any_io_executor& executor_of(const Request& request) {
    return std::visit(
        [](const auto& op) -> const asio::any_io_executor& { return op.completion.executor(); },
        request);
  }

  /// Lets the threads finish what is queued and then return from pop() empty-handed.
  void close() {
    {
      const std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }

private:
  // Enough for the vectors in use at once: the queue's own, one per store thread's batch and the
  // groups posted to callers and not yet resumed.
  static constexpr std::size_t kMaxSpares = 16;
  // A spare larger than this is freed instead (a burst of writes makes batches up to max_batch).
  static constexpr std::size_t kMaxSpareCapacity = 256;

  // Called with mutex_ held. Frees `used` when it is too large or there are spares enough.
  void keep_spare(std::vector<Request> used) {
    used.clear();
    if (used.capacity() != 0 && used.capacity() <= kMaxSpareCapacity
        && spares_.size() < kMaxSpares) {
      spares_.push_back(std::move(used));
    }
  }

  // Called with mutex_ held.
  std::vector<Request> take_spare() {
    if (spares_.empty()) {
      return {};
    }
    std::vector<Request> spare = std::move(spares_.back());
    spares_.pop_back();
    return spare;
  }

  void wake(const asio::any_io_executor& executor) {
    {
      const std::lock_guard lock(mutex_);
      std::erase(waking_, executor);
    }
    ready_.notify_one();
  }

  std::mutex mutex_;  // guards items_, waking_, spares_ and closed_
  std::condition_variable ready_;
  /// A vector, not a deque: a request is larger than a deque's 512-byte block, so a deque
  /// allocated one block per request.
  std::vector<Request> items_;
  /// The executors with a wake-up posted and not yet run.
  std::vector<asio::any_io_executor> waking_;
  /// Empty vectors with room, to hold batches (see recycle()).
  std::vector<std::vector<Request>> spares_;
  bool closed_ = false;
};

/// A task that completes with `result` at once: a request refused before anything was queued.
template <class T>
Task<Result<T>> completed(Result<T> result) {
  co_return result;
}

/// Resumes the callers of `requests`, whose results are set, each on its own executor: one post
/// per executor (in the order of the requests), not one per request, so a batch wakes a caller's
/// thread once. Each posted group, once its callers are resumed, goes back to `queue` as a spare
/// (RequestQueue::recycle), so no batch vector is freed on a caller's thread. Called by a store
/// thread with a batch that `queue` handed out.
template <class Request>
void post_completions(const std::shared_ptr<RequestQueue<Request>>& queue,
                      std::vector<Request> requests) {
  if (requests.empty()) {
    queue->recycle(std::move(requests));
    return;
  }
  auto executor_of = [](const Request& request) -> const asio::any_io_executor& {
    return RequestQueue<Request>::executor_of(request);
  };
  auto resume_all = [&queue](std::vector<Request> group) {
    return [queue, group = std::move(group)]() mutable {
      for (Request& request : group) {
        std::visit([](auto& op) { op.completion.resume(); }, request);
      }
      queue->recycle(std::move(group));
    };
  };
  const asio::any_io_executor& first = executor_of(requests.front());
  const bool one_executor = std::all_of(requests.begin(), requests.end(),
                                        [&](const Request& r) { return executor_of(r) == first; });
  if (one_executor) {
    asio::any_io_executor executor = first;
    asio::post(executor, resume_all(std::move(requests)));
    return;
  }
  std::vector<std::vector<Request>> groups;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    Request& request = requests[i];
    auto group = std::find_if(groups.begin(), groups.end(), [&](const std::vector<Request>& g) {
      return executor_of(g.front()) == executor_of(request);
    });
    if (group == groups.end()) {
      groups.push_back(queue->spare());
      group = std::prev(groups.end());
      // Room for every request left, so that no request is moved again as the group grows.
      group->reserve(requests.size() - i);
    }
    group->push_back(std::move(request));
  }
  for (std::vector<Request>& group : groups) {
    asio::any_io_executor executor = executor_of(group.front());
    asio::post(executor, resume_all(std::move(group)));
  }
  queue->recycle(std::move(requests));  // moved from: only its storage is reused
}

// submit() queues a request and returns the awaitable that completes with its result. It is a
// plain function, not a coroutine, on purpose: with GCC 12, an initiation lambda with
// init-captures written inside a coroutine's co_await expression had its captured strings freed
// twice (found with valgrind). Keep the lambdas out of coroutine bodies.
template <class T, class Request, class Payload>
Task<Result<T>> submit(RequestQueue<Request>& queue, Payload payload) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(Result<T>)>(
      // The payload by reference, moved once, into the request made in the queue (each move of
      // a save's payload costs a dozen strings).
      [&queue](auto handler, Payload&& request_payload) {
        queue.emplace(std::in_place_type<Op<Payload, T>>, std::move(request_payload),
                      make_completion<T>(std::move(handler)));
      },
      asio::use_awaitable, std::move(payload));
}

}  // namespace spawn::statestore
