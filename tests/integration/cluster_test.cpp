// Issue "Cluster": three real proxies (each with its own host) on one real nats-server with
// JetStream, sharing one SQLite statestore file: one state per actor whichever node is asked,
// placement across nodes, kill -9 and SIGSTOP of a node (no acknowledged update lost), a NATS
// restart, SIGTERM handoff, scheduled invocations once cluster-wide, broadcast over NATS, spawn
// visible everywhere. docs/cluster.md describes the mechanism.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <numeric>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cluster/nats.hpp"
#include "integration/proxy_fixture.hpp"
#include "integration/workflow_support.hpp"
#include "support/nats_server.hpp"

namespace spawn::integration {
namespace {

using namespace std::chrono_literals;
using testing::echo_response;
using testing::pack_json;

constexpr int kNodes = 3;

/// Host handler: appends the request's payload (a JSON number) to the state (a JSON array) and
/// checkpoints before the reply, so every acknowledged append is durable. Exact counting of lost
/// updates: an id acknowledged and missing from the final state was lost.
testing::TestHost::Handler append_handler() {
  return [](const pb::ActorInvocation& invocation) {
    nlohmann::json list = nlohmann::json::array();
    const auto& context = invocation.current_context();
    if (context.has_state()) {
      auto parsed = nlohmann::json::parse(json_of(context.state()), nullptr, false);
      if (parsed.is_array()) {
        list = std::move(parsed);
      }
    }
    list.push_back(nlohmann::json::parse(json_of(invocation.value())));
    pb::ActorInvocationResponse response;
    *response.mutable_actor_name() = invocation.actor().name();
    *response.mutable_actor_system() = invocation.actor().system();
    *response.mutable_updated_context() = context;
    *response.mutable_updated_context()->mutable_state() = pack_json(list.dump());
    response.set_checkpoint(true);
    return response;
  };
}

class ClusterTest : public ProxyTest {
protected:
  void SetUp() override {
    for (int i = 0; i < kNodes; ++i) {
      hosts_.push_back(std::make_unique<testing::TestHost>());
      auto& host = *hosts_.back();
      host.on("add", increment_handler(true));
      host.on("inc", increment_handler(false));
      host.on("append", append_handler());
    }
    for (int i = 0; i < kNodes; ++i) {
      start_node(i);
    }
    ASSERT_TRUE(wait_for_members(kNodes)) << logs();
  }

  Env node_env(int i, const Env& extra = {}) const {
    Env env = {
        {"USER_FUNCTION_PORT", std::to_string(hosts_[static_cast<std::size_t>(i)]->port())},
        {"SPAWN_USE_INTERNAL_NATS", "true"},
        {"SPAWN_INTERNAL_NATS_HOSTS", nats_.url()},
        {"SPAWN_PUBSUB_ADAPTER", "nats"},
        {"SPAWN_CLUSTER_HEARTBEAT_INTERVAL", "250"},
        {"SPAWN_CLUSTER_NODE_TIMEOUT", "2000"},
        {"SPAWN_PROXY_SHARDS", "1"},
        {"SPAWN_PROXY_NODE", "node" + std::to_string(i)},
    };
    for (const auto& [k, v] : extra) {
      env[k] = v;
    }
    return env;
  }

  void start_node(int i, const Env& extra = {}) {
    auto index = static_cast<std::size_t>(i);
    if (nodes_.size() <= index) {
      nodes_.resize(index + 1);
      clients_.resize(index + 1);
    }
    nodes_[index] = launch_proxy(node_env(i, extra));
    clients_[index] = std::make_unique<testing::ProxyClient>(nodes_[index]->port());
    ASSERT_TRUE(register_on(*clients_[index], actors(), nodes_[index]->log()));
  }

  static std::vector<ActorSpec> actors() {
    std::vector<ActorSpec> specs = {
        {.name = "counter", .actions = {"add", "inc", "append"}},
        {.name = "template", .actions = {"add", "inc"}, .kind = pba::UNNAMED},
    };
    for (int i = 0; i < kSpread; ++i) {
      specs.push_back({.name = "a" + std::to_string(i), .actions = {"add", "inc", "append"}});
    }
    return specs;
  }

