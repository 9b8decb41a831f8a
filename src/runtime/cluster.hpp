#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "spawn/result.hpp"

#include "common/asio.hpp"
#include "protocol/messages.hpp"
#include "runtime/shard.hpp"
#include "statestore/store.hpp"

namespace spawn::runtime {

/// An actor this node's host registered, as the cluster announces it to the other nodes.
struct RegisteredActor {
  std::string name;
  bool pooled = false;
  /// Broadcast subscriptions: topic and the action they invoke.
  std::vector<std::pair<std::string, std::string>> subscriptions;
};

/// Where an invocation for one actor goes.
struct Placement {
  /// The node that serves the actor; empty when it is this node.
  std::string node;
  /// The registered template of a spawned child the cluster knows; empty otherwise.
  std::string parent;
};

/// One node as the cluster sees it (spawnctl cluster).
struct NodeInfo {
  std::string node;
  std::string address;
  std::size_t registered = 0;
  std::size_t active = 0;
  bool leaving = false;
  bool self = false;
  /// Milliseconds since its last heartbeat arrived (0 for this node).
  std::int64_t last_seen_ms = 0;
};

/// Several proxies forming one actor system (DESIGN.md decision 6; docs/cluster.md). A Runtime
/// without one runs alone. Implementations are thread-safe: every member may be called from any
/// shard.
class Cluster {
public:
  /// Runs a request another node sent here: the request and how many nodes it crossed.
  using Handler = std::function<Task<Result<protocol::pb::InvocationResponse>>(
      protocol::pb::InvocationRequest, int hops)>;

  virtual ~Cluster() = default;

  /// Sets what runs requests from other nodes (on `executor_for(key)`) and how many actors are
  /// active here. Called once, before start().
  virtual void attach(
      Handler handler,
      std::function<asio::any_io_executor(const statestore::ActorKey&)> executor_for,
      std::function<Task<std::size_t>()> count_active, std::function<void()> release_all) = 0;

  /// Announces the actors this node's host registered for `system`.
  virtual void registered(const std::string& system, std::vector<RegisteredActor> actors) = 0;

  /// Returns true when this node's host or another live node's registered `name` in `system`.
  virtual bool registered_anywhere(const std::string& system, const std::string& name) = 0;

  /// Records spawned children (ActorId with parent) so that every node can serve them.
  virtual Task<Result<void>> spawned(std::vector<protocol::pba::ActorId> children) = 0;

  /// Returns where `key` is served, placing it on a node that registered it when nobody owns it
  /// (or its owner is dead). kNotFound when no live node registered it.
  virtual Task<Result<Placement>> locate(statestore::ActorKey key) = 0;

  /// Returns whether this node owns `key` as far as its cache knows: nullopt when it does not
  /// know (nothing cached, or the cached owner is dead). Never blocks.
  virtual std::optional<bool> owns(const statestore::ActorKey& key) = 0;

  /// Drops what is cached about `key`'s owner; the next locate() asks the directory.
  virtual void forget(const statestore::ActorKey& key) = 0;

  /// Runs `request` on `node`. nullopt: it did not run there (the node is gone, leaving, or no
  /// longer the owner); locate again. Errors are the remote invocation's own.
  virtual Task<Result<std::optional<protocol::pb::InvocationResponse>>> call(
      std::string node, protocol::pb::InvocationRequest request, int hops,
      std::chrono::milliseconds timeout) = 0;

  /// Returns the subscriptions to `topic` that other nodes' hosts registered.
  virtual std::vector<Subscription> subscribers(const std::string& topic) = 0;

  /// Returns true while this node is the one that runs scheduled invocations.
  virtual bool runs_scheduler() = 0;

  /// Returns the nodes alive now, this one first.
  virtual std::vector<NodeInfo> nodes() = 0;

  /// Returns the node recorded as the owner of `key` (nullopt: none), without placing it.
  virtual Task<Result<std::optional<std::string>>> owner_of(statestore::ActorKey key) = 0;

  /// Returns this node's name in the cluster.
  virtual const std::string& self() const = 0;
};

}  // namespace spawn::runtime
