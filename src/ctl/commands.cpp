#include "ctl/commands.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "ctl/payload.hpp"
#include "protocol/messages.hpp"

namespace spawn::ctl {

namespace pb = protocol::pb;
namespace pba = protocol::pba;

namespace {

/// Loads the --proto types; reports and returns nullopt on failure.
std::optional<TypeRegistry> load_types(const CommonOptions& common, std::ostream& err) {
  auto types = TypeRegistry::load(common.protos, common.include_dirs);
  if (!types) {
    err << "spawnctl: " << types.error().message << "\n";
    return std::nullopt;
  }
  return std::move(*types);
}

Result<std::optional<google::protobuf::Any>> make_payload(const PayloadOptions& payload,
                                                          const TypeRegistry& types) {
  if (payload.json && payload.type) {
    return fail(ErrorCode::kInvalidArgument, "give either --json or --type with --data, not both");
  }
  if (payload.json) {
    return std::optional<google::protobuf::Any>(pack_json(*payload.json));
  }
  if (payload.type) {
    auto any = types.pack(*payload.type, payload.data.value_or("{}"));
    if (!any) {
      return std::move(any).error();
    }
    return std::optional<google::protobuf::Any>(std::move(*any));
  }
  if (payload.data) {
    return fail(ErrorCode::kInvalidArgument, "--data needs --type (the message type's full name)");
  }
  return std::optional<google::protobuf::Any>();
}

std::string invoke_target(const std::string& system, const std::string& actor) {
  return "/api/v1/system/" + system + "/actors/" + actor + "/invoke";
}

pb::InvocationRequest make_request(const std::string& system, const std::string& actor,
                                   const std::string& action) {
  pb::InvocationRequest request;
  request.mutable_system()->set_name(system);
  request.mutable_actor()->mutable_id()->set_name(actor);
  request.mutable_actor()->mutable_id()->set_system(system);
  request.set_action_name(action);
  return request;
}

/// Sends `request` and decodes the answer; prints problems; returns the exit code.
int call(ProxyConnection& connection, const pb::InvocationRequest& request,
         pb::InvocationResponse& response, std::ostream& err) {
  auto reply = connection.request(
      "POST", invoke_target(request.system().name(), request.actor().id().name()),
      request.SerializeAsString());
  if (!reply) {
    err << "spawnctl: " << reply.error().message << "\n";
    return kExitUnreachable;
  }
  if (!response.ParseFromString(reply->body)) {
    err << "spawnctl: the proxy answered HTTP " << reply->status
        << " with a body that is not an InvocationResponse (is " << connection.address().host << ":"
        << connection.address().port << " a spawn-proxy?)\n";
    return kExitFailed;
  }
  if (response.status().status() != pb::OK) {
    err << "spawnctl: " << response.status().message() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int invoke(const CommonOptions& common, const InvokeOptions& options, std::ostream& out,
           std::ostream& err) {
  auto types = load_types(common, err);
  if (!types) {
    return kExitUsage;
  }
  auto payload = make_payload(options.payload, *types);
  if (!payload) {
    err << "spawnctl: " << payload.error().message << "\n";
    return kExitUsage;
  }
  auto request = make_request(options.system, options.actor, options.action);
  if (*payload) {
    *request.mutable_value() = std::move(**payload);
  } else {
    request.mutable_noop();
  }
  request.set_async(options.async);
  request.set_pooled(options.pooled);
  request.set_register_ref(options.parent);
  if (options.delay_ms > 0) {
    request.set_scheduled_to(now_ms() + options.delay_ms);
  } else if (options.at_ms > 0) {
    request.set_scheduled_to(options.at_ms);
  }
  request.mutable_metadata()->insert(options.metadata.begin(), options.metadata.end());
  ProxyConnection connection(common.proxy);
  pb::InvocationResponse response;
  int code = call(connection, request, response, err);
  if (code != kExitOk) {
    return code;
  }
  if (response.has_value()) {
    out << describe(response.value(), *types) << "\n";
  } else if (request.async() || request.scheduled_to() != 0) {
    out << "accepted\n";
  } else {
    out << "ok (no payload)\n";
  }
  return kExitOk;
}

int state(const CommonOptions& common, const std::string& system, const std::string& actor,
          std::ostream& out, std::ostream& err) {
  auto types = load_types(common, err);
  if (!types) {
    return kExitUsage;
  }
  ProxyConnection connection(common.proxy);
  pb::InvocationResponse response;
  int code = call(connection, make_request(system, actor, "getState"), response, err);
  if (code != kExitOk) {
    return code;
  }
  out << (response.has_value() ? describe(response.value(), *types) : "(no state)") << "\n";
  return kExitOk;
}

int spawn_actor(const CommonOptions& common, const std::string& system, const std::string& name,
                const std::string& parent, std::optional<std::int64_t> revision, std::ostream& out,
                std::ostream& err) {
  pb::SpawnRequest request;
  auto* id = request.add_actors();
  id->set_name(name);
  id->set_system(system);
  id->set_parent(parent);
  std::string target = "/api/v1/system/" + system + "/actors/spawn";
  if (revision) {
    target += "?revision=" + std::to_string(*revision);
  }
  ProxyConnection connection(common.proxy);
  auto reply = connection.request("POST", target, request.SerializeAsString());
  if (!reply) {
    err << "spawnctl: " << reply.error().message << "\n";
    return kExitUnreachable;
  }
  pb::SpawnResponse response;
  if (!response.ParseFromString(reply->body) || response.status().status() != pb::OK) {
    err << "spawnctl: "
        << (response.status().message().empty()
                ? "spawn failed (HTTP " + std::to_string(reply->status) + ")"
                : response.status().message())
        << "\n";
    return kExitFailed;
  }
  out << "spawned " << name << " from " << parent << "\n";
  return kExitOk;
}

int register_system(const CommonOptions& common, const std::string& path, std::ostream& out,
                    std::ostream& err) {
  std::ifstream file(path);
  if (!file) {
    err << "spawnctl: cannot read '" << path << "'\n";
    return kExitUsage;
  }
  std::stringstream text;
  text << file.rdbuf();
  pb::RegistrationRequest request;
  auto parsed =
      google::protobuf::util::JsonStringToMessage(text.str(), request.mutable_actor_system());
  if (!parsed.ok()) {
    err << "spawnctl: '" << path << "' is not an ActorSystem in JSON: " << parsed.message() << "\n";
    return kExitUsage;
  }
  request.mutable_service_info()->set_service_name("spawnctl");
  ProxyConnection connection(common.proxy);
  auto reply = connection.request("POST", "/api/v1/system", request.SerializeAsString());
  if (!reply) {
    err << "spawnctl: " << reply.error().message << "\n";
    return kExitUnreachable;
  }
  pb::RegistrationResponse response;
  if (!response.ParseFromString(reply->body) || response.status().status() != pb::OK) {
    err << "spawnctl: "
        << (response.status().message().empty() ? "registration failed"
                                                : response.status().message())
        << "\n";
    return kExitFailed;
  }
  out << "registered " << request.actor_system().name() << " ("
      << request.actor_system().registry().actors_size() << " actors)\n";
  return kExitOk;
}

namespace {

/// GETs `target`; on 200 hands the body to `print`, otherwise reports and returns the exit code.
int get_and_print(const CommonOptions& common, const std::string& target, std::ostream& err,
                  const std::function<void(const std::string&)>& print) {
  ProxyConnection connection(common.proxy);
  auto reply = connection.request("GET", target);
  if (!reply) {
    err << "spawnctl: " << reply.error().message << "\n";
    return kExitUnreachable;
  }
  if (reply->status != 200) {
    err << "spawnctl: " << reply->body << "\n";
    return kExitFailed;
  }
  print(reply->body);
  return kExitOk;
}

}  // namespace

int list_actors(const CommonOptions& common, const std::string& system, std::ostream& out,
                std::ostream& err) {
  return get_and_print(common, "/api/v1/system/" + system + "/actors", err,
                       [&](const std::string& body) { out << body << "\n"; });
}

int show_cluster(const CommonOptions& common, std::ostream& out, std::ostream& err) {
  return get_and_print(common, "/api/v1/cluster", err, [&](const std::string& body) {
    auto view = nlohmann::json::parse(body, nullptr, false);
    if (!view.is_object() || !view.value("enabled", false)) {
      out << "this proxy runs alone (SPAWN_USE_INTERNAL_NATS is not true)\n";
      return;
    }
    out << std::left << std::setw(28) << "NODE" << std::setw(24) << "ADDRESS" << std::setw(10)
        << "ACTIVE" << std::setw(12) << "REGISTERED"
        << "STATE\n";
    for (const auto& node : view["nodes"]) {
      std::string state = node.value("leaving", false) ? "leaving" : "up";
      if (node.value("self", false)) {
        state += " (this proxy)";
      }
      out << std::left << std::setw(28) << node.value("node", "") << std::setw(24)
          << node.value("address", "") << std::setw(10) << node.value("active_actors", 0)
          << std::setw(12) << node.value("registered_actors", 0) << state << "\n";
    }
  });
}

int where(const CommonOptions& common, const std::string& system, const std::string& actor,
          std::ostream& out, std::ostream& err) {
  return get_and_print(common, "/api/v1/cluster/actors/" + system + "/" + actor, err,
                       [&](const std::string& body) {
                         auto answer = nlohmann::json::parse(body, nullptr, false);
                         if (answer.is_object() && answer["node"].is_string()) {
                           out << answer["node"].get<std::string>() << "\n";
                         } else {
                           out << "(not active anywhere: placed at its next invocation)\n";
                         }
                       });
}

int load(const CommonOptions& common, const LoadOptions& options, std::ostream& out,
         std::ostream& err, bool progress_bar) {
  if (options.requests <= 0 || options.concurrency <= 0 || options.actors <= 0) {
    err << "spawnctl: --requests, --concurrency and --actors must be positive\n";
    return kExitUsage;
  }
  auto types = load_types(common, err);
  if (!types) {
    return kExitUsage;
  }
  auto payload = make_payload(options.payload, *types);
  if (!payload) {
    err << "spawnctl: " << payload.error().message << "\n";
    return kExitUsage;
  }
  std::vector<pb::InvocationRequest> requests;
  for (int i = 0; i < options.actors; ++i) {
    auto name = options.actors == 1 ? options.actor : options.actor + "-" + std::to_string(i);
    auto request = make_request(options.system, name, options.action);
    request.set_register_ref(options.parent);
    if (*payload) {
      *request.mutable_value() = **payload;
    } else {
      request.mutable_noop();
    }
    requests.push_back(std::move(request));
  }

  std::atomic<int> next{0};
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  std::atomic<bool> unreachable{false};
  std::mutex latencies_mutex;  // guards latencies and first_error
  std::vector<double> latencies;
  latencies.reserve(static_cast<std::size_t>(options.requests));
  std::string first_error;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < options.concurrency; ++w) {
    workers.emplace_back([&] {
      ProxyConnection connection(common.proxy);
      std::vector<double> mine;
      for (int i = next++; i < options.requests && !unreachable; i = next++) {
        const auto& request = requests[static_cast<std::size_t>(i) % requests.size()];
        auto begin = std::chrono::steady_clock::now();
        auto reply = connection.request(
            "POST", invoke_target(request.system().name(), request.actor().id().name()),
            request.SerializeAsString());
        mine.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin)
                .count());
        pb::InvocationResponse response;
        if (!reply) {
          unreachable = true;
          std::lock_guard lock(latencies_mutex);
          first_error = reply.error().message;
        } else if (!response.ParseFromString(reply->body) || response.status().status() != pb::OK) {
          ++failed;
          std::lock_guard lock(latencies_mutex);
          if (first_error.empty()) {
            first_error = response.status().message();
          }
        }
        ++done;
      }
      std::lock_guard lock(latencies_mutex);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  // Progress: a bar on a terminal, a line every second otherwise.
  auto last_line = start;
  while (done < options.requests && !unreachable) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!progress_bar && std::chrono::steady_clock::now() - last_line < std::chrono::seconds(1)) {
      continue;
    }
    last_line = std::chrono::steady_clock::now();
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    int count = done;
    double fraction = static_cast<double>(count) / options.requests;
    auto rate = static_cast<long>(count / std::max(elapsed, 1e-3));
    if (progress_bar) {
      int filled = static_cast<int>(fraction * 30);
      err << "\r[" << std::string(filled, '=') << (filled < 30 ? ">" : "")
          << std::string(std::max(0, 29 - filled), ' ') << "] " << std::setw(3)
          << static_cast<int>(fraction * 100) << "%  " << count << "/" << options.requests << "  "
          << rate << " req/s  errors " << failed.load() << std::flush;
    } else {
      err << count << "/" << options.requests << " done, " << rate << " req/s, errors "
          << failed.load() << "\n";
    }
  }
  for (auto& worker : workers) {
    worker.join();
  }
  if (progress_bar) {
    err << "\n";
  }
  if (unreachable) {
    err << "spawnctl: " << first_error << "\n";
    return kExitUnreachable;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(latencies.begin(), latencies.end());
  auto percentile = [&](double p) {
    if (latencies.empty()) {
      return 0.0;
    }
    auto index = static_cast<std::size_t>(std::ceil(p * latencies.size())) - 1;
    return latencies[std::min(index, latencies.size() - 1)];
  };
  out << std::fixed << std::setprecision(2) << "requests " << options.requests << "  errors "
      << failed.load() << "  seconds " << seconds << "  req/s " << options.requests / seconds
      << "  p50 " << percentile(0.50) << " ms  p99 " << percentile(0.99) << " ms\n";
  if (failed > 0) {
    err << "spawnctl: " << failed.load() << " requests failed; the first: " << first_error << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace spawn::ctl
