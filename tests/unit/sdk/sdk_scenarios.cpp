#include "unit/sdk/sdk_scenarios.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "sdk_test_messages.pb.h"

namespace spawn::sdk_test {

using namespace std::chrono_literals;

namespace {

constexpr const char* kSystem = "sdk-test";

Deposit deposit(std::int64_t amount) {
  Deposit message;
  message.set_amount(amount);
  return message;
}

Note note(std::string text) {
  Note message;
  message.set_text(std::move(text));
  return message;
}

Transfer transfer(std::string to, std::int64_t amount) {
  Transfer message;
  message.set_to(std::move(to));
  message.set_amount(amount);
  return message;
}

Balance balance_of(std::int64_t amount) {
  Balance message;
  message.set_amount(amount);
  return message;
}

/// "k=v;k=v" in key order.
std::string join(const detail::WireMap& map) {
  std::vector<std::pair<std::string, std::string>> items(map.begin(), map.end());
  std::sort(items.begin(), items.end());
  std::string out;
  for (const auto& [key, value] : items) {
    out += (out.empty() ? "" : ";") + key + "=" + value;
  }
  return out;
}

Value<Account, Balance> credit(Context<Account>& ctx, const Deposit& in) {
  Account next = ctx.take_state();
  next.set_balance(next.balance() + in.amount());
  return ctx.value().state(next).reply(balance_of(next.balance()));
}

/// Every feature the suite exercises, in one system.
std::unique_ptr<ActorSystem> make_system(std::shared_ptr<std::optional<Client>> inner) {
  auto system = std::make_unique<ActorSystem>(kSystem);

  system->actor<Account>("account")
      .deactivate_after(60s)
      .tag("kind", "account")
      .init([](Context<Account>& ctx) { return ctx.value().tag("initialized", "yes"); })
      .action("deposit", credit)
      .action("deposit_checkpoint",
              [](Context<Account>& ctx, const Deposit& in) { return credit(ctx, in).checkpoint(); })
      .action("balance",
              [](Context<Account>& ctx) {
                return ctx.value().reply(balance_of(ctx.state().balance()));
              })
      .action("tag", [](Context<Account>& ctx,
                        const Note& in) { return ctx.value().tag("last", in.text()); })
      .action("tags",
              [](Context<Account>& ctx) { return ctx.value().reply(note(join(ctx.tags()))); })
      .action("whoami",
              [](Context<Account>& ctx) {
                auto caller = ctx.caller();
                std::string text = "self=" + ctx.self().name + " system=" + ctx.self().system
                                   + " caller=" + (caller ? caller->name : "-")
                                   + " trace=" + std::string(ctx.metadata("trace").value_or("-"));
                return ctx.value().reply(note(text));
              })
      .action("boom",
              [](Context<Account>&) -> Value<Account> {
                throw std::runtime_error("boom: the vault is on fire");
              })
      .action("refuse",
              [](Context<Account>&) -> Result<Value<Account>> {
                return fail(ErrorCode::kInvalidArgument, "refused: insufficient funds");
              })
      .action("transfer",
              [](Context<Account>& ctx, const Transfer& in) {
                Account next = ctx.take_state();
                next.set_balance(next.balance() - in.amount());
                return ctx.value()
                    .state(next)
                    .reply(balance_of(next.balance()))
                    .effect(Effect::to(in.to(), "deposit").with(deposit(in.amount())));
              })
      .action("transfer_later",
              [](Context<Account>& ctx, const Transfer& in) {
                return ctx.value().effect(
                    Effect::to(in.to(), "deposit").with(deposit(in.amount())).after(300ms));
              })
      .action("announce", [](Context<Account>& ctx,
                             const Note& in) { return ctx.value().broadcast("news", in); })
      .action("double_then_pipe",
              [](Context<Account>& ctx, const Deposit& in) {
                return ctx.value().reply(deposit(in.amount() * 2)).pipe("ledger", "deposit");
              })
      .action("forward_to_ledger",
              [](Context<Account>& ctx, const Deposit&) {
                return ctx.value().tag("forwarded", "yes").forward("ledger", "deposit");
              })
      .action("call_out", [inner](Context<Account>& ctx) {
        auto called = (*inner)->invoke<Balance>(kSystem, "ledger", "balance");
        return ctx.value().reply(note(called ? "called" : called.error().message));
      });

  system->actor<Account>("ledger")
      .action("deposit", credit)
      .action("balance", [](Context<Account>& ctx) {
        return ctx.value().reply(balance_of(ctx.state().balance()));
      });

  for (const char* name : {"listener-a", "listener-b"}) {
    system->actor<Inbox>(name)
        .subscribe("news", "hear")
        .action("hear",
                [](Context<Inbox>& ctx, const Note& in) {
                  Inbox next = ctx.take_state();
                  next.add_notes(in.text() + " from " + (ctx.caller() ? ctx.caller()->name : "?"));
                  return ctx.value().state(next);
                })
        .action("inbox", [](Context<Inbox>& ctx) { return ctx.value().reply(ctx.state()); });
  }

  system->actor<Ticks>("ticker")
      .timer("tick", 100ms,
             [](Context<Ticks>& ctx) {
               Ticks next = ctx.take_state();
               next.set_count(next.count() + 1);
               return ctx.value().state(next);
             })
      .action("count", [](Context<Ticks>& ctx) { return ctx.value().reply(ctx.state()); });

  system->actor<Account>("room")
      .unnamed()
      .action("deposit", credit)
      .action("whoami", [](Context<Account>& ctx) {
        return ctx.value().reply(note(ctx.self().name + " parent=" + ctx.self().parent));
      });

  system->actor("echo").pooled(4).action("echo", [](Context<NoState>& ctx, const Note& in) {
    return ctx.value().reply(note(in.text() + " from " + ctx.self().name));
  });

  system->actor<Json>("doc")
      .action("set",
              [](Context<Json>& ctx, const Json& in) { return ctx.value().state(in).reply(in); })
      .action("read", [](Context<Json>& ctx) { return ctx.value().reply(ctx.state()); });

  return system;
}

}  // namespace

bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return predicate();
    }
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

