// spawn-sdk-bench: invocations per second and latency of the C++ SDK's Client, embedded
// (the runtime in this process) and as the sidecar host of a running spawn-proxy
// (docs/performance.md, "SDK"). Uses only the public SDK (include/spawn/).
//
// The system "sdkbench" has `--actors` named, stateful counter actors "c0", "c1", ... (state
// Counter, snapshot every 2 s, as examples/counter does). Actions:
//   inc          adds Add.by to the state and replies with the new state (a state change)
//   get          the runtime's default action: the current state, answered without a handler
//   inc_durable  inc with checkpoint(): the reply waits until the state is durable
// With `--clients blocking` (the default) each of `callers` threads calls `Client::invoke` in a
// loop for `--seconds`; with `--clients then` there are `callers` chains of `invoke_then`, each
// callback starting its chain's next call (so `callers` calls are in flight and no thread waits).
// Either way each caller goes round-robin over the actors from its own offset (so one actor's
// mailbox is never the limit) and every call's latency is recorded; `--clients blocking,then`
// measures both.
// The whole list of runs is made `--repeats` times in turn (so a burst of load from elsewhere hits
// one repeat of everything rather than every repeat of one run); the median repeat by calls/s is
// reported, with the range of all of them.
//
//   spawn-sdk-bench embedded [--stores memory,sqlite] [--shards 1,2] [--callers 1,2,4,8,64]
//                            [--actions inc,get] [--durable-callers 64] [--actors 1000]
//                            [--seconds 1] [--repeats 3] [--dir /var/tmp]
//                            [--clients blocking,then]
//   spawn-sdk-bench sidecar --proxy-port P --port H [--callers 1,16] [--actions inc,get]
//                           [--actors 1000] [--seconds 2] [--repeats 3] [--store sqlite]
//                           [--shards 2] [--clients blocking,then]
//   spawn-sdk-bench memory [--actors 1000000] [--shards 2] [--callers 64] [--seconds 2]
//                          [--client blocking|then]
//   spawn-sdk-bench activation [--actors 100000] [--shards 2] [--callers 64] [--dir /var/tmp]
//                              [--client blocking|then]
//
// memory: an embedded node (memory store) with the unnamed counter template "counter"; each of
// `--actors` children "m<i>" is spawned and invoked once (`inc`), so every one is active and
// idle with its state. Measures the resident memory before and after (RSS growth per actor), the
// rate and latency of spawn + first invoke (one call each, from `--callers` threads; latencies
// counted in a fixed-size histogram, so that they add nothing per actor to the memory measured),
// then inc round-robin over all the actors for `--seconds` (the cost curve; `--client then`:
// `--callers` chains of invoke_then). One line:
//
//   SDK_MEMORY actors=N shards=S rss_before=B rss_after=A bytes_per_actor=.. spawn_rate=..
//     spawn_p50_us=.. spawn_p99_us=.. rps=.. p50_us=.. p99_us=.. errors=E
//
// activation: cold activations from SQLite. A first embedded node (SQLite) spawns `--actors`
// children and increments each once, then stops (which saves every one). A second node on the
// same file spawns them again (registry only, not timed) and invokes the default `get` on every
// one exactly once from `--callers` threads (`--client then`: `--callers` chains of invoke_then):
// each call activates its actor, loading the state from SQLite. One line:
//
//   SDK_ACTIVATION actors=N shards=S client=C callers=K rate=.. p50_us=.. p99_us=.. p999_us=..
//     populate_s=.. errors=E
//
// Embedded: one Node per store and shard count (EmbeddedOptions::threads), each with an empty
// store (SQLite: a new file under --dir; the key is SPAWN_STATESTORE_KEY or a random one);
// `--durable-callers` runs inc_durable on persistent stores only. Sidecar: the actors are served
// on port H to the proxy at 127.0.0.1:P (started with USER_FUNCTION_PORT=H); --store and --shards
// only label the proxy's settings in the output. Every run prints one line on stdout:
//
//   SDK_RESULT mode=embedded store=memory shards=1 client=blocking callers=8 action=inc calls=N
//     seconds=S rps=R min_rps=.. max_rps=.. p50_us=.. p99_us=.. p999_us=.. errors=E
//
// (one line; the percentiles are the median repeat's, errors are summed over the repeats) and
// every repeat on stderr. Exits 1 if any call failed. bench/run-sdk.sh makes the table.

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <spawn/spawn.hpp>