  /// The cluster view of node `i` (GET /api/v1/cluster).
  nlohmann::json cluster_view(int i) {
    auto response = clients_[static_cast<std::size_t>(i)]->http().request("GET", "/api/v1/cluster");
    if (!response || response->status != 200) {
      return nlohmann::json::object();
    }
    return nlohmann::json::parse(response->body, nullptr, false);
  }

  /// Waits until every running node sees `count` nodes.
  bool wait_for_members(int count, std::vector<int> among = {0, 1, 2}) {
    return testing::TestHost::wait_for(
        [&] {
          return std::all_of(among.begin(), among.end(), [&](int i) {
            auto view = cluster_view(i);
            return view.contains("nodes") && static_cast<int>(view["nodes"].size()) == count;
          });
        },
        10s);
  }

  /// The node recorded as owner of `actor`, asked through node `via`.
  std::string owner_of(const std::string& actor, int via = 0) {
    auto response = clients_[static_cast<std::size_t>(via)]->http().request(
        "GET", std::string("/api/v1/cluster/actors/") + kSystem + "/" + actor);
    if (!response || response->status != 200) {
      ADD_FAILURE() << "owner of " << actor << " via node" << via << ": "
                    << (response ? response->body : response.error().message);
      return "";
    }
    auto body = nlohmann::json::parse(response->body, nullptr, false);
    return body.value("node", nlohmann::json()).is_string() ? body["node"].get<std::string>() : "";
  }

  /// Index of the node whose name starts with "node<i>-".
  static int index_of(const std::string& node) { return node.size() > 5 ? node[4] - '0' : -1; }

  pb::InvocationResponse call(int via, const std::string& actor, const std::string& action,
                              std::optional<google::protobuf::Any> payload = std::nullopt,
                              const std::string& timeout_ms = "") {
    auto request = make_request(actor, action, std::move(payload));
    if (!timeout_ms.empty()) {
      (*request.mutable_metadata())["request-timeout"] = timeout_ms;
    }
    return invoke_on(*clients_[static_cast<std::size_t>(via)], request);
  }

  std::string logs() const {
    std::string text;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i]) {
        text += "\n===== node" + std::to_string(i) + " =====\n" + nodes_[i]->log();
      }
    }
    return text;
  }

  static constexpr int kSpread = 30;

  testing::NatsServer nats_;
  std::vector<std::unique_ptr<testing::TestHost>> hosts_;
  std::vector<std::unique_ptr<testing::ProxyProcess>> nodes_;
  std::vector<std::unique_ptr<testing::ProxyClient>> clients_;
};

TEST_F(ClusterTest, AnActorInvokedThroughEveryNodeKeepsOneState) {
  for (int i = 0; i < 30; ++i) {
    auto response = call(i % kNodes, "counter", "add");
    ASSERT_EQ(response.status().status(), pb::OK) << response.status().message() << logs();
  }
  for (int via = 0; via < kNodes; ++via) {
    auto state = call(via, "counter", "getState");
    ASSERT_EQ(state.status().status(), pb::OK) << logs();
    EXPECT_EQ(json_of(state.value()), "30") << "through node" << via;
  }
  // One activation: only the owner's host ran the actions.
  auto owner = owner_of("counter");
  ASSERT_FALSE(owner.empty()) << logs();
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_EQ(hosts_[static_cast<std::size_t>(i)]->count("add"), i == index_of(owner) ? 30 : 0)
        << "host of node" << i << "; owner " << owner;
  }
  for (int via = 0; via < kNodes; ++via) {
    EXPECT_EQ(owner_of("counter", via), owner);
  }
}

