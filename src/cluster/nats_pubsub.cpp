#include "cluster/nats_pubsub.hpp"

#include <spdlog/spdlog.h>

namespace spawn::cluster {

Result<std::unique_ptr<NatsPubSub>> NatsPubSub::create(NatsSettings settings, std::string prefix) {
  settings.name = "spawn-proxy pubsub";
  auto connection = NatsConnection::connect(settings);
  if (!connection) {
    return std::move(connection).error().with_context("SPAWN_PUBSUB_ADAPTER=nats");
  }
  return std::unique_ptr<NatsPubSub>(new NatsPubSub(std::move(*connection), std::move(prefix)));
}

void NatsPubSub::on_message(Handler handler) {
  handler_ = std::move(handler);
  auto subscribed = nats_->subscribe(prefix_ + ".broadcast.>", [this](natsMsg* message) {
    runtime::BroadcastMessage broadcast;
    if (!broadcast.broadcast.ParseFromArray(natsMsg_GetData(message),
                                            natsMsg_GetDataLength(message))) {
      spdlog::warn("broadcast: a message on '{}' is not a Broadcast; ignored",
                   natsMsg_GetSubject(message));
      return;
    }
    const char* value = nullptr;
    if (natsMsgHeader_Get(message, "Spawn-Caller-System", &value) == NATS_OK) {
      broadcast.caller.set_system(value);
    }
    if (natsMsgHeader_Get(message, "Spawn-Caller-Name", &value) == NATS_OK) {
      broadcast.caller.set_name(value);
    }
    handler_(broadcast);
  });
  if (!subscribed) {
    spdlog::error("broadcast: {}", subscribed.error().message);
  }
}

void NatsPubSub::publish(runtime::BroadcastMessage message) {
  auto subject = prefix_ + ".broadcast." + escape_token(message.broadcast.channel_group());
  auto body = message.broadcast.SerializeAsString();
  natsMsg* raw = nullptr;
  natsStatus s =
      natsMsg_Create(&raw, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
  if (s == NATS_OK && !message.caller.system().empty()) {
    s = natsMsgHeader_Set(raw, "Spawn-Caller-System", message.caller.system().c_str());
  }
  if (s == NATS_OK && !message.caller.name().empty()) {
    s = natsMsgHeader_Set(raw, "Spawn-Caller-Name", message.caller.name().c_str());
  }
  if (s == NATS_OK) {
    s = natsConnection_PublishMsg(nats_->get(), raw);
  }
  natsMsg_Destroy(raw);
  if (s != NATS_OK) {
    spdlog::warn("broadcast on '{}' not published: {}", subject, natsStatus_GetText(s));
  }
}

}  // namespace spawn::cluster
