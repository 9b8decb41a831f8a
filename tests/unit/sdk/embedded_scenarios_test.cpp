// The scenario suite in embedded mode: the runtime in this process, SQLite in a temp dir.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "spawn/spawn.hpp"

#include "sdk_test_messages.pb.h"
#include "support/proxy_process.hpp"
#include "unit/sdk/sdk_scenarios.hpp"

namespace spawn::sdk_test {

using namespace std::chrono_literals;

namespace {

// base64 of the 32 bytes "0123456789abcdef0123456789abcdef".
constexpr const char* kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// An action answering with its actor's state and how many tags it has.
const auto peek_state_and_tags = [](Context<Json>& ctx) {
  return ctx.value().reply(
      Json{"state=" + ctx.state().text + " tags=" + std::to_string(ctx.tags().size())});
};

/// Options for a node on an encrypted SQLite file in `dir`.
EmbeddedOptions encrypted_sqlite_in(const testing::TempDir& dir) {
  EmbeddedOptions options;
  options.statestore = "sqlite";
  options.database = (dir.path() / "state.db").string();
  options.statestore_key = kKey;
  return options;
}

/// Starts `system` on one shard and activates its actors "a" and "b" (a first "peek" each), so
/// that later calls to them run at once on that shard, through its reused messages.
Result<Node> start_with_a_and_b_active(const ActorSystem& system, EmbeddedOptions options) {
  options.threads = 1;
  Result<Node> node = Node::embedded(system, options);
  if (!node) {
    return node;
  }
  for (const char* name : {"a", "b"}) {
    if (auto peeked = node->client().actor(name).invoke<Json>("peek"); !peeked) {
      return peeked.error();
    }
  }
  return node;
}

class EmbeddedHarness final : public NodeHarness {
public:
  Result<Node> start(const ActorSystem& system) override {
    EmbeddedOptions options = encrypted_sqlite_in(dir_);
    options.threads = 2;
    return Node::embedded(system, options);
  }

