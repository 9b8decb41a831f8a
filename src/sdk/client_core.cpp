#include "sdk/client_core.hpp"

#include <future>
#include <memory>
#include <utility>

#include <spdlog/spdlog.h>

#include "sdk/spare_pool.hpp"

namespace spawn {

namespace pb = protocol::pb;
namespace pba = protocol::pba;

const std::string& Client::system() const {
  return core_->system();
}

Result<std::optional<google::protobuf::Any>> Client::call(detail::CallSpec spec) const {
  return core_->call(std::move(spec));
}

void Client::call_then(detail::CallSpec spec, detail::ReplyFn&& done) const {
  core_->call_then(std::move(spec), std::move(done));
}

Result<void> Client::spawn(std::string_view name, std::string_view parent,
                           const SpawnOptions& options) const {
  return core_->spawn(name, parent, options);
}

}  // namespace spawn

namespace spawn::sdk {

namespace {

thread_local int reply_depth = 0;

/// This thread's spare requests (take_request()). The calls a thread builds are answered on the
/// shards' threads, which recycle their requests: with as many calls going one way as the other,
/// each thread's pool gets back about what it gives.
thread_local SparePool<protocol::pb::InvocationRequest, 32> request_pool;

}  // namespace

RequestPtr take_request() {
  protocol::pb::InvocationRequest* request = request_pool.take();
  return request != nullptr ? RequestPtr(request)
                            : std::make_unique<protocol::pb::InvocationRequest>();
}

void recycle_request(RequestPtr request) noexcept {
  if (request != nullptr && request->value().value().capacity() > kMaxSpareBytes) {
    return;  // deleted
  }
  request_pool.give(request.release());
}

ReplyHandler::~ReplyHandler() {
  if (fn_) {
    detail::Reply stopped{
        fail(ErrorCode::kShuttingDown, "the node stopped before the call was answered")};
    run(stopped);
  }
}

void ReplyHandler::operator()(protocol::pb::InvocationResponse& response, std::string_view actor,
                              std::string_view action) {
  detail::Reply reply{response.has_value() ? response.mutable_value() : nullptr, actor, action};
  run(reply);
}

void ReplyHandler::operator()(Result<protocol::pb::InvocationResponse> outcome,
                              std::string_view actor, std::string_view action) {
  if (!outcome) {
    detail::Reply failed{std::move(outcome).error()};
    run(failed);
    return;
  }
  (*this)(*outcome, actor, action);
}

void ReplyHandler::run(detail::Reply& reply) {
  ++reply_depth;
  try {
    fn_(reply);
  } catch (const std::exception& e) {
    spdlog::error("an invoke_then callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("an invoke_then callback threw a non-standard exception");
  }
  --reply_depth;
  fn_.reset();  // answered: exactly once
}

bool ReplyHandler::in_reply() {
  return reply_depth > 0;
}

InFlightCalls::Token::~Token() {
  if (calls_ != nullptr && calls_->count_.fetch_sub(1) == 1) {
    std::lock_guard lock(calls_->mutex_);
    calls_->idle_.notify_all();
  }
}

void InFlightCalls::wait_idle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return count_.load() == 0; });
}

bool InFlightCalls::wait_idle_for(std::chrono::milliseconds max_wait) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, max_wait, [this] { return count_.load() == 0; });
}

}  // namespace spawn::sdk

