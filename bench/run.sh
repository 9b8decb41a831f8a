#!/usr/bin/env bash
# The benchmark suite: measures spawn-proxy and the embedded runtime side by side with their
# references (nginx, CAF, SQLite itself) in one run, and prints the figures as Markdown tables
# (docs/performance.md explains them).
#
#   bench/run.sh                 # everything, about 7.5 minutes on two cores
#   BENCH_QUICK=1 bench/run.sh   # the same items, shorter and smaller, about 1 minute
#
# 1. Sidecar hop against nginx: wrk (64 connections) -> spawn-proxy -> spawn-bench-host over 1,000
#    stateful counter actors, round-robin, for getState (answered by the proxy), inc (a host
#    round trip) and inc with checkpoint=true (a durable SQLite write before the reply), plus inc
#    with one connection; once per shard count, each run repeated. Reference: the same wrk ->
#    nginx (keep-alive reverse proxy, generated config) -> the same host answering the same bytes.
# 2. Embedded runtime against CAF: 64 callers over 1,000 counter actors on 2 threads,
#    round trips per second (spawn-sdk-bench embedded, spawn-caf-bench roundtrips).
# 3. Memory per actor: RSS growth for 1,000,000 activated idle counters, ours and CAF's.
# 4. Activation: cold activations from SQLite (rate, p99), and unnamed spawn + first invoke.
# 5. Durable writes: checkpointed updates per second through the runtime on SQLite, against the
#    ceiling of SQLite itself (batched WAL transactions, spawn-store-bench --ceiling).
# 6. Cost curve: throughput and memory from 1,000 to 1,000,000 actors (embedded) and from 1 to 256
#    connections (sidecar and nginx); a table and docs/img/cost-curve.png (gnuplot).
# 7. Broadcast fan-out to 10,000 subscribers and the firing rate of 100,000 scheduled
#    invocations (spawn-bench-driver), on the shard count with the best inc rate.
# 8. The C++ SDK, embedded and as a sidecar host of the proxy (bench/run-sdk.sh, which has its
#    own settings).
# 9. The cluster (bench/cluster.sh): local against remote invocations through one node, recovery
#    after kill -9, directory operations per second.
#
# Everything listens on 127.0.0.1 only, every run is bounded, and everything started here is
# stopped on exit. Settings (environment):
#   BENCH_QUICK             1: 2 s runs, one repeat, 2 shards only, 100,000 actors at most,
#                           no fan-out, scheduling or SDK steps (each can still be set below)
#   SPAWN_BENCH_SIDECAR_ONLY 1: item 1 only (the sidecar hop against nginx), then its table
#   SPAWN_BENCH_BUILD_DIR   use binaries already built there (default: build the `ci` preset's
#                           proxy and bench targets into build/ci)
#   SPAWN_BENCH_DURATION    seconds per wrk run (default 5)
#   SPAWN_BENCH_REPEATS     runs per scenario; the median run is reported (default 3)
#   SPAWN_BENCH_SHARDS      shard counts to try (default "1 2")
#   SPAWN_BENCH_STORES      statestores to try (default "sqlite"; "sqlite memory" adds memory)
#   SPAWN_BENCH_WRK_THREADS wrk threads (default 1)
#   SPAWN_BENCH_HOST_THREADS bench host threads (default 1)
#   SPAWN_BENCH_POOL_SIZE   PROXY_HTTP_CLIENT_ADAPTER_POOL_SIZE (default: unset, the proxy's
#                           default of 128 idle host connections per shard; the baseline used 64)
#   SPAWN_BENCH_NGINX_WORKERS nginx worker processes (default 1: `master_process off`, one
#                           process; more runs a master and that many workers)
#   SPAWN_BENCH_MEMORY_ACTORS actors of the memory comparison (default 1000000)
#   SPAWN_BENCH_CURVE_ACTORS actor counts of the cost curve (default "1000 10000 100000", plus
#                           the memory comparison's count)
#   SPAWN_BENCH_CURVE_CONNECTIONS connections of the cost curve (default "1 4 16 64 256")
#   SPAWN_BENCH_ACTIVATIONS cold activations (default 100000)
#   SPAWN_BENCH_PLOT        where the cost curve's PNG goes (default docs/img/cost-curve.png,
#                           quick mode: none; empty: no plot)
#   SPAWN_BENCH_SCHEDULED   scheduled invocations (default 100000); SPAWN_BENCH_SUBSCRIBERS
#                           broadcast subscribers (default 10000); 0 skips either benchmark
#   SPAWN_BENCH_SDK         0 skips the SDK benchmark (default 1)
#   SPAWN_BENCH_CLUSTER     0 skips the cluster benchmark (bench/cluster.sh; default 1, quick 0)
#   SPAWN_BENCH_PROXY_PORT, SPAWN_BENCH_HOST_PORT, SPAWN_BENCH_NGINX_PORT (defaults 19101, 19190,
#                           19180)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=${BENCH_QUICK:-0}
if ((quick)); then
  q_duration=2 q_repeats=1 q_shards=2 q_memory=100000 q_curve="1000 10000" q_activations=20000
  q_scheduled=0 q_subscribers=0 q_sdk=0 q_caf_seconds=1 q_cluster=0