TEST_F(ClusterTest, SpawnctlShowsTheNodesAndWhereAnActorLives) {
  ASSERT_EQ(call(1, "counter", "add").status().status(), pb::OK) << logs();
  const std::string spawnctl =
      std::string(SPAWNCTL_BINARY) + " --proxy 127.0.0.1:" + std::to_string(nodes_[0]->port());
  auto shown = run_command(spawnctl + " cluster");
  EXPECT_EQ(shown.exit_code, 0) << shown.output;
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_NE(shown.output.find("node" + std::to_string(i) + "-"), std::string::npos)
        << shown.output;
  }
  EXPECT_NE(shown.output.find("(this proxy)"), std::string::npos) << shown.output;
  auto where = run_command(spawnctl + " where " + kSystem + " counter");
  EXPECT_EQ(where.exit_code, 0) << where.output;
  EXPECT_EQ(where.output, owner_of("counter") + "\n");
}

TEST_F(ClusterTest, ActorsSpreadAcrossTheNodesThatRegisteredThem) {
  for (int i = 0; i < kSpread; ++i) {
    auto response = call(i % kNodes, "a" + std::to_string(i), "add");
    ASSERT_EQ(response.status().status(), pb::OK) << response.status().message() << logs();
  }
  std::map<std::string, int> per_node;
  for (int i = 0; i < kSpread; ++i) {
    per_node[owner_of("a" + std::to_string(i))]++;
  }
  EXPECT_EQ(per_node.size(), 3U) << "round-robin placement uses every node";
  int total = 0;
  for (auto& host : hosts_) {
    total += host->count("add");
  }
  EXPECT_EQ(total, kSpread);
}

TEST_F(ClusterTest, AThousandActorsSpreadEvenlyAndKeepTheirState) {
  // Children of the unnamed template, spawned on first use (register_ref) through any node.
  constexpr int kActors = 1000;
  for (int i = 0; i < kActors; ++i) {
    auto request = make_request("c" + std::to_string(i), "add");
    request.set_register_ref("template");
    auto response = invoke_on(*clients_[static_cast<std::size_t>(i % kNodes)], request);
    ASSERT_EQ(response.status().status(), pb::OK) << response.status().message() << logs();
  }
  std::map<int, int> per_node;
  for (int i = 0; i < kActors; ++i) {
    per_node[index_of(owner_of("c" + std::to_string(i), i % kNodes))]++;
  }
  for (int node = 0; node < kNodes; ++node) {
    EXPECT_GE(per_node[node], kActors / kNodes / 2) << "node" << node;
  }
  EXPECT_EQ(per_node[-1], 0) << "actors without a node";
  for (int i = 0; i < kActors; i += 37) {
    auto state = call((i + 1) % kNodes, "c" + std::to_string(i), "getState");
    EXPECT_EQ(json_of(state.value()), "1") << "c" << i;
  }
}

TEST_F(ClusterTest, ASpawnedChildIsServedThroughEveryNode) {
  pb::SpawnRequest spawn;
  auto* id = spawn.add_actors();
  id->set_name("child-1");
  id->set_system(kSystem);
  id->set_parent("template");
  auto spawned = clients_[0]->spawn(kSystem, spawn);
  ASSERT_TRUE(spawned) << logs();
  ASSERT_EQ(spawned->status().status(), pb::OK) << spawned->status().message();
  for (int i = 0; i < 6; ++i) {
    auto response = call((i + 1) % kNodes, "child-1", "add");
    ASSERT_EQ(response.status().status(), pb::OK) << response.status().message() << logs();
  }
  EXPECT_EQ(json_of(call(2, "child-1", "getState").value()), "6");
  auto unknown = call(1, "never-spawned", "add");
  EXPECT_EQ(unknown.status().status(), pb::ERROR);
  EXPECT_NE(unknown.status().message().find("not found"), std::string::npos)
      << unknown.status().message();
}

TEST_F(ClusterTest, AChildOfATemplateOnlyAnotherNodesHostRegisteredLivesThere) {
  auto with_solo = actors();
  with_solo.push_back({.name = "solo", .actions = {"add"}, .kind = pba::UNNAMED});
  ASSERT_TRUE(register_on(*clients_[2], with_solo, nodes_[2]->log()));
  // Node 0 learns of "solo" from node 2's next heartbeat.
  ASSERT_TRUE(testing::TestHost::wait_for([&] {
    auto request = make_request("solo-1", "add");
    request.set_register_ref("solo");
    return invoke_on(*clients_[0], request).status().status() == pb::OK;
  })) << logs();
  for (int via = 0; via < kNodes; ++via) {
    ASSERT_EQ(call(via, "solo-1", "add").status().status(), pb::OK) << logs();
  }
  EXPECT_EQ(index_of(owner_of("solo-1")), 2);
  EXPECT_EQ(hosts_[2]->count("add"), 4);
  EXPECT_EQ(json_of(call(1, "solo-1", "getState").value()), "4");
}