#include "in_process.hpp"
#include "sdk_bench.pb.h"

namespace {

using spawn::bench::Add;
using spawn::bench::Counter;
using spawn::bench::percentile_us;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kSystem = "sdkbench";

struct Settings {
  std::string mode;
  std::vector<std::string> stores{"memory", "sqlite"};
  std::vector<int> shards{1, 2};
  std::vector<int> callers;
  std::vector<std::string> actions{"inc", "get"};
  std::vector<int> durable_callers{64};
  std::vector<std::string> clients{"blocking"};
  int actors = 1000;
  double seconds = 0;
  int repeats = 3;
  std::string dir = "/var/tmp";
  int proxy_port = 0;
  int port = 0;
  std::string proxy_store = "sqlite";  // labels only, in sidecar mode
  std::string proxy_shards = "?";
};

// Latencies counted in buckets of a fixed size instead of one record per call: the memory mode
// measures the memory per actor, which a vector of a million records would add to (16 bytes per
// actor). Buckets are 128 linear steps per power of two of nanoseconds, so a percentile is within
// 0.4 % of the one the sorted records give. Threads record concurrently.
class LatencyHistogram {
public:
  void record(std::int64_t ns) {
    counts_[index(static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0)))].fetch_add(
        1, std::memory_order_relaxed);
  }

  // The q-quantile in µs, picked as percentile_us() picks it from the sorted records.
  double percentile_us(double q) const {
    std::uint64_t total = 0;
    for (const auto& count : counts_) {
      total += count.load(std::memory_order_relaxed);
    }
    if (total == 0) {
      return 0;
    }
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total - 1));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i].load(std::memory_order_relaxed);
      if (seen > rank) {
        return middle(i) / 1000.0;
      }
    }
    return middle(counts_.size() - 1) / 1000.0;
  }

private:
  static constexpr unsigned kStepBits = 7;
  static constexpr std::uint64_t kSteps = 1U << kStepBits;
  static constexpr unsigned kMaxExponent = 40;  // 2^47 ns: every latency there is

  static std::size_t index(std::uint64_t ns) {
    if (ns < kSteps) {
      return ns;
    }
    const unsigned exponent =
        std::min<unsigned>(static_cast<unsigned>(std::bit_width(ns)) - 1 - kStepBits, kMaxExponent);
    const std::uint64_t step = std::min<std::uint64_t>((ns >> exponent) - kSteps, kSteps - 1);
    return ((exponent + 1) << kStepBits) + step;
  }

  static double middle(std::size_t i) {
    if (i < kSteps) {
      return static_cast<double>(i);
    }
    const unsigned exponent = static_cast<unsigned>(i >> kStepBits) - 1;
    const std::uint64_t low = ((i & (kSteps - 1)) + kSteps) << exponent;
    return static_cast<double>(low) + static_cast<double>((std::uint64_t{1} << exponent) - 1) / 2;
  }

  std::array<std::atomic<std::uint64_t>, (kMaxExponent + 2) << kStepBits> counts_{};
};

// What one caller (thread, chain or lane) saw.
struct Tally {
  std::vector<std::int64_t> latencies;  // when histogram is null
  LatencyHistogram* histogram = nullptr;
  long calls = 0;
  long errors = 0;
  std::string first_error;

  void record(std::chrono::steady_clock::time_point started, const spawn::Error* error) {
    const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::steady_clock::now() - started)
                                .count();
    if (histogram != nullptr) {
      histogram->record(ns);
    } else {
      latencies.push_back(ns);
    }
    ++calls;
    if (error != nullptr && errors++ == 0) {
      first_error = error->message;
    }
  }
};

struct Run {
  long calls = 0;
  long errors = 0;
  double seconds = 0;
  std::vector<std::int64_t> latencies_ns;
  std::string first_error;

