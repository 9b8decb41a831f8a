#pragma once

// Shared fixture for the spawn-proxy integration tests: a TestHost, a real spawn-proxy process on a
// SQLite file in a temp dir with a freshly generated key, and helpers that speak PROTOCOL.md.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/http_client.hpp"
#include "support/proxy_process.hpp"
#include "support/test_host.hpp"

namespace spawn::integration {

namespace pb = protocol::pb;
namespace pba = protocol::pba;
using Env = std::map<std::string, std::string>;

/// The actor system every test registers (also PROXY_ACTOR_SYSTEM_NAME).
inline constexpr const char* kSystem = "it-system";

/// Returns base64 of 32 random bytes: a valid SPAWN_STATESTORE_KEY.
std::string make_key();

/// Returns standard base64 (with padding) of `bytes`.
std::string base64(const std::string& bytes);

/// A subscription in Actor.metadata.channel_group; an empty action means "receive".
struct ChannelSpec {
  std::string topic{};
  std::string action{};
};

/// A FixedTimerAction; `period_ms` goes into its `seconds` field, which is read as ms.
struct TimerSpec {
  std::int32_t period_ms = 0;
  std::string action{};
};

/// How a test wants one actor registered.
struct ActorSpec {
  std::string name{};
  std::vector<std::string> actions{};
  pba::Kind kind = pba::NAMED;
  bool stateful = true;
  /// JSON text of the initial state (packed as JSONType); nullopt: no state in the ActorState.
  std::optional<std::string> initial_state{};
  std::map<std::string, std::string> tags{};
  /// deactivation_strategy.timeout in ms; 0 leaves the strategy unset (default 10000 ms).
  std::int64_t deactivation_ms = 0;
  std::int32_t min_pool_size = 0;
  std::int32_t max_pool_size = 0;
  std::vector<ChannelSpec> channels{};
  std::vector<TimerSpec> timers{};
};

/// Builds the Actor message for `spec` in `system`.
pba::Actor make_actor(const ActorSpec& spec, const std::string& system = kSystem);

/// Builds a RegistrationRequest (Node SDK style) for `actors` in `system`.
pb::RegistrationRequest make_registration(const std::vector<ActorSpec>& actors,
                                          const std::string& system = kSystem);

/// Builds an InvocationRequest as the Node SDK does: system.name, actor.id {name, system}.
pb::InvocationRequest make_request(const std::string& actor, const std::string& action,
                                   std::optional<google::protobuf::Any> payload = std::nullopt,
                                   const std::string& system = kSystem);

/// Returns the JSON text inside a JSONType Any, or "<unset>" / "<not JSONType: url>".
std::string json_of(const google::protobuf::Any& any);

/// Returns the JSON text of the state in a Context ("<unset>" when there is none).
std::string state_of(const pb::Context& context);

/// Reads a whole file as bytes ("" when it does not exist).
std::string read_file(const std::filesystem::path& path);

/// Host handler: state := state + 1 (an unset state counts as 0); returns the new state as value.
/// With `checkpoint`, asks the proxy to persist before replying.
testing::TestHost::Handler increment_handler(bool checkpoint = false);

/// Host handler: state := the request payload (value); returns it as value.
testing::TestHost::Handler set_state_handler(bool checkpoint = false);

/// Serialized ActorInvocationResponse bytes, for on_raw handlers.
std::string encode(const google::protobuf::Message& message);

/// What a command printed and how it exited.
struct CommandRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

/// Runs `command` in a shell, with stderr into stdout.
CommandRun run_command(const std::string& command);

/// Base fixture: starts a TestHost, owns a TempDir with the SQLite file and a random key.
/// Tests call start_proxy() (optionally with environment overrides) and then register().
class ProxyTest : public ::testing::Test {
protected:
  /// The proxy environment of this test, with `overrides` applied (an empty value removes a key).
  Env proxy_env(const Env& overrides = {}) const;

  /// Starts the test's main proxy (stopping a previous one with SIGKILL) and a client for it.
  testing::ProxyProcess& start_proxy(const Env& overrides = {});

  /// Starts an additional proxy on the same database file (for multi-process tests).
  std::unique_ptr<testing::ProxyProcess> launch_proxy(const Env& overrides = {},
                                                      bool wait_ready = true) const;

  /// Stops the main proxy with `signal` and returns its exit code; the log is kept.
  int stop_proxy(int signal = 15);

  /// Registers `actors` on the main proxy; returns an assertion result that carries the log.
  ::testing::AssertionResult register_actors(const std::vector<ActorSpec>& actors);

  /// Registers `actors` through `client`, failing with `log` when it is not Accepted.
  static ::testing::AssertionResult register_on(testing::ProxyClient& client,
                                                const std::vector<ActorSpec>& actors,
                                                const std::string& log);

  /// Invokes through the main proxy. A transport failure is reported as a test failure and
  /// yields an empty response (status UNKNOWN).
  pb::InvocationResponse invoke(const pb::InvocationRequest& request);

  /// Shorthand: invoke `action` on `actor` with an optional payload.
  pb::InvocationResponse invoke(const std::string& actor, const std::string& action,
                                std::optional<google::protobuf::Any> payload = std::nullopt);

  /// Invokes through `client` (another proxy).
  static pb::InvocationResponse invoke_on(testing::ProxyClient& client,
                                          const pb::InvocationRequest& request);

  /// Succeeds when `response` is OK; otherwise carries its message and the proxy log.
  ::testing::AssertionResult is_ok(const pb::InvocationResponse& response) const;

  /// Succeeds when `response` is ERROR with a non-empty message; otherwise explains.
  ::testing::AssertionResult is_error(const pb::InvocationResponse& response) const;

  /// Proves the proxy still serves normal calls: registers a fresh echo actor and invokes it
  /// successfully.
  ::testing::AssertionResult still_serves();

  /// Invokes `get` on `actor` with growing pauses until it was activated again (init ran more
  /// than `inits_before` times), which happens only after a deactivation. The pauses grow so that
  /// an idle timer reset by each call still expires. Returns the `get` answer of that activation.
  pb::InvocationResponse get_after_reactivation(const std::string& actor, int inits_before);

  /// The proxy log with a header, for `<<` after assertions.
  std::string log() const;

  /// The last HTTP status of the main client.
  unsigned last_status() const { return client_ ? client_->last_status() : 0; }

  const std::filesystem::path& data_dir() const { return data_dir_.path(); }

  std::filesystem::path db_path() const { return data_dir_.path() / "spawn.db"; }

  testing::TestHost host_;
  testing::TempDir data_dir_;
  std::string key_ = make_key();
  std::unique_ptr<testing::ProxyProcess> proxy_;
  std::unique_ptr<testing::ProxyClient> client_;
  /// Logs of proxies this test already stopped (kept for failure messages).
  std::string previous_logs_;

private:
  int serves_counter_ = 0;
};

}  // namespace spawn::integration
