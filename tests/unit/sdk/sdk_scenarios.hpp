#pragma once

// The SDK scenario suite: one set of behaviours (PROTOCOL.md §8, timers, checkpoint, misuse)
// that every mode must pass with the same results. sdk_scenarios.cpp holds the TEST_Ps; each
// mode instantiates them with its NodeHarness:
//   tests/unit/sdk/embedded_scenarios_test.cpp     embedded, SQLite in a temp dir
//   tests/integration/sdk_sidecar_test.cpp         sidecar, against the real spawn-proxy

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "spawn/spawn.hpp"

namespace spawn::sdk_test {

/// Starts nodes of one mode, and simulates a crash of everything that runs the actors.
class NodeHarness {
public:
  virtual ~NodeHarness() = default;

  /// Starts a node hosting `system`.
  virtual Result<Node> start(const ActorSystem& system) = 0;

  /// Called after `node.kill_for_test()`: kills whatever else ran the actors (the proxy in
  /// sidecar mode) and brings it back on the same statestore, so a new start() finds the state.
  virtual void crash_backend() = 0;
};

struct Mode {
  std::string name;
  std::function<std::unique_ptr<NodeHarness>()> make;
  /// Whether calls one thread has in flight to one actor at once run in the order made.
  bool keeps_call_order = false;
};

/// Prints the mode's name in test names.
inline std::string mode_name(const ::testing::TestParamInfo<Mode>& info) {
  return info.param.name;
}

/// Starts a node of the parameter's mode with the suite's actor system before each test.
class SdkScenarioTest : public ::testing::TestWithParam<Mode> {
protected:
  void SetUp() override;
  void TearDown() override;

  /// Kills the node (and the proxy) without saving anything, then starts them again.
  void crash_and_restart();

  Client& client() { return *client_; }

  std::unique_ptr<NodeHarness> harness_;
  std::unique_ptr<ActorSystem> system_;
  std::optional<Node> node_;
  std::optional<Client> client_;
  /// A client the "call_out" handler uses, to check that calls from a handler are refused.
  std::shared_ptr<std::optional<Client>> inner_client_ = std::make_shared<std::optional<Client>>();
};

/// Polls `predicate` every 20 ms until it holds or `timeout` passes; returns its last value.
bool eventually(const std::function<bool()>& predicate,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace spawn::sdk_test
