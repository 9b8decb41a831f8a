#!/usr/bin/env bash
# Benchmarks spawn-proxy on loopback and prints the figures as a Markdown table
# (docs/performance.md explains them).
#
#   bench/run.sh
#
# 1. Sidecar throughput and latency: wrk (64 connections) -> spawn-proxy -> spawn-bench-host over
#    1,000 stateful counter actors, round-robin, for getState (answered by the proxy), inc (a host
#    round trip) and inc with checkpoint=true (a durable SQLite write before the reply), plus inc
#    with one connection (latency without queueing); once per shard count, each run repeated.
# 2. Broadcast fan-out to 10,000 subscribers and the firing rate of 100,000 scheduled invocations
#    (spawn-bench-driver), on the shard count with the best inc rate.
# 3. The C++ SDK, embedded and as a sidecar host of the proxy (bench/run-sdk.sh, which has its
#    own settings; its sidecar proxy runs with the shard count chosen in 2).
#
# Everything listens on 127.0.0.1 only, every run is bounded, and everything started here is
# stopped on exit. Settings (environment):
#   SPAWN_BENCH_BUILD_DIR   use binaries already built there (default: build the `ci` preset's
#                           proxy and bench targets into build/ci)
#   SPAWN_BENCH_DURATION    seconds per wrk run (default 8)
#   SPAWN_BENCH_REPEATS     runs per scenario; the median run is reported (default 3)
#   SPAWN_BENCH_SHARDS      shard counts to try (default "1 2")
#   SPAWN_BENCH_STORES      statestores to try (default "sqlite"; "sqlite memory" adds memory)
#   SPAWN_BENCH_WRK_THREADS wrk threads (default 1)
#   SPAWN_BENCH_HOST_THREADS bench host threads (default 1)
#   SPAWN_BENCH_POOL_SIZE   PROXY_HTTP_CLIENT_ADAPTER_POOL_SIZE (default: unset, the proxy's
#                           default of 128 idle host connections per shard; the baseline used 64)
#   SPAWN_BENCH_SCHEDULED   scheduled invocations (default 100000); SPAWN_BENCH_SUBSCRIBERS
#                           broadcast subscribers (default 10000); 0 skips either benchmark
#   SPAWN_BENCH_SDK         0 skips the SDK benchmark (default 1)
#   SPAWN_BENCH_PROXY_PORT, SPAWN_BENCH_HOST_PORT (defaults 19101, 19190)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=${SPAWN_BENCH_DURATION:-8}
repeats=${SPAWN_BENCH_REPEATS:-3}
shard_list=${SPAWN_BENCH_SHARDS:-"1 2"}
store_list=${SPAWN_BENCH_STORES:-sqlite}
wrk_threads=${SPAWN_BENCH_WRK_THREADS:-1}
host_threads=${SPAWN_BENCH_HOST_THREADS:-1}
pool_size=${SPAWN_BENCH_POOL_SIZE:-}
pool_label=${pool_size:-"default (128)"}
scheduled=${SPAWN_BENCH_SCHEDULED:-100000}
subscribers=${SPAWN_BENCH_SUBSCRIBERS:-10000}
sdk=${SPAWN_BENCH_SDK:-1}
proxy_port=${SPAWN_BENCH_PROXY_PORT:-19101}
host_port=${SPAWN_BENCH_HOST_PORT:-19190}
connections=64
actors=1000
system=bench

log() { echo "bench: $*" >&2; }
die() {
  log "$*"
  if [[ -s ${work:-}/proxy.log ]]; then
    log "last lines of the proxy's log:"
    tail -n 20 "$work/proxy.log" >&2
  fi
  if [[ -n ${proxy_pid:-} ]] && ! kill -0 "$proxy_pid" 2>/dev/null; then
    wait "$proxy_pid" 2>/dev/null
    log "spawn-proxy is no longer running (exit status $?)"
  fi
  exit 1
}

for tool in wrk curl openssl; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh installs it)"
done

# --- build -------------------------------------------------------------------------------------
targets=(spawn-proxy spawn-bench-host spawn-bench-requests spawn-bench-driver spawn-sdk-bench)
if [[ -n ${SPAWN_BENCH_BUILD_DIR:-} ]]; then
  build=$SPAWN_BENCH_BUILD_DIR
