#include "cluster/nats_cluster.hpp"

#include <algorithm>
#include <cstring>
#include <random>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "spawn/cluster.pb.h"

#include "common/log.hpp"

namespace spawn::cluster {

namespace pb = protocol::pb;
namespace pba = protocol::pba;
using Clock = std::chrono::steady_clock;
using statestore::ActorKey;

namespace {

/// The key of a registered actor in a Member's table.
std::string registered_key(const std::string& system, const std::string& name) {
  std::string key;
  key.reserve(system.size() + name.size() + 1);
  key += system;
  key += '\x1f';
  key += name;
  return key;
}

/// The directory entry of the scheduler's runner; actor entries always hold a dot.
constexpr const char* kSchedulerKey = "scheduler";

std::int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string random_hex(std::size_t digits) {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < digits; ++i) {
    out.push_back(kHex[generator() & 0xF]);
  }
  return out;
}

}  // namespace

/// A call waiting for its reply: the timer is cancelled when the reply arrives.
struct NatsCluster::Pending {
  explicit Pending(asio::any_io_executor executor) : timer(executor) {}

  asio::steady_timer timer;
  std::optional<std::string> reply;
  bool no_responders = false;
};

std::string make_node_name(const std::string& base) {
  std::string name;
  for (char c : base) {
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                || c == '-' || c == '_';
    name.push_back(safe ? c : '_');
  }
  if (name.empty()) {
    name = "spawn-proxy";
  }
  return name + "-" + random_hex(6);
}

NatsCluster::NatsCluster(ClusterSettings settings) : settings_(std::move(settings)) {}

Result<std::unique_ptr<NatsCluster>> NatsCluster::create(ClusterSettings settings) {
  const auto& prefix = settings.prefix;
  if (prefix.empty() || escape_token(prefix) != prefix) {
    return fail(ErrorCode::kConfig,
                "SPAWN_CLUSTER_PREFIX must be letters, digits, '-' or '_' (got '" + prefix + "')");
  }
  if (settings.node_timeout < 2 * settings.heartbeat) {
    return fail(
        ErrorCode::kConfig,
        "SPAWN_CLUSTER_NODE_TIMEOUT must be at least twice SPAWN_CLUSTER_HEARTBEAT_INTERVAL");
  }
  std::unique_ptr<NatsCluster> cluster(new NatsCluster(std::move(settings)));
  auto& s = cluster->settings_;
  s.nats.name = "spawn-proxy " + s.node;
  auto connection = NatsConnection::connect(s.nats);
  if (!connection) {
    return std::move(connection).error();
  }
  cluster->nats_ = std::move(*connection);
  cluster->request_subject_ = s.prefix + ".node." + s.node;
  cluster->reply_prefix_ = s.prefix + ".reply." + s.node + ".";
  return cluster;
}

NatsCluster::~NatsCluster() {
  stop();
}

void NatsCluster::attach(Handler handler,
                         std::function<asio::any_io_executor(const ActorKey&)> executor_for,
                         std::function<Task<std::size_t>()> count_active,
                         std::function<void()> release_all) {
  handler_ = std::move(handler);
  executor_for_ = std::move(executor_for);
  count_active_ = std::move(count_active);
  release_all_ = std::move(release_all);
}

Result<void> NatsCluster::start() {
  nats_->on_state([this](bool connected) { on_connection(connected); });
  if (nats_->connected()) {
    std::lock_guard lock(mutex_);
    connected_since_ = Clock::now();
  }
  auto subscribed =
      nats_->subscribe(request_subject_, [this](natsMsg* message) { on_request(message); });
  if (subscribed) {
    subscribed =
        nats_->subscribe(reply_prefix_ + "*", [this](natsMsg* message) { on_reply(message); });
  }
  if (subscribed) {
    subscribed = nats_->subscribe(settings_.prefix + ".heartbeat",
                                  [this](natsMsg* message) { on_heartbeat(message); });
  }
  if (!subscribed) {
    return subscribed;
  }
  asio::co_spawn(io_, run_heartbeat(),
                 [](std::exception_ptr e) { common::log_exception(e, "cluster: heartbeat"); });
  thread_ = std::thread([this] { io_.run(); });
  spdlog::info("cluster: node {} joined (prefix {}, NATS {})", settings_.node, settings_.prefix,
               settings_.nats.servers.front());
  return ok();
}

