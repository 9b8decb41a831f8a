#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "spawn/result.hpp"

#include "cluster/nats.hpp"
#include "common/asio.hpp"
#include "runtime/cluster.hpp"

namespace spawn::cluster {

struct ClusterSettings {
  NatsSettings nats;
  /// First token of every subject and of the KV bucket names: clusters sharing one NATS differ.
  std::string prefix = "spawn";
  /// This process's name in the cluster; unique per start (see make_node_name()).
  std::string node;
  /// This node's HTTP API (host:port), shown to operators.
  std::string address;
  std::chrono::milliseconds heartbeat{1000};
  /// A node whose heartbeat has not arrived for this long is dead: its actors may be taken over.
  std::chrono::milliseconds node_timeout{3000};
  /// How a new actor's node is chosen among those whose host registered it.
  enum class Placement { kRoundRobin, kRandom } placement = Placement::kRoundRobin;
};

/// Returns `base` (a host name, say) made safe for subjects, plus a random suffix.
std::string make_node_name(const std::string& base);

/// The cluster on NATS (docs/cluster.md): membership by heartbeat, the actor directory in a
/// JetStream KV bucket written only with compare-and-set, node-to-node invocation over
/// request/reply, and the scheduler's single runner.
class NatsCluster final : public runtime::Cluster {
public:
  /// Connects to NATS (in the background when no server answers yet). kConfig for settings that
  /// cannot work.
  static Result<std::unique_ptr<NatsCluster>> create(ClusterSettings settings);

  ~NatsCluster() override;
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  /// Subscribes and starts the heartbeat. Call after attach().
  Result<void> start();

  /// Takes no new actors from now on and tells the other nodes (SIGTERM).
  void leave();

  /// Tells the other nodes this one is gone: its actors (saved before) may be taken over at once.
  /// Then stops.
  void stop();

  void attach(Handler handler,
              std::function<asio::any_io_executor(const statestore::ActorKey&)> executor_for,
              std::function<Task<std::size_t>()> count_active,
              std::function<void()> release_all) override;
  void registered(const std::string& system, std::vector<runtime::RegisteredActor> actors) override;
  bool registered_anywhere(const std::string& system, const std::string& name) override;
  Task<Result<void>> spawned(std::vector<protocol::pba::ActorId> children) override;
  Task<Result<runtime::Placement>> locate(statestore::ActorKey key) override;
  std::optional<bool> owns(const statestore::ActorKey& key) override;
  void forget(const statestore::ActorKey& key) override;
  Task<Result<std::optional<protocol::pb::InvocationResponse>>> call(
      std::string node, protocol::pb::InvocationRequest request, int hops,
      std::chrono::milliseconds timeout) override;
  std::vector<runtime::Subscription> subscribers(const std::string& topic) override;

  bool runs_scheduler() override { return leader_ && !leaving_; }

  std::vector<runtime::NodeInfo> nodes() override;
  Task<Result<std::optional<std::string>>> owner_of(statestore::ActorKey key) override;

  const std::string& self() const override { return settings_.node; }

private:
  struct Member {
    std::string address;
    /// "system\x1fname" -> pooled, for every actor its host registered.
    std::unordered_map<std::string, bool> actors;
    /// Topic and subscription.
    std::vector<std::pair<std::string, runtime::Subscription>> subscriptions;
    std::size_t active = 0;
    bool leaving = false;
    std::chrono::steady_clock::time_point last_seen;
    bool reported_dead = false;
  };
  struct Pending;

  explicit NatsCluster(ClusterSettings settings);

  /// Runs `work` (a blocking NATS call) on the blocking pool and resumes on the caller's executor.
  template <class F>
  Task<std::invoke_result_t<F>> blocking(F work);

  Result<kvStore*> directory();
  Result<kvStore*> children();
  std::string directory_key(const statestore::ActorKey& key) const;
  /// Reads `key` from the children bucket or the directory, off the calling thread.
  Task<Result<std::optional<KvEntry>>> read(bool from_children, std::string key);

  bool can_judge(std::chrono::steady_clock::time_point now) const;
  bool alive(const std::string& node, std::chrono::steady_clock::time_point now) const;
  bool is_leaving(const std::string& node) const;
  std::vector<std::string> candidates(const std::string& registered_key,
                                      std::chrono::steady_clock::time_point now) const;
  /// Whether some live node's host (this one's included) registered `registered_key`: nullopt
  /// when none did, else whether it is a pool.
  std::optional<bool> registration(const std::string& registered_key) const;
  std::string pick(const std::vector<std::string>& candidates);
  Task<Result<std::string>> parent_of(statestore::ActorKey key);

  void on_request(natsMsg* message);
  void on_reply(natsMsg* message);
  void on_heartbeat(natsMsg* message);
  void on_connection(bool connected);
  Task<void> serve(protocol::pb::InvocationRequest request, int hops, std::string reply);
  Task<void> run_heartbeat();
  Task<void> beat();
  void lose_contact(const char* why);
  void check_pause();
  void elect();

  ClusterSettings settings_;
  std::unique_ptr<NatsConnection> nats_;
  std::string request_subject_;
  std::string reply_prefix_;

  Handler handler_;
  std::function<asio::any_io_executor(const statestore::ActorKey&)> executor_for_;
  std::function<Task<std::size_t>()> count_active_;
  std::function<void()> release_all_;

  asio::io_context io_{1};
  std::thread thread_;
  asio::thread_pool pool_{4};
  std::atomic<bool> leader_{false};
  std::atomic<bool> leaving_{false};
  std::atomic<bool> stopped_{false};
  /// When the heartbeat loop last went to sleep (steady clock ticks); see check_pause().
  std::atomic<std::chrono::steady_clock::rep> asleep_since_{
      std::chrono::steady_clock::now().time_since_epoch().count()};
  /// Actors in memory here at the last heartbeat.
  std::atomic<std::size_t> active_{0};

  mutable std::mutex mutex_;  // guards everything below
  std::map<std::string, Member> members_;
  std::map<std::string, std::vector<runtime::RegisteredActor>> local_;
  std::unordered_map<statestore::ActorKey, std::string> owners_;
  std::unordered_map<statestore::ActorKey, std::string> parents_;
  std::optional<std::chrono::steady_clock::time_point> connected_since_;
  std::chrono::steady_clock::time_point disconnected_at_;
  std::uint64_t cursor_ = 0;
  std::uint64_t next_call_ = 1;
  std::unordered_map<std::uint64_t, std::shared_ptr<Pending>> pending_;
};

}  // namespace spawn::cluster
