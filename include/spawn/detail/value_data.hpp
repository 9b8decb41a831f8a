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

/// Returns an empty Any from this thread's pool of spare ones (or a new one when it is empty): a
/// pooled Any keeps its strings' buffers, so packing a value of a type packed before on this thread
/// allocates nothing.
google::protobuf::Any* take_any();

/// Gives `any` (may be null) to this thread's pool, which deletes it when it is full.
void recycle_any(google::protobuf::Any* any) noexcept;

/// An optional Any on the heap: moving one moves a pointer, and the SDK hands the Any itself to
/// the response it builds (no Any is constructed, swapped and destroyed on the way). Its Anys come
/// from and go back to the thread's pool (take_any()). Copies copy.
class AnyBox {
public:
  AnyBox() = default;

  AnyBox(const AnyBox& other) : any_(other.any_ ? copy(*other.any_) : nullptr) {}

  AnyBox& operator=(const AnyBox& other) {
    if (this != &other) {
      any_.reset(other.any_ ? copy(*other.any_) : nullptr);
    }
    return *this;
  }

  AnyBox(AnyBox&&) noexcept = default;
  AnyBox& operator=(AnyBox&&) noexcept = default;
  ~AnyBox() = default;

  explicit operator bool() const { return any_ != nullptr; }

  google::protobuf::Any& operator*() const { return *any_; }

  google::protobuf::Any* operator->() const { return any_.get(); }

  /// Returns the held Any, cleared, or an empty one from the pool.
  google::protobuf::Any& emplace() {
    if (any_) {
      any_->Clear();
    } else {
      any_.reset(take_any());
    }
    return *any_;
  }

  /// Gives up the Any (null when none), for `set_allocated_*`.
  google::protobuf::Any* release() { return any_.release(); }

private:
  struct Recycle {
    void operator()(google::protobuf::Any* any) const noexcept { recycle_any(any); }
  };

  static google::protobuf::Any* copy(const google::protobuf::Any& from) {
    google::protobuf::Any* any = take_any();
    any->CopyFrom(from);
    return any;
  }

  std::unique_ptr<google::protobuf::Any, Recycle> any_;
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
