// spawn-store-bench: durable state writes per second and load latency of each statestore, in
// one run on one machine, with group commit on and off (docs/performance.md, "Statestores").
//
// Every store is opened with make_store(), as the proxy opens it (so writes are encrypted), and
// driven from one io_context thread, as a shard drives it. Writes: `--concurrency` coroutines
// each save their own actor revision after revision for `--seconds`; a save counts only once the
// store acknowledged it, which it does after COMMIT. Loads: `--actors` actors are stored (the
// writers' and more, each saved once), then `--load-concurrency` coroutines (default: as many as
// writers) load random ones until `--loads` loads completed; the rate and the latency of each
// load (from the call to its completion on the caller) are reported.
//
// Servers come from SPAWN_TEST_POSTGRES / SPAWN_TEST_MYSQL ("host=... port=... user=...
// password=... dbname=...", see scripts/start-databases.sh); a backend whose variable is unset is
// skipped. SQLite writes a file under --dir (default /var/tmp: a disk, not tmpfs).
//
//   spawn-store-bench [--seconds 5] [--concurrency 64] [--group-commit on|off|both]
//                     [--saves N] [--loads 2000] [--load-concurrency C] [--actors A] [--dir
//                     /var/tmp]
//   spawn-store-bench --ceiling 64 [--seconds 2] [--dir /var/tmp]
//
// `--seconds 0` skips the write phase (loads only). `--saves N` ends each writer after N saves (or
// at `--seconds`, whichever comes first), so a run does a known number of saves: with callgrind,
// (Ir of a run with more saves - Ir of one with fewer) / (difference in saves) is the CPU cost of
// one save without start-up. Prints one line per store and mode:
//   sqlite    on   W writes/s  L loads/s  load p50 P us  p99 Q us  failures F
//
// --ceiling B measures SQLite itself instead, with none of our code: one thread upserts rows of
// the size of an encrypted counter snapshot, B per transaction, in WAL mode with
// synchronous=FULL (the statestore's settings), for `--seconds`. Each row is durable once its
// COMMIT returned, as the statestore's group commit makes it. Prints
//   SQLITE_CEILING batch=B rows=N seconds=S rows_per_s=R commits_per_s=C

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <sqlite3.h>
#include <unistd.h>

#include "common/asio.hpp"
#include "statestore/make_store.hpp"

namespace {

using namespace spawn;  // NOLINT: a benchmark program
using Clock = std::chrono::steady_clock;

struct Settings {
  double seconds = 5;
  int concurrency = 64;
  int loads = 2000;
  int load_concurrency = 0;  // 0: as --concurrency
  int actors = 0;            // 0: as --concurrency
  std::string group_commit = "both";
  std::string dir = "/var/tmp";
  int ceiling_batch = 0;
  long saves = 0;  // per writer; 0: no limit
};

bool sqlite_ok(sqlite3* db, int code, const char* what) {
  if (code == SQLITE_OK || code == SQLITE_DONE || code == SQLITE_ROW) {
    return true;
  }
  std::fprintf(stderr, "spawn-store-bench: %s: %s\n", what, sqlite3_errmsg(db));
  return false;
}

// The ceiling of SQLite on this disk: batched upserts in WAL mode, synchronous=FULL.
int run_ceiling(const Settings& settings) {
  const std::filesystem::path file =
      std::filesystem::path(settings.dir)
      / ("spawn-store-bench-ceiling-" + std::to_string(getpid()) + ".db");
  sqlite3* db = nullptr;
  if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) {
    std::fprintf(stderr, "spawn-store-bench: cannot open %s\n", file.c_str());
    return 1;
  }
  bool ok =
      sqlite_ok(db, sqlite3_exec(db, "PRAGMA journal_mode = WAL", nullptr, nullptr, nullptr),
                "journal_mode")
      && sqlite_ok(db, sqlite3_exec(db, "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr),
                   "synchronous")
      && sqlite_ok(db,
                   sqlite3_exec(db,
                                "CREATE TABLE snapshots (system TEXT NOT NULL, actor TEXT "
                                "NOT NULL, revision INTEGER NOT NULL, data BLOB, PRIMARY "
                                "KEY (system, actor))",
                                nullptr, nullptr, nullptr),
                   "create");
  sqlite3_stmt* upsert = nullptr;
  ok = ok
       && sqlite_ok(db,
                    sqlite3_prepare_v2(db,
                                       "INSERT INTO snapshots (system, actor, revision, data) "
                                       "VALUES ('bench', ?1, ?2, ?3) ON CONFLICT (system, actor) "
                                       "DO UPDATE SET revision = excluded.revision, data = "
                                       "excluded.data",
                                       -1, &upsert, nullptr),
                    "prepare");
  // An encrypted counter snapshot: 12-byte nonce, 16-byte tag, the protobuf state and tags.
  const std::string data(96, 'x');
  long rows = 0;
  long commits = 0;
  const int actors = 1000;
  const auto start = Clock::now();
  const auto deadline = start
                        + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(settings.seconds));
  while (ok && Clock::now() < deadline) {
    ok = sqlite_ok(db, sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), "begin");
    for (int i = 0; ok && i < settings.ceiling_batch; ++i) {
      const std::string actor = "actor-" + std::to_string((rows + i) % actors);
      sqlite3_bind_text(upsert, 1, actor.data(), static_cast<int>(actor.size()), SQLITE_TRANSIENT);
      sqlite3_bind_int64(upsert, 2, rows + i);
      sqlite3_bind_blob(upsert, 3, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
      ok = sqlite_ok(db, sqlite3_step(upsert), "upsert");
      sqlite3_reset(upsert);
    }
    ok = ok && sqlite_ok(db, sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), "commit");
    if (ok) {
      rows += settings.ceiling_batch;
      ++commits;
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  sqlite3_finalize(upsert);
  sqlite3_close(db);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ignored;
    std::filesystem::remove(file.string() + suffix, ignored);
  }
  if (!ok) {
    return 1;
  }
  std::printf("SQLITE_CEILING batch=%d rows=%ld seconds=%.2f rows_per_s=%.0f commits_per_s=%.0f\n",
              settings.ceiling_batch, rows, elapsed, static_cast<double>(rows) / elapsed,
              static_cast<double>(commits) / elapsed);
  return 0;
}

