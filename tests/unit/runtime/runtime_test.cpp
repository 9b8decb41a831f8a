#include "runtime/runtime.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "statestore/memory/memory_store.hpp"
#include "support/fake_host.hpp"

namespace spawn::runtime {
namespace {

using testing::FakeHost;
using testing::HostScript;

namespace pb = protocol::pb;
namespace pba = protocol::pba;
using namespace std::chrono_literals;

google::protobuf::Any counter_state(std::int64_t value) {
  google::protobuf::Any any;
  any.set_type_url("type.googleapis.com/test.Counter");
  any.set_value(std::to_string(value));
  return any;
}

std::int64_t counter_of(const google::protobuf::Any& any) {
  return any.value().empty() ? 0 : std::stoll(any.value());
}

/// Increments a decimal counter kept as the state's bytes; answers the new value. "init" sets
/// the tag "initialized"; "checkpoint" asks for a checkpoint.
Result<pb::ActorInvocationResponse> counter_host(const pb::ActorInvocation& invocation) {
  pb::ActorInvocationResponse response;
  *response.mutable_updated_context() = invocation.current_context();
  const auto& action = invocation.action_name();
  if (action == "init") {
    (*response.mutable_updated_context()->mutable_tags())["initialized"] = "yes";
    return response;
  }
  auto next = counter_of(invocation.current_context().state()) + 1;
  *response.mutable_updated_context()->mutable_state() = counter_state(next);
  *response.mutable_value() = counter_state(next);
  response.set_checkpoint(action == "checkpoint");
  return response;
}

class RuntimeTest : public ::testing::Test {
protected:
  void SetUp() override {
    script_->handler = counter_host;
    start();
  }

  void TearDown() override { runtime_.reset(); }

  void start() {
    RuntimeOptions options;
    options.shards = 2;
    options.shard.default_request_timeout = 0ms;
    auto script = script_;
    runtime_ = std::make_unique<Runtime>(
        options,
        [script](asio::any_io_executor executor) {
          return std::make_unique<FakeHost>(std::move(executor), script);
        },
        &store_);
    runtime_->start();
  }

  template <class T>
  T run(Task<T> task) {
    asio::io_context io;
    auto future = asio::co_spawn(io, std::move(task), asio::use_future);
    io.run();
    return future.get();
  }

  static pba::Actor actor(const std::string& name, bool stateful = true) {
    pba::Actor actor;
    actor.mutable_id()->set_name(name);
    actor.mutable_id()->set_system("sys");
    actor.mutable_settings()->set_kind(pba::NAMED);
    actor.mutable_settings()->set_stateful(stateful);
    for (const char* action : {"init", "inc", "checkpoint"}) {
      actor.add_actions()->set_name(action);
    }
    return actor;
  }

  void register_actors(std::vector<pba::Actor> actors) {
    pba::ActorSystem system;
    system.set_name("sys");
    for (auto& a : actors) {
      (*system.mutable_registry()->mutable_actors())[a.id().name()] = a;
    }
    auto registered = run(runtime_->register_system(system));
    ASSERT_TRUE(registered) << registered.error().message;
  }

  /// Registers the unnamed actor "template" and names its child "child-1" (not spawned yet).
  pba::ActorId register_template(bool stateful) {
    auto parent = actor("template", stateful);
    parent.mutable_settings()->set_kind(pba::UNNAMED);
    register_actors({parent});
    pba::ActorId child;
    child.set_name("child-1");
    child.set_system("sys");
    child.set_parent("template");
    return child;
  }

  Result<pb::InvocationResponse> invoke(const std::string& name, const std::string& action,
                                        bool async = false) {
    pb::InvocationRequest request;
    request.mutable_system()->set_name("sys");
    request.mutable_actor()->mutable_id()->set_name(name);
    request.mutable_actor()->mutable_id()->set_system("sys");
    request.set_action_name(action);
    request.set_async(async);
    return run(runtime_->invoke(request));
  }