TEST_F(ClusterTest, AsyncPooledAndPipedInvocationsCrossNodes) {
  // Two actors on different nodes, and a node that owns neither.
  ASSERT_EQ(call(0, "a0", "add").status().status(), pb::OK) << logs();
  std::string target;
  for (int i = 1; i < kSpread && target.empty(); ++i) {
    auto name = "a" + std::to_string(i);
    ASSERT_EQ(call(0, name, "add").status().status(), pb::OK) << logs();
    if (owner_of(name) != owner_of("a0")) {
      target = name;
    }
  }
  ASSERT_FALSE(target.empty());
  int other = 3 - index_of(owner_of("a0")) - index_of(owner_of(target));
  ASSERT_GE(other, 0);
  ASSERT_LE(other, 2);

  // Async through the node that owns neither: answered at once, applied on the owner.
  for (int i = 0; i < 10; ++i) {
    auto request = make_request(target, "add");
    request.set_async(true);
    ASSERT_EQ(invoke_on(*clients_[static_cast<std::size_t>(other)], request).status().status(),
              pb::OK);
  }
  EXPECT_TRUE(testing::TestHost::wait_for([&] {
    return json_of(call(other, target, "getState").value()) == "11";
  })) << json_of(call(other, target, "getState").value())
      << logs();

  // A pipe from a0 (its node) to the target (another node): the caller gets the target's answer.
  for (auto& host : hosts_) {
    host->on("relay", [target](const pb::ActorInvocation& invocation) {
      auto response = testing::echo_response(invocation);
      response.mutable_workflow()->mutable_pipe()->set_actor(target);
      response.mutable_workflow()->mutable_pipe()->set_action_name("add");
      return response;
    });
  }
  auto with_relay = actors();
  with_relay[2].actions.push_back("relay");  // a0
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(register_on(*clients_[static_cast<std::size_t>(i)], with_relay,
                            nodes_[static_cast<std::size_t>(i)]->log()));
  }
  auto piped = call(other, "a0", "relay");
  ASSERT_EQ(piped.status().status(), pb::OK) << piped.status().message() << logs();
  EXPECT_EQ(json_of(piped.value()), "12");

  // A pool only node 2's host registered, invoked through node 0.
  auto with_pool = actors();
  with_pool.push_back({.name = "pool",
                       .actions = {"work"},
                       .kind = pba::POOLED,
                       .stateful = false,
                       .min_pool_size = 2,
                       .max_pool_size = 2});
  ASSERT_TRUE(register_on(*clients_[2], with_pool, nodes_[2]->log()));
  ASSERT_TRUE(testing::TestHost::wait_for([&] {
    return call(0, "pool", "work").status().status() == pb::OK;
  })) << logs();
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(call(i % 2, "pool", "work").status().status(), pb::OK) << logs();
  }
  EXPECT_EQ(hosts_[2]->count("work"), 5);
  EXPECT_EQ(hosts_[0]->count("work") + hosts_[1]->count("work"), 0);
}

