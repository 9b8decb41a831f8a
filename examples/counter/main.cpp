// A counter: one named, stateful actor with an init action and two typed actions.
//
//   spawn-example-counter                     embedded, state in memory
//   spawn-example-counter --db counter.db     embedded, state in SQLite (set SPAWN_STATESTORE_KEY)
//   spawn-example-counter --sidecar --proxy 127.0.0.1:9001 --port 8091

#include <chrono>
#include <iostream>

#include <spawn/spawn.hpp>

#include "common/example_node.hpp"
#include "counter/counter.pb.h"

using examples::counter::Add;
using examples::counter::Counter;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const examples::Args args = examples::parse_args(argc, argv);

  spawn::ActorSystem system("examples");
  system.actor<Counter>("counter")
      .deactivate_after(30s)
      .snapshot_every(2s)
      .init([](spawn::Context<Counter>& ctx) {
        // Runs at every activation, before any other call.
        return ctx.value().tag("activated", "yes");
      })
      .action("add",
              [](spawn::Context<Counter>& ctx, const Add& add) {
                Counter next = ctx.take_state();
                next.set_value(next.value() + add.by());
                return ctx.value().state(next).reply(next);
              })
      .action("reset", [](spawn::Context<Counter>& ctx) {
        return ctx.value().state(Counter()).reply(Counter()).checkpoint();
      });

  auto node = examples::start_node(system, args);
  if (!node) {
    std::cerr << "cannot start: " << node.error().message << "\n";
    return 1;
  }
  auto counter = node->client().actor("counter");

  for (int by : {1, 2, 3}) {
    Add add;
    add.set_by(by);
    spawn::Result<Counter> now = counter.invoke<Counter>("add", add);
    if (!now) {
      std::cerr << "add failed: " << now.error().message << "\n";
      return 1;
    }
    std::cout << "add " << by << " -> counter = " << now->value() << "\n";
  }
  // "get" is answered by the runtime itself with the current state.
  spawn::Result<Counter> current = counter.invoke<Counter>("get");
  if (!current) {
    std::cerr << "get failed: " << current.error().message << "\n";
    return 1;
  }
  std::cout << "get -> counter = " << current->value() << "\n";

  if (args.serve) {
    std::cout << "serving until Ctrl-C\n";
    node->wait_for_shutdown();
  }
  node->stop();
  return 0;
}