  std::optional<statestore::Snapshot> stored(const std::string& name) {
    auto loaded = run(store_.load(statestore::ActorKey{"sys", name}));
    EXPECT_TRUE(loaded) << loaded.error().message;
    return loaded ? *loaded : std::nullopt;
  }

  std::shared_ptr<HostScript> script_ = std::make_shared<HostScript>();
  statestore::memory::InMemoryStore store_;
  std::unique_ptr<Runtime> runtime_;
};

TEST_F(RuntimeTest, StateChangedByAnActionIsSeenByTheNextInvocation) {
  register_actors({actor("counter")});
  for (int expected = 1; expected <= 3; ++expected) {
    auto response = invoke("counter", "inc");
    ASSERT_TRUE(response) << response.error().message;
    EXPECT_EQ(response->status().status(), pb::OK);
    EXPECT_EQ(counter_of(response->value()), expected);
  }
}

TEST_F(RuntimeTest, DefaultGetIsAnsweredWithoutCallingTheHost) {
  register_actors({actor("counter")});
  ASSERT_TRUE(invoke("counter", "inc"));
  auto before = script_->calls().size();
  auto response = invoke("counter", "getState");
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(counter_of(response->value()), 1);
  EXPECT_EQ(script_->calls().size(), before);
}

TEST_F(RuntimeTest, InitRunsAtActivationBeforeTheFirstInvocation) {
  register_actors({actor("counter", /*stateful=*/false)});
  ASSERT_TRUE(invoke("counter", "inc"));
  auto calls = script_->calls();
  ASSERT_EQ(calls.size(), 2U);
  EXPECT_EQ(calls[0].action_name(), "init");
  EXPECT_TRUE(calls[0].has_noop());
  EXPECT_EQ(calls[0].caller().name(), "counter");
  EXPECT_EQ(calls[1].action_name(), "inc");
  EXPECT_EQ(calls[1].current_context().tags().at("initialized"), "yes");
}

TEST_F(RuntimeTest, UnknownActorSystemAndActionAreNotFound) {
  register_actors({actor("counter")});
  auto no_actor = invoke("ghost", "inc");
  ASSERT_FALSE(no_actor);
  EXPECT_EQ(no_actor.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(no_actor.error().message, "Actor ghost not found on ActorSystem sys");

  auto no_action = invoke("counter", "explode");
  ASSERT_FALSE(no_action);
  EXPECT_EQ(no_action.error().message, "Action [explode] not found for Actor [counter]");
  EXPECT_EQ(script_->count("explode"), 0);

  pb::InvocationRequest request;
  request.mutable_system()->set_name("elsewhere");
  request.mutable_actor()->mutable_id()->set_name("counter");
  request.set_action_name("inc");
  auto no_system = run(runtime_->invoke(request));
  ASSERT_FALSE(no_system);
  EXPECT_NE(no_system.error().message.find("elsewhere"), std::string::npos);
}

TEST_F(RuntimeTest, InvocationsOfOneActorRunOneAtATimeInArrivalOrder) {
  script_->delay = 5ms;
  register_actors({actor("counter", /*stateful=*/false)});
  ASSERT_TRUE(invoke("counter", "inc"));
  script_->max_running = 0;
  asio::io_context io;
  std::vector<std::int64_t> answers;
  for (int i = 0; i < 10; ++i) {
    pb::InvocationRequest request;
    request.mutable_system()->set_name("sys");
    request.mutable_actor()->mutable_id()->set_name("counter");
    request.set_action_name("inc");
    asio::co_spawn(io, runtime_->invoke(request), [&](std::exception_ptr, auto response) {
      ASSERT_TRUE(response);
      answers.push_back(counter_of(response->value()));
    });
  }
  io.run();
  ASSERT_EQ(answers.size(), 10U);
  std::sort(answers.begin(), answers.end());
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(answers[i], i + 2);  // no lost or duplicated update
  }
  EXPECT_EQ(script_->max_running, 1);
}

TEST_F(RuntimeTest, AsyncInvocationIsQueuedBeforeTheReply) {
  register_actors({actor("counter")});
  auto async = invoke("counter", "inc", /*async=*/true);
  ASSERT_TRUE(async) << async.error().message;
  EXPECT_FALSE(async->has_value());
  EXPECT_FALSE(async->has_noop());
  auto state = invoke("counter", "get");
  ASSERT_TRUE(state);
  EXPECT_EQ(counter_of(state->value()), 1);
}

TEST_F(RuntimeTest, CheckpointPersistsBeforeTheReply) {
  register_actors({actor("counter")});
  ASSERT_TRUE(invoke("counter", "checkpoint"));
  auto snapshot = stored("counter");
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->data, "1");
  EXPECT_EQ(snapshot->revision, 1);
}

TEST_F(RuntimeTest, ReRegistrationWhileTheActorActivatesAndCallsItsHostLeavesTheCallWhole) {
  // The host answers after 200 ms: the system is registered again (new definitions, the old
  // ones released) once while `init` runs during the activation, once while `checkpoint` runs.
  // Each must finish with the definition it started with or the new one, never a released one
  // (a sanitizer build reports a use after free otherwise), and the checkpoint is stored.
  script_->delay = 200ms;
  register_actors({actor("counter")});
  const auto wait_until = [](const std::function<bool()>& done) {
    for (int i = 0; i < 1000 && !done(); ++i) {
      std::this_thread::sleep_for(2ms);
    }
    return done();
  };
  auto call = std::async(std::launch::async, [this] { return invoke("counter", "checkpoint"); });

  ASSERT_TRUE(wait_until([this] { return script_->running == 1; })) << "init never started";
  register_actors({actor("counter")});
  ASSERT_TRUE(wait_until([this] { return script_->count("init") == 1 && script_->running == 1; }))
      << "checkpoint never reached the host";
  register_actors({actor("counter")});

  auto response = call.get();
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(counter_of(response->value()), 1);
  auto snapshot = stored("counter");
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->data, "1");
  EXPECT_EQ(snapshot->revision, 1);
}

