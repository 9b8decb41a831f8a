// spawnctl: the command line for a running spawn-proxy. Wiring only; commands live in src/ctl.

#include <iostream>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include "ctl/commands.hpp"
#include "ctl/proxy_connection.hpp"

namespace {

using namespace spawn::ctl;  // NOLINT: application wiring

void add_payload_options(CLI::App& command, PayloadOptions& payload) {
  command.add_option("--json", payload.json,
                     "payload as JSON text, sent as eigr.functions.protocol.JSONType");
  command.add_option("--type", payload.type,
                     "payload message type, full name (e.g. bank.Deposit); needs --proto");
  command.add_option("--data", payload.data, "payload of --type as JSON (default {})");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "spawnctl: talk to a running spawn-proxy.\n"
      "Exit codes: 0 ok, 1 the proxy answered an error, 2 bad usage or payload, 3 proxy "
      "unreachable."};
  app.require_subcommand(1);
  std::string proxy = "127.0.0.1:9001";
  CommonOptions common;
  app.add_option("--proxy", proxy, "proxy address host:port")
      ->envname("SPAWN_PROXY_ADDRESS")
      ->capture_default_str();
  app.add_option("--proto", common.protos,
                 "a .proto file with the message types of payloads and states (repeatable)");
  app.add_option("-I,--proto-path", common.include_dirs, "folder to resolve .proto imports in");

  InvokeOptions invoke_options;
  auto* invoke_cmd =
      app.add_subcommand("invoke", "invoke an action of an actor and print its answer");
  invoke_cmd->add_option("system", invoke_options.system, "actor system")->required();
  invoke_cmd->add_option("actor", invoke_options.actor, "actor name")->required();
  invoke_cmd->add_option("action", invoke_options.action, "action name")->required();
  add_payload_options(*invoke_cmd, invoke_options.payload);
  invoke_cmd->add_flag("--async", invoke_options.async, "do not wait for the answer");
  invoke_cmd->add_option("--delay", invoke_options.delay_ms, "run after this many milliseconds");
  invoke_cmd->add_option("--at", invoke_options.at_ms, "run at this Unix time in milliseconds");
  invoke_cmd->add_option("--parent", invoke_options.parent,
                         "spawn the actor from this unnamed template first (register_ref)");
  invoke_cmd->add_flag("--pooled", invoke_options.pooled, "send to a pooled actor's pool");
  invoke_cmd->add_option("-m,--metadata", invoke_options.metadata, "metadata key=value")
      ->delimiter(',');

  std::string state_system;
  std::string state_actor;
  auto* state_cmd = app.add_subcommand("state", "print an actor's current state");
  state_cmd->add_option("system", state_system, "actor system")->required();
  state_cmd->add_option("actor", state_actor, "actor name")->required();

  std::string spawn_system;
  std::string spawn_name;
  std::string spawn_parent;
  std::optional<std::int64_t> spawn_revision;
  auto* spawn_cmd = app.add_subcommand("spawn", "spawn an actor from an unnamed template");
  spawn_cmd->add_option("system", spawn_system, "actor system")->required();
  spawn_cmd->add_option("name", spawn_name, "name of the new actor")->required();
  spawn_cmd->add_option("--parent", spawn_parent, "the registered unnamed actor")->required();
  spawn_cmd->add_option("--revision", spawn_revision, "start from this stored revision");

  std::string register_file;
  auto* register_cmd =
      app.add_subcommand("register", "register an actor system described in a JSON file");
  register_cmd->add_option("file", register_file, "ActorSystem as JSON (protobuf JSON mapping)")
      ->required();

  std::string actors_system;
  auto* actors_cmd = app.add_subcommand("actors", "list the actors of a system (JSON)");
  actors_cmd->add_option("system", actors_system, "actor system")->required();

  auto* cluster_cmd = app.add_subcommand("cluster", "show the nodes of the proxy's cluster");
  std::string where_system;
  std::string where_actor;
  auto* where_cmd = app.add_subcommand("where", "show the node an actor lives on (cluster)");
  where_cmd->add_option("system", where_system, "actor system")->required();
  where_cmd->add_option("actor", where_actor, "actor name")->required();

  LoadOptions load_options;
  auto* load_cmd = app.add_subcommand("load", "send many invocations and report rate and latency");
  load_cmd->add_option("system", load_options.system, "actor system")->required();
  load_cmd->add_option("actor", load_options.actor, "actor name (or name prefix with --actors)")
      ->required();
  load_cmd->add_option("action", load_options.action, "action name")->required();
  add_payload_options(*load_cmd, load_options.payload);
  load_cmd->add_option("-n,--requests", load_options.requests, "how many")->capture_default_str();
  load_cmd->add_option("-c,--concurrency", load_options.concurrency, "connections at once")
      ->capture_default_str();
  load_cmd
      ->add_option("--actors", load_options.actors,
                   "spread over this many actors named <actor>-<i>")
      ->capture_default_str();
  load_cmd->add_option("--parent", load_options.parent,
                       "spawn the actors from this unnamed template (register_ref)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  auto address = ProxyAddress::parse(proxy);
  if (!address) {
    std::cerr << "spawnctl: " << address.error().message << "\n";
    return kExitUsage;
  }
  common.proxy = *address;

  if (invoke_cmd->parsed()) {
    return invoke(common, invoke_options, std::cout, std::cerr);
  }
  if (state_cmd->parsed()) {
    return state(common, state_system, state_actor, std::cout, std::cerr);
  }
  if (spawn_cmd->parsed()) {
    return spawn_actor(common, spawn_system, spawn_name, spawn_parent, spawn_revision, std::cout,
                       std::cerr);
  }
  if (register_cmd->parsed()) {
    return register_system(common, register_file, std::cout, std::cerr);
  }
  if (cluster_cmd->parsed()) {
    return show_cluster(common, std::cout, std::cerr);
  }
  if (where_cmd->parsed()) {
    return where(common, where_system, where_actor, std::cout, std::cerr);
  }
  if (actors_cmd->parsed()) {
    return list_actors(common, actors_system, std::cout, std::cerr);
  }
  return load(common, load_options, std::cout, std::cerr, isatty(STDERR_FILENO) != 0);
}