  void add(const Tally& tally) {
    calls += tally.calls;
    errors += tally.errors;
    if (first_error.empty()) {
      first_error = tally.first_error;
    }
    latencies_ns.insert(latencies_ns.end(), tally.latencies.begin(), tally.latencies.end());
  }
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "spawn-sdk-bench: " << why
            << "\nusage: spawn-sdk-bench embedded|sidecar [options] (see bench/sdk_bench.cpp)\n";
  std::exit(2);
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> parts;
  std::stringstream in(list);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) {
      parts.push_back(part);
    }
  }
  return parts;
}

std::vector<int> split_ints(const std::string& list) {
  std::vector<int> numbers;
  for (const auto& part : split(list)) {
    numbers.push_back(std::stoi(part));
  }
  return numbers;
}

Settings parse(int argc, char** argv) {
  if (argc < 2) {
    usage("no mode");
  }
  Settings s;
  s.mode = argv[1];
  if (s.mode != "embedded" && s.mode != "sidecar" && s.mode != "memory" && s.mode != "activation") {
    usage("unknown mode '" + s.mode + "'");
  }
  const bool embedded = s.mode == "embedded";
  s.callers = embedded ? std::vector<int>{1, 2, 4, 8, 64} : std::vector<int>{1, 16};
  s.seconds = embedded ? 1 : 2;
  if (s.mode == "memory" || s.mode == "activation") {
    s.callers = {64};
    s.shards = {2};
    s.actors = s.mode == "memory" ? 1000000 : 100000;
    s.seconds = 2;
  }
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) {
      usage(arg + " needs a value");
    }
    const std::string value = argv[++i];
    if (arg == "--stores") {
      s.stores = split(value);
    } else if (arg == "--shards" && s.mode != "sidecar") {
      s.shards = split_ints(value);
    } else if (arg == "--shards") {
      s.proxy_shards = value;
    } else if (arg == "--store") {
      s.proxy_store = value;
    } else if (arg == "--callers") {
      s.callers = split_ints(value);
    } else if (arg == "--actions") {
      s.actions = split(value);
    } else if (arg == "--clients" || arg == "--client") {
      s.clients = split(value);
      for (const auto& client : s.clients) {
        if (client != "blocking" && client != "then") {
          usage("unknown client '" + client + "' (blocking or then)");
        }
      }
    } else if (arg == "--durable-callers") {
      s.durable_callers = split_ints(value);
    } else if (arg == "--actors") {
      s.actors = std::stoi(value);
    } else if (arg == "--seconds") {
      s.seconds = std::stod(value);
    } else if (arg == "--repeats") {
      s.repeats = std::max(1, std::stoi(value));
    } else if (arg == "--dir") {
      s.dir = value;
    } else if (arg == "--proxy-port") {
      s.proxy_port = std::stoi(value);
    } else if (arg == "--port") {
      s.port = std::stoi(value);
    } else {
      usage("unknown option " + arg);
    }
  }
  if (s.mode == "sidecar" && (s.proxy_port == 0 || s.port == 0)) {
    usage("sidecar mode needs --proxy-port and --port");
  }
  return s;
}

std::string actor_name(int i) {
  return "c" + std::to_string(i);
}

spawn::ActorSystem make_system(int actors) {
  spawn::ActorSystem system(kSystem);
  for (int i = 0; i < actors; ++i) {
    system.actor<Counter>(actor_name(i))
        .deactivate_after(10min)
        .snapshot_every(2s)
        .action("inc",
                [](spawn::Context<Counter>& ctx, const Add& add) {
                  Counter next = ctx.take_state();
                  next.set_value(next.value() + add.by());
                  return ctx.value().state(next).reply(next);
                })
        .action("inc_durable", [](spawn::Context<Counter>& ctx, const Add& add) {
          Counter next = ctx.take_state();
          next.set_value(next.value() + add.by());
          return ctx.value().state(next).reply(next).checkpoint();
        });
  }
  return system;
}