else
  build=$root/build/ci
  log "building ${targets[*]} with the ci preset into $build"
  cmake --preset ci >/dev/null
  cmake --build --preset ci -j "${SPAWN_BUILD_JOBS:-$(nproc)}" --target "${targets[@]}" >/dev/null
fi
proxy_bin=$build/apps/spawn-proxy/spawn-proxy
host_bin=$build/bench/spawn-bench-host
requests_bin=$build/bench/spawn-bench-requests
driver_bin=$build/bench/spawn-bench-driver
for bin in "$proxy_bin" "$host_bin" "$requests_bin" "$driver_bin"; do
  [[ -x $bin ]] || die "$bin is missing; build with -DSPAWN_BUILD_BENCH=ON"
done

# --- processes ---------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-bench.XXXXXX")
proxy_pid=""
host_pid=""

stop_pid() {
  local pid=$1
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # called by the trap
cleanup() {
  stop_pid "$proxy_pid"
  stop_pid "$host_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_busy "$proxy_port" && die "port $proxy_port is in use (set SPAWN_BENCH_PROXY_PORT)"
port_busy "$host_port" && die "port $host_port is in use (set SPAWN_BENCH_HOST_PORT)"

wait_until() {  # wait_until <what> <command...>: up to 10 s
  local what=$1
  shift
  for _ in $(seq 200); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  die "$what did not come up"
}

start_host() {
  "$host_bin" "$host_port" "$host_threads" 2>"$work/host.log" &
  host_pid=$!
  wait_until "spawn-bench-host" port_busy "$host_port"
}

start_proxy() {  # start_proxy <store> <shards>
  local store=$1 shards=$2
  rm -f "$work"/state.sqlite*
  PROXY_HTTP_PORT=$proxy_port SPAWN_PROXY_BIND_ADDRESS=127.0.0.1 \
    USER_FUNCTION_HOST=127.0.0.1 USER_FUNCTION_PORT=$host_port \
    PROXY_DATABASE_TYPE=$store PROXY_DATABASE_NAME=$work/state.sqlite \
    SPAWN_STATESTORE_KEY=$(openssl rand -base64 32) \
    SPAWN_PROXY_SHARDS=$shards SPAWN_PROXY_LOGGER_LEVEL=warning SPAWN_PROXY_SHUTDOWN_DRAIN_MS=0 \
    env ${pool_size:+"PROXY_HTTP_CLIENT_ADAPTER_POOL_SIZE=$pool_size"} "$proxy_bin" \
    2>>"$work/proxy.log" &  # env execs the proxy: $! is the proxy's pid
  proxy_pid=$!
  wait_until "spawn-proxy" curl -sf "http://127.0.0.1:$proxy_port/health/readiness"
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary "@$work/registration.bin" \
    -H 'content-type: application/octet-stream' "http://127.0.0.1:$proxy_port/api/v1/system")
  [[ $code == 200 ]] || die "registration answered HTTP $code"
}

stop_proxy() {
  stop_pid "$proxy_pid"
  proxy_pid=""
}

# --- request bodies ----------------------------------------------------------------------------
"$requests_bin" registration --system "$system" --prefix a --actors "$actors" \
  --out "$work/registration.bin"
"$requests_bin" invocations --system "$system" --prefix a --actors "$actors" --action getState \
  --out "$work/getState.bin"
"$requests_bin" invocations --system "$system" --prefix a --actors "$actors" --action inc \
  --out "$work/inc.bin"
"$requests_bin" invocations --system "$system" --prefix a --actors "$actors" --action inc \
  --metadata checkpoint=true --out "$work/inc-checkpoint.bin"

# --- wrk runs ----------------------------------------------------------------------------------
results=$work/results.tsv  # scenario store shards conns run rps p50 p99 p999 errors
: >"$results"
error_total=0

run_wrk() {  # run_wrk <scenario> <body file> <store> <shards> <connections> <seconds> <run>
  local scenario=$1 bodies=$2 store=$3 shards=$4 conns=$5 seconds=$6 run=$7 line
  local threads=$wrk_threads
  ((threads > conns)) && threads=$conns
  line=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency -s "$root/bench/wrk_invoke.lua" \
    "http://127.0.0.1:$proxy_port" -- "$bodies" | grep '^WRK_RESULT') || die "wrk failed"
  local -A r=()
  for pair in ${line#WRK_RESULT }; do r[${pair%%=*}]=${pair#*=}; done
  local errors=$((r[connect] + r[read] + r[write] + r[status] + r[timeout]))
  error_total=$((error_total + errors))
  printf '  %-15s store=%-6s shards=%s c=%-2s run=%s %7s req/s p50=%sus p99=%sus p99.9=%sus ' \
    "$scenario" "$store" "$shards" "$conns" "$run" "${r[rps]}" "${r[p50_us]}" "${r[p99_us]}" \
    "${r[p999_us]}" >&2
  printf 'errors: connect=%s read=%s write=%s non-2xx=%s timeout=%s\n' "${r[connect]}" \
    "${r[read]}" "${r[write]}" "${r[status]}" "${r[timeout]}" >&2
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$store" "$shards" "$conns" \
    "$run" "${r[rps]}" "${r[p50_us]}" "${r[p99_us]}" "${r[p999_us]}" "$errors" >>"$results"
}

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
start_host
for store in $store_list; do
  for shards in $shard_list; do
    log "proxy: store=$store shards=$shards (wrk -t$wrk_threads, host threads $host_threads," \
      "host pool $pool_label)"
    start_proxy "$store" "$shards"
    # Warm-up: activations, host connections, SQLite pages.
    wrk -t1 -c"$connections" -d2s -s "$root/bench/wrk_invoke.lua" \
      "http://127.0.0.1:$proxy_port" -- "$work/inc.bin" >/dev/null
    for scenario in getState inc inc-checkpoint; do
      for run in $(seq "$repeats"); do
        run_wrk "$scenario" "$work/$scenario.bin" "$store" "$shards" "$connections" "$duration" \
          "$run"
      done
    done
    run_wrk "inc" "$work/inc.bin" "$store" "$shards" 1 "$(((duration + 1) / 2))" 1
    stop_proxy
  done
done

# The shard count with the best median inc rate (SQLite) runs the fan-out and scheduling tests.
median_rows() {  # the median run (by req/s) of each scenario/store/shards/connections group
  sort -t$'\t' -k1,1 -k2,2 -k3,3n -k4,4n -k6,6n "$results" | awk -F'\t' '
    { key = $1 FS $2 FS $3 FS $4; rows[key, ++n[key]] = $0; if (!(key in seen)) { seen[key] = 1; order[++k] = key } }
    END { for (i = 1; i <= k; i++) { key = order[i]; print rows[key, int((n[key] + 1) / 2)] } }'
}
medians=$work/medians.tsv
median_rows >"$medians"
first_store=${store_list%% *}
best_shards=$(awk -F'\t' -v s="$first_store" '$1 == "inc" && $2 == s && $4 == 64 { print $6, $3 }' \
  "$medians" | sort -n | tail -1 | cut -d' ' -f2)

fanout_line=""
schedule_line=""
if ((subscribers > 0 || scheduled > 0)); then
  log "proxy: store=$first_store shards=$best_shards for fan-out and scheduling"
  start_proxy "$first_store" "$best_shards"
  if ((subscribers > 0)); then
    "$driver_bin" fanout --proxy-port "$proxy_port" --host-port "$host_port" \
      --subscribers "$subscribers" --rounds 3 | tee "$work/fanout.txt" >&2 ||
      die "fan-out benchmark failed"
    fanout_line=$(grep -m1 '^FANOUT_RESULT' "$work/fanout.txt")
  fi
  if ((scheduled > 0)); then
    "$driver_bin" schedule --proxy-port "$proxy_port" --host-port "$host_port" --system "$system" \
      --prefix a --actors "$actors" --count "$scheduled" --window-ms 1000 \
      --connections "$connections" | tee "$work/schedule.txt" >&2 ||
      die "scheduling benchmark failed"
    schedule_line=$(grep '^SCHEDULE_RESULT' "$work/schedule.txt")
  fi
  stop_proxy
fi

sdk_status=0
if ((sdk)); then
  log "SDK benchmark (bench/run-sdk.sh)"
  SPAWN_BENCH_BUILD_DIR=$build SPAWN_SDK_BENCH_PROXY_SHARDS=$best_shards \
    "$root/bench/run-sdk.sh" >"$work/sdk.md" || sdk_status=$?
fi
log "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- report ------------------------------------------------------------------------------------
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

echo
echo "### Sidecar: wrk -> spawn-proxy -> spawn-bench-host, $actors actors round-robin"
echo
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs));" \
  "wrk -t$wrk_threads, ${duration}s runs, median of $repeats by req/s; bench host $host_threads" \
  "thread(s); PROXY_HTTP_CLIENT_ADAPTER_POOL_SIZE=$pool_label."
