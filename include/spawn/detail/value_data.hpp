#pragma once

// Not API: the type-erased form of `spawn::Value` and `spawn::Effect`, which the SDK turns into an
// `ActorInvocationResponse` and its `Workflow`.

#include <cstdint>
#include <memory>
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

/// An optional Any on the heap: moving one moves a pointer, and the SDK hands the Any itself to
/// the response it builds (no Any is constructed, swapped and destroyed on the way). Copies copy.
class AnyBox {
public:
  AnyBox() = default;

  AnyBox(const AnyBox& other)
      : any_(other.any_ ? std::make_unique<google::protobuf::Any>(*other.any_) : nullptr) {}

  AnyBox& operator=(const AnyBox& other) {
    if (this != &other) {
      any_ = other.any_ ? std::make_unique<google::protobuf::Any>(*other.any_) : nullptr;
    }
    return *this;
  }

  AnyBox(AnyBox&&) noexcept = default;
  AnyBox& operator=(AnyBox&&) noexcept = default;
  ~AnyBox() = default;

  explicit operator bool() const { return any_ != nullptr; }

  google::protobuf::Any& operator*() const { return *any_; }

  google::protobuf::Any* operator->() const { return any_.get(); }

  /// Returns the held Any, cleared, or a new one.
  google::protobuf::Any& emplace() {
    if (any_) {
      any_->Clear();
    } else {
      any_ = std::make_unique<google::protobuf::Any>();
    }
    return *any_;
  }

  /// Gives up the Any (null when none), for `set_allocated_*`.
  google::protobuf::Any* release() { return any_.release(); }

private:
  std::unique_ptr<google::protobuf::Any> any_;
};

enum class RouteKind : std::uint8_t { kNone, kPipe, kForward };

struct ValueData {
  AnyBox state;
  AnyBox reply;
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
