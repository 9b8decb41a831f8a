#include "runtime/actor_definition.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <string_view>

namespace spawn::runtime {

namespace {

constexpr std::array<std::string_view, 5> kGetActions = {"get", "Get", "get_state", "getState",
                                                         "GetState"};
constexpr std::array<std::string_view, 4> kInitActions = {"init", "Init", "setup", "Setup"};

}  // namespace

bool is_default_get_action(const std::string& action) {
  return std::find(kGetActions.begin(), kGetActions.end(), action) != kGetActions.end();
}

ActorDefinition::ActorDefinition(protocol::pba::Actor actor) : actor_(std::move(actor)) {
  for (const auto& action : actor_.actions()) {
    actions_.insert(action.name());
    registers_get_ = registers_get_ || is_default_get_action(action.name());
    if (!init_action_
        && std::find(kInitActions.begin(), kInitActions.end(), action.name())
               != kInitActions.end()) {
      init_action_ = action.name();
    }
  }
  for (const auto& timer : actor_.timer_actions()) {
    actions_.insert(timer.action().name());
  }
  if (registers_get_) {
    // Quirk kept from the original (PROTOCOL.md §5.4): registering any of the five names forwards
    // all five to the host.
    for (auto name : kGetActions) {
      actions_.insert(std::string(name));
    }
  }
  const auto& settings = actor_.settings();
  if (settings.deactivation_strategy().has_timeout()
      && settings.deactivation_strategy().timeout().timeout() > 0) {
    deactivation_timeout_ =
        std::chrono::milliseconds(settings.deactivation_strategy().timeout().timeout());
  }
  if (settings.snapshot_strategy().has_timeout()) {
    auto ms = settings.snapshot_strategy().timeout().timeout();
    snapshot_interval_ = ms > 0 ? std::chrono::milliseconds(ms) : kDefaultSnapshot;
  }
  if (is_pooled()) {
    int wanted = std::max(settings.min_pool_size(), settings.max_pool_size());
    pool_size_ = wanted > 1 ? wanted : kDefaultPoolSize;
  }
}

bool ActorDefinition::answers_get_itself(const std::string& action) const {
  return !registers_get_ && is_default_get_action(action);
}

std::chrono::milliseconds request_timeout(const protocol::pb::InvocationRequest& request,
                                          std::chrono::milliseconds fallback) {
  auto it = request.metadata().find("request-timeout");
  if (it == request.metadata().end()) {
    return fallback;
  }
  std::int64_t ms = 0;
  const auto& text = it->second;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc() || ptr != text.data() + text.size() || ms < 0) {
    return fallback;
  }
  return std::chrono::milliseconds(ms);
}

}  // namespace spawn::runtime