void NatsCluster::leave() {
  if (leaving_.exchange(true)) {
    return;
  }
  spawn::cluster::NodeRecord record;
  record.set_node(settings_.node);
  record.set_address(settings_.address);
  record.set_leaving(true);
  (void)nats_->publish(settings_.prefix + ".heartbeat", record.SerializeAsString());
  if (leader_.exchange(false)) {
    asio::post(pool_, [this] {
      auto bucket = directory();
      if (!bucket) {
        return;
      }
      auto entry = kv_get(*bucket, kSchedulerKey);
      if (entry && *entry && (*entry)->value == settings_.node) {
        (void)kv_update(*bucket, kSchedulerKey, "", (*entry)->revision);
      }
    });
  }
  spdlog::info("cluster: node {} is leaving: no new actors are placed here", settings_.node);
}

void NatsCluster::stop() {
  if (stopped_.exchange(true)) {
    return;
  }
  if (thread_.joinable()) {
    spawn::cluster::NodeRecord record;
    record.set_node(settings_.node);
    record.set_gone(true);
    (void)nats_->publish(settings_.prefix + ".heartbeat", record.SerializeAsString());
    io_.stop();
    thread_.join();
  }
  pool_.join();
  if (nats_) {
    nats_->close();
  }
}

Result<kvStore*> NatsCluster::directory() {
  return nats_->bucket(settings_.prefix + "_actors");
}

Result<kvStore*> NatsCluster::children() {
  return nats_->bucket(settings_.prefix + "_children");
}

std::string NatsCluster::directory_key(const ActorKey& key) const {
  return escape_token(key.system) + "." + escape_token(key.name);
}

/// Runs `work` where it is resumed (a coroutine parameter, not a lambda capture: GCC 12 destroys
/// the captures of a coroutine lambda twice).
template <class F>
Task<std::invoke_result_t<F>> run_work(F work) {
  co_return work();
}

template <class F>
Task<std::invoke_result_t<F>> NatsCluster::blocking(F work) {
  co_return co_await asio::co_spawn(pool_.get_executor(), run_work(std::move(work)),
                                    asio::use_awaitable);
}

// --- membership -------------------------------------------------------------------------------

bool NatsCluster::can_judge(Clock::time_point now) const {
  return connected_since_ && now - *connected_since_ >= settings_.node_timeout;
}

bool NatsCluster::alive(const std::string& node, Clock::time_point now) const {
  if (node == settings_.node) {
    return true;
  }
  auto it = members_.find(node);
  if (it != members_.end() && now - it->second.last_seen < settings_.node_timeout) {
    return true;
  }
  // Just started or just reconnected: too soon to call anyone dead.
  return !can_judge(now);
}

bool NatsCluster::is_leaving(const std::string& node) const {
  if (node == settings_.node) {
    return leaving_;
  }
  auto it = members_.find(node);
  return it != members_.end() && it->second.leaving;
}

std::vector<std::string> NatsCluster::candidates(const std::string& key,
                                                 Clock::time_point now) const {
  std::vector<std::string> result;
  auto separator = key.find('\x1f');
  const std::string system = key.substr(0, separator);
  const std::string name = key.substr(separator + 1);
  if (!leaving_) {
    if (auto it = local_.find(system); it != local_.end()) {
      for (const auto& actor : it->second) {
        if (actor.name == name) {
          result.push_back(settings_.node);
          break;
        }
      }
    }
  }
  for (const auto& [node, member] : members_) {
    if (!member.leaving && now - member.last_seen < settings_.node_timeout
        && member.actors.contains(key)) {
      result.push_back(node);
    }
  }
  std::sort(result.begin(), result.end());
  return result;
}

std::optional<bool> NatsCluster::registration(const std::string& key) const {
  auto separator = key.find('\x1f');
  if (auto it = local_.find(key.substr(0, separator)); it != local_.end()) {
    for (const auto& actor : it->second) {
      if (actor.name == key.substr(separator + 1)) {
        return actor.pooled;
      }
    }
  }
  for (const auto& [node, member] : members_) {
    if (auto it = member.actors.find(key); it != member.actors.end()) {
      return it->second;
    }
  }
  return std::nullopt;
}