else
  q_duration=5 q_repeats=3 q_shards="1 2" q_memory=1000000 q_curve="1000 10000 100000"
  q_activations=100000 q_scheduled=100000 q_subscribers=10000 q_sdk=1 q_caf_seconds=2
  q_cluster=1
fi
duration=${SPAWN_BENCH_DURATION:-$q_duration}
repeats=${SPAWN_BENCH_REPEATS:-$q_repeats}
shard_list=${SPAWN_BENCH_SHARDS:-$q_shards}
store_list=${SPAWN_BENCH_STORES:-sqlite}
wrk_threads=${SPAWN_BENCH_WRK_THREADS:-1}
host_threads=${SPAWN_BENCH_HOST_THREADS:-1}
pool_size=${SPAWN_BENCH_POOL_SIZE:-}
pool_label=${pool_size:-"default (128)"}
nginx_workers=${SPAWN_BENCH_NGINX_WORKERS:-1}
memory_actors=${SPAWN_BENCH_MEMORY_ACTORS:-$q_memory}
curve_actors=${SPAWN_BENCH_CURVE_ACTORS:-$q_curve}
curve_connections=${SPAWN_BENCH_CURVE_CONNECTIONS:-"1 4 16 64 256"}
activations=${SPAWN_BENCH_ACTIVATIONS:-$q_activations}
# A quick run draws its plot in the temporary folder, not over the committed one.
if ((quick)); then
  plot=${SPAWN_BENCH_PLOT-}
else
  plot=${SPAWN_BENCH_PLOT-docs/img/cost-curve.png}
fi
scheduled=${SPAWN_BENCH_SCHEDULED:-$q_scheduled}
subscribers=${SPAWN_BENCH_SUBSCRIBERS:-$q_subscribers}
sdk=${SPAWN_BENCH_SDK:-$q_sdk}
cluster=${SPAWN_BENCH_CLUSTER:-$q_cluster}
sidecar_only=${SPAWN_BENCH_SIDECAR_ONLY:-0}
proxy_port=${SPAWN_BENCH_PROXY_PORT:-19101}
host_port=${SPAWN_BENCH_HOST_PORT:-19190}
nginx_port=${SPAWN_BENCH_NGINX_PORT:-19180}
connections=64
actors=1000
system=bench

bench_name=bench
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
need_tools wrk curl openssl

# --- build -------------------------------------------------------------------------------------
build_targets spawn-proxy spawn-bench-host spawn-bench-requests spawn-bench-driver \
  spawn-sdk-bench spawn-store-bench spawn-caf-bench spawnctl spawn-directory-bench
host_bin=$build/bench/spawn-bench-host
requests_bin=$build/bench/spawn-bench-requests
driver_bin=$build/bench/spawn-bench-driver
sdk_bin=$build/bench/spawn-sdk-bench
store_bin=$build/bench/spawn-store-bench
caf_bin=$build/bench/spawn-caf-bench
needed=("$build/apps/spawn-proxy/spawn-proxy" "$host_bin" "$requests_bin")
((sidecar_only)) || needed+=("$driver_bin" "$sdk_bin" "$store_bin")
for bin in "${needed[@]}"; do
  [[ -x $bin ]] || die "$bin is missing; build with -DSPAWN_BUILD_BENCH=ON"