  void crash_backend() override {}  // the node was the whole backend

private:
  testing::TempDir dir_;
};

INSTANTIATE_TEST_SUITE_P(Embedded, SdkScenarioTest,
                         ::testing::Values(Mode{
                             .name = "Embedded",
                             .make = [] { return std::make_unique<EmbeddedHarness>(); },
                             .keeps_call_order = true}),
                         mode_name);

TEST(EmbeddedNodeTest, PersistentStoreWithoutKeyIsAConfigError) {
  ActorSystem system("keyless");
  system.actor("echo").action("noop", [](Context<NoState>&) {});
  testing::TempDir dir;
  EmbeddedOptions options = encrypted_sqlite_in(dir);
  options.statestore_key = "";
  auto node = Node::embedded(system, options);
  ASSERT_FALSE(node);
  EXPECT_EQ(node.error().code, ErrorCode::kConfig) << node.error().message;
}

// A shard builds every invocation in one reused message: nothing of a call may reach the next.
TEST(EmbeddedNodeTest, EachCallSeesOnlyItsOwnMetadataAndIdentity) {
  ActorSystem system("scratch");
  auto show = [](Context<NoState>& ctx) {
    return ctx.value().reply(Json{"meta=" + std::to_string(ctx.metadata().size())
                                  + " self=" + ctx.self().name + " parent=" + ctx.self().parent});
  };
  system.actor("probe").action("show", show);
  system.actor("tmpl").unnamed().action("show", show);
  EmbeddedOptions options;
  options.threads = 1;  // every call on the same shard
  auto node = Node::embedded(system, options);
  ASSERT_TRUE(node) << node.error().message;
  Client client = node->client();
  ASSERT_TRUE(client.spawn("kid", "tmpl"));

  auto kid = client.actor("kid").invoke<Json>("show", {.metadata = {{"k", "v"}, {"l", "w"}}});
  ASSERT_TRUE(kid) << kid.error().message;
  EXPECT_EQ(kid->text, "meta=2 self=kid parent=tmpl");
  auto probe = client.actor("probe").invoke<Json>("show");
  ASSERT_TRUE(probe) << probe.error().message;
  EXPECT_EQ(probe->text, "meta=0 self=probe parent=");
}

// A shard answers calls in one reused response, and the thread that runs a call reads the answer
// from one reused message too: nothing of a call's state, tags or reply may reach the next one.
TEST(EmbeddedNodeTest, ReusedResponsesCarryNothingOfThePreviousCall) {
  ActorSystem system("responses");
  for (const char* name : {"a", "b"}) {
    system.actor<Json>(name)
        .action("set",
                [](Context<Json>& ctx, const Json& in) { return ctx.value().state(in).reply(in); })
        .action("tag", [](Context<Json>& ctx) { return ctx.value().tag("k", "v"); })
        .action("quiet", [](Context<Json>&) {})
        .action("deposit",
                [](Context<Json>& ctx) {
                  sdk_test::Deposit out;
                  out.set_amount(5);
                  return ctx.value().reply(out);
                })
        .action("peek", peek_state_and_tags);
  }
  auto node = start_with_a_and_b_active(system, EmbeddedOptions{});
  ASSERT_TRUE(node) << node.error().message;
  Client client = node->client();
  auto a = client.actor("a");
  auto b = client.actor("b");

  auto set = a.invoke<Json>("set", Json{"two"});
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->text, "two");
  // A reply of another type: packed in an Any a Json reply used before.
  auto deposit = b.invoke<sdk_test::Deposit>("deposit");
  ASSERT_TRUE(deposit) << deposit.error().message;
  EXPECT_EQ(deposit->amount(), 5);
  auto wrong = b.invoke<Json>("deposit");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("invoke 'deposit' on actor 'b': reply"), std::string::npos)
      << wrong.error().message;
  // No reply: the previous call's reply is not answered again.
  auto quiet = b.invoke<Json>("quiet");
  ASSERT_FALSE(quiet);
  EXPECT_EQ(quiet.error().code, ErrorCode::kInvalidArgument) << quiet.error().message;
  // No state set: b keeps its own (none), not the state a's call left in the response.
  ASSERT_TRUE(a.invoke("tag"));
  auto peek = b.invoke<Json>("peek");
  ASSERT_TRUE(peek) << peek.error().message;
  EXPECT_EQ(peek->text, "state= tags=0");
  peek = a.invoke<Json>("peek");
  ASSERT_TRUE(peek) << peek.error().message;
  EXPECT_EQ(peek->text, "state=two tags=1");
  ASSERT_TRUE(b.invoke("quiet"));
  auto got = a.invoke<Json>("get");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->text, "two");
  got = b.invoke<Json>("get");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->text, "");  // b's own state: the default of its type
}

// A thread builds its calls in one reused request, and a call started on its actor's shard
// borrows it: nothing of a call may reach the next one built in it.
TEST(EmbeddedNodeTest, ChainedCallsSeeOnlyTheirOwnInputAndMetadata) {
  ActorSystem system("reuse");
  system.actor("probe").action("show", [](Context<NoState>& ctx, const sdk_test::Deposit& in) {
    return ctx.value().reply(Json{"meta=" + std::to_string(ctx.metadata().size())
                                  + " amount=" + std::to_string(in.amount())});
  });
  EmbeddedOptions options;
  options.threads = 1;  // every call on the same shard
  auto node = Node::embedded(system, options);
  ASSERT_TRUE(node) << node.error().message;
  Client client = node->client();
  ASSERT_TRUE(client.actor("probe").invoke<Json>("show"));  // active from here on

  std::mutex mutex;
  std::condition_variable done;
  std::vector<std::string> seen;
  auto record = [&](Result<Json> reply) {
    std::lock_guard lock(mutex);
    seen.push_back(reply ? reply->text : reply.error().message);
    done.notify_all();
  };
  sdk_test::Deposit seven;
  seven.set_amount(7);
  client.actor("probe").invoke_then<Json>(
      "show", seven,
      [&](Result<Json> first) {
        record(std::move(first));
        // On the shard's thread now: these are built in the request the first call left there.
        client.actor("probe").invoke_then<Json>("show", [&](Result<Json> second) {
          record(std::move(second));
          sdk_test::Deposit two;
          two.set_amount(2);
          client.actor("probe").invoke_then<Json>("show", two, record);
        });
      },
      {.metadata = {{"k", "v"}}});
  std::unique_lock lock(mutex);
  ASSERT_TRUE(done.wait_for(lock, 10s, [&] { return seen.size() >= 3; }));
  EXPECT_EQ(seen,
            (std::vector<std::string>{"meta=1 amount=7", "meta=0 amount=0", "meta=0 amount=2"}));
}

