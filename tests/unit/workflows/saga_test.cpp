#include "workflows/saga.hpp"

#include <future>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "runtime/scheduler.hpp"
#include "statestore/memory/memory_store.hpp"
#include "support/fake_host.hpp"

namespace spawn::workflows {
namespace {

namespace pb = protocol::pb;
namespace pba = protocol::pba;
namespace sg = ::spawn::saga;
using namespace std::chrono_literals;
using testing::FakeHost;
using testing::HostScript;

/// Answers every action with its own name as a JSON-free marker; the actions listed in
/// `failing` fail.
class SagaTest : public ::testing::Test {
protected:
  void SetUp() override {
    script_->handler =
        [this](const pb::ActorInvocation& invocation) -> Result<pb::ActorInvocationResponse> {
      {
        std::lock_guard lock(order_mutex_);
        order_.push_back(invocation.actor().name() + "." + invocation.action_name());
      }
      if (failing_.contains(invocation.action_name())) {
        return fail(ErrorCode::kBadHostResponse, "host refused " + invocation.action_name());
      }
      pb::ActorInvocationResponse response;
      *response.mutable_updated_context() = invocation.current_context();
      response.mutable_value()->set_type_url("type.googleapis.com/test.Done");
      response.mutable_value()->set_value(invocation.action_name());
      return response;
    };
    start(1h);
  }

  void start(std::chrono::milliseconds lease) {
    runtime::RuntimeOptions options;
    options.shards = 2;
    options.shard.default_request_timeout = 0ms;
    auto script = script_;
    runtime_ = std::make_unique<runtime::Runtime>(
        options,
        [script](asio::any_io_executor executor) {
          return std::make_unique<FakeHost>(std::move(executor), script);
        },
        &store_);
    engine_ = std::make_unique<SagaEngine>(*runtime_, lease);
    runtime_->start();
    pba::ActorSystem system;
    system.set_name("bank");
    for (const char* name : {"a", "b", "c"}) {
      pba::Actor actor;
      actor.mutable_id()->set_name(name);
      for (const char* action : {"debit", "credit", "undo", "boom"}) {
        actor.add_actions()->set_name(action);
      }
      (*system.mutable_registry()->mutable_actors())[name] = actor;
    }
    ASSERT_TRUE(run(runtime_->register_system(system)));
  }

  template <class T>
  T run(Task<T> task) {
    asio::io_context io;
    auto future = asio::co_spawn(io, std::move(task), asio::use_future);
    io.run();
    return future.get();
  }

  static void add_step(sg::SagaRequest& saga, const char* actor, const char* action,
                       const char* compensation) {
    auto* step = saga.add_steps();
    step->mutable_actor()->set_name(actor);
    step->set_action(action);
    step->set_compensation(compensation);
    step->mutable_payload()->set_type_url("type.googleapis.com/test.Amount");
    step->mutable_payload()->set_value(std::string(actor) + "-input");
  }

  std::vector<std::string> order() {
    std::lock_guard lock(order_mutex_);
    return order_;
  }

  std::shared_ptr<HostScript> script_ = std::make_shared<HostScript>();
  statestore::memory::InMemoryStore store_;
  std::unique_ptr<runtime::Runtime> runtime_;
  std::unique_ptr<SagaEngine> engine_;
  std::set<std::string> failing_;
  std::mutex order_mutex_;
  std::vector<std::string> order_;
};

TEST_F(SagaTest, AllStepsSucceedingCompletesWithEveryResultAndLeavesNoRecord) {
  sg::SagaRequest saga;
  saga.set_system("bank");
  add_step(saga, "a", "debit", "undo");
  add_step(saga, "b", "credit", "undo");
  auto response = run(engine_->run(saga));
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status().status(), pb::OK);
  EXPECT_EQ(response->outcome(), sg::COMPLETED);
  EXPECT_EQ(response->failed_step(), -1);
  ASSERT_EQ(response->results_size(), 2);
  EXPECT_EQ(response->results(1).value(), "credit");
  EXPECT_EQ(order(), (std::vector<std::string>{"a.debit", "b.credit"}));
  EXPECT_EQ(*run(store_.count_scheduled()), 0);
}

TEST_F(SagaTest, ThirdStepFailingRunsTheTwoCompensationsInReverseOrder) {
  failing_ = {"boom"};
  sg::SagaRequest saga;
  saga.set_system("bank");
  add_step(saga, "a", "debit", "undo");
  add_step(saga, "b", "credit", "undo");
  add_step(saga, "c", "boom", "undo");
  auto response = run(engine_->run(saga));
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->status().status(), pb::ERROR);
  EXPECT_EQ(response->outcome(), sg::COMPENSATED);
  EXPECT_EQ(response->failed_step(), 2);
  EXPECT_NE(response->status().message().find("host refused boom"), std::string::npos)
      << response->status().message();
  EXPECT_EQ(order(),
            (std::vector<std::string>{"a.debit", "b.credit", "c.boom", "b.undo", "a.undo"}));
  auto calls = script_->calls();
  EXPECT_EQ(calls.back().value().value(), "a-input") << "a compensation gets the step's input";
  EXPECT_EQ(calls.back().current_context().metadata().at("saga-id"), response->id());
  EXPECT_EQ(*run(store_.count_scheduled()), 0);
}