TEST_F(ClusterTest, AKilledNodesActorsComeBackElsewhereWithEveryCheckpoint) {
  // Load through node 0 on actors owned anywhere; node 2 is killed in the middle.
  std::map<std::string, int> acked;
  std::map<std::string, int> sent;
  auto round = [&](int n) {
    for (int i = 0; i < n; ++i) {
      std::string actor = "a" + std::to_string(i % kSpread);
      sent[actor]++;
      auto response = call(0, actor, "add", std::nullopt, "8000");
      if (response.status().status() == pb::OK) {
        acked[actor]++;
      }
    }
  };
  round(kSpread * 2);
  ASSERT_EQ(std::accumulate(acked.begin(), acked.end(), 0,
                            [](int sum, const auto& entry) { return sum + entry.second; }),
            kSpread * 2)
      << logs();
  nodes_[2]->stop(SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();
  round(kSpread);
  // Every actor answers again, on the two nodes left.
  bool all_back = testing::TestHost::wait_for(
      [&] {
        for (int i = 0; i < kSpread; ++i) {
          auto response = call(1, "a" + std::to_string(i), "getState", std::nullopt, "2000");
          if (response.status().status() != pb::OK) {
            return false;
          }
        }
        return true;
      },
      20s);
  ASSERT_TRUE(all_back) << logs();
  auto recovery = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed_at);
  std::cout << "[ metric ] actors of a killed node reachable again after " << recovery.count()
            << " ms (node timeout 2000 ms)\n";
  for (int i = 0; i < kSpread; ++i) {
    std::string actor = "a" + std::to_string(i);
    auto owner = owner_of(actor);
    EXPECT_NE(index_of(owner), 2) << actor << " still on the killed node";
    int value = std::stoi(json_of(call(1, actor, "getState").value()));
    EXPECT_GE(value, acked[actor]) << actor << ": an acknowledged checkpoint was lost";
    EXPECT_LE(value, sent[actor]) << actor;
  }
}

TEST_F(ClusterTest, APausedNodeCannotOverwriteWhatTheNewOwnerWrote) {
  // Find an actor owned by node 1; the client talks to node 0.
  std::string actor;
  for (int i = 0; i < kSpread && actor.empty(); ++i) {
    auto name = "a" + std::to_string(i);
    ASSERT_EQ(call(0, name, "getState").status().status(), pb::OK) << logs();
    if (index_of(owner_of(name)) == 1) {
      actor = name;
    }
  }
  ASSERT_FALSE(actor.empty()) << logs();
  auto id = [](int n) {
    return pack_json(std::to_string(n));
  };
  std::set<int> acked;
  int next = 0;
  for (; next < 10; ++next) {
    ASSERT_EQ(call(0, actor, "append", id(next)).status().status(), pb::OK) << logs();
    acked.insert(next);
  }
  // Requests reach node 1 and wait there while it is stopped; node 0 gives up on them.
  ::kill(nodes_[1]->pid(), SIGSTOP);
  std::vector<std::thread> stale;
  std::atomic<int> stale_acked{0};
  for (int i = 0; i < 3; ++i) {
    stale.emplace_back([&, n = 1000 + i] {
      testing::ProxyClient client(nodes_[0]->port());
      auto request = make_request(actor, "append", id(n));
      (*request.mutable_metadata())["request-timeout"] = "500";
      auto response = client.invoke(request);
      if (response && response->status().status() == pb::OK) {
        stale_acked++;
      }
    });
  }
  for (auto& thread : stale) {
    thread.join();
  }
  // Node 1 is dead to the others now: the actor moves, and new appends succeed on the new owner.
  for (int tries = 0; tries < 200 && next < 20; ++tries) {
    auto response = call(0, actor, "append", id(next), "3000");
    if (response.status().status() == pb::OK) {
      acked.insert(next);
      ++next;
    } else {
      std::this_thread::sleep_for(50ms);
    }
  }
  ASSERT_EQ(next, 20) << "the actor did not move off the paused node" << logs();
  EXPECT_NE(index_of(owner_of(actor)), 1);
  // Node 1 runs again and works through what waited for it: its stale activation must not win.
  ::kill(nodes_[1]->pid(), SIGCONT);
  // Asked at once, the resumed node must not answer from the state it held before the pause.
  {
    auto fresh = call(1, actor, "getState", std::nullopt, "5000");
    ASSERT_EQ(fresh.status().status(), pb::OK) << fresh.status().message() << logs();
    auto seen = nlohmann::json::parse(json_of(fresh.value()), nullptr, false);
    ASSERT_TRUE(seen.is_array()) << json_of(fresh.value());
    EXPECT_EQ(seen.size(), acked.size())
        << "stale read from the paused node: " << json_of(fresh.value());
  }
  std::this_thread::sleep_for(1500ms);
  EXPECT_NE(nodes_[1]->log().find("paused for longer than the node timeout"), std::string::npos)
      << "node 1 should notice it was paused and let go of its actors\n"
      << nodes_[1]->log();
  for (; next < 30; ++next) {
    auto response = call(next % 2 == 0 ? 0 : 2, actor, "append", id(next), "5000");
    if (response.status().status() == pb::OK) {
      acked.insert(next);
    }
  }
  auto state = call(2, actor, "getState");
  ASSERT_EQ(state.status().status(), pb::OK) << logs();
  auto list = nlohmann::json::parse(json_of(state.value()), nullptr, false);
  ASSERT_TRUE(list.is_array()) << json_of(state.value());
  std::set<int> stored;
  for (const auto& value : list) {
    stored.insert(value.get<int>());
  }
  int lost = 0;
  for (int n : acked) {
    lost += stored.contains(n) ? 0 : 1;
  }
  std::cout << "[ metric ] acknowledged " << acked.size() << " appends; lost " << lost << "\n";
  EXPECT_EQ(lost, 0) << "stored: " << json_of(state.value()) << logs();
  EXPECT_EQ(stale_acked.load(), 0);
  // What waited on the paused node after its callers gave up was dropped, not run late.
  for (int n = 1000; n < 1003; ++n) {
    EXPECT_FALSE(stored.contains(n)) << n << " was applied after its caller gave up";
  }
}