std::string NatsCluster::pick(const std::vector<std::string>& candidates) {
  if (settings_.placement == ClusterSettings::Placement::kRandom) {
    static thread_local std::mt19937_64 generator{std::random_device{}()};
    return candidates[generator() % candidates.size()];
  }
  return candidates[cursor_++ % candidates.size()];
}

void NatsCluster::registered(const std::string& system,
                             std::vector<runtime::RegisteredActor> actors) {
  std::lock_guard lock(mutex_);
  local_[system] = std::move(actors);
}

void NatsCluster::on_heartbeat(natsMsg* message) {
  spawn::cluster::NodeRecord record;
  if (!record.ParseFromArray(natsMsg_GetData(message), natsMsg_GetDataLength(message))
      || record.node().empty() || record.node() == settings_.node) {
    return;
  }
  std::lock_guard lock(mutex_);
  if (record.gone()) {
    if (members_.erase(record.node()) > 0) {
      spdlog::info("cluster: node {} left; its actors move to the other nodes", record.node());
    }
    return;
  }
  auto [it, joined] = members_.try_emplace(record.node());
  Member& member = it->second;
  if (joined) {
    spdlog::info("cluster: node {} ({}) is a member", record.node(), record.address());
  } else if (member.reported_dead) {
    spdlog::info("cluster: node {} answers again", record.node());
  }
  member.address = record.address();
  member.active = record.active();
  member.leaving = record.leaving();
  member.last_seen = Clock::now();
  member.reported_dead = false;
  if (!record.leaving() || record.actors_size() > 0) {
    member.actors.clear();
    member.subscriptions.clear();
    for (const auto& actor : record.actors()) {
      member.actors[registered_key(actor.system(), actor.name())] = actor.pooled();
      for (const auto& subscription : actor.subscriptions()) {
        member.subscriptions.emplace_back(
            subscription.topic(),
            runtime::Subscription{ActorKey{actor.system(), actor.name()}, subscription.action()});
      }
    }
  }
}

void NatsCluster::on_connection(bool connected) {
  std::lock_guard lock(mutex_);
  auto now = Clock::now();
  if (!connected) {
    connected_since_.reset();
    disconnected_at_ = now;
    return;
  }
  connected_since_ = now;
  if (now - disconnected_at_ >= settings_.node_timeout) {
    asio::post(io_, [this] { lose_contact("cut off from NATS for longer than the node timeout"); });
  }
}

void NatsCluster::lose_contact(const char* why) {
  {
    std::lock_guard lock(mutex_);
    owners_.clear();
  }
  leader_ = false;
  spdlog::warn("cluster: node {} was {}; other nodes may own its actors now, so it lets them go",
               settings_.node, why);
  if (release_all_) {
    release_all_();
  }
}

Task<void> NatsCluster::run_heartbeat() {
  asio::steady_timer timer(io_);
  while (!stopped_) {
    co_await beat();
    elect();
    asleep_since_ = Clock::now().time_since_epoch().count();
    timer.expires_after(settings_.heartbeat);
    co_await timer.async_wait(kUseTask);
    check_pause();
  }
}

void NatsCluster::check_pause() {
  // Asleep much longer than one interval, the process did not run for a while (SIGSTOP, swapped
  // out): the others may have taken it for dead. They saw no heartbeat for the overshoot plus one
  // interval, and judge at their own beats: half an interval more is the margin. (Time spent in
  // beat() or elect(), e.g. waiting for NATS, does not count: the heartbeat loop was not asleep.)
  // The first to notice (the heartbeat loop, or a request about to be routed) handles it.
  auto since = asleep_since_.load();
  const auto now = Clock::now();
  const auto overshoot = now - Clock::time_point(Clock::duration(since)) - settings_.heartbeat;
  if (overshoot < settings_.node_timeout - settings_.heartbeat - settings_.heartbeat / 2) {
    return;
  }
  if (asleep_since_.compare_exchange_strong(since, now.time_since_epoch().count())) {
    lose_contact("paused for longer than the node timeout");
  }
}