done
if [[ ! -x $caf_bin ]]; then
  log "spawn-caf-bench is missing (CAF, libcaf-dev, was not found at configure time):" \
    "the CAF reference is skipped"
  caf_bin=""
fi
nginx_bin=$(command -v nginx || true)
[[ -x $nginx_bin ]] || nginx_bin=/usr/sbin/nginx
[[ -x $nginx_bin ]] || die "nginx is missing (scripts/setup.sh installs nginx-light)"

need_free_port "$proxy_port" SPAWN_BENCH_PROXY_PORT
need_free_port "$host_port" SPAWN_BENCH_HOST_PORT
need_free_port "$nginx_port" SPAWN_BENCH_NGINX_PORT

start_host() {
  start_bg "$host_bin" "$host_port" "$host_threads" 2>"$work/host.log"
  wait_until "spawn-bench-host" port_busy "$host_port"
}

start_bench_proxy() {  # start_bench_proxy <store> <shards>: the proxy, with the bench actors
  start_proxy "$proxy_port" "$1" "$2" "$host_port" \
    ${pool_size:+"PROXY_HTTP_CLIENT_ADAPTER_POOL_SIZE=$pool_size"}
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary "@$work/registration.bin" \
    -H 'content-type: application/octet-stream' "http://127.0.0.1:$proxy_port/api/v1/system")
  [[ $code == 200 ]] || die "registration answered HTTP $code"
}