TEST_F(RuntimeTest, IdleActorIsSavedAndDeactivatedAndComesBackWithItsState) {
  auto a = actor("counter");
  a.mutable_settings()->mutable_deactivation_strategy()->mutable_timeout()->set_timeout(50);
  register_actors({a});
  ASSERT_TRUE(invoke("counter", "inc"));
  ASSERT_TRUE(invoke("counter", "inc"));
  for (int i = 0; i < 200 && !stored("counter"); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  auto snapshot = stored("counter");
  ASSERT_TRUE(snapshot.has_value()) << "state was not saved at deactivation";
  EXPECT_EQ(snapshot->status, statestore::ActorStatus::kDeactivated);
  auto inits = script_->count("init");
  auto response = invoke("counter", "inc");
  ASSERT_TRUE(response);
  EXPECT_EQ(counter_of(response->value()), 3);
  EXPECT_EQ(script_->count("init"), inits + 1) << "reactivation runs init again";
}

TEST_F(RuntimeTest, StaleActivationCannotOverwriteNewerState) {
  register_actors({actor("counter")});
  ASSERT_TRUE(invoke("counter", "inc"));  // active, read revision 0
  statestore::Snapshot newer;
  newer.has_state = true;
  newer.type_url = "type.googleapis.com/test.Counter";
  newer.data = "100";
  ASSERT_TRUE(run(store_.save(statestore::ActorKey{"sys", "counter"}, newer, 0)));

  auto stale = invoke("counter", "checkpoint");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::kConflict) << stale.error().message;
  EXPECT_EQ(stored("counter")->data, "100");

  auto fresh = invoke("counter", "checkpoint");
  ASSERT_TRUE(fresh) << fresh.error().message;
  EXPECT_EQ(counter_of(fresh->value()), 101) << "the next call reloads the newer state";
}