// Chains of invoke_then over actors of both shards: calls start on the caller's shard, hop to
// the other one or run at once, and reuse the requests of earlier calls; every call must see its
// own input and metadata and be answered exactly once.
TEST(EmbeddedNodeTest, ChainsAcrossShardsSeeTheirOwnRequests) {
  constexpr int kActors = 20;
  constexpr int kChains = 16;
  constexpr int kCalls = 200;
  ActorSystem system("chains");
  for (int a = 0; a < kActors; ++a) {
    system.actor("a" + std::to_string(a))
        .action("echo", [](Context<NoState>& ctx, const sdk_test::Deposit& in) {
          return ctx.value().reply(Json{ctx.self().name + ":" + std::to_string(in.amount()) + ":"
                                        + std::to_string(ctx.metadata().size())});
        });
  }
  EmbeddedOptions options;
  options.threads = 2;
  auto node = Node::embedded(system, options);
  ASSERT_TRUE(node) << node.error().message;
  Client client = node->client();

  std::mutex mutex;
  std::condition_variable finished;
  int chains_done = 0;
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  std::function<void(int, int)> call = [&](int chain, int index) {
    const std::string actor = "a" + std::to_string((chain * 7 + index) % kActors);
    sdk_test::Deposit in;
    in.set_amount(chain * 1000 + index);
    InvokeOptions invoke_options;
    if (index % 2 == 0) {
      invoke_options.metadata = {{"i", std::to_string(index)}};
    }
    const std::string expected =
        actor + ":" + std::to_string(in.amount()) + ":" + std::to_string(index % 2 == 0 ? 1 : 0);
    client.actor(actor).invoke_then<Json>(
        "echo", in,
        [&, chain, index, expected](Result<Json> reply) {
          ++answered;
          if (!reply || reply->text != expected) {
            ++wrong;
          }
          if (index + 1 < kCalls) {
            call(chain, index + 1);
            return;
          }
          std::lock_guard lock(mutex);
          ++chains_done;
          finished.notify_all();
        },
        invoke_options);
  };
  for (int chain = 0; chain < kChains; ++chain) {
    call(chain, 0);
  }
  std::unique_lock lock(mutex);
  ASSERT_TRUE(finished.wait_for(lock, 30s, [&] { return chains_done == kChains; }))
      << chains_done << " of " << kChains << " chains finished";
  EXPECT_EQ(answered.load(), kChains * kCalls);
  EXPECT_EQ(wrong.load(), 0);
}

TEST(EmbeddedNodeTest, StoppedNodeRefusesCalls) {
  ActorSystem system("stopping");
  system.actor("echo").action("noop", [](Context<NoState>&) {});
  auto node = Node::embedded(system);
  ASSERT_TRUE(node) << node.error().message;
  Client client = node->client();
  ASSERT_TRUE(client.actor("echo").invoke("noop"));
  node->stop();
  auto refused = client.actor("echo").invoke("noop");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kShuttingDown) << refused.error().message;
}

TEST(EmbeddedNodeTest, StateSavedAtStopIsLoadedByTheNextNode) {
  testing::TempDir dir;
  EmbeddedOptions options = encrypted_sqlite_in(dir);
  auto make_system = [] {
    auto system = std::make_unique<ActorSystem>("durable");
    system->actor<Json>("doc").action(
        "set", [](Context<Json>& ctx, const Json& in) { return ctx.value().state(in); });
    return system;
  };
  auto system = make_system();
  {
    auto node = Node::embedded(*system, options);
    ASSERT_TRUE(node) << node.error().message;
    ASSERT_TRUE(node->client().actor("doc").invoke("set", Json{"[1,2]"}));
  }  // the destructor stops the node gracefully: every actor is saved
  auto node = Node::embedded(*system, options);
  ASSERT_TRUE(node) << node.error().message;
  auto read = node->client().actor("doc").invoke<Json>("get");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->text, "[1,2]");
}

