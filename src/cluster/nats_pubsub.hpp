#pragma once

#include <memory>
#include <string>

#include "spawn/result.hpp"

#include "cluster/nats.hpp"
#include "runtime/pubsub.hpp"

namespace spawn::cluster {

/// Broadcasts over NATS (SPAWN_PUBSUB_ADAPTER=nats): a message on topic T is published on
/// "<prefix>.broadcast.<T>" (T escaped as escape_token() does) with the Broadcast message as its
/// body and the sending actor in the headers Spawn-Caller-System and Spawn-Caller-Name, so any
/// NATS client can subscribe. Every node receives every message and hands it to its external
/// subscribers.
class NatsPubSub final : public runtime::PubSub {
public:
  static Result<std::unique_ptr<NatsPubSub>> create(NatsSettings settings, std::string prefix);

  void on_message(Handler handler) override;
  void publish(runtime::BroadcastMessage message) override;

private:
  NatsPubSub(std::unique_ptr<NatsConnection> nats, std::string prefix)
      : nats_(std::move(nats)), prefix_(std::move(prefix)) {}

  std::unique_ptr<NatsConnection> nats_;
  std::string prefix_;
  Handler handler_;
};

}  // namespace spawn::cluster