// The unnamed counter template of the memory and activation modes: no periodic snapshot (state
// is saved at deactivation and shutdown), so an idle actor holds only its own memory.
spawn::ActorSystem make_template_system() {
  spawn::ActorSystem system(kSystem);
  system.actor<Counter>("counter").unnamed().deactivate_after(60min).action(
      "inc", [](spawn::Context<Counter>& ctx, const Add& add) {
        Counter next = ctx.take_state();
        next.set_value(next.value() + add.by());
        return ctx.value().state(next).reply(next);
      });
  return system;
}

// Calls `action` from `callers` threads for `seconds`, round-robin over the actors.
Run measure_blocking(const spawn::Client& client, const std::vector<std::string>& names,
                     const std::string& action, int callers, double seconds) {
  std::atomic<bool> stop{false};
  std::latch ready(callers + 1);
  std::mutex mutex;
  Run run;
  std::vector<std::thread> threads;
  threads.reserve(callers);
  for (int t = 0; t < callers; ++t) {
    threads.emplace_back([&, t] {
      Add add;
      add.set_by(1);
      const std::size_t count = names.size();
      std::size_t next = static_cast<std::size_t>(t) * count / static_cast<std::size_t>(callers);
      Tally tally;
      tally.latencies.reserve(1U << 16U);
      ready.arrive_and_wait();
      while (!stop.load(std::memory_order_relaxed)) {
        const std::string& name = names[next];
        next = next + 1 == count ? 0 : next + 1;
        const auto start = Clock::now();
        spawn::Result<Counter> reply = action == "get"
                                           ? client.invoke<Counter>(kSystem, name, action)
                                           : client.invoke<Counter>(kSystem, name, action, add);
        tally.record(start, reply ? nullptr : &reply.error());
      }
      std::lock_guard lock(mutex);
      run.add(tally);
    });
  }
  ready.arrive_and_wait();
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& thread : threads) {
    thread.join();
  }
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return run;
}

// `callers` chains of invoke_then: each callback records its call and starts the chain's next
// one, so `callers` calls are in flight at any time and no thread waits for a reply.
Run measure_then(const spawn::Client& client, const std::vector<std::string>& names,
                 const std::string& action, int callers, double seconds) {
  struct Chain {
    std::size_t next = 0;
    Clock::time_point started;
    Tally tally;
  };

  std::vector<Chain> chains(static_cast<std::size_t>(callers));
  std::atomic<bool> stop{false};
  std::atomic<int> running{callers};
  std::mutex mutex;
  std::condition_variable finished;
  Add add;
  add.set_by(1);
  const bool get = action == "get";
  const std::size_t count = names.size();
  // One chain's calls follow each other, so only one callback touches its Chain at a time.
  std::function<void(Chain&)> start_next = [&](Chain& chain) {
    const std::string& name = names[chain.next];
    chain.next = chain.next + 1 == count ? 0 : chain.next + 1;
    chain.started = Clock::now();
    auto done = [&, chain_ptr = &chain](spawn::Result<Counter> reply) {
      Chain& c = *chain_ptr;
      c.tally.record(c.started, reply ? nullptr : &reply.error());
      if (!stop.load(std::memory_order_relaxed)) {
        start_next(c);
      } else if (running.fetch_sub(1) == 1) {
        std::lock_guard lock(mutex);
        finished.notify_all();
      }
    };
    if (get) {
      client.invoke_then<Counter>(kSystem, name, action, std::move(done));
    } else {
      client.invoke_then<Counter>(kSystem, name, action, add, std::move(done));
    }
  };
  for (std::size_t t = 0; t < chains.size(); ++t) {
    chains[t].next = t * count / chains.size();
    chains[t].tally.latencies.reserve(1U << 16U);
  }
  const auto start = Clock::now();
  for (auto& chain : chains) {
    start_next(chain);
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  {
    std::unique_lock lock(mutex);
    finished.wait(lock, [&] { return running.load() == 0; });
  }
  Run run;
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const auto& chain : chains) {
    run.add(chain.tally);
  }
  return run;
}

Run measure(const spawn::Client& client, const std::vector<std::string>& names,
            const std::string& action, int callers, double seconds,
            const std::string& kind = "blocking") {
  return kind == "then" ? measure_then(client, names, action, callers, seconds)
                        : measure_blocking(client, names, action, callers, seconds);
}