void SdkScenarioTest::SetUp() {
  harness_ = GetParam().make();
  system_ = make_system(inner_client_);
  auto node = harness_->start(*system_);
  ASSERT_TRUE(node) << node.error().message;
  node_.emplace(std::move(*node));
  client_.emplace(node_->client());
  inner_client_->emplace(node_->client());
}

void SdkScenarioTest::TearDown() {
  inner_client_->reset();
  client_.reset();
  node_.reset();
  harness_.reset();
}

void SdkScenarioTest::crash_and_restart() {
  inner_client_->reset();
  client_.reset();
  node_->kill_for_test();
  node_.reset();
  harness_->crash_backend();
  auto node = harness_->start(*system_);
  ASSERT_TRUE(node) << node.error().message;
  node_.emplace(std::move(*node));
  client_.emplace(node_->client());
  inner_client_->emplace(node_->client());
}

// ---- state, get, init, tags, metadata ----------------------------------------------------------

TEST_P(SdkScenarioTest, StateChangedByAnActionIsSeenByTheNextOne) {
  auto account = client().actor("account");
  auto first = account.invoke<Balance>("deposit", deposit(10));
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->amount(), 10);
  auto second = account.invoke<Balance>("deposit", deposit(5));
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->amount(), 15);
  auto read = client().invoke<Balance>(kSystem, "account", "balance");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->amount(), 15);
}

TEST_P(SdkScenarioTest, DefaultGetAnswersTheCurrentState) {
  auto fresh = client().actor("ledger").invoke<Account>("get");
  ASSERT_TRUE(fresh) << fresh.error().message;
  EXPECT_EQ(fresh->balance(), 0);
  ASSERT_TRUE(client().actor("ledger").invoke("deposit", deposit(7)));
  auto state = client().actor("ledger").invoke<Account>("get_state");
  ASSERT_TRUE(state) << state.error().message;
  EXPECT_EQ(state->balance(), 7);
}

TEST_P(SdkScenarioTest, InitRunsAtActivationAndRegisteredTagsArrive) {
  auto tags = client().actor("account").invoke<Note>("tags");
  ASSERT_TRUE(tags) << tags.error().message;
  EXPECT_EQ(tags->text(), "initialized=yes;kind=account");
}

