#include "sdk/dispatcher.hpp"

#include <chrono>
#include <stdexcept>

#include <gtest/gtest.h>

#include "spawn/spawn.hpp"

#include "sdk_test_messages.pb.h"

namespace spawn::sdk {
namespace {

namespace pb = protocol::pb;
namespace pba = protocol::pba;
using namespace std::chrono_literals;
using sdk_test::Account;
using sdk_test::Deposit;
using sdk_test::Note;

class DispatcherTest : public ::testing::Test {
protected:
  DispatcherTest() {
    system_.actor<Account>("account")
        .deactivate_after(30s)
        .snapshot_every(2s)
        .tag("tier", "gold")
        .init([](Context<Account>& ctx) { return ctx.value(); })
        .action("deposit",
                [](Context<Account>& ctx, const Deposit& in) {
                  Account next = ctx.state();
                  next.set_balance(next.balance() + in.amount());
                  return ctx.value().state(next).reply(next);
                })
        .action("peek", [](Context<Account>& ctx) { return ctx.value().reply(ctx.state()); })
        .action("pay",
                [](Context<Account>& ctx, const Deposit& in) {
                  return ctx.value()
                      .tag("paid", "yes")
                      .effect(Effect::to("ledger", "record").with(in).after(500ms).spawn_from("t"))
                      .broadcast("payments", in)
                      .pipe("ledger", "total");
                })
        .action("boom", [](Context<Account>&) -> Value<Account> { throw std::logic_error("no"); })
        .timer("peek", 250ms)
        .subscribe("rates", "peek");
    system_.actor<Account>("room").unnamed().action(
        "peek", [](Context<Account>& ctx) { return ctx.value().reply(ctx.state()); });
    system_.actor("pool").pooled(3).action("ping", [](Context<NoState>&) {});
    auto dispatcher = Dispatcher::make(system_.spec());
    EXPECT_TRUE(dispatcher) << dispatcher.error().message;
    dispatcher_ = *dispatcher;
  }

  static pb::ActorInvocation invocation(const std::string& actor, const std::string& action) {
    pb::ActorInvocation invocation;
    invocation.mutable_actor()->set_name(actor);
    invocation.mutable_actor()->set_system("bank");
    invocation.set_action_name(action);
    auto* context = invocation.mutable_current_context();
    Account state;
    state.set_balance(10);
    *context->mutable_state() = pack(state);
    (*context->mutable_tags())["tier"] = "gold";
    *context->mutable_self() = invocation.actor();
    return invocation;
  }