// One row of the table: an action at a number of callers, measured once per repeat.
struct Case {
  std::string action;
  int callers = 0;
  std::string client = "blocking";
  std::vector<Run> runs;
};

// Runs every case `repeats` times, all cases in turn per repeat, printing each run on stderr.
void measure_all(const spawn::Client& client, const std::vector<std::string>& names,
                 std::vector<Case>& cases, double seconds, int repeats) {
  for (int repeat = 1; repeat <= repeats; ++repeat) {
    for (auto& c : cases) {
      Run run = measure(client, names, c.action, c.callers, seconds, c.client);
      std::fprintf(stderr, "    repeat %d callers=%-2d %-8s %-11s %8.0f calls/s%s%s\n", repeat,
                   c.callers, c.client.c_str(), c.action.c_str(),
                   static_cast<double>(run.calls) / run.seconds,
                   run.errors > 0 ? "  FIRST ERROR: " : "", run.first_error.c_str());
      c.runs.push_back(std::move(run));
    }
  }
}

double rate(const Run& run) {
  return static_cast<double>(run.calls) / run.seconds;
}

// Prints the SDK_RESULT line of each case (its median repeat); returns the errors of them all.
long report(const std::string& mode, const std::string& store, const std::string& shards,
            std::vector<Case>& cases) {
  long errors = 0;
  for (auto& c : cases) {
    std::sort(c.runs.begin(), c.runs.end(),
              [](const Run& a, const Run& b) { return rate(a) < rate(b); });
    long case_errors = 0;
    for (const auto& run : c.runs) {
      case_errors += run.errors;
    }
    errors += case_errors;
    Run& median = c.runs[(c.runs.size() - 1) / 2];
    std::printf(
        "SDK_RESULT mode=%s store=%s shards=%s client=%s callers=%d action=%s calls=%ld "
        "seconds=%.2f rps=%.0f min_rps=%.0f max_rps=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
        "errors=%ld\n",
        mode.c_str(), store.c_str(), shards.c_str(), c.client.c_str(), c.callers, c.action.c_str(),
        median.calls, median.seconds, rate(median), rate(c.runs.front()), rate(c.runs.back()),
        percentile_us(median.latencies_ns, 0.5), percentile_us(median.latencies_ns, 0.99),
        percentile_us(median.latencies_ns, 0.999), case_errors);
  }
  std::fflush(stdout);
  return errors;
}

// Activates every actor (one `get` each) and warms the caches with a short run of inc.
bool warm_up(const spawn::Client& client, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    auto got = client.invoke<Counter>(kSystem, name, "get");
    if (!got) {
      std::cerr << "spawn-sdk-bench: warm-up get on " << name << ": " << got.error().message
                << "\n";
      return false;
    }
  }
  return measure(client, names, "inc", 8, 0.3).errors == 0;
}

// Base64 of 32 random bytes: a statestore key for this run only.
std::string random_key() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::random_device random;
  std::vector<unsigned char> bytes(32);
  for (auto& byte : bytes) {
    byte = static_cast<unsigned char>(random() & 0xff);
  }
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const unsigned n = (bytes[i] << 16U) | (i + 1 < bytes.size() ? bytes[i + 1] << 8U : 0U)
                       | (i + 2 < bytes.size() ? bytes[i + 2] : 0U);
    out += kAlphabet[(n >> 18U) & 63U];
    out += kAlphabet[(n >> 12U) & 63U];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6U) & 63U] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63U] : '=';
  }
  return out;
}