# nginx as a keep-alive reverse proxy in front of the bench host, on 127.0.0.1 only.
nginx_pid=""
start_nginx() {
  local dir=$work/nginx master=off
  ((nginx_workers > 1)) && master=on
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process $master;
worker_processes $nginx_workers;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
  upstream host {
    server 127.0.0.1:$host_port;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://host;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
  start_bg "$nginx_bin" -p "$dir" -c "$dir/nginx.conf"
  nginx_pid=$last_pid
  wait_until "nginx" port_busy "$nginx_port"
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
# What the proxy sends the host for inc: the nginx reference posts these.
"$requests_bin" host-invocations --system "$system" --prefix a --actors "$actors" --action inc \
  --out "$work/host-inc.bin"

# --- 1. sidecar and nginx: wrk runs ------------------------------------------------------------
results=$work/results.tsv  # scenario store shards conns run rps p50 p99 p999 errors
: >"$results"
error_total=0

# run_wrk <port> <scenario> <body file> <store> <shards> <connections> <seconds> <run> [file]
run_wrk() {
  local port=$1 scenario=$2 bodies=$3 store=$4 shards=$5 conns=$6 seconds=$7 run=$8 line
  local out=${9:-$results}
  local threads=$wrk_threads
  ((threads > conns)) && threads=$conns
  line=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency -s "$root/bench/wrk_invoke.lua" \
    "http://127.0.0.1:$port" -- "$bodies" | grep '^WRK_RESULT') || die "wrk failed"
  local -A r=()
  for pair in ${line#WRK_RESULT }; do r[${pair%%=*}]=${pair#*=}; done
  local errors=$((r[connect] + r[read] + r[write] + r[status] + r[timeout]))
  error_total=$((error_total + errors))
  printf '  %-15s store=%-6s shards=%s c=%-3s run=%s %7s req/s p50=%sus p99=%sus p99.9=%sus ' \
    "$scenario" "$store" "$shards" "$conns" "$run" "${r[rps]}" "${r[p50_us]}" "${r[p99_us]}" \
    "${r[p999_us]}" >&2
  printf 'errors: connect=%s read=%s write=%s non-2xx=%s timeout=%s\n' "${r[connect]}" \
    "${r[read]}" "${r[write]}" "${r[status]}" "${r[timeout]}" >&2
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$store" "$shards" "$conns" \
    "$run" "${r[rps]}" "${r[p50_us]}" "${r[p99_us]}" "${r[p999_us]}" "$errors" >>"$out"
}

warm_up() {  # warm_up <port> <body file>: activations, connections, SQLite pages
  wrk -t1 -c"$connections" -d2s -s "$root/bench/wrk_invoke.lua" "http://127.0.0.1:$1" -- "$2" \
    >/dev/null
}

log "machine: $(machine)"
log "load before: $(load_average)"
load_before=$(load_average)
start_host
log "nginx: $nginx_workers worker process(es), keep-alive upstream to spawn-bench-host"
start_nginx
warm_up "$nginx_port" "$work/host-inc.bin"
for run in $(seq "$repeats"); do
  run_wrk "$nginx_port" nginx "$work/host-inc.bin" nginx "$nginx_workers" "$connections" \
    "$duration" "$run"
done
run_wrk "$nginx_port" nginx "$work/host-inc.bin" nginx "$nginx_workers" 1 \
  "$(((duration + 1) / 2))" 1
stop_pid "$nginx_pid"
for store in $store_list; do
  for shards in $shard_list; do
    log "proxy: store=$store shards=$shards (wrk -t$wrk_threads, host threads $host_threads," \
      "host pool $pool_label)"
    start_bench_proxy "$store" "$shards"
    warm_up "$proxy_port" "$work/inc.bin"
    for scenario in getState inc inc-checkpoint; do
      for run in $(seq "$repeats"); do
        run_wrk "$proxy_port" "$scenario" "$work/$scenario.bin" "$store" "$shards" \
          "$connections" "$duration" "$run"
      done
    done
    run_wrk "$proxy_port" "inc" "$work/inc.bin" "$store" "$shards" 1 "$(((duration + 1) / 2))" 1
    stop_proxy
  done
done

median_rows() {  # the median run (by req/s) of each scenario/store/shards/connections group
  sort -t$'\t' -k1,1 -k2,2 -k3,3n -k4,4n -k6,6n "$results" | awk -F'\t' '
    { key = $1 FS $2 FS $3 FS $4; rows[key, ++n[key]] = $0; if (!(key in seen)) { seen[key] = 1; order[++k] = key } }
    END { for (i = 1; i <= k; i++) { key = order[i]; print rows[key, int((n[key] + 1) / 2)] } }'
}
medians=$work/medians.tsv
median_rows >"$medians"
first_store=${store_list%% *}
# The shard count with the best median inc rate runs the cost curve, fan-out and scheduling.
best_shards=$(awk -F'\t' -v s="$first_store" '$1 == "inc" && $2 == s && $4 == 64 { print $6, $3 }' \
  "$medians" | sort -n | tail -1 | cut -d' ' -f2)

# Items 6a to 9 (not indented: the block only skips them for SPAWN_BENCH_SIDECAR_ONLY).
if ((!sidecar_only)); then
# --- 6a. cost curve over connections -----------------------------------------------------------
curve_seconds=$(((duration + 1) / 2))
((curve_seconds < 2)) && curve_seconds=2
conn_curve=$work/curve-connections.tsv
: >"$conn_curve"
log "cost curve: 1 wrk run of ${curve_seconds}s per connection count ($curve_connections)"
start_bench_proxy "$first_store" "$best_shards"
warm_up "$proxy_port" "$work/inc.bin"
for conns in $curve_connections; do
  run_wrk "$proxy_port" inc "$work/inc.bin" "$first_store" "$best_shards" "$conns" \
    "$curve_seconds" 1 "$conn_curve"
done
stop_proxy
start_nginx
warm_up "$nginx_port" "$work/host-inc.bin"
for conns in $curve_connections; do
  run_wrk "$nginx_port" nginx "$work/host-inc.bin" nginx "$nginx_workers" "$conns" \
    "$curve_seconds" 1 "$conn_curve"
done
stop_pid "$nginx_pid"

# --- 7. fan-out and scheduling -----------------------------------------------------------------
fanout_line=""
schedule_line=""
if ((subscribers > 0 || scheduled > 0)); then
  log "proxy: store=$first_store shards=$best_shards for fan-out and scheduling"
  start_bench_proxy "$first_store" "$best_shards"
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
for pid in "${started_pids[@]}"; do
  stop_pid "$pid"
done
started_pids=()

# --- 2.-6. in-process: embedded runtime, CAF, SQLite -------------------------------------------
# SQLite files go to a disk (durability is the point), not to a tmpfs.
disk_dir=${SPAWN_BENCH_DISK_DIR:-/var/tmp}
embedded=$work/embedded.txt  # SDK_RESULT, SDK_MEMORY, SDK_ACTIVATION, CAF_RESULT, SQLITE_CEILING
: >"$embedded"
embedded_status=0
key=$(openssl rand -base64 32)
sdk_run() { SPAWN_STATESTORE_KEY=$key "$sdk_bin" "$@" 2>>"$work/sdk-bench.log" >>"$embedded"; }
caf_run() { [[ -z $caf_bin ]] || "$caf_bin" "$@" >>"$embedded"; }

log "embedded against CAF: 64 callers, 1000 counters, 2 threads, $repeats x ${q_caf_seconds}s"
for run in $(seq "$repeats"); do
  sdk_run embedded --stores memory --shards 2 --callers 64 --actions inc --actors 1000 \
    --clients then,blocking --seconds "$q_caf_seconds" --repeats 1 --durable-callers "" ||
    embedded_status=1
  caf_run roundtrips --actors 1000 --callers 64 --threads 2 --seconds "$q_caf_seconds" ||
    embedded_status=1
done
log "memory per actor and cost curve over actors: $curve_actors $memory_actors"
for count in $curve_actors $memory_actors; do
  sdk_run memory --actors "$count" --shards 2 --callers 64 --client then \
    --seconds "$curve_seconds" || embedded_status=1
  caf_run memory --actors "$count" --threads 2 || embedded_status=1
  caf_run roundtrips --actors "$count" --callers 64 --threads 2 --seconds "$curve_seconds" ||
    embedded_status=1
done
log "cold activations from SQLite: $activations actors"
sdk_run activation --actors "$activations" --shards 2 --callers 64 --client then \
  --dir "$disk_dir" || embedded_status=1
log "durable writes: checkpoint through the runtime, and SQLite's own ceiling"
for run in $(seq "$repeats"); do
  for callers in 64 256; do
    sdk_run embedded --stores sqlite --shards 2 --callers "$callers" --actions "" \
      --durable-callers "$callers" --clients then --seconds "$q_caf_seconds" --repeats 1 \
      --dir "$disk_dir" || embedded_status=1
  done
  for batch in 64 256; do
    "$store_bin" --ceiling "$batch" --seconds "$q_caf_seconds" --dir "$disk_dir" >>"$embedded" ||
      embedded_status=1
  done
done

# --- 8. SDK ------------------------------------------------------------------------------------
sdk_status=0
if ((sdk)); then
  log "SDK benchmark (bench/run-sdk.sh)"
  SPAWN_BENCH_BUILD_DIR=$build SPAWN_SDK_BENCH_PROXY_SHARDS=$best_shards \
    "$root/bench/run-sdk.sh" >"$work/sdk.md" || sdk_status=$?
fi

# --- 9. Cluster ---------------------------------------------------------------------------------
cluster_status=0
if ((cluster)); then
  log "cluster benchmark (bench/cluster.sh)"
  SPAWN_BENCH_BUILD_DIR=$build "$root/bench/cluster.sh" >"$work/cluster.md" || cluster_status=$?
fi
fi  # SPAWN_BENCH_SIDECAR_ONLY
load_after=$(load_average)
log "load after: $load_after"

# --- report ------------------------------------------------------------------------------------
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
# median <pattern> <field>: the median value of <field> over the lines of $embedded matching it
median() {
  grep -E "$1" "$embedded" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}
# median_line <pattern> <field>: the whole median line by <field>
median_line() {
  grep -E "$1" "$embedded" | awk -v f="$2" '{ for (i = 2; i <= NF; i++) { split($i, kv, "=");
    if (kv[1] == f) print kv[2] "\t" $0 } }' | sort -g | awk -F'\t' '{ l[NR] = $2 }
    END { if (NR) print l[int((NR + 1) / 2)] }'
}
row() {  # row <scenario> <store> <shards> <connections>: the median run, if any
  awk -F'\t' -v a="$1" -v b="$2" -v c="$3" -v d="$4" \
    '$1 == a && $2 == b && $3 == c && $4 == d' "$medians"
}