TEST_P(SdkScenarioTest, TagsSetByAnActionPersistWithTheOthers) {
  ASSERT_TRUE(client().actor("account").invoke("tag", note("gold")));
  auto tags = client().actor("account").invoke<Note>("tags");
  ASSERT_TRUE(tags) << tags.error().message;
  EXPECT_EQ(tags->text(), "initialized=yes;kind=account;last=gold");
}

TEST_P(SdkScenarioTest, MetadataAndIdentityReachTheHandler) {
  InvokeOptions options;
  options.metadata["trace"] = "t-42";
  auto who = client().actor("account").invoke<Note>("whoami", options);
  ASSERT_TRUE(who) << who.error().message;
  EXPECT_EQ(who->text(), "self=account system=sdk-test caller=- trace=t-42");
}

TEST_P(SdkScenarioTest, JsonStateAndPayloadsTravelAsJsonType) {
  auto set = client().actor("doc").invoke<Json>("set", Json{R"({"title":"hello"})"});
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->text, R"({"title":"hello"})");
  auto read = client().actor("doc").invoke<Json>("read");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->text, R"({"title":"hello"})");
}

// ---- async, scheduled, kinds --------------------------------------------------------------------

TEST_P(SdkScenarioTest, AsyncInvocationIsSeenByTheNextSynchronousCall) {
  auto queued = client().actor("account").invoke_async("deposit", deposit(3));
  ASSERT_TRUE(queued) << queued.error().message;
  auto read = client().actor("account").invoke<Balance>("balance");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->amount(), 3);
}

TEST_P(SdkScenarioTest, DelayedInvocationRunsAfterItsDelay) {
  const auto start = std::chrono::steady_clock::now();
  auto scheduled = client().actor("ledger").invoke_after(300ms, "deposit", deposit(9));
  ASSERT_TRUE(scheduled) << scheduled.error().message;
  EXPECT_TRUE(eventually([&] {
    auto read = client().actor("ledger").invoke<Balance>("balance");
    return read && read->amount() == 9;
  }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
}

TEST_P(SdkScenarioTest, SpawnedChildRunsItsTemplateUnderItsOwnName) {
  auto spawned = client().spawn("room-1", "room");
  ASSERT_TRUE(spawned) << spawned.error().message;
  auto who = client().actor("room-1").invoke<Note>("whoami");
  ASSERT_TRUE(who) << who.error().message;
  EXPECT_EQ(who->text(), "room-1 parent=room");

  InvokeOptions from_template;
  from_template.spawn_from = "room";
  auto second = client().actor("room-2").invoke<Balance>("deposit", deposit(4), from_template);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->amount(), 4);
  auto first = client().actor("room-1").invoke<Balance>("deposit", deposit(1));
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->amount(), 1);  // children keep separate state
}

TEST_P(SdkScenarioTest, PooledActorAnswersUnderItsRegisteredName) {
  for (int i = 0; i < 6; ++i) {
    auto echoed = client().actor("echo").invoke<Note>("echo", note("hi"));
    ASSERT_TRUE(echoed) << echoed.error().message;
    EXPECT_EQ(echoed->text(), "hi from echo");
  }
}

// ---- workflows
// -------------------------------------------------------------------------------------

TEST_P(SdkScenarioTest, SideEffectReachesItsTargetInTheBackground) {
  auto moved = client().actor("account").invoke<Balance>("transfer", transfer("ledger", 25));
  ASSERT_TRUE(moved) << moved.error().message;
  EXPECT_EQ(moved->amount(), -25);
  EXPECT_TRUE(eventually([&] {
    auto read = client().actor("ledger").invoke<Balance>("balance");
    return read && read->amount() == 25;
  }));
}