TEST_F(ClusterTest, ATimerStopsOnANodeThatLostItsActor) {
  auto with_ticker = actors();
  with_ticker.push_back(
      {.name = "ticker", .actions = {"tick"}, .timers = {{.period_ms = 100, .action = "tick"}}});
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(register_on(*clients_[static_cast<std::size_t>(i)], with_ticker,
                            nodes_[static_cast<std::size_t>(i)]->log()));
  }
  ASSERT_EQ(call(0, "ticker", "getState").status().status(), pb::OK) << logs();
  const int owner = index_of(owner_of("ticker"));
  ASSERT_GE(owner, 0);
  const int via = (owner + 1) % kNodes;
  ::kill(nodes_[static_cast<std::size_t>(owner)]->pid(), SIGSTOP);
  // Once the paused node is dead to the others, the actor (and its timer) starts elsewhere.
  bool moved = testing::TestHost::wait_for(
      [&] {
        return call(via, "ticker", "getState", std::nullopt, "1000").status().status() == pb::OK
               && index_of(owner_of("ticker", via)) != owner;
      },
      15s);
  ::kill(nodes_[static_cast<std::size_t>(owner)]->pid(), SIGCONT);
  ASSERT_TRUE(moved) << logs();
  // The resumed node's timer finds the actor gone and stops instead of firing from two nodes.
  EXPECT_TRUE(testing::TestHost::wait_for(
      [&] {
        return nodes_[static_cast<std::size_t>(owner)]->log().find(
                   "timer 'tick' stops here: the actor lives on another node")
               != std::string::npos;
      },
      10s))
      << logs();
}

TEST_F(ClusterTest, TheClusterRecoversWhenNatsRestarts) {
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(call(i % kNodes, "counter", "add").status().status(), pb::OK) << logs();
  }
  nats_.stop();
  std::this_thread::sleep_for(1500ms);
  nats_.start();
  bool back = testing::TestHost::wait_for(
      [&] {
        for (int via = 0; via < kNodes; ++via) {
          if (call(via, "counter", "add", std::nullopt, "1000").status().status() != pb::OK) {
            return false;
          }
        }
        return true;
      },
      20s);
  ASSERT_TRUE(back) << logs() << nats_.log();
  auto state = call(1, "counter", "getState");
  EXPECT_GE(std::stoi(json_of(state.value())), 6 + kNodes);
}