echo
echo "Commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
  [[ -n $(git -C "$root" status --porcelain 2>/dev/null) ]] && echo " (working tree changed)"),"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(machine); load average before $load_before, after" \
  "$load_after (1, 5, 15 min)."
((quick)) && echo "BENCH_QUICK=1: short runs, smaller counts; figures for a check, not a record."

echo
echo "### 1. Sidecar hop against nginx: wrk -> (spawn-proxy | nginx) -> spawn-bench-host"
echo
echo "$actors actors round-robin; wrk -t$wrk_threads, ${duration}s runs, median of $repeats by" \
  "req/s; bench host $host_threads thread(s); PROXY_HTTP_CLIENT_ADAPTER_POOL_SIZE=$pool_label;" \
  "nginx $nginx_workers worker process(es), keep-alive upstream; its requests are the" \
  "ActorInvocations the proxy sends the host for inc, answered by the same host."
echo
echo "| scenario | via | shards | connections | req/s | ratio to nginx | p50 ms | p99 ms |" \
  "p99.9 ms | errors |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
for conns in "$connections" 1; do
  ref=$(row nginx nginx "$nginx_workers" "$conns")
  IFS=$'\t' read -r _ _ _ _ _ ref_rps _ <<<"$ref"
  echo "| reference: host round trip | nginx | - | $conns | $ref_rps | 1.00 |" \
    "$(ms "$(cut -f7 <<<"$ref")") | $(ms "$(cut -f8 <<<"$ref")") | $(ms "$(cut -f9 <<<"$ref")") |" \
    "$(cut -f10 <<<"$ref") |"
  for scenario in getState inc inc-checkpoint; do
    for store in $store_list; do
      for shards in $shard_list; do
        line=$(row "$scenario" "$store" "$shards" "$conns")
        [[ -n $line ]] || continue
        IFS=$'\t' read -r _ _ _ _ _ rps p50 p99 p999 errors <<<"$line"
        case $scenario in
          getState) label="(a) getState (proxy answers)" ;;
          inc) label="(b) inc (host round trip)" ;;
          inc-checkpoint) label="(c) inc, checkpoint=true (durable SQLite write)" ;;
        esac
        echo "| $label | spawn-proxy ($store) | $shards | $conns | $rps | $(ratio "$rps" "$ref_rps") |" \
          "$(ms "$p50") | $(ms "$p99") | $(ms "$p999") | $errors |"
      done
    done
  done