int run_embedded(const Settings& s, const std::vector<std::string>& names) {
  const char* env_key = std::getenv("SPAWN_STATESTORE_KEY");
  const std::string key = env_key != nullptr && *env_key != '\0' ? env_key : random_key();
  long errors = 0;
  for (const auto& store : s.stores) {
    for (int shards : s.shards) {
      const std::filesystem::path db =
          std::filesystem::path(s.dir)
          / ("spawn-sdk-bench-" + std::to_string(getpid()) + "-" + std::to_string(shards) + ".db");
      spawn::EmbeddedOptions options;
      options.statestore = store;
      options.threads = static_cast<std::size_t>(shards);
      if (store != "memory") {
        options.database = db.string();
        options.statestore_key = key;
      }
      std::fprintf(stderr, "spawn-sdk-bench: embedded store=%s shards=%d\n", store.c_str(), shards);
      auto node = spawn::Node::embedded(make_system(s.actors), options);
      if (!node) {
        std::cerr << "spawn-sdk-bench: cannot start the node: " << node.error().message << "\n";
        return 1;
      }
      const spawn::Client client = node->client();
      if (!warm_up(client, names)) {
        return 1;
      }
      std::vector<Case> cases;
      for (const auto& kind : s.clients) {
        for (const auto& action : s.actions) {
          for (int callers : s.callers) {
            cases.push_back({action, callers, kind, {}});
          }
        }
        if (store != "memory") {
          for (int callers : s.durable_callers) {
            cases.push_back({"inc_durable", callers, kind, {}});
          }
        }
      }
      measure_all(client, names, cases, s.seconds, s.repeats);
      errors += report("embedded", store, std::to_string(shards), cases);
      node->stop();
      for (const char* suffix : {"", "-wal", "-shm"}) {
        std::error_code ignored;
        std::filesystem::remove(db.string() + suffix, ignored);
      }
    }
  }
  return errors == 0 ? 0 : 1;
}

int run_sidecar(const Settings& s, const std::vector<std::string>& names) {
  spawn::SidecarOptions options;
  options.proxy_port = static_cast<std::uint16_t>(s.proxy_port);
  options.bind_address = "127.0.0.1";
  options.port = static_cast<std::uint16_t>(s.port);
  options.registration_attempts = 20;
  options.registration_interval = 250ms;
  std::fprintf(stderr, "spawn-sdk-bench: sidecar, proxy at 127.0.0.1:%d, serving on port %d\n",
               s.proxy_port, s.port);
  auto node = spawn::Node::sidecar(make_system(s.actors), options);
  if (!node) {
    std::cerr << "spawn-sdk-bench: cannot start the node: " << node.error().message << "\n";
    return 1;
  }
  const spawn::Client client = node->client();
  if (!warm_up(client, names)) {
    return 1;
  }
  std::vector<Case> cases;
  for (const auto& kind : s.clients) {
    for (const auto& action : s.actions) {
      for (int callers : s.callers) {
        cases.push_back({action, callers, kind, {}});
      }
    }
  }
  measure_all(client, names, cases, s.seconds, s.repeats);
  const long errors = report("sidecar", s.proxy_store, s.proxy_shards, cases);
  node->stop();
  return errors == 0 ? 0 : 1;
}

// Calls `call(i)` once for every i < count, spread over `callers` threads (thread t takes
// t, t + callers, ...); records each call's latency, in `histogram` when one is given (then the
// run's latencies_ns stay empty). Returns the run with its wall time.
template <class Call>
Run each_once(int count, int callers, Call call, LatencyHistogram* histogram = nullptr) {
  std::mutex mutex;
  Run run;
  if (histogram == nullptr) {
    run.latencies_ns.reserve(static_cast<std::size_t>(count));
  }
  std::latch ready(callers + 1);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(callers));
  for (int t = 0; t < callers; ++t) {
    threads.emplace_back([&, t] {
      Tally tally;
      tally.histogram = histogram;
      if (histogram == nullptr) {
        tally.latencies.reserve(static_cast<std::size_t>(count / callers + 1));
      }
      ready.arrive_and_wait();
      for (int i = t; i < count; i += callers) {
        const auto start = Clock::now();
        spawn::Result<void> done = call(i);
        tally.record(start, done ? nullptr : &done.error());
      }
      std::lock_guard lock(mutex);
      run.add(tally);
    });
  }
  ready.arrive_and_wait();
  const auto start = Clock::now();
  for (auto& thread : threads) {
    thread.join();
  }
  run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (run.errors > 0) {
    std::cerr << "spawn-sdk-bench: " << run.errors << " calls failed; first: " << run.first_error
              << "\n";
  }
  return run;
}