TEST_F(RuntimeTest, PooledActorRunsInstancesConcurrently) {
  script_->delay = 50ms;
  auto pooled = actor("worker", /*stateful=*/false);
  pooled.mutable_settings()->set_kind(pba::POOLED);
  pooled.mutable_settings()->set_max_pool_size(4);
  register_actors({pooled});
  asio::io_context io;
  int answered = 0;
  for (int i = 0; i < 4; ++i) {
    pb::InvocationRequest request;
    request.mutable_system()->set_name("sys");
    request.mutable_actor()->mutable_id()->set_name("worker");
    request.set_action_name("inc");
    request.set_pooled(true);
    asio::co_spawn(io, runtime_->invoke(request), [&](std::exception_ptr, auto response) {
      EXPECT_TRUE(response);
      ++answered;
    });
  }
  io.run();
  EXPECT_EQ(answered, 4);
  EXPECT_GE(script_->max_running, 2);
  for (const auto& call : script_->calls()) {
    EXPECT_EQ(call.actor().name(), "worker");
  }
}

TEST_F(RuntimeTest, SpawnedChildCarriesItsParentAndUnknownParentFails) {
  pba::ActorId child = register_template(/*stateful=*/false);
  ASSERT_TRUE(run(runtime_->spawn({child}, std::nullopt)));
  ASSERT_TRUE(run(runtime_->spawn({child}, std::nullopt))) << "re-spawning succeeds";
  ASSERT_TRUE(invoke("child-1", "inc"));
  auto calls = script_->calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back().actor().name(), "child-1");
  EXPECT_EQ(calls.back().actor().parent(), "template");

  child.set_parent("never-registered");
  auto orphan = run(runtime_->spawn({child}, std::nullopt));
  ASSERT_FALSE(orphan);
  EXPECT_EQ(orphan.error().code, ErrorCode::kNotFound);
}

// A call that activates its actor itself (no mailbox) and fails to: the caller gets the
// activation's error, nothing of the failed activation stays, and the next call activates afresh.
TEST_F(RuntimeTest, FailedActivationAnswersTheCallAndTheNextCallActivatesAfresh) {
  pba::ActorId child = register_template(/*stateful=*/true);
  ASSERT_TRUE(run(runtime_->spawn({child}, std::int64_t{7})));  // revision 7 was never stored

  auto failed = invoke("child-1", "get");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kNotFound) << failed.error().message;
  EXPECT_NE(failed.error().message.find("revision 7 does not exist"), std::string::npos)
      << failed.error().message;
  EXPECT_EQ(script_->count("init"), 0) << "init runs only once the state is loaded";

  ASSERT_TRUE(invoke("child-1", "inc"));
  EXPECT_EQ(script_->count("init"), 1) << "the next call activated the actor";
  auto calls = script_->calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back().action_name(), "inc");
}