echo
echo "| scenario | store | shards | connections | req/s | p50 ms | p99 ms | p99.9 ms | errors |"
echo "|---|---|---|---|---:|---:|---:|---:|---:|"
row() {  # row <scenario> <store> <shards> <connections>: the median run, if any
  awk -F'\t' -v a="$1" -v b="$2" -v c="$3" -v d="$4" \
    '$1 == a && $2 == b && $3 == c && $4 == d' "$medians"
}
for conns in "$connections" 1; do
  for scenario in getState inc inc-checkpoint; do
    for store in $store_list; do
      for shards in $shard_list; do
        line=$(row "$scenario" "$store" "$shards" "$conns")
        [[ -n $line ]] || continue
        IFS=$'\t' read -r _ _ _ _ _ rps p50 p99 p999 errors <<<"$line"
        case $scenario in
          getState) label="getState (proxy answers)" ;;
          inc) label="inc (host round trip)" ;;
          inc-checkpoint) label="inc, checkpoint=true (SQLite write)" ;;
        esac
        echo "| $label | $store | $shards | $conns | $rps | $(ms "$p50") | $(ms "$p99") |" \
          "$(ms "$p999") | $errors |"
      done
    done
  done
done
echo
echo "Errors are wrk's connect, read, write, timeout and non-2xx counts, summed; every run is" \
  "listed above on stderr."

