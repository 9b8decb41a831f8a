// Embedded mode: the runtime in this process, with InProcessHost on every shard.

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "common/env.hpp"
#include "runtime/runtime.hpp"
#include "sdk/in_process_host.hpp"
#include "sdk/node_impl.hpp"
#include "statestore/make_store.hpp"

namespace spawn::sdk {

namespace pb = protocol::pb;
namespace pba = protocol::pba;

namespace {

/// Runs `task` on `executor` and blocks this thread until it completes.
template <class T>
Result<T> block_on(asio::any_io_executor executor, Task<Result<T>> task) {
  try {
    return asio::co_spawn(std::move(executor), std::move(task), asio::use_future).get();
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInternal, std::string("unexpected exception: ") + e.what());
  }
}

/// The Client's way into the runtime: the call is started on the shard that owns the actor; its
/// reply handler runs there.
class EmbeddedTransport final : public Transport {
public:
  explicit EmbeddedTransport(runtime::Runtime& runtime) : runtime_(&runtime) {
    for (std::size_t i = 0; i < runtime.shard_count(); ++i) {
      inboxes_.push_back(std::make_unique<Inbox>());
    }
  }

  void invoke(RequestPtr& request, ReplyHandler done) override {
    // Counted in flight before the check: close() either finds the call counted and waits for it,
    // or the call finds the transport closed (both atomics are sequentially consistent).
    InFlightCalls::Token call = in_flight_.start();
    if (closed_.load()) {
      done(stopped());
      return;
    }
    // Start on the shard that owns the actor, so the call does not hop between shards on its way,
    // from that shard's inbox: also from an invoke_then chain already there, whose reply must not
    // run inside invoke_then(). The runtime outlives the call: close() waits for it. The request
    // goes along, and then serves the next calls of the thread that ran it. One handler posted to
    // the shard runs every call that reached its inbox until it ran, in the order they came.
    const std::size_t shard = runtime_->shard_of(*request);
    Inbox& inbox = *inboxes_[shard];
    bool post = false;
    {
      std::lock_guard lock(inbox.mutex);
      inbox.calls.push_back(Queued{std::move(request), std::move(done), std::move(call)});
      post = !std::exchange(inbox.drain_posted, true);
    }
    if (post) {
      asio::post(runtime_->executor(shard), [this, shard] { drain(shard); });
    }
  }

  Result<void> spawn(std::string system, std::vector<pba::ActorId> ids,
                     std::optional<std::int64_t> revision) override {
    InFlightCalls::Token call = in_flight_.start();
    if (closed_.load()) {
      return stopped();
    }
    auto spawned = block_on(runtime_->executor(0), runtime_->spawn(std::move(ids), revision));
    if (!spawned) {
      return std::move(spawned).error().with_context("spawn in system '" + system + "'");
    }
    return ok();
  }

  /// Refuses every new call, then waits until the calls in flight were answered. Not from a
  /// reply handler (it would wait for itself).
  void close() {
    closed_.store(true);
    in_flight_.wait_idle();
  }

private:
  /// A call waiting in its shard's inbox.
  struct Queued {
    RequestPtr request;
    ReplyHandler done;
    InFlightCalls::Token call;
  };

  /// The calls on their way to one shard. A call that finds no drain posted posts one; the drain
  /// takes every call queued until then, so a burst of calls costs one post (and at most one
  /// wake-up of the shard) instead of one each.
  struct Inbox {
    std::mutex mutex;
    std::vector<Queued> calls;     // guarded by mutex
    bool drain_posted = false;     // guarded by mutex
    std::vector<Queued> draining;  // the shard thread's only: the calls drain() runs
  };

  /// On the thread of shard `shard`: runs the calls its inbox received, in order. The calls they
  /// start (reply functions chaining another call) go to the inbox, for the next drain.
  void drain(std::size_t shard) {
    Inbox& inbox = *inboxes_[shard];
    {
      std::lock_guard lock(inbox.mutex);
      inbox.draining.swap(inbox.calls);
      inbox.drain_posted = false;
    }
    for (Queued& queued : inbox.draining) {
      start(*runtime_, shard, queued.request, queued.done, queued.call);
    }
    inbox.draining.clear();  // ends the calls answered (their tokens); keeps the capacity
  }