TEST_F(RuntimeTest, TimerKeepsFiringAcrossPassivationAndReactivatesTheActor) {
  auto ticking = actor("ticker", /*stateful=*/true);
  auto* timer = ticking.add_timer_actions();
  timer->set_seconds(20);  // milliseconds, as Spawn reads it
  timer->mutable_action()->set_name("inc");
  ticking.mutable_settings()->mutable_deactivation_strategy()->mutable_timeout()->set_timeout(15);
  register_actors({ticking});
  ASSERT_TRUE(invoke("ticker", "get"));  // activation starts the timer
  for (int i = 0; i < 500 && script_->count("init") < 3; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GE(script_->count("init"), 3) << "each firing after passivation reactivates the actor";
  EXPECT_GE(script_->count("inc"), 2);
  auto calls = script_->calls();
  auto tick = std::find_if(calls.begin(), calls.end(),
                           [](const auto& c) { return c.action_name() == "inc"; });
  ASSERT_NE(tick, calls.end());
  EXPECT_TRUE(tick->has_noop());
  EXPECT_EQ(tick->caller().name(), "ticker");
  auto saved = stored("ticker");
  ASSERT_TRUE(saved.has_value()) << "timer-driven state was saved at passivation";
}

TEST_F(RuntimeTest, TimerStopsWhenReRegistrationDropsIt) {
  auto ticking = actor("ticker", /*stateful=*/false);
  auto* timer = ticking.add_timer_actions();
  timer->set_seconds(10);
  timer->mutable_action()->set_name("inc");
  register_actors({ticking});
  ASSERT_TRUE(invoke("ticker", "get"));
  for (int i = 0; i < 300 && script_->count("inc") < 2; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  register_actors({actor("ticker", /*stateful=*/false)});
  std::this_thread::sleep_for(50ms);  // let a firing already under way finish
  auto count = script_->count("inc");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(script_->count("inc"), count);
}

TEST_F(RuntimeTest, ScheduledInvocationIsStoredRunsAtItsTimeAndIsRemoved) {
  register_actors({actor("counter")});
  pb::InvocationRequest request;
  request.mutable_system()->set_name("sys");
  request.mutable_actor()->mutable_id()->set_name("counter");
  request.set_action_name("inc");
  auto due = epoch_ms() + 150;
  request.set_scheduled_to(due);
  auto reply = run(runtime_->invoke(request));
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_FALSE(reply->has_value());
  EXPECT_EQ(*run(store_.count_scheduled()), 1) << "stored before the reply";
  for (int i = 0; i < 300 && script_->count("inc") == 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GE(epoch_ms(), due);
  EXPECT_EQ(script_->count("inc"), 1);
  for (int i = 0; i < 300 && *run(store_.count_scheduled()) > 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(*run(store_.count_scheduled()), 0) << "removed once it ran";
}

TEST_F(RuntimeTest, ScheduledInvocationOfUnknownActorFailsAtOnce) {
  register_actors({actor("counter")});
  pb::InvocationRequest request;
  request.mutable_system()->set_name("sys");
  request.mutable_actor()->mutable_id()->set_name("ghost");
  request.set_action_name("inc");
  request.set_scheduled_to(epoch_ms() + 1000);
  auto reply = run(runtime_->invoke(request));
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(*run(store_.count_scheduled()), 0);
}

TEST_F(RuntimeTest, StoredInvocationWaitsForItsSystemToRegisterAfterARestart) {
  pb::InvocationRequest request;
  request.mutable_system()->set_name("sys");
  request.mutable_actor()->mutable_id()->set_name("counter");
  request.set_action_name("inc");
  request.set_async(true);
  statestore::ScheduledInvocation entry{"left-by-a-crash", epoch_ms() - 10, "sys", "counter",
                                        request.SerializeAsString()};
  ASSERT_TRUE(run(store_.put_scheduled(entry)));
  std::this_thread::sleep_for(200ms);  // due, but nothing is registered yet
  EXPECT_EQ(script_->count("inc"), 0);
  register_actors({actor("counter")});
  for (int i = 0; i < 400 && script_->count("inc") == 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(script_->count("inc"), 1);
}

TEST_F(RuntimeTest, ShutdownRefusesNewWorkAndSavesEveryActor) {
  register_actors({actor("a"), actor("b")});
  ASSERT_TRUE(invoke("a", "inc"));
  ASSERT_TRUE(invoke("b", "inc"));
  runtime_->begin_shutdown();
  auto refused = invoke("a", "inc");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kShuttingDown);
  run(runtime_->drain(1s));
  EXPECT_EQ(stored("a")->data, "1");
  EXPECT_EQ(stored("b")->data, "1");
}

}  // namespace
}  // namespace spawn::runtime