if [[ -n $fanout_line || -n $schedule_line ]]; then
  echo
  echo "### Broadcast fan-out and scheduled invocations (store=$first_store, shards=$best_shards)"
  echo
  echo "| benchmark | result |"
  echo "|---|---|"
fi
if [[ -n $fanout_line ]]; then
  while read -r line; do
    round=$(field "$line" round)
    what="warm (subscribers active)"
    [[ $round == 1 ]] && what="cold (activates every subscriber)"
    echo "| fan-out to $(field "$line" subscribers) subscribers, round $round, $what |" \
      "$(field "$line" deliveries_per_s) deliveries/s; all delivered after $(field "$line" all_ms) ms" \
      "(first after $(field "$line" first_ms) ms, announce reply $(field "$line" reply_ms) ms) |"
  done < <(grep '^FANOUT_RESULT' "$work/fanout.txt")
fi
if [[ -n $schedule_line ]]; then
  echo "| store $(field "$schedule_line" count) scheduled invocations (durable, 64 connections) |" \
    "$(field "$schedule_line" stored_per_s) stored/s |"
  echo "| fire them (due evenly within 1 s) |" \
    "$(field "$schedule_line" fired_per_s) fired/s; the last ran" \
    "$(field "$schedule_line" last_late_ms) ms after its due time;" \
    "$(field "$schedule_line" duplicates) ran twice |"
fi

if [[ -s $work/sdk.md ]]; then
  cat "$work/sdk.md"
fi

status=0
if ((sdk_status != 0)); then
  log "the SDK benchmark failed (exit status $sdk_status)"
  status=1
fi
if ((error_total > 0)); then
  log "wrk saw $error_total errors in total (see the runs above)"
  status=1
fi
if [[ -n $schedule_line ]] && [[ $(field "$schedule_line" duplicates) != 0 ]]; then
  log "scheduled invocations ran more than once: $(field "$schedule_line" duplicates)" \
    "(a proxy bug, see docs/performance.md)"
fi
exit $status