namespace spawn::detail {

namespace pb = protocol::pb;
namespace pba = protocol::pba;

namespace {

std::string describe(const CallSpec& spec) {
  return "invoke '" + std::string(spec.action) + "' on actor '" + std::string(spec.actor) + "'";
}

}  // namespace

Result<void> ClientCore::check(const CallSpec& spec, pb::InvocationRequest& request) const {
  // Checks that need the actor's definition can only be made for this node's own system.
  if (request.system().name() != dispatcher_->system()) {
    return ok();
  }
  const ActorSpec* actor = dispatcher_->actor(std::string(spec.actor));
  if (actor == nullptr && spec.options != nullptr && !spec.options->spawn_from.empty()) {
    actor = dispatcher_->actor(spec.options->spawn_from);
  }
  if (actor == nullptr) {
    return ok();  // a spawned child, or an unknown actor the runtime reports
  }
  if (actor->kind == ActorKind::kPooled) {
    request.set_pooled(true);
  }
  const ActionSpec* action = actor->find(request.action_name());
  if (action != nullptr && !action->input_type_url.empty() && !spec.payload_type.empty()
      && spec.payload_type != action->input_type_url) {
    return fail(ErrorCode::kInvalidArgument, describe(spec) + ": the action takes '"
                                                 + action->input_type_url + "', not '"
                                                 + std::string(spec.payload_type) + "'");
  }
  return ok();
}

Result<void> ClientCore::make_request(CallSpec& spec, pb::InvocationRequest& request) const {
  if (sdk::Dispatcher::in_handler()) {
    return fail(ErrorCode::kInvalidArgument,
                describe(spec)
                    + ": a Client was called from inside an action handler, where a synchronous "
                      "call can wait on itself; return an effect, pipe or forward instead");
  }
  // Every field is set (assigned in place, so that reused strings keep their buffers). A string
  // the reused request holds already (mostly the system, the action and the type URL of the
  // thread's previous call) is only compared: that costs less than assigning it again.
  const std::string_view system = spec.system.empty() ? dispatcher_->system() : spec.system;
  if (request.system().name() != system) {
    request.mutable_system()->mutable_name()->assign(system);
  }
  auto* id = request.mutable_actor()->mutable_id();
  id->mutable_name()->assign(spec.actor);
  if (id->system() != system) {
    id->mutable_system()->assign(system);
  }
  id->clear_parent();
  if (request.action_name() != spec.action) {
    request.mutable_action_name()->assign(spec.action);
  }
  if (spec.message != nullptr) {
    auto* value = request.mutable_value();
    if (value->type_url() != spec.payload_type) {
      value->mutable_type_url()->assign(spec.payload_type);
    }
    spec.message->SerializeToString(value->mutable_value());
  } else if (spec.payload) {
    *request.mutable_value() = std::move(*spec.payload);
  } else {
    request.mutable_noop();
  }
  request.set_async(spec.mode == CallSpec::Mode::kAsync);
  request.set_scheduled_to(spec.scheduled_to_ms);
  request.clear_caller();
  request.mutable_metadata()->clear();
  if (spec.options != nullptr) {
    request.mutable_metadata()->insert(spec.options->metadata.begin(),
                                       spec.options->metadata.end());
    request.set_register_ref(spec.options->spawn_from);
    request.set_pooled(spec.options->pooled);
  } else {
    request.clear_register_ref();
    request.set_pooled(false);
  }
  return check(spec, request);
}

ClientCore::BlockingReply ClientCore::call(CallSpec spec) const {
  if (sdk::ReplyHandler::in_reply()) {
    return fail(ErrorCode::kInvalidArgument,
                describe(spec)
                    + ": a blocking Client call from inside an invoke_then callback would wait on "
                      "the thread that must answer it; chain another invoke_then instead");
  }
  sdk::RequestPtr request = sdk::take_request();
  if (auto made = make_request(spec, *request); !made) {
    sdk::recycle_request(std::move(request));
    return std::move(made).error();
  }
  std::promise<BlockingReply> promise;
  auto reply = promise.get_future();
  transport_->invoke(
      request, sdk::ReplyHandler(ReplyFn([&promise](detail::Reply& answer) {
        if (!answer.payload) {
          promise.set_value(std::move(answer.payload).error());
        } else if (*answer.payload == nullptr) {
          promise.set_value(std::optional<google::protobuf::Any>());
        } else {
          promise.set_value(std::optional<google::protobuf::Any>(std::move(**answer.payload)));
        }
      })));
  sdk::recycle_request(std::move(request));  // null when the transport took it
  return reply.get();
}

void ClientCore::call_then(CallSpec spec, ReplyFn&& done) const {
  sdk::RequestPtr request = sdk::take_request();
  if (auto made = make_request(spec, *request); !made) {
    sdk::recycle_request(std::move(request));
    Reply failed{std::move(made).error(), spec.actor, spec.action};
    done(failed);
    return;
  }
  transport_->invoke(request, sdk::ReplyHandler(std::move(done)));
  sdk::recycle_request(std::move(request));  // null when the transport took it
}

Result<void> ClientCore::spawn(std::string_view name, std::string_view parent,
                               const SpawnOptions& options) const {
  if (sdk::ReplyHandler::in_reply()) {
    return fail(ErrorCode::kInvalidArgument,
                "spawn actor '" + std::string(name)
                    + "': a blocking Client call from inside an invoke_then callback would wait on "
                      "the thread that must answer it");
  }
  if (sdk::Dispatcher::in_handler()) {
    return fail(ErrorCode::kInvalidArgument,
                "spawn actor '" + std::string(name)
                    + "': a Client was called from inside an action handler; return an effect "
                      "with spawn_from() instead");
  }
  const std::string system = options.system.empty() ? dispatcher_->system() : options.system;
  pba::ActorId id;
  id.set_name(std::string(name));
  id.set_system(system);
  id.set_parent(std::string(parent));
  std::vector<pba::ActorId> ids;
  ids.push_back(std::move(id));
  return transport_->spawn(system, std::move(ids), options.revision);
}

}  // namespace spawn::detail
