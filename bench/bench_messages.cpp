#include "bench_messages.hpp"

#include <cstdio>

namespace spawn::bench {

namespace pb = protocol::pb;
namespace pba = protocol::pba;

namespace {

pba::Actor named_actor(const std::string& system, const std::string& name, bool stateful,
                       std::int64_t deactivation_ms) {
  pba::Actor actor;
  actor.mutable_id()->set_name(name);
  actor.mutable_id()->set_system(system);
  auto* settings = actor.mutable_settings();
  settings->set_kind(pba::NAMED);
  settings->set_stateful(stateful);
  settings->mutable_deactivation_strategy()->mutable_timeout()->set_timeout(deactivation_ms);
  // A registered ActorState (even an empty one) lets the host's state be stored (PROTOCOL.md
  // §5.4 item 5).
  actor.mutable_state();
  return actor;
}

pb::RegistrationRequest empty_registration(const std::string& system) {
  pb::RegistrationRequest request;
  auto* info = request.mutable_service_info();
  info->set_service_name("spawn-bench");
  info->set_service_version("0.1.0");
  info->set_service_runtime("c++20");
  info->set_protocol_major_version(1);
  info->set_protocol_minor_version(1);
  request.mutable_actor_system()->set_name(system);
  return request;
}

}  // namespace

std::string actor_name(const std::string& prefix, std::size_t index) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%05zu", index);
  return prefix + digits;
}

pb::RegistrationRequest counters_registration(const std::string& system, const std::string& prefix,
                                              std::size_t count, std::int64_t deactivation_ms) {
  pb::RegistrationRequest request = empty_registration(system);
  auto& actors = *request.mutable_actor_system()->mutable_registry()->mutable_actors();
  for (std::size_t i = 0; i < count; ++i) {
    const std::string name = actor_name(prefix, i);
    pba::Actor actor = named_actor(system, name, true, deactivation_ms);
    for (const auto& action : counter_actions()) {
      actor.add_actions()->set_name(action);
    }
    actors[name] = std::move(actor);
  }
  return request;
}

pb::RegistrationRequest fanout_registration(const std::string& system, const std::string& prefix,
                                            std::size_t subscribers, const std::string& topic,
                                            const std::string& publisher,
                                            std::int64_t deactivation_ms) {
  pb::RegistrationRequest request = empty_registration(system);
  auto& actors = *request.mutable_actor_system()->mutable_registry()->mutable_actors();
  for (std::size_t i = 0; i < subscribers; ++i) {
    const std::string name = actor_name(prefix, i);
    pba::Actor actor = named_actor(system, name, false, deactivation_ms);
    actor.add_actions()->set_name("receive");
    auto* channel = actor.mutable_metadata()->add_channel_group();
    channel->set_topic(topic);
    channel->set_action("receive");
    actors[name] = std::move(actor);
  }
  pba::Actor announcer = named_actor(system, publisher, false, deactivation_ms);
  announcer.add_actions()->set_name("announce");
  actors[publisher] = std::move(announcer);
  return request;
}

pb::InvocationRequest invocation(const std::string& system, const std::string& actor,
                                 const std::string& action,
                                 const std::vector<std::pair<std::string, std::string>>& metadata) {
  pb::InvocationRequest request;
  request.mutable_system()->set_name(system);
  request.mutable_actor()->mutable_id()->set_name(actor);
  request.mutable_actor()->mutable_id()->set_system(system);
  request.set_action_name(action);
  request.mutable_noop();
  for (const auto& [key, value] : metadata) {
    (*request.mutable_metadata())[key] = value;
  }
  return request;
}

pb::ActorInvocation host_invocation(
    const std::string& system, const std::string& actor, const std::string& action,
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  pb::ActorInvocation invocation;
  invocation.mutable_actor()->set_name(actor);
  invocation.mutable_actor()->set_system(system);
  invocation.set_action_name(action);
  invocation.mutable_noop();
  pb::Context& context = *invocation.mutable_current_context();
  *context.mutable_self() = invocation.actor();
  context.mutable_state()->set_type_url("type.googleapis.com/bench.Counter");
  context.mutable_state()->set_value(std::string("\x01\0\0\0\0\0\0\0", 8));
  for (const auto& [key, value] : metadata) {
    (*context.mutable_metadata())[key] = value;
  }
  return invocation;
}

std::string invoke_path(const std::string& system, const std::string& actor) {
  return "/api/v1/system/" + system + "/actors/" + actor + "/invoke";
}

}  // namespace spawn::bench