TEST_F(ClusterTest, SigtermHandsTheActorsOverWithTheirState) {
  // Non-checkpointed updates: the leaving node saves them while it shuts down.
  for (int i = 0; i < kSpread; ++i) {
    ASSERT_EQ(call(0, "a" + std::to_string(i), "inc").status().status(), pb::OK) << logs();
  }
  EXPECT_EQ(nodes_[2]->stop(SIGTERM), 0) << logs();
  ASSERT_TRUE(wait_for_members(2, {0, 1})) << logs();
  for (int i = 0; i < kSpread; ++i) {
    auto actor = "a" + std::to_string(i);
    auto response = call(1, actor, "inc");
    ASSERT_EQ(response.status().status(), pb::OK) << actor << logs();
    EXPECT_EQ(json_of(response.value()), "2") << actor << " lost its state";
  }
}

TEST_F(ClusterTest, ScheduledInvocationsRunOnceClusterWide) {
  const auto due = epoch_ms_now() + 800;
  for (int i = 0; i < 30; ++i) {
    auto request = make_request("counter", "add");
    request.set_scheduled_to(due);
    ASSERT_EQ(invoke_on(*clients_[static_cast<std::size_t>(i % kNodes)], request).status().status(),
              pb::OK)
        << logs();
  }
  ASSERT_TRUE(testing::TestHost::wait_for(
      [&] { return json_of(call(0, "counter", "getState").value()) == "30"; }, 10s))
      << json_of(call(0, "counter", "getState").value()) << logs();
  std::this_thread::sleep_for(1s);
  int runs = 0;
  for (auto& host : hosts_) {
    runs += host->count("add");
  }
  EXPECT_EQ(runs, 30);
  EXPECT_EQ(json_of(call(1, "counter", "getState").value()), "30");
}

TEST_F(ClusterTest, BroadcastReachesEverySubscriberOnceAndAnyNatsClient) {
  // Subscribers registered on node 1 only; the publisher on node 0.
  std::vector<ActorSpec> subscribers;
  for (int i = 0; i < 5; ++i) {
    subscribers.push_back({.name = "sub" + std::to_string(i),
                           .actions = {"receive"},
                           .channels = {{.topic = "news"}}});
  }
  auto on_node1 = actors();
  on_node1.insert(on_node1.end(), subscribers.begin(), subscribers.end());
  ASSERT_TRUE(register_on(*clients_[1], on_node1, nodes_[1]->log()));
  for (auto& host : hosts_) {
    host->on("publish", [](const pb::ActorInvocation& invocation) {
      auto response = echo_response(invocation);
      auto* broadcast = response.mutable_workflow()->mutable_broadcast();
      broadcast->set_channel_group("news");
      *broadcast->mutable_value() = pack_json("\"hello\"");
      return response;
    });
  }
  auto on_node0 = actors();
  on_node0.push_back({.name = "publisher", .actions = {"publish"}});
  ASSERT_TRUE(register_on(*clients_[0], on_node0, nodes_[0]->log()));
  // Any NATS client sees the message on spawn.broadcast.news.
  cluster::NatsSettings settings;
  settings.servers = {nats_.url()};
  auto outsider = cluster::NatsConnection::connect(settings);
  ASSERT_TRUE(outsider);
  std::atomic<int> seen{0};
  ASSERT_TRUE((*outsider)->subscribe("spawn.broadcast.news", [&](natsMsg*) { seen++; }));
  // Node 0 learns node 1's subscriptions from its heartbeat.
  std::this_thread::sleep_for(600ms);
  ASSERT_EQ(call(0, "publisher", "publish").status().status(), pb::OK) << logs();
  ASSERT_TRUE(testing::TestHost::wait_for(
      [&] {
        int received = 0;
        for (auto& host : hosts_) {
          received += host->count("receive");
        }
        return received == 5 && seen == 1;
      },
      5s))
      << "outsider saw " << seen.load() << logs();
  std::this_thread::sleep_for(500ms);
  int received = 0;
  for (auto& host : hosts_) {
    received += host->count("receive");
  }
  EXPECT_EQ(received, 5) << "each subscriber once";
}

}  // namespace
}  // namespace spawn::integration