done
echo
echo "Errors are wrk's connect, read, write, timeout and non-2xx counts, summed; every run is" \
  "listed on stderr."
if ((sidecar_only)); then
  ((error_total == 0)) || die "wrk saw $error_total errors in total (see the runs above)"
  exit 0
fi

echo
echo "### 2. Embedded runtime against CAF: 64 callers, 1000 counter actors, 2 threads"
echo
ours=$(median_line '^SDK_RESULT mode=embedded store=memory .* client=then .* action=inc ' rps)
blocking=$(median_line '^SDK_RESULT mode=embedded store=memory .* client=blocking .* action=inc ' rps)
theirs=$(median_line '^CAF_RESULT mode=roundtrips actors=1000 callers=64 ' rps)
echo "Median of $repeats runs of ${q_caf_seconds}s. Ours: spawn-sdk-bench embedded (memory store," \
  "2 shards, inc): 64 callers as chains of invoke_then (each reply starts the next call, on the" \
  "runtime's threads), and for comparison 64 threads calling the blocking Client. CAF $(
    [[ -n $caf_bin ]] && echo "0.17: spawn-caf-bench roundtrips (64 caller actors, request/then)" ||
      echo "not built")."
echo
echo "| runtime | round trips/s | ratio to CAF | p50 µs | p99 µs | goal |"
echo "|---|---:|---:|---:|---:|---|"
caf_row() {  # caf_row <label> <result line> <goal>: one runtime against CAF's line
  echo "| $1 | $(field "$2" rps) | $(ratio "$(field "$2" rps)" "$(field "$theirs" rps)") |" \
    "$(field "$2" p50_us) | $(field "$2" p99_us) | $3 |"
}
caf_row CAF "$theirs" ""
caf_row "spawn embedded, invoke_then" "$ours" "≥ 1.00"
caf_row "spawn embedded, blocking Client (64 threads)" "$blocking" ""

