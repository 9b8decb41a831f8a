#!/usr/bin/env bash
# Benchmarks the C++ SDK (spawn-sdk-bench, bench/sdk_bench.cpp) and prints the figures as a
# Markdown table (docs/performance.md, "SDK"). bench/run.sh runs it as its last step.
#
#   bench/run-sdk.sh
#
# 1. Embedded: the runtime in the benchmark's process, 1,000 counter actors; calls per second and
#    latency of `inc` (a state change) and `get` (the default read), with 1, 2, 4, 8 and 64 caller
#    threads, in memory and in SQLite, with 1 and 2 runtime shards; plus `inc` with checkpoint()
#    (a durable SQLite write before the reply) at 64 callers.
# 2. Sidecar: the benchmark serves the same actors to a real spawn-proxy (SQLite store) and calls
#    them through it: latency of `inc` and `get` with 1 and 16 callers.
#
# Everything listens on 127.0.0.1 only and everything started here is stopped on exit.
# Settings (environment):
#   SPAWN_BENCH_BUILD_DIR      use binaries already built there (default: build the `ci` preset's
#                              spawn-proxy and spawn-sdk-bench into build/ci)
#   SPAWN_SDK_BENCH_SECONDS    seconds per embedded run (default 1)
#   SPAWN_SDK_BENCH_SIDECAR_SECONDS seconds per sidecar run (default 2)
#   SPAWN_SDK_BENCH_REPEATS    repeats of every run; the median is reported (default 3)
#   SPAWN_SDK_BENCH_STORES     embedded statestores (default "memory,sqlite")
#   SPAWN_SDK_BENCH_SHARDS     embedded shard counts (default "1,2")
#   SPAWN_SDK_BENCH_CALLERS    embedded caller threads (default "1,2,4,8,64")
#   SPAWN_SDK_BENCH_SIDECAR_CALLERS  sidecar callers (default "1,16")
#   SPAWN_SDK_BENCH_CLIENTS    how callers call: "blocking" (threads calling Client::invoke, the
#                              default), "then" (chains of invoke_then) or "blocking,then"
#   SPAWN_SDK_BENCH_PROXY_SHARDS     the proxy's SPAWN_PROXY_SHARDS in sidecar mode (default 2)
#   SPAWN_SDK_BENCH_POOL_SIZE  the proxy's PROXY_HTTP_CLIENT_ADAPTER_POOL_SIZE (default: unset,
#                              the proxy's default)
#   SPAWN_SDK_BENCH_MODES      "embedded sidecar" (default) or either one
#   SPAWN_SDK_BENCH_PROXY_PORT, SPAWN_SDK_BENCH_HOST_PORT (defaults 19102, 19191)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${SPAWN_SDK_BENCH_SECONDS:-1}
sidecar_seconds=${SPAWN_SDK_BENCH_SIDECAR_SECONDS:-2}
repeats=${SPAWN_SDK_BENCH_REPEATS:-3}
stores=${SPAWN_SDK_BENCH_STORES:-memory,sqlite}
shards=${SPAWN_SDK_BENCH_SHARDS:-1,2}
callers=${SPAWN_SDK_BENCH_CALLERS:-1,2,4,8,64}
sidecar_callers=${SPAWN_SDK_BENCH_SIDECAR_CALLERS:-1,16}
clients=${SPAWN_SDK_BENCH_CLIENTS:-blocking}
proxy_shards=${SPAWN_SDK_BENCH_PROXY_SHARDS:-2}
pool_size=${SPAWN_SDK_BENCH_POOL_SIZE:-}
modes=${SPAWN_SDK_BENCH_MODES:-"embedded sidecar"}
proxy_port=${SPAWN_SDK_BENCH_PROXY_PORT:-19102}
host_port=${SPAWN_SDK_BENCH_HOST_PORT:-19191}
cores=$(nproc)

bench_name=bench-sdk
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
need_tools curl openssl

# --- build -------------------------------------------------------------------------------------
build_targets spawn-proxy spawn-sdk-bench
bench_bin=$build/bench/spawn-sdk-bench
for bin in "$build/apps/spawn-proxy/spawn-proxy" "$bench_bin"; do
  [[ -x $bin ]] || die "$bin is missing; build with -DSPAWN_BUILD_BENCH=ON"
done

results=$work/results.txt
: >"$results"
status=0

log "load before: $(load_average)"
if [[ " $modes " == *" embedded "* ]]; then
  SPAWN_STATESTORE_KEY=$(openssl rand -base64 32) "$bench_bin" embedded --stores "$stores" \
    --shards "$shards" --callers "$callers" --clients "$clients" --seconds "$seconds" \
    --repeats "$repeats" --dir "$work" >>"$results" ||
    status=1
fi

if [[ " $modes " == *" sidecar "* ]]; then
  need_free_port "$proxy_port" SPAWN_SDK_BENCH_PROXY_PORT
  need_free_port "$host_port" SPAWN_SDK_BENCH_HOST_PORT
  pool_env=()
  [[ -n $pool_size ]] && pool_env=("PROXY_HTTP_CLIENT_ADAPTER_POOL_SIZE=$pool_size")
  # The proxy calls the benchmark's host, which registers only once the proxy is up.
  start_proxy "$proxy_port" sqlite "$proxy_shards" "$host_port" "${pool_env[@]}"
  "$bench_bin" sidecar --proxy-port "$proxy_port" --port "$host_port" \
    --callers "$sidecar_callers" --clients "$clients" --seconds "$sidecar_seconds" \
    --repeats "$repeats" --store sqlite \
    --shards "$proxy_shards" >>"$results" || status=1
  stop_proxy
fi
log "load after: $(load_average)"

# --- report ------------------------------------------------------------------------------------
echo
echo "### 8. SDK: spawn-sdk-bench, 1000 counter actors round-robin"
echo
echo "$cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); embedded" \
  "${seconds}s runs, sidecar ${sidecar_seconds}s runs (spawn-proxy with $proxy_shards shard(s)," \
  "SQLite); median of $repeats by calls/s (range: all $repeats). Per core = calls/s / $cores." \
  "inc changes the state; get is the default read (no handler); inc_durable waits for a durable" \
  "write (checkpoint). The callers are threads of the same process, on the same $cores cores."
echo
echo "| mode | store | shards | client | callers | action | calls/s | range | per core | p50 µs |" \
  "p99 µs | p99.9 µs | errors |"
echo "|---|---|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|"
awk -v cores="$cores" '
  /^SDK_RESULT/ {
    delete r
    for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] }
    printf "| %s | %s | %s | %s | %s | %s | %d | %d–%d | %d | %.0f | %.0f | %.0f | %s |\n", r["mode"],
      r["store"], r["shards"], r["client"], r["callers"], r["action"], r["rps"], r["min_rps"], r["max_rps"],
      r["rps"] / cores, r["p50_us"], r["p99_us"], r["p999_us"], r["errors"]
  }' "$results"
[[ $status == 0 ]] || log "some SDK calls failed (see FIRST ERROR above)"
exit $status