// Like each_once, with `lanes` chains of non-blocking calls instead of threads: lane l starts
// calls l, l + lanes, ... one after the other, each from the previous one's callback.
// `start(i, done)` starts call i and hands its outcome to `done`.
template <class Start>
Run each_once_then(int count, int lanes, Start start) {
  struct Lane {
    int next = 0;
    Clock::time_point started;
    Tally tally;
  };

  std::vector<Lane> all(static_cast<std::size_t>(std::max(1, std::min(lanes, count))));
  std::atomic<int> running{static_cast<int>(all.size())};
  std::mutex mutex;
  std::condition_variable finished;
  std::function<void(Lane&)> start_next = [&](Lane& lane) {
    if (lane.next >= count) {
      if (running.fetch_sub(1) == 1) {
        std::lock_guard lock(mutex);
        finished.notify_all();
      }
      return;
    }
    const int i = lane.next;
    lane.next += static_cast<int>(all.size());
    lane.started = Clock::now();
    start(i, [&, lane_ptr = &lane](spawn::Result<void> outcome) {
      Lane& l = *lane_ptr;
      l.tally.record(l.started, outcome ? nullptr : &outcome.error());
      start_next(l);
    });
  };
  const auto begin = Clock::now();
  for (std::size_t l = 0; l < all.size(); ++l) {
    all[l].next = static_cast<int>(l);
    all[l].tally.latencies.reserve(static_cast<std::size_t>(count) / all.size() + 1);
    start_next(all[l]);
  }
  {
    std::unique_lock lock(mutex);
    finished.wait(lock, [&] { return running.load() == 0; });
  }
  Run run;
  run.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  for (const auto& lane : all) {
    run.add(lane.tally);
  }
  if (run.errors > 0) {
    std::cerr << "spawn-sdk-bench: " << run.errors << " calls failed; first: " << run.first_error
              << "\n";
  }
  return run;
}

spawn::Result<void> spawn_and_inc(const spawn::Client& client, const std::string& name) {
  if (auto spawned = client.spawn(name, "counter"); !spawned) {
    return spawned;
  }
  Add add;
  add.set_by(1);
  auto reply = client.invoke<Counter>(kSystem, name, "inc", add);
  if (!reply) {
    return std::move(reply).error();
  }
  return spawn::ok();
}

int run_memory(const Settings& s, const std::vector<std::string>& names) {
  spawn::EmbeddedOptions options;
  options.statestore = "memory";
  options.threads = static_cast<std::size_t>(s.shards.front());
  auto node = spawn::Node::embedded(make_template_system(), options);
  if (!node) {
    std::cerr << "spawn-sdk-bench: cannot start the node: " << node.error().message << "\n";
    return 1;
  }
  const spawn::Client client = node->client();
  const int callers = s.callers.front();
  auto spawn_latencies = std::make_unique<LatencyHistogram>();
  const long before = spawn::bench::resident_bytes();
  Run spawned = each_once(
      s.actors, callers,
      [&](int i) { return spawn_and_inc(client, names[static_cast<std::size_t>(i)]); },
      spawn_latencies.get());
  const long after = spawn::bench::resident_bytes();
  std::fprintf(stderr, "spawn-sdk-bench: %d actors spawned and invoked in %.2f s\n", s.actors,
               spawned.seconds);
  Run run = measure(client, names, "inc", callers, s.seconds, s.clients.front());
  std::printf(
      "SDK_MEMORY actors=%d shards=%d rss_before=%ld rss_after=%ld bytes_per_actor=%.0f "
      "spawn_rate=%.0f spawn_p50_us=%.1f spawn_p99_us=%.1f rps=%.0f p50_us=%.1f p99_us=%.1f "
      "errors=%ld\n",
      s.actors, s.shards.front(), before, after, static_cast<double>(after - before) / s.actors,
      rate(spawned), spawn_latencies->percentile_us(0.5), spawn_latencies->percentile_us(0.99),
      rate(run), percentile_us(run.latencies_ns, 0.5), percentile_us(run.latencies_ns, 0.99),
      spawned.errors + run.errors);
  std::fflush(stdout);
  // Deactivating a million actors one by one is not what is measured: exit without it.
  node->kill_for_test();
  return spawned.errors + run.errors == 0 ? 0 : 1;
}