// Fills the server fields of `config` from "key=value ..." in `variable`; false when unset.
bool server_from_env(const char* variable, statestore::StoreConfig& config) {
  const char* raw = std::getenv(variable);
  if (raw == nullptr || *raw == '\0') {
    return false;
  }
  std::istringstream words(raw);
  std::string word;
  config.name = "spawn_it";
  while (words >> word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    const std::string key = word.substr(0, eq);
    const std::string value = word.substr(eq + 1);
    if (key == "host") {
      config.host = value;
    } else if (key == "port") {
      config.port = static_cast<std::uint16_t>(std::atoi(value.c_str()));
    } else if (key == "user") {
      config.username = value;
    } else if (key == "password") {
      config.password = value;
    } else if (key == "dbname") {
      config.name = value;
    }
  }
  return true;
}

statestore::Snapshot make_snapshot(int revision) {
  statestore::Snapshot snapshot;
  snapshot.status = statestore::ActorStatus::kActivated;
  snapshot.tags = {{"bench", "true"}};
  snapshot.has_state = true;
  snapshot.type_url = "type.googleapis.com/bench.Counter";
  // A small protobuf-sized state, like a counter actor's.
  snapshot.data = std::string(64, 'x') + std::to_string(revision);
  return snapshot;
}

// One actor's writer: saves revision after revision until `deadline`; counts acknowledged saves.
Task<void> write_loop(statestore::Store* store, statestore::ActorKey key,
                      Clock::time_point deadline, long saves, long* writes, long* failures) {
  std::int64_t revision = 0;
  while ((saves == 0 || revision < saves) && Clock::now() < deadline) {
    Result<std::int64_t> saved =
        co_await store->save(key, make_snapshot(static_cast<int>(revision + 1)), revision);
    if (!saved) {
      ++*failures;
      co_return;
    }
    revision = *saved;
    ++*writes;
  }
}

// Saves actors [first, actors) once each, every `stride`-th one starting at `first`.
Task<void> fill_loop(statestore::Store* store, std::string system, int first, int stride,
                     int actors, long* failures) {
  for (int i = first; i < actors; i += stride) {
    const statestore::ActorKey key{system, "actor-" + std::to_string(i)};
    Result<std::int64_t> saved = co_await store->save(key, make_snapshot(1), 0);
    if (!saved) {
      ++*failures;
    }
  }
}

// One of the concurrent loaders: loads random actors until `*remaining` loads were started.
Task<void> load_loop(statestore::Store* store, std::string system, int actors, unsigned seed,
                     int* remaining, std::vector<double>* micros, long* failures) {
  std::mt19937 random(seed);
  while (*remaining > 0) {
    --*remaining;
    const statestore::ActorKey key{system, "actor-" + std::to_string(random() % actors)};
    const auto start = Clock::now();
    Result<std::optional<statestore::Snapshot>> loaded = co_await store->load(key);
    micros->push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    if (!loaded || !loaded->has_value()) {
      ++*failures;
    }
  }
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  return values[static_cast<std::size_t>(p * static_cast<double>(values.size() - 1))];
}