  ActorSystem system_{"bank"};
  std::shared_ptr<const Dispatcher> dispatcher_;
};

TEST_F(DispatcherTest, RegistrationDescribesEveryActorAsTheProtocolSays) {
  pba::ActorSystem registration = dispatcher_->registration();
  EXPECT_EQ(registration.name(), "bank");
  const pba::Actor& account = registration.registry().actors().at("account");
  EXPECT_EQ(account.id().system(), "bank");
  EXPECT_EQ(account.settings().kind(), pba::NAMED);
  EXPECT_TRUE(account.settings().stateful());
  EXPECT_EQ(account.settings().deactivation_strategy().timeout().timeout(), 30000);
  EXPECT_EQ(account.settings().snapshot_strategy().timeout().timeout(), 2000);
  ASSERT_EQ(account.actions_size(), 5);
  EXPECT_EQ(account.actions(0).name(), "init");
  EXPECT_EQ(account.timer_actions(0).seconds(), 250);  // milliseconds, as Spawn reads it
  EXPECT_EQ(account.timer_actions(0).action().name(), "peek");
  EXPECT_EQ(account.metadata().channel_group(0).topic(), "rates");
  EXPECT_EQ(account.metadata().channel_group(0).action(), "peek");
  EXPECT_EQ(account.state().tags().at("tier"), "gold");
  EXPECT_EQ(account.state().state().type_url(), "type.googleapis.com/spawn.sdk_test.Account");

  const pba::Actor& room = registration.registry().actors().at("room");
  EXPECT_EQ(room.settings().kind(), pba::UNNAMED);
  EXPECT_EQ(room.id().parent(), "room");
  const pba::Actor& pool = registration.registry().actors().at("pool");
  EXPECT_EQ(pool.settings().kind(), pba::POOLED);
  EXPECT_FALSE(pool.settings().stateful());
  EXPECT_EQ(pool.settings().max_pool_size(), 3);
}

TEST_F(DispatcherTest, NewStateAndReplyAreReturnedAndTagsEchoed) {
  auto request = invocation("account", "deposit");
  Deposit deposit;
  deposit.set_amount(5);
  *request.mutable_value() = pack(deposit);
  auto response = dispatcher_->dispatch(request);
  ASSERT_TRUE(response) << response.error().message;
  auto state = unpack<Account>(response->updated_context().state());
  ASSERT_TRUE(state);
  EXPECT_EQ(state->balance(), 15);
  EXPECT_EQ(unpack<Account>(response->value())->balance(), 15);
  EXPECT_EQ(response->updated_context().tags().at("tier"), "gold");
  EXPECT_FALSE(response->checkpoint());
  EXPECT_FALSE(response->has_workflow());
}

TEST_F(DispatcherTest, UnchangedStateIsNotSentBack) {
  auto response = dispatcher_->dispatch(invocation("account", "peek"));
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_FALSE(response->updated_context().has_state());
  EXPECT_EQ(unpack<Account>(response->value())->balance(), 10);
}

TEST_F(DispatcherTest, WorkflowCarriesEffectsBroadcastAndPipe) {
  auto request = invocation("account", "pay");
  Deposit deposit;
  deposit.set_amount(7);
  *request.mutable_value() = pack(deposit);
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto response = dispatcher_->dispatch(request);
  ASSERT_TRUE(response) << response.error().message;
  EXPECT_EQ(response->updated_context().tags().at("paid"), "yes");
  EXPECT_EQ(response->updated_context().tags().at("tier"), "gold");
  const pb::Workflow& workflow = response->workflow();
  ASSERT_EQ(workflow.effects_size(), 1);
  const pb::InvocationRequest& effect = workflow.effects(0).request();
  EXPECT_EQ(effect.actor().id().name(), "ledger");
  EXPECT_EQ(effect.actor().id().system(), "bank");
  EXPECT_EQ(effect.action_name(), "record");
  EXPECT_TRUE(effect.async());
  EXPECT_EQ(effect.caller().name(), "account");
  EXPECT_EQ(effect.register_ref(), "t");
  EXPECT_GE(effect.scheduled_to(), before + 500);
  EXPECT_EQ(unpack<Deposit>(effect.value())->amount(), 7);
  EXPECT_EQ(workflow.broadcast().channel_group(), "payments");
  EXPECT_EQ(workflow.pipe().actor(), "ledger");
  EXPECT_EQ(workflow.pipe().action_name(), "total");
}

TEST_F(DispatcherTest, SpawnedChildIsServedByItsTemplate) {
  auto request = invocation("room-7", "peek");
  request.mutable_actor()->set_parent("room");
  auto response = dispatcher_->dispatch(request);
  ASSERT_TRUE(response) << response.error().message;
}

TEST_F(DispatcherTest, UnknownActorOrActionIsNotFound) {
  auto no_actor = dispatcher_->dispatch(invocation("ghost", "peek"));
  ASSERT_FALSE(no_actor);
  EXPECT_EQ(no_actor.error().code, ErrorCode::kNotFound);
  auto no_action = dispatcher_->dispatch(invocation("account", "explode"));
  ASSERT_FALSE(no_action);
  EXPECT_EQ(no_action.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(no_action.error().message, "actor 'account' has no action 'explode'");
}

TEST_F(DispatcherTest, HandlerExceptionBecomesAnError) {
  auto thrown = dispatcher_->dispatch(invocation("account", "boom"));
  ASSERT_FALSE(thrown);
  EXPECT_EQ(thrown.error().code, ErrorCode::kBadHostResponse);
  EXPECT_EQ(thrown.error().message, "the handler threw: no");
}

TEST_F(DispatcherTest, WrongInputTypeBecomesAnError) {
  auto request = invocation("account", "deposit");
  *request.mutable_value() = pack(Note());
  auto wrong = dispatcher_->dispatch(request);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::kBadHostResponse);
  EXPECT_NE(wrong.error().message.find("spawn.sdk_test.Deposit"), std::string::npos)
      << wrong.error().message;
}

TEST(ValueTest, ACopyHasItsOwnStateAndReplyAndTheLastStateSetWins) {
  Account first;
  first.set_balance(1);
  Account second;
  second.set_balance(2);
  Value<Account, Account> value;
  value.state(first).state(second).reply(first);
  Value<Account, Account> copy = value;
  detail::ValueData data = std::move(value).release();
  detail::ValueData copied = std::move(copy).release();
  ASSERT_TRUE(data.state);
  ASSERT_TRUE(copied.state);
  EXPECT_NE(&*data.state, &*copied.state);
  EXPECT_EQ(unpack<Account>(*data.state)->balance(), 2);
  EXPECT_EQ(unpack<Account>(*copied.state)->balance(), 2);
  ASSERT_TRUE(copied.reply);
  EXPECT_EQ(unpack<Account>(*copied.reply)->balance(), 1);
  data = copied;
  EXPECT_EQ(unpack<Account>(*data.reply)->balance(), 1);
}

TEST(DispatcherMakeTest, SubscriptionToAMissingActionIsRefused) {
  ActorSystem system("bank");
  system.actor("listener").subscribe("news", "hear");
  auto dispatcher = Dispatcher::make(system.spec());
  ASSERT_FALSE(dispatcher);
  EXPECT_EQ(dispatcher.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(dispatcher.error().message.find("'hear'"), std::string::npos);
}

TEST(DispatcherMakeTest, DefiningANameAgainReplacesItsDefinitionInItsPlace) {
  ActorSystem system("bank");
  system.actor("first").action("old", [](Context<NoState>&) {});
  system.actor("second").action("ping", [](Context<NoState>&) {});
  system.actor("first").pooled(2).action("new", [](Context<NoState>&) {});
  ASSERT_EQ(system.spec()->actors.size(), 2U);
  EXPECT_EQ(system.spec()->actors[0]->name, "first");
  EXPECT_EQ(system.spec()->actors[1]->name, "second");
  auto dispatcher = Dispatcher::make(system.spec());
  ASSERT_TRUE(dispatcher) << dispatcher.error().message;
  pba::ActorSystem registration = (*dispatcher)->registration();
  ASSERT_EQ(registration.registry().actors().size(), 2);
  const pba::Actor& first = registration.registry().actors().at("first");
  EXPECT_EQ(first.settings().kind(), pba::POOLED);
  ASSERT_EQ(first.actions_size(), 1);
  EXPECT_EQ(first.actions(0).name(), "new");
  EXPECT_EQ((*dispatcher)->registration().registry().actors().count("second"), 1U);
}

}  // namespace
}  // namespace spawn::sdk