// A checkpointed call's reply goes back to its shard once answered and then holds the reply of a
// later call: nothing of the checkpointed call (payload, state, tags, checkpoint) may reach it.
TEST(EmbeddedNodeTest, RepliesOfCheckpointsCarryNothingToLaterCalls) {
  testing::TempDir dir;
  ActorSystem system("spares");
  for (const char* name : {"a", "b"}) {
    system.actor<Json>(name)
        .action("keep",
                [](Context<Json>& ctx, const Json& in) {
                  return ctx.value().state(in).tag("k", "v").reply(in).checkpoint();
                })
        .action("quiet", [](Context<Json>&) {})
        .action("peek", peek_state_and_tags);
  }
  auto node = start_with_a_and_b_active(system, encrypted_sqlite_in(dir));
  ASSERT_TRUE(node) << node.error().message;
  Client client = node->client();
  auto a = client.actor("a");
  auto b = client.actor("b");

  for (int i = 0; i < 3; ++i) {  // each one's reply given back, taken by the next
    auto kept = a.invoke<Json>("keep", Json{"[" + std::to_string(i) + "]"});
    ASSERT_TRUE(kept) << kept.error().message;
    EXPECT_EQ(kept->text, "[" + std::to_string(i) + "]");
  }
  // No reply, no state, no tags set, no checkpoint: b's call is answered from a response that
  // held a's checkpointed reply.
  auto quiet = b.invoke<Json>("quiet");
  ASSERT_FALSE(quiet);
  EXPECT_EQ(quiet.error().code, ErrorCode::kInvalidArgument) << quiet.error().message;
  auto peek = b.invoke<Json>("peek");
  ASSERT_TRUE(peek) << peek.error().message;
  EXPECT_EQ(peek->text, "state= tags=0");
  peek = a.invoke<Json>("peek");
  ASSERT_TRUE(peek) << peek.error().message;
  EXPECT_EQ(peek->text, "state=[2] tags=1");
}

// A checkpoint that fails reaches the caller as its error, naming the actor and the action: here
// a revision conflict (fencing), the actor having been saved first by another node on the same
// database. The failing call is one the shard runs at once, whose save the client awaits itself.
TEST(EmbeddedNodeTest, FailedCheckpointIsTheCallersErrorNamingActorAndAction) {
  testing::TempDir dir;
  EmbeddedOptions options = encrypted_sqlite_in(dir);
  options.threads = 1;
  ActorSystem system("fenced");
  system.actor<Json>("doc").action("set_durable", [](Context<Json>& ctx, const Json& in) {
    return ctx.value().state(in).checkpoint();
  });
  auto first = Node::embedded(system, options);
  ASSERT_TRUE(first) << first.error().message;
  auto second = Node::embedded(system, options);
  ASSERT_TRUE(second) << second.error().message;
  Client first_client = first->client();
  Client second_client = second->client();
  // Both active from here on, at the same revision.
  ASSERT_TRUE(first_client.actor("doc").invoke("get"));
  ASSERT_TRUE(second_client.actor("doc").invoke("get"));

  auto saved = first_client.actor("doc").invoke("set_durable", Json{"1"});
  ASSERT_TRUE(saved) << saved.error().message;
  auto fenced = second_client.actor("doc").invoke("set_durable", Json{"2"});
  ASSERT_FALSE(fenced);
  EXPECT_EQ(fenced.error().code, ErrorCode::kConflict) << fenced.error().message;
  EXPECT_NE(fenced.error().message.find("'set_durable'"), std::string::npos)
      << fenced.error().message;
  EXPECT_NE(fenced.error().message.find("doc"), std::string::npos) << fenced.error().message;
  EXPECT_NE(fenced.error().message.find("checkpoint"), std::string::npos) << fenced.error().message;

  // The fenced actor activates afresh from the store on its next call, and sees the first
  // node's state.
  auto read = second_client.actor("doc").invoke<Json>("get");
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->text, "1");
}

}  // namespace
}  // namespace spawn::sdk_test