echo
echo "### 3. Memory per actor: $memory_actors activated idle counters"
echo
ours=$(grep "^SDK_MEMORY actors=$memory_actors " "$embedded" | tail -1)
theirs=$(grep "^CAF_RESULT mode=memory actors=$memory_actors " "$embedded" | tail -1)
echo "RSS growth of the process over spawning and invoking every actor once, divided by the" \
  "count. Ours: unnamed template, spawn + inc each (memory store, 2 shards); CAF: spawn + one" \
  "request each."
echo
echo "| runtime | RSS before MB | RSS after MB | bytes per actor | ratio to CAF | goal |"
echo "|---|---:|---:|---:|---:|---|"
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
echo "| CAF | $(mb "$(field "$theirs" rss_before)") | $(mb "$(field "$theirs" rss_after)") |" \
  "$(field "$theirs" bytes_per_actor) | 1.00 | |"
echo "| spawn embedded | $(mb "$(field "$ours" rss_before)") | $(mb "$(field "$ours" rss_after)") |" \
  "$(field "$ours" bytes_per_actor) |" \
  "$(ratio "$(field "$ours" bytes_per_actor)" "$(field "$theirs" bytes_per_actor)") | ≤ 0.50 |"

echo
echo "### 4. Activation"
echo
act=$(grep '^SDK_ACTIVATION' "$embedded" | tail -1)
echo "Cold: $(field "$act" actors) actors stored in SQLite by a first node (spawn + inc, then" \
  "stop), then a second node on the same file invokes the default get on each once," \
  "$(field "$act" callers) calls in flight (invoke_then chains), 2 shards: each call loads the state. Spawn: unnamed spawn + first inc, memory store" \
  "($memory_actors actors, from item 3)."
echo
echo "| what | per second | p50 µs | p99 µs | goal |"
echo "|---|---:|---:|---:|---|"
echo "| cold activation from SQLite | $(field "$act" rate) | $(field "$act" p50_us) |" \
  "$(field "$act" p99_us) | ≥ 100,000/s, p99 < 1,000 µs |"
echo "| unnamed spawn + first invoke | $(field "$ours" spawn_rate) | $(field "$ours" spawn_p50_us) |" \
  "$(field "$ours" spawn_p99_us) | |"

echo
echo "### 5. Durable writes: checkpoint through the runtime against SQLite's ceiling"
echo
durable_line='^SDK_RESULT mode=embedded store=sqlite .* callers=%s action=inc_durable '
durable=$(median_line "$(printf "$durable_line" 64)" rps)
durable256=$(median_line "$(printf "$durable_line" 256)" rps)
c64=$(median '^SQLITE_CEILING batch=64 ' rows_per_s)
c256=$(median '^SQLITE_CEILING batch=256 ' rows_per_s)
ceiling=$(awk -v a="${c64:-0}" -v b="${c256:-0}" 'BEGIN { print (a > b ? a : b) }')
echo "Median of $repeats runs of ${q_caf_seconds}s each, files in $disk_dir. Runtime: inc with" \
  "checkpoint() from 64 callers (invoke_then chains), each reply after its group-committed write (WAL," \
  "synchronous=FULL, AES-GCM); with 256 callers for comparison (batches of up to 256, as the" \
  "ceiling's second row). SQLite alone: spawn-store-bench --ceiling B, upserting B rows per" \
  "transaction with the same settings; the ceiling is the better of the two."
echo
echo "| what | durable updates/s | share of the ceiling | p99 µs | goal |"
echo "|---|---:|---:|---:|---|"
echo "| SQLite alone, 64 rows per transaction | $c64 | $(ratio "$c64" "$ceiling") | | |"
echo "| SQLite alone, 256 rows per transaction | $c256 | $(ratio "$c256" "$ceiling") | | |"
echo "| runtime, checkpoint per update (64 callers) | $(field "$durable" rps) |" \
  "$(ratio "$(field "$durable" rps)" "$ceiling") | $(field "$durable" p99_us) | ≥ 0.50 |"