void run(const std::string& label, statestore::StoreConfig config, const Settings& settings) {
  Result<std::unique_ptr<statestore::Store>> store = statestore::make_store(config);
  if (!store) {
    std::printf("%-9s %-5s  cannot open: %s\n", label.c_str(), config.group_commit ? "on" : "off",
                store.error().message.c_str());
    return;
  }
  // Actors of their own on every run, so runs never conflict with what earlier ones stored.
  const std::string system =
      "bench-" + std::to_string(Clock::now().time_since_epoch().count()) + "-" + label;
  long writes = 0;
  long failures = 0;
  double write_seconds = 0;
  if (settings.seconds > 0) {
    asio::io_context io;
    const auto start = Clock::now();
    const auto deadline = start
                          + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(settings.seconds));
    for (int i = 0; i < settings.concurrency; ++i) {
      asio::co_spawn(io,
                     write_loop(store->get(), {system, "actor-" + std::to_string(i)}, deadline,
                                settings.saves, &writes, &failures),
                     asio::detached);
    }
    io.run();
    write_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  }
  const int actors = settings.actors > 0 ? settings.actors : settings.concurrency;
  {
    // Store the actors the writers did not (all of them when there was no write phase).
    asio::io_context io;
    const int first = settings.seconds > 0 ? settings.concurrency : 0;
    for (int i = 0; i < settings.concurrency; ++i) {
      asio::co_spawn(
          io, fill_loop(store->get(), system, first + i, settings.concurrency, actors, &failures),
          asio::detached);
    }
    io.run();
  }
  std::vector<double> micros;
  micros.reserve(static_cast<std::size_t>(std::max(settings.loads, 0)));
  double load_seconds = 0;
  {
    asio::io_context io;
    int remaining = settings.loads;
    const int loaders =
        settings.load_concurrency > 0 ? settings.load_concurrency : settings.concurrency;
    const auto start = Clock::now();
    for (int i = 0; i < loaders; ++i) {
      asio::co_spawn(io,
                     load_loop(store->get(), system, actors, 42U + static_cast<unsigned>(i),
                               &remaining, &micros, &failures),
                     asio::detached);
    }
    io.run();
    load_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  }
  std::printf(
      "%-9s %-5s  %9.0f writes/s  %9.0f loads/s  load p50 %7.0f us  p99 %7.0f us  "
      "failures %ld  saves %ld\n",
      label.c_str(), config.group_commit ? "on" : "off",
      write_seconds > 0 ? static_cast<double>(writes) / write_seconds : 0.0,
      load_seconds > 0 ? static_cast<double>(micros.size()) / load_seconds : 0.0,
      percentile(micros, 0.5), percentile(micros, 0.99), failures, writes);
}

}  // namespace

int main(int argc, char** argv) {
  Settings settings;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--seconds") {
      settings.seconds = std::atof(value);
    } else if (flag == "--concurrency") {
      settings.concurrency = std::atoi(value);
    } else if (flag == "--loads") {
      settings.loads = std::atoi(value);
    } else if (flag == "--load-concurrency") {
      settings.load_concurrency = std::atoi(value);
    } else if (flag == "--actors") {
      settings.actors = std::atoi(value);
    } else if (flag == "--group-commit") {
      settings.group_commit = value;
    } else if (flag == "--dir") {
      settings.dir = value;
    } else if (flag == "--saves") {
      settings.saves = std::atol(value);
    } else if (flag == "--ceiling") {
      settings.ceiling_batch = std::atoi(value);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (settings.ceiling_batch > 0) {
    return run_ceiling(settings);
  }
  if (settings.group_commit != "on" && settings.group_commit != "off"
      && settings.group_commit != "both") {
    std::fprintf(stderr, "--group-commit takes on, off or both\n");
    return 2;
  }
  std::printf("concurrency %d, %.1f s per run, %d loads; writes are durable when counted\n",
              settings.concurrency, settings.seconds, settings.loads);
  const std::string key = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=";  // 32 x 'a'
  const std::filesystem::path sqlite_dir =
      std::filesystem::path(settings.dir) / ("spawn-store-bench-" + std::to_string(getpid()));
  for (const bool group_commit : {true, false}) {
    if (settings.group_commit != "both" && (settings.group_commit == "on") != group_commit) {
      continue;
    }
    statestore::StoreConfig sqlite;
    sqlite.type = "sqlite";
    sqlite.name = (sqlite_dir / (group_commit ? "on.db" : "off.db")).string();
    sqlite.key_b64 = key;
    sqlite.group_commit = group_commit;
    run("sqlite", sqlite, settings);

    statestore::StoreConfig postgres;
    postgres.type = "postgres";
    postgres.key_b64 = key;
    postgres.group_commit = group_commit;
    if (server_from_env("SPAWN_TEST_POSTGRES", postgres)) {
      run("postgres", postgres, settings);
    }

    statestore::StoreConfig mariadb;
    mariadb.type = "mariadb";
    mariadb.key_b64 = key;
    mariadb.group_commit = group_commit;
    if (server_from_env("SPAWN_TEST_MYSQL", mariadb)) {
      run("mariadb", mariadb, settings);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(sqlite_dir, ec);
  return 0;
}