  /// Runs the call on the thread of the shard that owns its actor: at once when the runtime can
  /// (Runtime::invoke_now(), no coroutine), else as a coroutine.
  static void start(runtime::Runtime& runtime, std::size_t shard, RequestPtr& request,
                    ReplyHandler& done, InFlightCalls::Token& call) {
    pb::InvocationResponse& answer = reused_answer();
    runtime::Runtime::Now now = invoke_now(runtime, shard, *request, answer);
    if (now.saving) {
      // A checkpoint to save, then the reply: its save is awaited directly, and answered like a
      // call answered at once, in this thread's response. The request goes along (it names the
      // call) and then serves this thread's next calls; the save never takes it over.
      asio::co_spawn(runtime.executor(shard), std::move(*now.saving),
                     [&runtime, shard, done = std::move(done), call = std::move(call),
                      request = std::move(request), accepted = std::move(now.accepted)](
                         std::exception_ptr error, Result<runtime::Outcome> saved) mutable {
                       answer_saved(runtime, shard, error, saved, *request, done);
                       recycle_request(std::move(request));
                     });
      return;
    }
    if (now.answered) {
      if (*now.answered) {
        done(answer, request->actor().id().name(), request->action_name());
      } else {
        done(std::move(*now.answered).error());
      }
      // The request, left as it was, serves this thread's next calls.
      recycle_request(std::move(request));
      return;
    }
    // Read first: a workflow takes the request's contents over.
    std::string actor = request->actor().id().name();
    std::string action = request->action_name();
    if (now.rest) {
      // The rest runs a workflow and took the request over: it goes back to this thread's pool
      // emptied.
      asio::co_spawn(runtime.executor(shard), std::move(*now.rest),
                     [done = std::move(done), call = std::move(call), actor = std::move(actor),
                      action = std::move(action)](std::exception_ptr error,
                                                  Result<pb::InvocationResponse> response) mutable {
                       answer_routed(error, response, actor, action, done);
                     });
      recycle_request(std::move(request));
      return;
    }
    // Routed as a coroutine (an actor to activate, a busy one, a host that suspends, …) that
    // borrows the request: the completion keeps it alive and then gives it back to this thread's
    // pool, mostly whole, so the thread's next call does not build it again from nothing.
    auto routing = runtime.invoke_lent(*request);
    asio::co_spawn(runtime.executor(shard), std::move(routing),
                   [done = std::move(done), call = std::move(call), actor = std::move(actor),
                    action = std::move(action), request = std::move(request)](
                       std::exception_ptr error, Result<pb::InvocationResponse> response) mutable {
                     answer_routed(error, response, actor, action, done);
                     recycle_request(std::move(request));
                   });
  }

  /// Answers a call the runtime routed as a coroutine.
  static void answer_routed(const std::exception_ptr& error,
                            Result<pb::InvocationResponse>& response, const std::string& actor,
                            const std::string& action, ReplyHandler& done) {
    if (error) {
      done(unexpected(error));
      return;
    }
    done(std::move(response), actor, action);
  }

  /// What the calls this thread runs at once, and the checkpoints it saved, are answered in: its
  /// messages and strings stay allocated from one call to the next. Free again once `done`
  /// returns (the calls a reply function starts are posted, never run inside it).
  static pb::InvocationResponse& reused_answer() {
    thread_local pb::InvocationResponse answer;
    return answer;
  }

  /// Answers the call `request` once its checkpoint was saved (or failed to be). On the thread
  /// of the shard, from the event loop: never inside the start of the call.
  static void answer_saved(runtime::Runtime& runtime, std::size_t shard,
                           const std::exception_ptr& error, Result<runtime::Outcome>& saved,
                           const pb::InvocationRequest& request, ReplyHandler& done) {
    if (error) {
      done(unexpected(error));
      return;
    }
    pb::InvocationResponse& answer = reused_answer();
    if (Result<void> answered = runtime.answer_saved(shard, saved, answer); !answered) {
      done(std::move(answered).error());
      return;
    }
    done(answer, request.actor().id().name(), request.action_name());
  }

  static runtime::Runtime::Now invoke_now(runtime::Runtime& runtime, std::size_t shard,
                                          pb::InvocationRequest& request,
                                          pb::InvocationResponse& response) {
    try {
      return runtime.invoke_now(shard, request, response);
    } catch (...) {
      runtime::Runtime::Now now;
      now.answered.emplace(unexpected(std::current_exception()));
      return now;
    }
  }