Task<void> NatsCluster::beat() {
  spawn::cluster::NodeRecord record;
  record.set_node(settings_.node);
  record.set_address(settings_.address);
  record.set_leaving(leaving_);
  if (count_active_) {
    active_ = co_await count_active_();
    record.set_active(active_);
  }
  {
    std::lock_guard lock(mutex_);
    for (const auto& [system, actors] : local_) {
      for (const auto& actor : actors) {
        auto* out = record.add_actors();
        out->set_system(system);
        out->set_name(actor.name);
        out->set_pooled(actor.pooled);
        for (const auto& [topic, action] : actor.subscriptions) {
          auto* subscription = out->add_subscriptions();
          subscription->set_topic(topic);
          subscription->set_action(action);
        }
      }
    }
    auto now = Clock::now();
    for (auto it = members_.begin(); it != members_.end();) {
      auto silent = now - it->second.last_seen;
      if (silent >= settings_.node_timeout && !it->second.reported_dead && can_judge(now)) {
        it->second.reported_dead = true;
        spdlog::warn("cluster: node {} sent no heartbeat for {} ms: it is dead, its actors move",
                     it->first,
                     std::chrono::duration_cast<std::chrono::milliseconds>(silent).count());
      }
      // Long dead: forget it (a node that comes back announces itself again).
      it = silent >= 20 * settings_.node_timeout ? members_.erase(it) : std::next(it);
    }
  }
  if (auto sent = nats_->publish(settings_.prefix + ".heartbeat", record.SerializeAsString());
      !sent) {
    spdlog::debug("cluster: heartbeat not sent: {}", sent.error().message);
  }
}

void NatsCluster::elect() {
  if (leaving_ || !nats_->connected()) {
    leader_ = false;
    return;
  }
  auto bucket = directory();
  if (!bucket) {
    leader_ = false;
    return;
  }
  auto entry = kv_get(*bucket, kSchedulerKey);
  if (!entry) {
    leader_ = false;
    return;
  }
  bool leader = false;
  if (!*entry) {
    auto created = kv_create(*bucket, kSchedulerKey, settings_.node);
    leader = created && created->has_value();
  } else if ((*entry)->value == settings_.node) {
    leader = true;
  } else {
    bool free = (*entry)->value.empty();
    {
      std::lock_guard lock(mutex_);
      free = free || !alive((*entry)->value, Clock::now());
    }
    if (free) {
      auto updated = kv_update(*bucket, kSchedulerKey, settings_.node, (*entry)->revision);
      leader = updated && updated->has_value();
    }
  }
  if (leader != leader_.exchange(leader)) {
    spdlog::info("cluster: node {} {} the scheduled invocations", settings_.node,
                 leader ? "runs" : "no longer runs");
  }
}

std::vector<runtime::NodeInfo> NatsCluster::nodes() {
  std::vector<runtime::NodeInfo> result;
  std::lock_guard lock(mutex_);
  runtime::NodeInfo self;
  self.node = settings_.node;
  self.address = settings_.address;
  for (const auto& [system, actors] : local_) {
    self.registered += actors.size();
  }
  self.active = active_;
  self.leaving = leaving_;
  self.self = true;
  result.push_back(std::move(self));
  auto now = Clock::now();
  for (const auto& [node, member] : members_) {
    if (now - member.last_seen >= settings_.node_timeout) {
      continue;
    }
    runtime::NodeInfo info;
    info.node = node;
    info.address = member.address;
    info.registered = member.actors.size();
    info.active = member.active;
    info.leaving = member.leaving;
    info.last_seen_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - member.last_seen).count();
    result.push_back(std::move(info));
  }
  return result;
}

std::vector<runtime::Subscription> NatsCluster::subscribers(const std::string& topic) {
  std::vector<runtime::Subscription> result;
  std::lock_guard lock(mutex_);
  auto now = Clock::now();
  for (const auto& [node, member] : members_) {
    if (now - member.last_seen >= settings_.node_timeout) {
      continue;
    }
    for (const auto& [subscribed, subscription] : member.subscriptions) {
      if (subscribed == topic
          && std::none_of(result.begin(), result.end(), [&](const runtime::Subscription& r) {
               return r.actor == subscription.actor;
             })) {
        result.push_back(subscription);
      }
    }
  }
  return result;
}

