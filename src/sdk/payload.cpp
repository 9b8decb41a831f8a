// The non-template pieces of the public headers: JSON payloads, error texts, InvocationView.

#include "spawn/payload.hpp"

#include <string>

#include "spawn/client.hpp"
#include "spawn/detail/handler.hpp"
#include "spawn/detail/invocation_view.hpp"

#include "protocol/messages.hpp"
#include "sdk/spare_pool.hpp"

namespace spawn::detail {

namespace pb = protocol::pb;

const std::string& json_type_url() {
  static const std::string kUrl =
      std::string(kTypeUrlPrefix) + pb::JSONType::descriptor()->full_name();
  return kUrl;
}

google::protobuf::Any pack_json(std::string_view text) {
  pb::JSONType json;
  json.set_content(std::string(text));
  google::protobuf::Any any;
  any.set_type_url(json_type_url());
  json.SerializeToString(any.mutable_value());
  return any;
}

Result<Json> unpack_json(const google::protobuf::Any& any) {
  static const std::string& name = pb::JSONType::descriptor()->full_name();  // looked up once
  if (!type_url_names(any.type_url(), name)) {
    return payload_mismatch(name, any);
  }
  pb::JSONType json;
  if (!json.ParseFromString(any.value())) {
    return payload_unparsable(name, any.value().size());
  }
  return Json{std::move(*json.mutable_content())};
}

namespace {

/// This thread's spare Anys (take_any()). A few are enough: a handler's state and reply are
/// given back when its response was applied, before the next handler runs on the thread.
thread_local sdk::SparePool<google::protobuf::Any, 16> any_pool;

}  // namespace

google::protobuf::Any* take_any() {
  google::protobuf::Any* any = any_pool.take();
  if (any == nullptr) {
    return new google::protobuf::Any();
  }
  any->Clear();
  return any;
}

void recycle_any(google::protobuf::Any* any) noexcept {
  if (any != nullptr && any->value().capacity() > sdk::kMaxSpareBytes) {
    delete any;
    return;
  }
  any_pool.give(any);
}

Error payload_mismatch(std::string_view expected, const google::protobuf::Any& got) {
  return fail(ErrorCode::kInvalidArgument,
              "expected a payload of type '" + std::string(expected) + "', got '"
                  + (got.type_url().empty() ? std::string("(no type URL)") : got.type_url()) + "'");
}

Error payload_unparsable(std::string_view type_name, std::size_t bytes) {
  return fail(ErrorCode::kInvalidArgument, "the payload's " + std::to_string(bytes)
                                               + " bytes do not parse as '" + std::string(type_name)
                                               + "'");
}

Error state_error(const InvocationView& view, const Error& error) {
  return fail(error.code,
              "the state of actor '" + view.actor_name() + "' cannot be read: " + error.message);
}

Error input_error(const InvocationView& view, const Error& error) {
  return fail(error.code, "action '" + view.action() + "' got the wrong input: " + error.message);
}

Error reply_missing(std::string_view actor, std::string_view action, std::string_view expected) {
  return fail(ErrorCode::kInvalidArgument,
              "invoke '" + std::string(action) + "' on actor '" + std::string(actor)
                  + "': expected a reply of type '" + std::string(expected) + "', got no payload");
}

namespace {

const pb::Context& context_of(const pb::ActorInvocation& invocation) {
  return invocation.current_context();
}

ActorId to_id(const protocol::pba::ActorId& id) {
  return ActorId{id.name(), id.system(), id.parent()};
}

}  // namespace

const std::string& InvocationView::action() const {
  return invocation_.action_name();
}

const std::string& InvocationView::actor_name() const {
  return invocation_.actor().name();
}

const std::string& InvocationView::system() const {
  return invocation_.actor().system();
}

const google::protobuf::Any* InvocationView::state() const {
  const pb::Context& context = context_of(invocation_);
  return context.has_state() ? &context.state() : nullptr;
}

const google::protobuf::Any* InvocationView::payload() const {
  return invocation_.has_value() ? &invocation_.value() : nullptr;
}

const WireMap& InvocationView::tags() const {
  return context_of(invocation_).tags();
}

const WireMap& InvocationView::metadata() const {
  return context_of(invocation_).metadata();
}

ActorId InvocationView::self() const {
  return to_id(invocation_.actor());
}

std::optional<ActorId> InvocationView::caller() const {
  if (!invocation_.has_caller()) {
    return std::nullopt;
  }
  return to_id(invocation_.caller());
}

}  // namespace spawn::detail