TEST_P(SdkScenarioTest, DelayedSideEffectRunsLater) {
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(client().actor("account").invoke("transfer_later", transfer("ledger", 8)));
  EXPECT_TRUE(eventually([&] {
    auto read = client().actor("ledger").invoke<Balance>("balance");
    return read && read->amount() == 8;
  }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
}

TEST_P(SdkScenarioTest, BroadcastReachesEverySubscriber) {
  ASSERT_TRUE(client().actor("account").invoke("announce", note("rates up")));
  for (const char* listener : {"listener-a", "listener-b"}) {
    EXPECT_TRUE(eventually([&] {
      auto inbox = client().actor(listener).invoke<Inbox>("inbox");
      return inbox && inbox->notes_size() == 1 && inbox->notes(0) == "rates up from account";
    })) << listener;
  }
}

TEST_P(SdkScenarioTest, PipeAnswersWithTheTargetsReplyToTheOutput) {
  auto piped = client().actor("account").invoke<Balance>("double_then_pipe", deposit(5));
  ASSERT_TRUE(piped) << piped.error().message;
  EXPECT_EQ(piped->amount(), 10);
}

// A reply of another type than the caller asked for is an error naming the call, also when a
// workflow (here a pipe) made the reply.
TEST_P(SdkScenarioTest, ReplyOfAnotherTypeAfterAPipeNamesTheCall) {
  auto account = client().actor("account");
  ASSERT_TRUE(account.invoke<Balance>("deposit", deposit(1)));  // active and idle from here on
  auto piped = account.invoke<Note>("double_then_pipe", deposit(5));
  ASSERT_FALSE(piped);
  EXPECT_EQ(piped.error().code, ErrorCode::kInvalidArgument) << piped.error().message;
  EXPECT_NE(piped.error().message.find("invoke 'double_then_pipe' on actor 'account'"),
            std::string::npos)
      << piped.error().message;
}

TEST_P(SdkScenarioTest, ForwardAnswersWithTheTargetsReplyToTheInput) {
  auto forwarded = client().actor("account").invoke<Balance>("forward_to_ledger", deposit(4));
  ASSERT_TRUE(forwarded) << forwarded.error().message;
  EXPECT_EQ(forwarded->amount(), 4);
  auto tags = client().actor("account").invoke<Note>("tags");
  ASSERT_TRUE(tags) << tags.error().message;
  EXPECT_NE(tags->text().find("forwarded=yes"), std::string::npos);  // its own change is kept
}

TEST_P(SdkScenarioTest, TimerFiresRepeatedly) {
  EXPECT_TRUE(eventually([&] {
    auto ticks = client().actor("ticker").invoke<Ticks>("count");
    return ticks && ticks->count() >= 3;
  }));
}

TEST_P(SdkScenarioTest, CheckpointedStateSurvivesACrash) {
  auto saved = client().actor("account").invoke<Balance>("deposit_checkpoint", deposit(42));
  ASSERT_TRUE(saved) << saved.error().message;
  crash_and_restart();
  auto read = client().actor("account").invoke<Balance>("balance");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->amount(), 42);
}

// ---- invoke_then: calls that do not block -----------------------------------------------------

namespace {

/// Collects the results of invoke_then callbacks and waits for a number of them.
template <class T>
class Replies {
public:
  std::function<void(Result<T>)> collector() {
    return [this](Result<T> result) {
      std::lock_guard lock(mutex_);
      results_.push_back(std::move(result));
      threads_.push_back(std::this_thread::get_id());
      arrived_.notify_all();
    };
  }

  /// Waits until `count` results arrived (at most 10 s); returns whether they did.
  bool wait_for(std::size_t count) {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, 10s, [&] { return results_.size() >= count; });
  }

  std::size_t size() {
    std::lock_guard lock(mutex_);
    return results_.size();
  }

  std::vector<Result<T>> take() {
    std::lock_guard lock(mutex_);
    return std::move(results_);
  }

  std::vector<std::thread::id> threads() {
    std::lock_guard lock(mutex_);
    return threads_;
  }

private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<Result<T>> results_;
  std::vector<std::thread::id> threads_;
};

}  // namespace

TEST_P(SdkScenarioTest, InvokeThenHandsTheReplyToTheCallbackOnAnotherThread) {
  Replies<Balance> replies;
  client().actor("account").invoke_then<Balance>("deposit", deposit(10), replies.collector());
  ASSERT_TRUE(replies.wait_for(1));
  auto results = replies.take();
  ASSERT_EQ(results.size(), 1U);
  ASSERT_TRUE(results[0]) << results[0].error().message;
  EXPECT_EQ(results[0]->amount(), 10);
  EXPECT_NE(replies.threads().at(0), std::this_thread::get_id());

  Replies<Account> state;  // no input, default get
  client().invoke_then<Account>(kSystem, "account", "get", state.collector());
  ASSERT_TRUE(state.wait_for(1));
  auto read = state.take();
  ASSERT_TRUE(read.at(0)) << read.at(0).error().message;
  EXPECT_EQ(read.at(0)->balance(), 10);
}