// --- directory --------------------------------------------------------------------------------

Task<Result<std::optional<KvEntry>>> NatsCluster::read(bool from_children, std::string key) {
  // A named lambda: GCC 12 destroys a temporary's captures twice inside co_await.
  auto work = [this, from_children, key]() -> Result<std::optional<KvEntry>> {
    auto bucket = from_children ? children() : directory();
    if (!bucket) {
      return std::move(bucket).error();
    }
    return kv_get(*bucket, key);
  };
  co_return co_await blocking(std::move(work));
}

Task<Result<std::string>> NatsCluster::parent_of(ActorKey key) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = parents_.find(key); it != parents_.end()) {
      co_return it->second;
    }
  }
  auto name = directory_key(key);
  auto entry = co_await read(true, name);
  if (!entry) {
    co_return std::move(entry).error();
  }
  if (!*entry) {
    co_return std::string();
  }
  std::lock_guard lock(mutex_);
  parents_[key] = (*entry)->value;
  co_return (*entry)->value;
}

bool NatsCluster::registered_anywhere(const std::string& system, const std::string& name) {
  std::lock_guard lock(mutex_);
  return registration(registered_key(system, name)).has_value();
}

Task<Result<void>> NatsCluster::spawned(std::vector<pba::ActorId> ids) {
  for (const auto& id : ids) {
    ActorKey key{id.system(), id.name()};
    {
      std::lock_guard lock(mutex_);
      auto [it, fresh] = parents_.try_emplace(key, id.parent());
      if (!fresh && it->second == id.parent()) {
        continue;
      }
      it->second = id.parent();
    }
    auto name = directory_key(key);
    // A named lambda: GCC 12 destroys a temporary's captures twice inside co_await.
    auto work = [this, name, parent = id.parent()]() -> Result<void> {
      auto bucket = children();
      if (!bucket) {
        return std::move(bucket).error();
      }
      return kv_put(*bucket, name, parent);
    };
    auto written = co_await blocking(std::move(work));
    if (!written) {
      std::lock_guard lock(mutex_);
      parents_.erase(key);
      co_return std::move(written).error().with_context("spawn actor '" + id.name() + "'");
    }
  }
  co_return ok();
}

std::optional<bool> NatsCluster::owns(const ActorKey& key) {
  std::lock_guard lock(mutex_);
  auto it = owners_.find(key);
  if (it == owners_.end() || !alive(it->second, Clock::now())) {
    return std::nullopt;
  }
  return it->second == settings_.node;
}

void NatsCluster::forget(const ActorKey& key) {
  std::lock_guard lock(mutex_);
  owners_.erase(key);
}

