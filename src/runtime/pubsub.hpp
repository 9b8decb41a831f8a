#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "common/asio.hpp"
#include "protocol/messages.hpp"

namespace spawn::runtime {

/// A broadcast as it travels (PROTOCOL.md §5.8 item 2): topic and payload in `broadcast`, and the
/// actor that sent it.
struct BroadcastMessage {
  protocol::pb::Broadcast broadcast;
  protocol::pba::ActorId caller;
};

/// The fabric broadcasts travel on to the subscribers outside the actor system (TopicHub): in one
/// process a direct call (LocalPubSub); cluster::NatsPubSub publishes on NATS, so that every node
/// (and any NATS client) receives every message. Subscribed actors are invoked by the sending
/// node, not through this.
class PubSub {
public:
  using Handler = std::function<void(const BroadcastMessage&)>;

  virtual ~PubSub() = default;

  /// Sets the receiver of every message published anywhere. Called once, before publish().
  virtual void on_message(Handler handler) = 0;

  /// Publishes `message` to every node, this one included. Fire-and-forget; thread-safe.
  virtual void publish(BroadcastMessage message) = 0;
};

/// The single-process PubSub: publish() hands the message straight to the handler.
class LocalPubSub final : public PubSub {
public:
  void on_message(Handler handler) override { handler_ = std::move(handler); }

  void publish(BroadcastMessage message) override {
    if (handler_) {
      handler_(message);
    }
  }

private:
  Handler handler_;
};

/// Subscribers outside the actor system (an HTTP event stream, for instance) by topic.
/// Thread-safe: subscribers come and go on any shard; deliver() runs on any thread and posts each
/// callback onto its subscriber's executor.
class TopicHub {
public:
  using Callback = std::function<void(const BroadcastMessage&)>;

  /// Subscribes to `topic`; `callback` runs on `executor`. Returns a token for unsubscribe().
  std::uint64_t subscribe(const std::string& topic, asio::any_io_executor executor,
                          Callback callback);

  /// Removes a subscription; unknown tokens are ignored. Callbacks already posted still run.
  void unsubscribe(std::uint64_t token);

  /// Posts `message` to every subscriber of its topic; returns how many there were.
  std::size_t deliver(const BroadcastMessage& message);

  /// Returns the number of subscribers of `topic`.
  std::size_t count(const std::string& topic) const;

private:
  struct Subscriber {
    std::string topic;
    asio::any_io_executor executor;
    Callback callback;
  };

  mutable std::shared_mutex mutex_;  // guards subscribers_ and next_token_
  std::unordered_map<std::uint64_t, Subscriber> subscribers_;
  std::uint64_t next_token_ = 1;
};

}  // namespace spawn::runtime