TEST_P(SdkScenarioTest, ManyCallsInFlightAreEachAnsweredOnceInMailboxOrder) {
  constexpr int kCalls = 1000;
  Replies<Balance> replies;
  auto ledger = client().actor("ledger");
  for (int i = 0; i < kCalls; ++i) {
    ledger.invoke_then<Balance>("deposit", deposit(1), replies.collector());
  }
  ASSERT_TRUE(replies.wait_for(kCalls)) << replies.size() << " of " << kCalls << " answered";
  std::set<std::int64_t> balances;
  for (auto& result : replies.take()) {
    ASSERT_TRUE(result) << result.error().message;
    balances.insert(result->amount());
  }
  // Every deposit ran exactly once: the replies are the balances 1..kCalls, each once.
  ASSERT_EQ(balances.size(), static_cast<std::size_t>(kCalls));
  EXPECT_EQ(*balances.begin(), 1);
  EXPECT_EQ(*balances.rbegin(), kCalls);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(replies.size(), 0U) << "no callback runs twice";
  auto read = ledger.invoke<Balance>("balance");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->amount(), kCalls);
}

TEST_P(SdkScenarioTest, CallbacksChainFurtherCallsWithoutBlockingAThread) {
  constexpr int kLinks = 200;
  std::mutex mutex;
  std::condition_variable finished;
  std::vector<std::int64_t> seen;
  Client chain_client = client();
  std::function<void(Result<Balance>)> next;
  next = [&](Result<Balance> result) {
    bool more = false;
    {
      std::lock_guard lock(mutex);
      seen.push_back(result ? result->amount() : -1);
      more = seen.size() < kLinks && result;
      if (!more) {
        finished.notify_all();
      }
    }
    if (more) {
      chain_client.actor("ledger").invoke_then<Balance>("deposit", deposit(2), next);
    }
  };
  chain_client.actor("ledger").invoke_then<Balance>("deposit", deposit(2), next);
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(finished.wait_for(lock, 10s, [&] { return seen.size() >= kLinks; }))
        << seen.size() << " links";
  }
  std::lock_guard lock(mutex);
  for (int i = 0; i < kLinks; ++i) {
    ASSERT_EQ(seen[i], 2 * (i + 1)) << "link " << i;
  }
}

// A call started from a callback may run at once on the thread of its actor's shard; its own
// callback still runs only after invoke_then() returned, and a checkpoint is still saved first.
// The two calls are in flight together: embedded runs them in the order made, a sidecar may run
// them in either order (they travel on two connections), so only what both promise is checked.
TEST_P(SdkScenarioTest, CallsStartedInACallbackAnswerOnlyAfterInvokeThenReturned) {
  Client chain_client = client();
  auto account = chain_client.actor("account");
  ASSERT_TRUE(account.invoke<Balance>("deposit", deposit(1)));  // active and idle from here on
  std::atomic<int> started{0};
  std::atomic<int> early{0};
  Replies<Balance> first;
  Replies<Balance> plain;
  Replies<Balance> checkpointed;
  auto after_return = [&started, &early](int index, Replies<Balance>& replies) {
    return [&started, &early, index, collect = replies.collector()](Result<Balance> result) {
      if (started.load() < index) {
        ++early;
      }
      collect(std::move(result));
    };
  };
  account.invoke_then<Balance>("deposit", deposit(2), [&](Result<Balance> result) {
    first.collector()(std::move(result));
    account.invoke_then<Balance>("deposit", deposit(3), after_return(1, plain));
    ++started;
    account.invoke_then<Balance>("deposit_checkpoint", deposit(4), after_return(2, checkpointed));
    ++started;
  });
  ASSERT_TRUE(first.wait_for(1));
  ASSERT_TRUE(plain.wait_for(1));
  ASSERT_TRUE(checkpointed.wait_for(1));
  EXPECT_EQ(early.load(), 0) << "a callback ran before its invoke_then() returned";
  auto take = [](Replies<Balance>& replies) -> std::int64_t {
    auto results = replies.take();
    EXPECT_EQ(results.size(), 1U);
    EXPECT_TRUE(results.at(0)) << results.at(0).error().message;
    return results.at(0) ? results.at(0)->amount() : -1;
  };
  EXPECT_EQ(take(first), 3);
  const std::int64_t after_plain = take(plain);
  const std::int64_t after_checkpoint = take(checkpointed);
  const bool in_order = after_plain == 6 && after_checkpoint == 10;
  const bool reversed = after_checkpoint == 7 && after_plain == 10;
  EXPECT_TRUE(in_order || reversed) << "deposit 3 answered " << after_plain
                                    << ", deposit_checkpoint 4 answered " << after_checkpoint;
  if (GetParam().keeps_call_order) {
    EXPECT_TRUE(in_order) << "calls from one thread ran out of the order made";
  }
  crash_and_restart();
  auto read = client().actor("account").invoke<Balance>("balance");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_GE(read->amount(), after_checkpoint) << "the checkpoint was saved before its reply";
}