Task<Result<runtime::Placement>> NatsCluster::locate(ActorKey key) {
  // Just resumed from a pause: forget the owners before trusting them (this node's own actors may
  // have moved while it was stopped).
  check_pause();
  std::string registered = registered_key(key.system, key.name);
  {
    std::lock_guard lock(mutex_);
    auto now = Clock::now();
    if (auto it = owners_.find(key); it != owners_.end() && alive(it->second, now)) {
      auto parent = parents_.find(key);
      co_return runtime::Placement{it->second == settings_.node ? std::string() : it->second,
                                   parent == parents_.end() ? std::string() : parent->second};
    }
    // A pool has no single owner: any node that registered it serves it, this one first.
    if (auto is_pooled = registration(registered); is_pooled && *is_pooled) {
      auto nodes = candidates(registered, now);
      if (std::find(nodes.begin(), nodes.end(), settings_.node) != nodes.end()) {
        co_return runtime::Placement{};
      }
      if (!nodes.empty()) {
        co_return runtime::Placement{pick(nodes), {}};
      }
    }
  }
  auto name = directory_key(key);
  for (int attempt = 0; attempt < 8; ++attempt) {
    // Tasks are made before the statements awaiting them: their arguments stay out of this frame
    // (under the 1,020 bytes Asio recycles; the cached placement above is the hot path).
    auto reading = read(false, name);
    auto entry = co_await std::move(reading);
    if (!entry) {
      co_return std::move(entry).error().with_context("find the node of actor '" + key.name + "'");
    }
    // Not registered by any node's host: maybe a spawned child, placed by its parent.
    std::string parent;
    bool registered_anywhere = false;
    {
      std::lock_guard lock(mutex_);
      registered_anywhere = registration(registered).has_value();
      if (auto it = parents_.find(key); !registered_anywhere && it != parents_.end()) {
        parent = it->second;
      }
    }
    if (!registered_anywhere && parent.empty()) {
      auto finding = parent_of(key);
      auto found = co_await std::move(finding);
      if (!found) {
        co_return std::move(found).error();
      }
      parent = std::move(*found);
    }
    std::vector<std::string> nodes;
    std::string choice;
    {
      std::lock_guard lock(mutex_);
      auto now = Clock::now();
      if (*entry && !(*entry)->value.empty() && alive((*entry)->value, now)) {
        owners_[key] = (*entry)->value;
        co_return runtime::Placement{
            (*entry)->value == settings_.node ? std::string() : (*entry)->value, parent};
      }
      nodes = candidates(parent.empty() ? registered : registered_key(key.system, parent), now);
      if (nodes.empty()) {
        co_return fail(ErrorCode::kNotFound, "Actor " + key.name + " not found on ActorSystem "
                                                 + key.system + " (no node of the cluster "
                                                 "registered it)");
      }
      choice = pick(nodes);
    }
    std::optional<std::uint64_t> last;
    std::string previous;
    if (*entry) {
      last = (*entry)->revision;
      previous = (*entry)->value;
    }
    auto write = [this, name, choice, last]() {
      auto bucket = directory();
      if (!bucket) {
        return Result<std::optional<std::uint64_t>>(std::move(bucket).error());
      }
      return last ? kv_update(*bucket, name, choice, *last) : kv_create(*bucket, name, choice);
    };
    auto writing = blocking(std::move(write));
    auto written = co_await std::move(writing);
    if (!written) {
      co_return std::move(written).error().with_context("place actor '" + key.name + "'");
    }
    if (!*written) {
      continue;  // another node wrote first: read what it wrote
    }
    if (!previous.empty()) {
      spdlog::info("cluster: actor {}/{} taken over from node {} by node {}", key.system, key.name,
                   previous, choice);
    }
    std::lock_guard lock(mutex_);
    owners_[key] = choice;
    co_return runtime::Placement{choice == settings_.node ? std::string() : choice, parent};
  }
  co_return fail(ErrorCode::kUnavailable,
                 "find the node of actor '" + key.name + "': the directory kept changing");
}

Task<Result<std::optional<std::string>>> NatsCluster::owner_of(ActorKey key) {
  auto name = directory_key(key);
  auto entry = co_await read(false, name);
  if (!entry) {
    co_return std::move(entry).error();
  }
  if (!*entry || (*entry)->value.empty()) {
    co_return std::optional<std::string>();
  }
  co_return std::optional<std::string>((*entry)->value);
}

// --- transport --------------------------------------------------------------------------------

Task<Result<std::optional<pb::InvocationResponse>>> NatsCluster::call(
    std::string node, pb::InvocationRequest request, int hops, std::chrono::milliseconds timeout) {
  spawn::cluster::RemoteCall message;
  *message.mutable_request() = std::move(request);
  message.set_hops(hops);
  message.set_deadline_ms(epoch_ms() + timeout.count());
  auto pending = std::make_shared<Pending>(co_await asio::this_coro::executor);
  pending->timer.expires_after(timeout);
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = next_call_++;
    pending_[id] = pending;
  }
  auto sent = nats_->publish(settings_.prefix + ".node." + node, message.SerializeAsString(),
                             reply_prefix_ + std::to_string(id));
  if (sent) {
    co_await pending->timer.async_wait(kUseTask);
  }
  {
    std::lock_guard lock(mutex_);
    pending_.erase(id);
  }
  if (!sent) {
    co_return std::move(sent).error().with_context("send to node '" + node + "'");
  }
  if (pending->no_responders) {
    co_return std::optional<pb::InvocationResponse>();
  }
  if (!pending->reply) {
    co_return fail(ErrorCode::kTimeout, "node '" + node + "' did not answer within "
                                            + std::to_string(timeout.count()) + " ms");
  }
  spawn::cluster::RemoteReply reply;
  if (!reply.ParseFromString(*pending->reply)) {
    co_return fail(ErrorCode::kUnavailable, "node '" + node + "' answered garbage");
  }
  if (reply.not_run()) {
    co_return std::optional<pb::InvocationResponse>();
  }
  if (reply.error_code() != 0) {
    co_return Error{static_cast<ErrorCode>(reply.error_code() - 1),
                    std::move(*reply.mutable_error_message())};
  }
  co_return std::optional<pb::InvocationResponse>(std::move(*reply.mutable_response()));
}

