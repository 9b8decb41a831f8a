// Directory operations per second against a real nats-server with JetStream: the KV calls the
// cluster makes (docs/cluster.md) — create-if-absent (placing a new actor), get (locating one not
// cached), compare-and-set update (taking one over) — each from several threads for a while.
//
//   spawn-directory-bench nats://127.0.0.1:4222 [seconds per operation] [threads]
//
// Prints one line per operation: "directory <op> ops/s <n> p50_ms <x> p99_ms <y>".

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/nats.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using spawn::cluster::kv_create;
using spawn::cluster::kv_get;
using spawn::cluster::kv_update;

struct Figures {
  double rate = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  long errors = 0;
};

/// Runs `op(thread, i)` from `threads` threads for `seconds`; returns rate and latency.
template <class Op>
Figures measure(int threads, double seconds, Op op) {
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(threads));
  std::atomic<long> errors{0};
  std::vector<std::thread> workers;
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto& mine = latencies[static_cast<std::size_t>(t)];
      for (long i = 0; Clock::now() < deadline; ++i) {
        auto begin = Clock::now();
        if (!op(t, i)) {
          errors++;
        }
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - begin).count());
      }
    });
  }
  for (auto& worker : workers) {
    worker.join();
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& mine : latencies) {
    all.insert(all.end(), mine.begin(), mine.end());
  }
  std::sort(all.begin(), all.end());
  Figures figures;
  if (!all.empty()) {
    figures.rate = static_cast<double>(all.size()) / elapsed;
    figures.p50_ms = all[all.size() / 2];
    figures.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  figures.errors = errors;
  return figures;
}

void print(const char* op, const Figures& f) {
  std::printf("directory %s ops/s %.0f p50_ms %.3f p99_ms %.3f errors %ld\n", op, f.rate, f.p50_ms,
              f.p99_ms, f.errors);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: spawn-directory-bench NATS_URL [seconds] [threads]\n");
    return 2;
  }
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 8;
  spawn::cluster::NatsSettings settings;
  settings.servers = {argv[1]};
  auto connection = spawn::cluster::NatsConnection::connect(settings);
  if (!connection) {
    std::fprintf(stderr, "spawn-directory-bench: %s\n", connection.error().message.c_str());
    return 1;
  }
  auto bucket = (*connection)->bucket("bench_directory");
  if (!bucket) {
    std::fprintf(stderr, "spawn-directory-bench: %s\n", bucket.error().message.c_str());
    return 1;
  }
  kvStore* kv = *bucket;
  const std::string run = std::to_string(Clock::now().time_since_epoch().count());
  auto key = [&](int t, long i) {
    return "sys." + run + "-" + std::to_string(t) + "-" + std::to_string(i);
  };
  std::vector<long> created(static_cast<std::size_t>(threads), 0);
  std::mutex created_mutex;
  auto place = measure(threads, seconds, [&](int t, long i) {
    auto done = kv_create(kv, key(t, i), "node-a");
    if (done && *done) {
      std::lock_guard lock(created_mutex);
      created[static_cast<std::size_t>(t)] = i + 1;
    }
    return done && done->has_value();
  });
  print("create", place);
  auto locate = measure(threads, seconds, [&](int t, long i) {
    long count = std::max(1L, created[static_cast<std::size_t>(t)]);
    auto entry = kv_get(kv, key(t, i % count));
    return entry && entry->has_value();
  });
  print("get", locate);
  auto take_over = measure(threads, seconds, [&](int t, long i) {
    long count = std::max(1L, created[static_cast<std::size_t>(t)]);
    auto name = key(t, i % count);
    auto entry = kv_get(kv, name);
    if (!entry || !*entry) {
      return false;
    }
    auto updated = kv_update(kv, name, i % 2 == 0 ? "node-b" : "node-a", (*entry)->revision);
    return updated && updated->has_value();
  });
  print("get+cas", take_over);
  return 0;
}
