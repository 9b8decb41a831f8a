// A game lobby: players join the "lobby"; every two players get a game room, an unnamed actor
// spawned at run time (by a side effect); each room plays rounds on a timer; everything that
// happens is broadcast on "lobby-events", which the "announcer" subscribes to.
//
//   spawn-example-lobby                    embedded
//   spawn-example-lobby --sidecar --proxy 127.0.0.1:9001 --port 8091

#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>

#include <spawn/spawn.hpp>

#include "common/example_node.hpp"
#include "lobby/lobby.pb.h"

using examples::lobby::Event;
using examples::lobby::Join;
using examples::lobby::Lobby;
using examples::lobby::Players;
using examples::lobby::Room;
using namespace std::chrono_literals;

namespace {

constexpr int kRounds = 3;

Event event(std::string text) {
  Event message;
  message.set_text(std::move(text));
  return message;
}

void define(spawn::ActorSystem& system) {
  system.actor<Lobby>("lobby").action("join", [](spawn::Context<Lobby>& ctx, const Join& in) {
    Lobby next = ctx.take_state();
    next.add_waiting(in.player());
    auto value = ctx.value();
    if (next.waiting_size() < 2) {
      value.broadcast("lobby-events", event(in.player() + " is waiting for a partner"));
      return std::move(value).state(next).reply(next);
    }
    // Two players: open a room for them. The room is spawned from "room" by the effect itself.
    next.set_games(next.games() + 1);
    const std::string room = "room-" + std::to_string(next.games());
    Players players;
    players.mutable_names()->Swap(next.mutable_waiting());
    value
        .broadcast("lobby-events",
                   event(players.names(0) + " and " + players.names(1) + " meet in " + room))
        .effect(spawn::Effect::to(room, "open").with(players).spawn_from("room"));
    return std::move(value).state(next).reply(next);
  });

  system.actor<Room>("room")
      .unnamed()
      .action("open",
              [](spawn::Context<Room>& ctx, const Players& in) {
                Room next;
                next.mutable_players()->CopyFrom(in.names());
                return ctx.value().state(next).broadcast("lobby-events",
                                                         event(ctx.self().name + " opened"));
              })
      .timer("round", 300ms, [](spawn::Context<Room>& ctx) {
        // Every room (and the template) has the timer; only open, unfinished rooms play.
        if (ctx.state().players_size() == 0 || ctx.state().finished()) {
          return ctx.value();
        }
        Room next = ctx.take_state();
        next.set_round(next.round() + 1);
        next.set_finished(next.round() >= kRounds);
        std::string text = ctx.self().name + " round " + std::to_string(next.round());
        if (next.finished()) {
          text += ": game over, " + next.players(static_cast<int>(next.round()) % 2) + " wins";
        }
        return ctx.value().state(next).broadcast("lobby-events", event(text));
      });

  system.actor("announcer")
      .subscribe("lobby-events", "announce")
      .action("announce", [](spawn::Context<spawn::NoState>&, const Event& in) {
        static std::mutex mutex;
        std::lock_guard lock(mutex);
        std::cout << "  >> " << in.text() << "\n";
      });
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Args args = examples::parse_args(argc, argv);
  spawn::ActorSystem system("lobby");
  define(system);

  auto node = examples::start_node(system, args);
  if (!node) {
    std::cerr << "cannot start: " << node.error().message << "\n";
    return 1;
  }
  spawn::Client client = node->client();
  auto lobby = client.actor("lobby");

  for (const char* player : {"ada", "linus", "grace", "ken"}) {
    Join join;
    join.set_player(player);
    auto joined = lobby.invoke<Lobby>("join", join);
    if (!joined) {
      std::cerr << player << " cannot join: " << joined.error().message << "\n";
      return 1;
    }
    std::cout << player << " joined; games so far: " << joined->games() << "\n";
    std::this_thread::sleep_for(100ms);
  }

  // A room can also be spawned directly by a client.
  if (auto spawned = client.spawn("practice", "room"); spawned) {
    Players solo;
    solo.add_names("ada");
    solo.add_names("ada");
    (void)client.actor("practice").invoke("open", solo);
  }

  std::this_thread::sleep_for(1500ms);  // let the rooms play their rounds
  for (const char* room : {"room-1", "room-2", "practice"}) {
    auto state = client.actor(room).invoke<Room>("get");
    if (state) {
      std::cout << room << ": round " << state->round() << (state->finished() ? " (finished)" : "")
                << "\n";
    } else {
      std::cout << room << ": " << state.error().message << "\n";
    }
  }

  if (args.serve) {
    std::cout << "serving until Ctrl-C\n";
    node->wait_for_shutdown();
  }
  node->stop();
  return 0;
}