TEST_P(SdkScenarioTest, InvokeThenReportsErrorsThroughTheCallback) {
  Replies<Balance> wrong_type;
  client().actor("account").invoke_then<Balance>("deposit", note("ten"), wrong_type.collector());
  ASSERT_EQ(wrong_type.size(), 1U) << "refused before sending, before invoke_then returns";
  auto refused = wrong_type.take();
  ASSERT_FALSE(refused.at(0));
  EXPECT_EQ(refused.at(0).error().code, ErrorCode::kInvalidArgument);

  Replies<void> missing;
  client().actor("nobody").invoke_then("deposit", deposit(1), missing.collector());
  ASSERT_TRUE(missing.wait_for(1));
  auto not_found = missing.take();
  ASSERT_FALSE(not_found.at(0));
  EXPECT_EQ(not_found.at(0).error().code, ErrorCode::kNotFound) << not_found.at(0).error().message;

  Replies<void> failed;
  client().actor("account").invoke_then("boom", failed.collector());
  ASSERT_TRUE(failed.wait_for(1));
  auto boom = failed.take();
  ASSERT_FALSE(boom.at(0));
  EXPECT_EQ(boom.at(0).error().code, ErrorCode::kBadHostResponse) << boom.at(0).error().message;
}

TEST_P(SdkScenarioTest, BlockingCallFromACallbackIsRefused) {
  Replies<std::string> replies;
  Client inner = client();
  auto collect = replies.collector();
  client().actor("ledger").invoke_then<Balance>(
      "deposit", deposit(1), [inner, collect](Result<Balance>) {
        auto blocked = inner.actor("ledger").invoke<Balance>("balance");
        collect(blocked ? std::string("ran") : blocked.error().message);
        auto spawned = inner.spawn("child-from-callback", "room");
        collect(spawned ? std::string("ran") : spawned.error().message);
      });
  ASSERT_TRUE(replies.wait_for(2));
  for (auto& message : replies.take()) {
    ASSERT_TRUE(message);
    EXPECT_NE(message->find("inside an invoke_then callback"), std::string::npos) << *message;
  }
}

TEST_P(SdkScenarioTest, CallbackThatThrowsDoesNotStopTheNode) {
  std::atomic<bool> ran{false};
  client().actor("ledger").invoke_then<Balance>("deposit", deposit(1), [&ran](Result<Balance>) {
    ran = true;
    throw std::runtime_error("the caller's bug");
  });
  ASSERT_TRUE(eventually([&] { return ran.load(); }));
  auto after = client().actor("ledger").invoke<Balance>("deposit", deposit(1));
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after->amount(), 2);
}

