#pragma once

// Shared by the examples: starts a Node embedded (default) or as a sidecar host, from the
// command line. Uses only the public SDK.
//
//   --sidecar                serve the actors to a spawn-proxy instead of running embedded
//   --proxy HOST:PORT        the proxy's address (default 127.0.0.1:9001)
//   --port N                 where to serve the proxy's callbacks (default 8091)
//   --db FILE                embedded: keep state in this SQLite file (needs SPAWN_STATESTORE_KEY)
//   --serve                  keep running after the demo (until Ctrl-C), e.g. for spawnctl

#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include <spawn/spawn.hpp>

namespace examples {

struct Args {
  bool sidecar = false;
  bool serve = false;
  std::string proxy_host = "127.0.0.1";
  std::uint16_t proxy_port = 9001;
  std::uint16_t port = 8091;
  std::string db;
};

inline Args parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--sidecar") {
      args.sidecar = true;
    } else if (arg == "--serve") {
      args.serve = true;
    } else if (arg == "--proxy") {
      std::string address = next();
      auto colon = address.rfind(':');
      if (colon == std::string::npos) {
        std::cerr << "--proxy takes HOST:PORT\n";
        std::exit(2);
      }
      args.proxy_host = address.substr(0, colon);
      args.proxy_port = static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1)));
    } else if (arg == "--port") {
      args.port = static_cast<std::uint16_t>(std::stoi(next()));
    } else if (arg == "--db") {
      args.db = next();
    } else {
      std::cerr << "usage: " << argv[0]
                << " [--sidecar [--proxy HOST:PORT] [--port N]] [--db FILE] [--serve]\n";
      std::exit(arg == "--help" || arg == "-h" ? 0 : 2);
    }
  }
  return args;
}

/// Starts `system` the way `args` say: the one line that differs between the two modes.
inline spawn::Result<spawn::Node> start_node(const spawn::ActorSystem& system, const Args& args) {
  if (args.sidecar) {
    std::cout << "sidecar mode: serving on port " << args.port << ", proxy at " << args.proxy_host
              << ":" << args.proxy_port << "\n";
    return spawn::Node::sidecar(
        system, {.proxy_host = args.proxy_host, .proxy_port = args.proxy_port, .port = args.port});
  }
  if (!args.db.empty()) {
    std::cout << "embedded mode: state in " << args.db << "\n";
    return spawn::Node::embedded(system, {.statestore = "sqlite", .database = args.db});
  }
  std::cout << "embedded mode: state in memory\n";
  return spawn::Node::embedded(system);
}

}  // namespace examples