TEST_F(SagaTest, StepsWithoutCompensationAreNotUndone) {
  failing_ = {"boom"};
  sg::SagaRequest saga;
  saga.set_system("bank");
  add_step(saga, "a", "debit", "");
  add_step(saga, "b", "credit", "undo");
  add_step(saga, "c", "boom", "");
  auto response = run(engine_->run(saga));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->outcome(), sg::COMPENSATED);
  EXPECT_EQ(order(), (std::vector<std::string>{"a.debit", "b.credit", "c.boom", "b.undo"}));
}

TEST_F(SagaTest, FailingCompensationIsRetriedAndThenReported) {
  failing_ = {"boom", "undo"};
  sg::SagaRequest saga;
  saga.set_system("bank");
  add_step(saga, "a", "debit", "undo");
  add_step(saga, "c", "boom", "");
  auto response = run(engine_->run(saga));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->outcome(), sg::COMPENSATION_FAILED);
  ASSERT_EQ(response->compensation_errors_size(), 1);
  EXPECT_NE(response->compensation_errors(0).find("'undo' on actor 'a'"), std::string::npos);
  EXPECT_EQ(script_->count("undo"), 3);
}

TEST_F(SagaTest, MalformedSagasAreRefusedBeforeAnythingRuns) {
  sg::SagaRequest empty;
  empty.set_system("bank");
  auto no_steps = run(engine_->run(empty));
  ASSERT_FALSE(no_steps);
  EXPECT_EQ(no_steps.error().code, ErrorCode::kInvalidArgument);

  sg::SagaRequest no_action;
  no_action.set_system("bank");
  no_action.add_steps()->mutable_actor()->set_name("a");
  auto refused = run(engine_->run(no_action));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("step 0"), std::string::npos);
  EXPECT_TRUE(order().empty());
}

TEST_F(SagaTest, StepOnUnknownActorFailsTheSagaAndCompensates) {
  sg::SagaRequest saga;
  saga.set_system("bank");
  add_step(saga, "a", "debit", "undo");
  add_step(saga, "nobody", "credit", "undo");
  auto response = run(engine_->run(saga));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->outcome(), sg::COMPENSATED);
  EXPECT_NE(response->status().message().find("Actor nobody not found"), std::string::npos);
  EXPECT_EQ(order(), (std::vector<std::string>{"a.debit", "a.undo"}));
}

TEST_F(SagaTest, UnfinishedSagaFoundAfterARestartIsCompensatedFromWhereItWas) {
  sg::SagaLog log;
  auto* saga = log.mutable_request();
  saga->set_system("bank");
  saga->set_id("interrupted");
  add_step(*saga, "a", "debit", "undo");
  add_step(*saga, "b", "credit", "undo");
  add_step(*saga, "c", "debit", "undo");
  log.set_started(2);  // b.credit was under way when the process died
  statestore::ScheduledInvocation record{"saga-interrupted", runtime::epoch_ms() - 1,
                                         std::string(SagaEngine::kSystem), "interrupted",
                                         log.SerializeAsString()};
  ASSERT_TRUE(run(store_.put_scheduled(record)));
  for (int i = 0; i < 400 && order().size() < 2; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(order(), (std::vector<std::string>{"b.undo", "a.undo"}));
  for (int i = 0; i < 400 && *run(store_.count_scheduled()) > 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(*run(store_.count_scheduled()), 0);
}

}  // namespace
}  // namespace spawn::workflows