TEST_P(SdkScenarioTest, CallsInFlightWhenTheNodeStopsAreAnsweredOnce) {
  constexpr int kCalls = 500;
  auto answered = std::make_shared<std::atomic<int>>(0);
  Client kept = client();  // outlives the node, as a caller's copy may
  for (int i = 0; i < kCalls; ++i) {
    kept.actor("ledger").invoke_then<Balance>("deposit", deposit(1),
                                              [answered](const Result<Balance>&) { ++*answered; });
  }
  node_->stop();
  ASSERT_TRUE(eventually([&] { return answered->load() >= kCalls; }))
      << answered->load() << " of " << kCalls << " answered";
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(answered->load(), kCalls) << "each callback runs exactly once";

  Replies<Balance> late;
  kept.actor("ledger").invoke_then<Balance>("deposit", deposit(1), late.collector());
  ASSERT_TRUE(late.wait_for(1));
  auto refused = late.take();
  ASSERT_FALSE(refused.at(0));
  EXPECT_EQ(refused.at(0).error().code, ErrorCode::kShuttingDown) << refused.at(0).error().message;
}

// ---- misuse ------------------------------------------------------------------------------------

TEST_P(SdkScenarioTest, UnknownActionIsNotFound) {
  auto missing = client().actor("account").invoke("withdraw", deposit(1));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound) << missing.error().message;
  EXPECT_NE(missing.error().message.find("withdraw"), std::string::npos) << missing.error().message;
}

TEST_P(SdkScenarioTest, UnknownActorIsNotFound) {
  auto missing = client().actor("nobody").invoke("deposit", deposit(1));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound) << missing.error().message;
  EXPECT_NE(missing.error().message.find("nobody"), std::string::npos) << missing.error().message;
}

TEST_P(SdkScenarioTest, InputOfTheWrongTypeIsRefusedBeforeSending) {
  auto wrong = client().actor("account").invoke<Balance>("deposit", note("ten"));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::kInvalidArgument) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find("spawn.sdk_test.Deposit"), std::string::npos)
      << wrong.error().message;
}

TEST_P(SdkScenarioTest, InputOfTheWrongTypeFromElsewhereFailsTheCall) {
  // An Any skips the client's check, as a call from another SDK would.
  auto wrong = client().actor("account").invoke<Balance>("deposit", pack(note("ten")));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::kBadHostResponse) << wrong.error().message;
  auto read = client().actor("account").invoke<Balance>("balance");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->amount(), 0);  // nothing changed
}

TEST_P(SdkScenarioTest, HandlerThatThrowsFailsTheCallNotTheNode) {
  auto failed = client().actor("account").invoke("boom");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kBadHostResponse) << failed.error().message;
  EXPECT_NE(failed.error().message.find("invoke 'boom' on actor 'account'"), std::string::npos)
      << failed.error().message;
  EXPECT_NE(failed.error().message.find("the vault is on fire"), std::string::npos)
      << "the handler's reason reaches the caller in both modes: " << failed.error().message;
  auto after = client().actor("account").invoke<Balance>("deposit", deposit(1));
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after->amount(), 1);
}

TEST_P(SdkScenarioTest, HandlerThatReturnsAnErrorFailsTheCall) {
  auto failed = client().actor("account").invoke("refuse");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::kBadHostResponse) << failed.error().message;
}

TEST_P(SdkScenarioTest, ReplyOfAnotherTypeThanAskedIsAnError) {
  auto wrong = client().actor("account").invoke<Note>("balance");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::kInvalidArgument) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find("spawn.sdk_test.Balance"), std::string::npos)
      << wrong.error().message;
}

TEST_P(SdkScenarioTest, ClientCalledFromInsideAHandlerIsRefused) {
  auto answer = client().actor("account").invoke<Note>("call_out");
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_NE(answer->text().find("inside an action handler"), std::string::npos) << answer->text();
}

TEST_P(SdkScenarioTest, SpawnFromAnUnknownTemplateIsNotFound) {
  auto spawned = client().spawn("child", "no-such-template");
  ASSERT_FALSE(spawned);
  EXPECT_EQ(spawned.error().code, ErrorCode::kNotFound) << spawned.error().message;
}

TEST_P(SdkScenarioTest, InconsistentDefinitionIsRefusedAtStart) {
  ActorSystem broken("broken");
  broken.actor<Ticks>("clock").timer("tick", 100ms);  // no "tick" action
  auto node = harness_->start(broken);
  ASSERT_FALSE(node);
  EXPECT_EQ(node.error().code, ErrorCode::kInvalidArgument) << node.error().message;
  EXPECT_NE(node.error().message.find("timer 'tick'"), std::string::npos) << node.error().message;
}

}  // namespace spawn::sdk_test