echo "| runtime, checkpoint per update (256 callers) | $(field "$durable256" rps) |" \
  "$(ratio "$(field "$durable256" rps)" "$ceiling") | $(field "$durable256" p99_us) | |"

echo
echo "### 6. Cost curve"
echo
echo "Embedded (64 invoke_then chains, 2 shards, inc round-robin over every actor, ${curve_seconds}s) and" \
  "CAF (the same workload), by number of actors:"
echo
echo "| actors | spawn round trips/s | spawn bytes/actor | CAF round trips/s | CAF bytes/actor |"
echo "|---:|---:|---:|---:|---:|"
curve_tsv=$work/curve-actors.tsv
: >"$curve_tsv"
for count in $curve_actors $memory_actors; do
  o=$(grep "^SDK_MEMORY actors=$count " "$embedded" | tail -1)
  m=$(grep "^CAF_RESULT mode=memory actors=$count " "$embedded" | tail -1)
  t=$(grep "^CAF_RESULT mode=roundtrips actors=$count " "$embedded" | tail -1)
  echo "| $count | $(field "$o" rps) | $(field "$o" bytes_per_actor) | $(field "$t" rps) |" \
    "$(field "$m" bytes_per_actor) |"
  printf '%s\t%s\t%s\t%s\t%s\n' "$count" "$(field "$o" rps)" "$(field "$o" bytes_per_actor)" \
    "$(field "$t" rps)" "$(field "$m" bytes_per_actor)" >>"$curve_tsv"
done
echo
echo "Sidecar inc (spawn-proxy, $best_shards shard(s)) and nginx, by wrk connections" \
  "(${curve_seconds}s each):"
echo
echo "| connections | spawn-proxy req/s | p99 ms | nginx req/s | p99 ms | ratio |"
echo "|---:|---:|---:|---:|---:|---:|"
conn_tsv=$work/curve-conn-joined.tsv
: >"$conn_tsv"
for conns in $curve_connections; do
  p=$(awk -F'\t' -v c="$conns" '$1 == "inc" && $4 == c' "$conn_curve")
  n=$(awk -F'\t' -v c="$conns" '$1 == "nginx" && $4 == c' "$conn_curve")
  echo "| $conns | $(cut -f6 <<<"$p") | $(ms "$(cut -f8 <<<"$p")") | $(cut -f6 <<<"$n") |" \
    "$(ms "$(cut -f8 <<<"$n")") | $(ratio "$(cut -f6 <<<"$p")" "$(cut -f6 <<<"$n")") |"
  printf '%s\t%s\t%s\t%s\t%s\n' "$conns" "$(cut -f6 <<<"$p")" "$(cut -f8 <<<"$p")" \
    "$(cut -f6 <<<"$n")" "$(cut -f8 <<<"$n")" >>"$conn_tsv"
done
if [[ -n $plot ]]; then
  if command -v gnuplot >/dev/null; then
    mkdir -p "$(dirname "$plot")"
    gnuplot -e "actors='$curve_tsv'; conns='$conn_tsv'; out='$plot'" "$root/bench/cost-curve.gp" &&
      echo && echo "Plot: \`$plot\`."
  else
    log "gnuplot is missing (scripts/setup.sh installs gnuplot-nox): no plot"
  fi
fi

if [[ -n $fanout_line || -n $schedule_line ]]; then
  echo
  echo "### 7. Broadcast fan-out and scheduled invocations (store=$first_store, shards=$best_shards)"
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
  cat "$work/sdk.md"  # its own heading: "SDK"
fi

if [[ -s $work/cluster.md ]]; then
  echo
  echo "### 9. Cluster: local against remote invocations, recovery, directory (bench/cluster.sh)"
  echo
  cat "$work/cluster.md"
fi

status=0
if ((cluster_status != 0)); then
  log "the cluster benchmark failed (exit status $cluster_status)"
  status=1
fi
if ((sdk_status != 0)); then
  log "the SDK benchmark failed (exit status $sdk_status)"
  status=1
fi
if ((embedded_status != 0)); then
  log "an in-process benchmark failed (see $work/sdk-bench.log above)"
  tail -n 20 "$work/sdk-bench.log" >&2 || true
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
