#include "integration/proxy_fixture.hpp"

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

#include <sys/wait.h>

namespace spawn::integration {

namespace {

constexpr const char* kEchoActor = "still-serves";

std::int64_t counter_of(const pb::Context& context) {
  const std::string text = state_of(context);
  if (text == "<unset>") {
    return 0;
  }
  try {
    return std::stoll(text);
  } catch (...) {
    return -1000000;  // makes a wrong state visible in the next assertion
  }
}

}  // namespace

std::string base64(const std::string& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  while (i + 2 < bytes.size()) {
    const auto n = (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16)
                   | (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8)
                   | static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
    i += 3;
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const auto n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const auto n = (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16)
                   | (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string make_key() {
  std::random_device device;
  std::string bytes(32, '\0');
  for (auto& byte : bytes) {
    byte = static_cast<char>(device() & 0xff);
  }
  return base64(bytes);
}

pba::Actor make_actor(const ActorSpec& spec, const std::string& system) {
  pba::Actor actor;
  actor.mutable_id()->set_name(spec.name);
  actor.mutable_id()->set_system(system);
  if (spec.kind == pba::UNNAMED) {
    actor.mutable_id()->set_parent(spec.name);  // as the Node SDK does for UNNAMED definitions
  }
  auto* state = actor.mutable_state();
  for (const auto& [key, value] : spec.tags) {
    (*state->mutable_tags())[key] = value;
  }
  if (spec.initial_state) {
    *state->mutable_state() = testing::pack_json(*spec.initial_state);
  }
  auto* settings = actor.mutable_settings();
  settings->set_kind(spec.kind);
  settings->set_stateful(spec.stateful);
  if (spec.deactivation_ms > 0) {
    settings->mutable_deactivation_strategy()->mutable_timeout()->set_timeout(spec.deactivation_ms);
  }
  settings->set_min_pool_size(spec.min_pool_size);
  settings->set_max_pool_size(spec.max_pool_size);
  for (const auto& name : spec.actions) {
    actor.add_actions()->set_name(name);
  }
  auto* metadata = actor.mutable_metadata();
  for (const auto& channel : spec.channels) {
    auto* added = metadata->add_channel_group();
    added->set_topic(channel.topic);
    added->set_action(channel.action);
  }
  for (const auto& timer : spec.timers) {
    auto* added = actor.add_timer_actions();
    added->set_seconds(timer.period_ms);
    added->mutable_action()->set_name(timer.action);
  }
  return actor;
}

pb::RegistrationRequest make_registration(const std::vector<ActorSpec>& actors,
                                          const std::string& system) {
  pb::RegistrationRequest request;
  auto* info = request.mutable_service_info();
  info->set_service_name("spawn-integration-tests");
  info->set_service_version("0.1.0");
  info->set_service_runtime("cpp");
  info->set_protocol_major_version(1);
  info->set_protocol_minor_version(1);
  auto* actor_system = request.mutable_actor_system();
  actor_system->set_name(system);
  for (const auto& spec : actors) {
    (*actor_system->mutable_registry()->mutable_actors())[spec.name] = make_actor(spec, system);
  }
  return request;
}

pb::InvocationRequest make_request(const std::string& actor, const std::string& action,
                                   std::optional<google::protobuf::Any> payload,
                                   const std::string& system) {
  pb::InvocationRequest request;
  request.mutable_system()->set_name(system);
  request.mutable_actor()->mutable_id()->set_name(actor);
  request.mutable_actor()->mutable_id()->set_system(system);
  request.set_action_name(action);
  if (payload) {
    *request.mutable_value() = std::move(*payload);
  } else {
    request.mutable_noop();
  }
  return request;
}

std::string json_of(const google::protobuf::Any& any) {
  if (any.type_url().empty() && any.value().empty()) {
    return "<unset>";
  }
  pb::JSONType json;
  if (any.type_url() != "type.googleapis.com/eigr.functions.protocol.JSONType"
      || !json.ParseFromString(any.value())) {
    return "<not JSONType: " + any.type_url() + ">";
  }
  return json.content();
}

std::string state_of(const pb::Context& context) {
  return context.has_state() ? json_of(context.state()) : "<unset>";
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string encode(const google::protobuf::Message& message) {
  return message.SerializeAsString();
}

testing::TestHost::Handler increment_handler(bool checkpoint) {
  return [checkpoint](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    const std::int64_t next = counter_of(invocation.current_context()) + 1;
    *response.mutable_updated_context()->mutable_state() = testing::pack_json(std::to_string(next));
    *response.mutable_value() = testing::pack_json(std::to_string(next));
    response.set_checkpoint(checkpoint);
    return response;
  };
}

testing::TestHost::Handler set_state_handler(bool checkpoint) {
  return [checkpoint](const pb::ActorInvocation& invocation) {
    auto response = testing::echo_response(invocation);
    *response.mutable_updated_context()->mutable_state() = invocation.value();
    *response.mutable_value() = invocation.value();
    response.set_checkpoint(checkpoint);
    return response;
  };
}

Env ProxyTest::proxy_env(const Env& overrides) const {
  Env env{
      {"PROXY_ACTOR_SYSTEM_NAME", kSystem},
      {"USER_FUNCTION_HOST", "127.0.0.1"},
      {"USER_FUNCTION_PORT", std::to_string(host_.port())},
      {"PROXY_DATABASE_TYPE", "sqlite"},
      {"PROXY_DATABASE_NAME", db_path().string()},
      {"SPAWN_STATESTORE_KEY", key_},
      {"SPAWN_PROXY_SHUTDOWN_DRAIN_MS", "0"},
      {"SPAWN_PROXY_LOGGER_LEVEL", "debug"},
  };
  for (const auto& [name, value] : overrides) {
    if (value.empty()) {
      env.erase(name);
    } else {
      env[name] = value;
    }
  }
  return env;
}

testing::ProxyProcess& ProxyTest::start_proxy(const Env& overrides) {
  if (proxy_) {
    stop_proxy(9);
  }
  proxy_ = std::make_unique<testing::ProxyProcess>(proxy_env(overrides));
  client_ = std::make_unique<testing::ProxyClient>(proxy_->port());
  return *proxy_;
}

std::unique_ptr<testing::ProxyProcess> ProxyTest::launch_proxy(const Env& overrides,
                                                               bool wait_ready) const {
  return std::make_unique<testing::ProxyProcess>(proxy_env(overrides), wait_ready);
}

int ProxyTest::stop_proxy(int signal) {
  if (!proxy_) {
    return -1;
  }
  const int code = proxy_->stop(signal);
  previous_logs_ += "--- log of a stopped proxy (signal " + std::to_string(signal) + ", exit "
                    + std::to_string(code) + ") ---\n" + proxy_->log() + "\n";
  client_.reset();
  proxy_.reset();
  return code;
}

::testing::AssertionResult ProxyTest::register_on(testing::ProxyClient& client,
                                                  const std::vector<ActorSpec>& actors,
                                                  const std::string& log) {
  auto response = client.register_system(make_registration(actors));
  if (!response) {
    return ::testing::AssertionFailure()
           << "registration failed in transport: " << response.error().message << "\n"
           << log;
  }
  if (response->status().status() != pb::OK || response->status().message() != "Accepted") {
    return ::testing::AssertionFailure()
           << "registration answered " << pb::Status_Name(response->status().status()) << " '"
           << response->status().message() << "' (HTTP " << client.last_status() << ")\n"
           << log;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ProxyTest::register_actors(const std::vector<ActorSpec>& actors) {
  if (!client_) {
    return ::testing::AssertionFailure() << "no proxy started";
  }
  return register_on(*client_, actors, log());
}

pb::InvocationResponse ProxyTest::invoke_on(testing::ProxyClient& client,
                                            const pb::InvocationRequest& request) {
  auto response = client.invoke(request);
  if (!response) {
    ADD_FAILURE() << "invoke '" << request.action_name() << "' on '" << request.actor().id().name()
                  << "' failed in transport: " << response.error().message;
    pb::InvocationResponse empty;
    empty.mutable_status()->set_message("transport failure: " + response.error().message);
    return empty;
  }
  return std::move(*response);
}

pb::InvocationResponse ProxyTest::invoke(const pb::InvocationRequest& request) {
  if (!client_) {
    ADD_FAILURE() << "no proxy started";
    return {};
  }
  return invoke_on(*client_, request);
}

pb::InvocationResponse ProxyTest::invoke(const std::string& actor, const std::string& action,
                                         std::optional<google::protobuf::Any> payload) {
  return invoke(make_request(actor, action, std::move(payload)));
}

::testing::AssertionResult ProxyTest::is_ok(const pb::InvocationResponse& response) const {
  if (response.status().status() == pb::OK) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "expected OK, got " << pb::Status_Name(response.status().status()) << " '"
         << response.status().message() << "' (HTTP " << last_status() << ")\n"
         << log();
}

::testing::AssertionResult ProxyTest::is_error(const pb::InvocationResponse& response) const {
  if (response.status().status() == pb::ERROR && !response.status().message().empty()) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "expected ERROR with a message, got " << pb::Status_Name(response.status().status())
         << " '" << response.status().message() << "' (HTTP " << last_status() << ")\n"
         << log();
}

::testing::AssertionResult ProxyTest::still_serves() {
  const std::string name = std::string(kEchoActor) + "-" + std::to_string(++serves_counter_);
  auto registered = register_actors({{.name = name, .actions = {"ping"}, .stateful = false}});
  if (!registered) {
    return registered;
  }
  const auto response = invoke(name, "ping");
  if (response.status().status() != pb::OK) {
    return ::testing::AssertionFailure()
           << "the proxy no longer serves a normal call: " << is_ok(response).message();
  }
  return ::testing::AssertionSuccess();
}

pb::InvocationResponse ProxyTest::get_after_reactivation(const std::string& actor,
                                                         int inits_before) {
  using namespace std::chrono_literals;
  pb::InvocationResponse last;
  for (auto pause = 100ms; pause <= 6400ms; pause *= 2) {
    std::this_thread::sleep_for(pause);
    last = invoke(actor, "get");
    if (host_.count("init") > inits_before) {
      return last;
    }
  }
  ADD_FAILURE() << "actor '" << actor << "' was never deactivated and reactivated" << log();
  return last;
}

std::string ProxyTest::log() const {
  std::string out = "\n";
  out += previous_logs_;
  if (proxy_) {
    out += "--- proxy log ---\n" + proxy_->log() + "\n--- end of proxy log ---";
    if (!proxy_->running()) {
      // 128+N: killed by signal N (e.g. 139 = SIGSEGV, 134 = SIGABRT).
      out += "\n--- the proxy is not running; exit code "
             + std::to_string(proxy_->wait(std::chrono::milliseconds(0))) + " ---";
    }
  }
  return out;
}

CommandRun run_command(const std::string& command) {
  CommandRun run;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return run;
  }
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) {
    run.output += buffer.data();
  }
  int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace spawn::integration