  static Error stopped() {
    return fail(ErrorCode::kShuttingDown, "the node is stopped: invocation refused");
  }

  static Error unexpected(const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      return fail(ErrorCode::kInternal, std::string("unexpected exception: ") + e.what());
    } catch (...) {
      return fail(ErrorCode::kInternal, "unexpected non-standard exception");
    }
  }

  runtime::Runtime* runtime_;  // used only by calls made before close()
  std::atomic<bool> closed_{false};
  std::vector<std::unique_ptr<Inbox>> inboxes_;  // one per shard
  InFlightCalls in_flight_;
};

class EmbeddedNode final : public Node::Impl {
public:
  EmbeddedNode(std::shared_ptr<const Dispatcher> dispatcher,
               std::unique_ptr<statestore::Store> store, EmbeddedOptions options)
      : options_(std::move(options)), store_(std::move(store)) {
    runtime::RuntimeOptions runtime_options;
    runtime_options.shards = options_.threads;
    runtime_options.shard.node = options_.node_name;
    runtime_ = std::make_unique<runtime::Runtime>(
        runtime_options, make_in_process_host_factory(dispatcher), store_.get());
    transport_ = std::make_shared<EmbeddedTransport>(*runtime_);
    core_ = std::make_shared<detail::ClientCore>(std::move(dispatcher), transport_);
  }

  ~EmbeddedNode() override { halt(); }

  EmbeddedNode(const EmbeddedNode&) = delete;
  EmbeddedNode& operator=(const EmbeddedNode&) = delete;

  Result<void> start(pba::ActorSystem registration) {
    runtime_->start();
    return block_on(runtime_->executor(0), runtime_->register_system(std::move(registration)));
  }

  bool is_embedded() const override { return true; }

  void shutdown() override {
    if (killed_ || halted_) {
      return;
    }
    runtime_->begin_shutdown();
    // drain() must be awaited from outside the shards.
    asio::io_context io(1);
    auto drained = asio::co_spawn(io, runtime_->drain(options_.drain_timeout), asio::use_future);
    io.run();
    try {
      drained.get();
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): nothing left to save
    }
    halt();
  }

  void kill() override {
    killed_ = true;
    runtime_->begin_shutdown();
    halt();
  }

private:
  /// Refuses client calls (after those in flight) and stops the shard threads; idempotent.
  void halt() {
    if (halted_) {
      return;
    }
    halted_ = true;
    transport_->close();
    runtime_->stop();
    // The store is closed while the shards' io_contexts still exist: it finishes what is queued
    // (a request whose wake-up the stopped shard never ran included) and posts the completions to
    // them, instead of posting to io_contexts already destroyed with the runtime.
    store_.reset();
  }

  EmbeddedOptions options_;
  std::unique_ptr<statestore::Store> store_;  // closed once the runtime has stopped (halt())
  std::unique_ptr<runtime::Runtime> runtime_;
  std::shared_ptr<EmbeddedTransport> transport_;
  bool killed_ = false;
  bool halted_ = false;
};

}  // namespace

Result<std::unique_ptr<Node::Impl>> make_embedded_node(const ActorSystem& system,
                                                       EmbeddedOptions options) {
  auto dispatcher = Dispatcher::make(system.spec());
  if (!dispatcher) {
    return std::move(dispatcher).error();
  }
  statestore::StoreConfig store_config;
  store_config.type = options.statestore;
  store_config.name = options.database;
  store_config.key_b64 =
      options.statestore_key ? options.statestore_key : common::env("SPAWN_STATESTORE_KEY");
  store_config.node = options.node_name;
  auto store = statestore::make_store(store_config);
  if (!store) {
    return std::move(store).error().with_context("embedded node of system '" + system.name()
                                                 + "': statestore");
  }
  auto registration = (*dispatcher)->registration();
  auto node =
      std::make_unique<EmbeddedNode>(std::move(*dispatcher), std::move(*store), std::move(options));
  if (auto started = node->start(std::move(registration)); !started) {
    return std::move(started).error().with_context("embedded node of system '" + system.name()
                                                   + "'");
  }
  return std::unique_ptr<Node::Impl>(std::move(node));
}

}  // namespace spawn::sdk
