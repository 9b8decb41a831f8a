// A bank: accounts are spawned at run time from the unnamed "account" actor; a transfer debits
// the sender and credits the receiver through a side effect, so no actor ever waits on another.
//
//   spawn-example-bank                     embedded, state in memory
//   spawn-example-bank --db bank.db        embedded, state in SQLite (set SPAWN_STATESTORE_KEY)
//   spawn-example-bank --sidecar --proxy 127.0.0.1:9001 --port 8091

#include <chrono>
#include <iostream>
#include <thread>

#include <spawn/spawn.hpp>

#include "bank/bank.pb.h"
#include "common/example_node.hpp"

using examples::bank::Account;
using examples::bank::Amount;
using examples::bank::Balance;
using examples::bank::Transfer;
using namespace std::chrono_literals;

namespace {

Balance balance_of(const spawn::Context<Account>& ctx, const Account& account) {
  Balance balance;
  balance.set_owner(ctx.self().name);
  balance.set_amount(account.balance());
  return balance;
}

Amount amount(std::int64_t value) {
  Amount message;
  message.set_value(value);
  return message;
}

void define(spawn::ActorSystem& system) {
  system.actor<Account>("account")
      .unnamed()
      .deactivate_after(60s)
      .snapshot_every(1s)
      .action("deposit",
              [](spawn::Context<Account>& ctx, const Amount& in) {
                Account next = ctx.take_state();
                next.set_balance(next.balance() + in.value());
                return ctx.value().state(next).reply(balance_of(ctx, next));
              })
      .action("credit",  // the receiving half of a transfer, run as a side effect
              [](spawn::Context<Account>& ctx, const Amount& in) {
                Account next = ctx.take_state();
                next.set_balance(next.balance() + in.value());
                next.set_transfers(next.transfers() + 1);
                std::cout << "  [" << ctx.self().name << "] credited " << in.value() << " from "
                          << (ctx.caller() ? ctx.caller()->name : "?") << "\n";
                return ctx.value().state(next);
              })
      .action("transfer",
              [](spawn::Context<Account>& ctx,
                 const Transfer& in) -> spawn::Result<spawn::Value<Account, Balance>> {
                if (in.amount() <= 0 || in.amount() > ctx.state().balance()) {
                  return spawn::fail(
                      spawn::ErrorCode::kInvalidArgument,
                      "insufficient funds for a transfer of " + std::to_string(in.amount()));
                }
                Account next = ctx.take_state();
                next.set_balance(next.balance() - in.amount());
                next.set_transfers(next.transfers() + 1);
                // Debit now (checkpointed before the caller hears back), credit in the
                // background: the receiver is spawned from "account" if it is new.
                return ctx.value()
                    .state(next)
                    .reply(balance_of(ctx, next))
                    .checkpoint()
                    .effect(spawn::Effect::to(in.to(), "credit")
                                .with(amount(in.amount()))
                                .spawn_from("account"));
              })
      .action("balance", [](spawn::Context<Account>& ctx) {
        return ctx.value().reply(balance_of(ctx, ctx.state()));
      });
}

void print(const spawn::Result<Balance>& balance, std::string_view what) {
  if (balance) {
    std::cout << what << ": " << balance->owner() << " has " << balance->amount() << "\n";
  } else {
    std::cout << what << ": error: " << balance.error().message << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Args args = examples::parse_args(argc, argv);
  spawn::ActorSystem system("bank");
  define(system);

  auto node = examples::start_node(system, args);
  if (!node) {
    std::cerr << "cannot start: " << node.error().message << "\n";
    return 1;
  }
  spawn::Client client = node->client();

  for (const char* owner : {"alice", "bob"}) {
    if (auto opened = client.spawn(owner, "account"); !opened) {
      std::cerr << "cannot open " << owner << ": " << opened.error().message << "\n";
      return 1;
    }
    std::cout << "opened account " << owner << "\n";
  }
  auto alice = client.actor("alice");
  auto bob = client.actor("bob");

  print(alice.invoke<Balance>("deposit", amount(100)), "deposit 100");

  Transfer transfer;
  transfer.set_to("bob");
  transfer.set_amount(30);
  print(alice.invoke<Balance>("transfer", transfer), "transfer 30 to bob");

  // The credit is a side effect: it runs in the background, right after the debit.
  for (int i = 0; i < 50; ++i) {
    auto balance = bob.invoke<Balance>("balance");
    if (balance && balance->amount() == 30) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  print(bob.invoke<Balance>("balance"), "bob after the transfer");

  transfer.set_amount(1000);
  print(alice.invoke<Balance>("transfer", transfer), "transfer 1000 to bob");
  print(alice.invoke<Balance>("balance"), "alice at the end");

  if (args.serve) {
    std::cout << "serving until Ctrl-C\n";
    node->wait_for_shutdown();
  }
  node->stop();
  return 0;
}
