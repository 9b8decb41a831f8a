// spawn-caf-bench: the reference for the embedded runtime (docs/performance.md, "Embedded mode
// against CAF"): the same workloads as `spawn-sdk-bench roundtrips` and `spawn-sdk-bench memory`,
// written with the C++ Actor Framework (Debian's libcaf-dev, 0.17).
//
//   spawn-caf-bench roundtrips [--actors 1000] [--callers 64] [--threads 2] [--seconds 2]
//   spawn-caf-bench memory [--actors 1000000] [--threads 2]
//
// roundtrips: `--actors` stateful counter actors (one per id; the state is an int64) and
// `--callers` caller actors; each caller sends a request (the increment) to the next counter,
// round-robin from its own offset, waits for the reply (the new value), and sends the next. The
// scheduler has `--threads` worker threads. Prints
//   CAF_RESULT mode=roundtrips actors=.. callers=.. threads=.. calls=.. seconds=.. rps=..
//     p50_us=.. p99_us=.. p999_us=..
// memory: resident memory before and after spawning `--actors` counters, each sent one request
// and answered (so every one is running, idle, with its state). Prints
//   CAF_RESULT mode=memory actors=.. rss_before=.. rss_after=.. bytes_per_actor=.. seconds=..

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <unistd.h>

#include "in_process.hpp"

using spawn::bench::percentile_us;

namespace {

using Clock = std::chrono::steady_clock;

struct Settings {
  std::string mode;
  int actors = 0;
  int callers = 64;
  int threads = 2;
  double seconds = 2;
};

using GoAtom = caf::atom_constant<caf::atom("go")>;

struct CounterState {
  std::int64_t value = 0;
};

caf::behavior counter(caf::stateful_actor<CounterState>* self) {
  return {[self](std::int64_t by) {
    self->state.value += by;
    return self->state.value;
  }};
}

/// What every caller adds to at the end of a run.
struct Totals {
  std::atomic<bool> stop{false};
  std::atomic<int> finished{0};
  std::mutex mutex;  // guards latencies_ns
  std::vector<std::int64_t> latencies_ns;
  long calls = 0;
};

struct CallerState {
  std::size_t next = 0;
  Clock::time_point sent{};
  std::vector<std::int64_t> latencies_ns;
};

/// Asks counter after counter (a request, then the next once the reply is in) until told to stop.
void call_next(caf::stateful_actor<CallerState>* self, const std::vector<caf::actor>* counters,
               Totals* totals) {
  if (totals->stop.load(std::memory_order_relaxed)) {
    std::lock_guard lock(totals->mutex);
    totals->calls += static_cast<long>(self->state.latencies_ns.size());
    totals->latencies_ns.insert(totals->latencies_ns.end(), self->state.latencies_ns.begin(),
                                self->state.latencies_ns.end());
    ++totals->finished;
    self->quit();
    return;
  }
  const caf::actor& target = (*counters)[self->state.next];
  self->state.next = self->state.next + 1 == counters->size() ? 0 : self->state.next + 1;
  self->state.sent = Clock::now();
  self->request(target, caf::infinite, std::int64_t{1})
      .then([self, counters, totals](std::int64_t) {
        self->state.latencies_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - self->state.sent)
                .count());
        call_next(self, counters, totals);
      });
}

caf::behavior caller(caf::stateful_actor<CallerState>* self, std::size_t offset,
                     const std::vector<caf::actor>* counters, Totals* totals) {
  self->state.next = offset;
  self->state.latencies_ns.reserve(1U << 18U);
  return {[self, counters, totals](GoAtom) {
    call_next(self, counters, totals);
  }};
}

caf::actor_system_config make_config(const Settings& s) {
  caf::actor_system_config config;
  config.set("scheduler.max-threads", static_cast<std::size_t>(s.threads));
  return config;
}

int run_roundtrips(const Settings& s) {
  caf::actor_system_config config = make_config(s);
  caf::actor_system system{config};
  std::vector<caf::actor> counters;
  counters.reserve(static_cast<std::size_t>(s.actors));
  for (int i = 0; i < s.actors; ++i) {
    counters.push_back(system.spawn(counter));
  }
  Totals totals;
  std::vector<caf::actor> callers;
  for (int i = 0; i < s.callers; ++i) {
    const auto offset =
        static_cast<std::size_t>(i) * counters.size() / static_cast<std::size_t>(s.callers);
    callers.push_back(system.spawn(caller, offset, &counters, &totals));
  }
  const auto start = Clock::now();
  for (const auto& c : callers) {
    caf::anon_send(c, GoAtom::value);
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(s.seconds));
  totals.stop = true;
  while (totals.finished.load() < s.callers) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const auto& c : counters) {
    caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  }
  std::printf(
      "CAF_RESULT mode=roundtrips actors=%d callers=%d threads=%d calls=%ld seconds=%.2f "
      "rps=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f\n",
      s.actors, s.callers, s.threads, totals.calls, seconds,
      static_cast<double>(totals.calls) / seconds, percentile_us(totals.latencies_ns, 0.5),
      percentile_us(totals.latencies_ns, 0.99), percentile_us(totals.latencies_ns, 0.999));
  return 0;
}

int run_memory(const Settings& s) {
  caf::actor_system_config config = make_config(s);
  caf::actor_system system{config};
  std::vector<caf::actor> counters;
  counters.reserve(static_cast<std::size_t>(s.actors));
  caf::scoped_actor self{system};
  const long before = spawn::bench::resident_bytes();
  const auto start = Clock::now();
  // Batches bound the replies waiting in the scoped actor's mailbox.
  constexpr int kBatch = 10000;
  for (int first = 0; first < s.actors; first += kBatch) {
    const int last = std::min(s.actors, first + kBatch);
    for (int i = first; i < last; ++i) {
      counters.push_back(system.spawn(counter));
      self->send(counters.back(), std::int64_t{1});
    }
    for (int i = first; i < last; ++i) {
      self->receive([](std::int64_t) {});
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const long after = spawn::bench::resident_bytes();
  std::printf(
      "CAF_RESULT mode=memory actors=%d rss_before=%ld rss_after=%ld bytes_per_actor=%.0f "
      "seconds=%.2f rate=%.0f\n",
      s.actors, before, after, static_cast<double>(after - before) / s.actors, seconds,
      s.actors / seconds);
  std::fflush(stdout);
  for (const auto& c : counters) {
    caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  }
  return 0;
}

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "spawn-caf-bench: %s\nusage: spawn-caf-bench roundtrips|memory [options] (see "
               "bench/caf_bench.cpp)\n",
               why.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage("no mode");
  }
  Settings s;
  s.mode = argv[1];
  s.actors = s.mode == "memory" ? 1000000 : 1000;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) {
      usage(arg + " needs a value");
    }
    const char* value = argv[++i];
    if (arg == "--actors") {
      s.actors = std::atoi(value);
    } else if (arg == "--callers") {
      s.callers = std::atoi(value);
    } else if (arg == "--threads") {
      s.threads = std::atoi(value);
    } else if (arg == "--seconds") {
      s.seconds = std::atof(value);
    } else {
      usage("unknown option " + arg);
    }
  }
  if (s.actors < 1 || s.callers < 1 || s.threads < 1) {
    usage("--actors, --callers and --threads must be positive");
  }
  if (s.mode == "roundtrips") {
    return run_roundtrips(s);
  }
  if (s.mode == "memory") {
    return run_memory(s);
  }
  usage("unknown mode '" + s.mode + "'");
}