int run_activation(const Settings& s, const std::vector<std::string>& names) {
  const char* env_key = std::getenv("SPAWN_STATESTORE_KEY");
  const std::string key = env_key != nullptr && *env_key != '\0' ? env_key : random_key();
  const std::filesystem::path db =
      std::filesystem::path(s.dir) / ("spawn-sdk-bench-" + std::to_string(getpid()) + "-act.db");
  spawn::EmbeddedOptions options;
  options.statestore = "sqlite";
  options.database = db.string();
  options.statestore_key = key;
  options.threads = static_cast<std::size_t>(s.shards.front());
  const int callers = s.callers.front();
  long errors = 0;
  double populate_seconds = 0;
  {
    const auto start = Clock::now();
    auto node = spawn::Node::embedded(make_template_system(), options);
    if (!node) {
      std::cerr << "spawn-sdk-bench: cannot start the node: " << node.error().message << "\n";
      return 1;
    }
    const spawn::Client client = node->client();
    errors += each_once(s.actors, callers, [&](int i) {
                return spawn_and_inc(client, names[static_cast<std::size_t>(i)]);
              }).errors;
    node->stop();  // saves every actor's state
    populate_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::fprintf(stderr, "spawn-sdk-bench: %d actors stored in SQLite in %.2f s\n", s.actors,
                 populate_seconds);
  }
  auto node = spawn::Node::embedded(make_template_system(), options);
  if (!node) {
    std::cerr << "spawn-sdk-bench: cannot restart the node: " << node.error().message << "\n";
    return 1;
  }
  const spawn::Client client = node->client();
  errors += each_once(s.actors, callers, [&](int i) {
              return client.spawn(names[static_cast<std::size_t>(i)], "counter");
            }).errors;
  // Checks that a loaded state is the one the first node stored.
  auto check = [](spawn::Result<Counter> got) -> spawn::Result<void> {
    if (!got) {
      return std::move(got).error();
    }
    if (got->value() != 1) {
      return spawn::fail(spawn::ErrorCode::kDataLoss, "the state loaded is not the one stored");
    }
    return spawn::ok();
  };
  const bool then = s.clients.front() == "then";
  Run activated =
      then ? each_once_then(s.actors, callers,
                            [&](int i, std::function<void(spawn::Result<void>)> done) {
                              client.invoke_then<Counter>(
                                  kSystem, names[static_cast<std::size_t>(i)], "get",
                                  [check, done = std::move(done)](spawn::Result<Counter> got) {
                                    done(check(std::move(got)));
                                  });
                            })
           : each_once(s.actors, callers, [&](int i) {
               return check(
                   client.invoke<Counter>(kSystem, names[static_cast<std::size_t>(i)], "get"));
             });
  errors += activated.errors;
  std::printf(
      "SDK_ACTIVATION actors=%d shards=%d client=%s callers=%d rate=%.0f p50_us=%.1f "
      "p99_us=%.1f p999_us=%.1f populate_s=%.2f errors=%ld\n",
      s.actors, s.shards.front(), s.clients.front().c_str(), callers, rate(activated),
      percentile_us(activated.latencies_ns, 0.5), percentile_us(activated.latencies_ns, 0.99),
      percentile_us(activated.latencies_ns, 0.999), populate_seconds, errors);
  std::fflush(stdout);
  node->kill_for_test();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ignored;
    std::filesystem::remove(db.string() + suffix, ignored);
  }
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Settings settings = parse(argc, argv);
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(settings.actors));
  const bool children = settings.mode == "memory" || settings.mode == "activation";
  for (int i = 0; i < settings.actors; ++i) {
    names.push_back(children ? "m" + std::to_string(i) : actor_name(i));
  }
  if (settings.mode == "memory") {
    return run_memory(settings, names);
  }
  if (settings.mode == "activation") {
    return run_activation(settings, names);
  }
  return settings.mode == "embedded" ? run_embedded(settings, names) : run_sidecar(settings, names);
}
