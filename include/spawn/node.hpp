#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "spawn/actor_system.hpp"
#include "spawn/client.hpp"
#include "spawn/result.hpp"

namespace spawn {

/// Settings of an embedded node: the runtime runs inside this process (no proxy, no HTTP).
struct EmbeddedOptions {
  /// The statestore: "memory" (lost at exit) or "sqlite" (a file; needs a key).
  std::string statestore = "memory";
  /// The database; for sqlite the file path (parent directories are created).
  std::string database{};
  /// Base64 of 32 bytes, the AES-256-GCM key of state at rest; unset: `SPAWN_STATESTORE_KEY`.
  std::optional<std::string> statestore_key{};
  /// Runtime threads (shards); 0: one per core.
  std::size_t threads = 0;
  /// This node's name, recorded with every snapshot it writes.
  std::string node_name = "spawn-embedded";
  /// How long stop() waits for accepted invocations before saving every actor.
  std::chrono::milliseconds drain_timeout{10000};
};

/// Settings of a sidecar node: the actors are served over HTTP to a `spawn-proxy`, which runs the
/// runtime (PROTOCOL.md §4).
struct SidecarOptions {
  /// The proxy's address (PROXY_HTTP_HOST, PROXY_HTTP_PORT).
  std::string proxy_host = "127.0.0.1";
  std::uint16_t proxy_port = 9001;
  /// Where this process serves `POST /api/v1/actors/actions` (USER_FUNCTION_PORT); the proxy
  /// must be configured to call this port. 0: any free port (see Node::host_port()).
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 8090;
  /// Threads serving the proxy's calls; 0: one per core.
  std::size_t threads = 0;
  /// Registration is retried every `registration_interval`, at most `registration_attempts`
  /// times, until the proxy answers (the Node SDK: 1 s, 60 times).
  int registration_attempts = 60;
  std::chrono::milliseconds registration_interval{1000};
  /// Deadline of one client call to the proxy, connecting and waiting for a connection included.
  std::chrono::milliseconds request_timeout{60000};
  /// Connections to the proxy open at once at most; calls beyond wait for one in order.
  std::size_t max_connections = 64;

  /// Returns the defaults overridden by PROXY_HTTP_HOST, PROXY_HTTP_PORT and USER_FUNCTION_PORT,
  /// as the other Spawn SDKs read them.
  static SidecarOptions from_env();
};

/// A running actor system: the node that hosts its actors and gives out clients. The same
/// program runs embedded or as a sidecar host by changing only how the Node is made:
///
/// ```cpp
/// auto node = spawn::Node::embedded(system, {.statestore = "sqlite", .database = "bank.db"});
/// auto node = spawn::Node::sidecar(system, {.proxy_port = 9001, .port = 8091});
/// if (!node) { std::cerr << node.error().message; return 1; }
/// auto client = node->client();
/// ```
///
/// A Node is movable, not copyable. Destroying it stops it (see stop()).
class Node {
public:
  class Impl;

  /// Starts the runtime in this process with `system`'s actors.
  ///
  /// Fails with kConfig (unknown statestore, missing or malformed key, missing sqlite file
  /// name), kInvalidArgument (an actor definition is inconsistent: a timer or subscription
  /// names an action it doesn't have, an empty name), or the statestore's open error. Blocks
  /// while opening the store.
  static Result<Node> embedded(const ActorSystem& system, EmbeddedOptions options = {});

  /// Serves `system`'s actors to a spawn-proxy and registers them with it, retrying until the
  /// proxy answers. Fails with kUnavailable (the port cannot be bound; the proxy did not answer
  /// after every attempt, the message says how often and why), kInvalidArgument (as embedded(),
  /// or the proxy refused the registration). Blocks while registering.
  static Result<Node> sidecar(const ActorSystem& system, SidecarOptions options = {});

  Node(Node&&) noexcept;
  Node& operator=(Node&&) noexcept;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();

  /// Returns a client of this node (cheap; thread-safe).
  Client client() const;

  /// Returns the system this node hosts.
  const std::string& system() const;

  /// Returns true for an embedded node.
  bool is_embedded() const;

  /// Returns the port the sidecar host listens on; 0 for an embedded node.
  std::uint16_t host_port() const;

  /// Blocks until SIGINT or SIGTERM arrives or stop() is called from another thread.
  void wait_for_shutdown();

  /// Stops the node: embedded, it refuses new calls, waits for accepted ones (at most
  /// `drain_timeout`) and saves every actor's state; as a sidecar, it refuses new calls, waits
  /// for those in flight (at most `request_timeout`) and stops serving the proxy. Either way
  /// every invoke_then() callback has run when stop() returns. Idempotent; clients fail with
  /// kShuttingDown afterwards. Not from an invoke_then() callback (it would wait for itself).
  void stop();

  /// Stops at once without saving anything, as a crash would (tests of durability).
  void kill_for_test();

private:
  explicit Node(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace spawn
