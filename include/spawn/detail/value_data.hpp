#pragma once

// Not API: the type-erased form of `spawn::Value` and `spawn::Effect`, which the SDK turns into an
// `ActorInvocationResponse` and its `Workflow`.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/any.pb.h>

#include "spawn/actor_id.hpp"

namespace spawn::detail {

struct EffectData {
  std::string system;  // empty: the invoking actor's system
  std::string actor;
  std::string action;
  std::optional<google::protobuf::Any> payload;
  std::int64_t delay_ms = 0;         // relative to when the handler returns; 0: none
  std::int64_t scheduled_to_ms = 0;  // absolute epoch ms; 0: none
  std::string spawn_from;            // register_ref
  StringMap metadata;
  bool pooled = false;
};

enum class RouteKind : std::uint8_t { kNone, kPipe, kForward };

struct ValueData {
  std::optional<google::protobuf::Any> state;
  std::optional<google::protobuf::Any> reply;
  /// Replaces every tag when set; `tag_changes` then apply on top (nullopt value: erase).
  std::optional<StringMap> tags;
  std::vector<std::pair<std::string, std::optional<std::string>>> tag_changes;
  bool checkpoint = false;
  std::vector<EffectData> effects;
  bool has_broadcast = false;
  std::string broadcast_topic;
  std::optional<google::protobuf::Any> broadcast_payload;
  RouteKind route = RouteKind::kNone;
  std::string route_actor;
  std::string route_action;
};

}  // namespace spawn::detail