void NatsCluster::on_reply(natsMsg* message) {
  const char* subject = natsMsg_GetSubject(message);
  const char* dot = std::strrchr(subject, '.');
  if (dot == nullptr) {
    return;
  }
  std::uint64_t id = std::strtoull(dot + 1, nullptr, 10);
  std::shared_ptr<Pending> pending;
  {
    std::lock_guard lock(mutex_);
    auto it = pending_.find(id);
    if (it == pending_.end()) {
      return;  // it timed out already
    }
    pending = std::move(it->second);
    pending_.erase(it);
  }
  const char* status = nullptr;
  bool no_responders = natsMsg_GetDataLength(message) == 0
                       && natsMsgHeader_Get(message, "Status", &status) == NATS_OK
                       && status != nullptr && std::strcmp(status, "503") == 0;
  std::string data(natsMsg_GetData(message),
                   static_cast<std::size_t>(natsMsg_GetDataLength(message)));
  auto executor = pending->timer.get_executor();
  asio::post(executor, [pending = std::move(pending), data = std::move(data), no_responders] {
    pending->no_responders = no_responders;
    if (!no_responders) {
      pending->reply = data;
    }
    pending->timer.cancel();
  });
}

void NatsCluster::on_request(natsMsg* message) {
  const char* reply = natsMsg_GetReply(message);
  if (reply == nullptr || !handler_) {
    return;
  }
  spawn::cluster::RemoteCall call;
  if (!call.ParseFromArray(natsMsg_GetData(message), natsMsg_GetDataLength(message))) {
    spawn::cluster::RemoteReply answer;
    answer.set_error_code(static_cast<int>(ErrorCode::kInvalidArgument) + 1);
    answer.set_error_message("node '" + settings_.node + "' could not decode the request");
    (void)nats_->publish(reply, answer.SerializeAsString());
    return;
  }
  const auto& id = call.request().actor().id();
  if (call.deadline_ms() != 0 && epoch_ms() > call.deadline_ms()) {
    // The caller gave up on it while this node was not running: running it now would apply what
    // nobody waits for (it may have been sent again elsewhere).
    spdlog::info(
        "cluster: dropped a late invocation of '{}' on actor '{}': its caller gave up {} ms ago",
        call.request().action_name(), id.name(), epoch_ms() - call.deadline_ms());
    return;
  }
  ActorKey key{id.system().empty() ? call.request().system().name() : id.system(), id.name()};
  asio::co_spawn(executor_for_(key), serve(std::move(*call.mutable_request()), call.hops(), reply),
                 [](std::exception_ptr e) {
                   common::log_exception(e, "cluster: serving a remote invocation");
                 });
}

Task<void> NatsCluster::serve(pb::InvocationRequest request, int hops, std::string reply) {
  spawn::cluster::RemoteReply answer;
  if (leaving_) {
    answer.set_not_run(true);
  } else {
    auto result = co_await handler_(std::move(request), hops);
    if (result) {
      *answer.mutable_response() = std::move(*result);
    } else if (result.error().code == ErrorCode::kShuttingDown) {
      answer.set_not_run(true);
    } else {
      answer.set_error_code(static_cast<int>(result.error().code) + 1);
      answer.set_error_message(std::move(result.error().message));
    }
  }
  if (auto sent = nats_->publish(reply, answer.SerializeAsString()); !sent) {
    spdlog::warn("cluster: answer to a remote invocation not sent: {}", sent.error().message);
  }
}

}  // namespace spawn::cluster
