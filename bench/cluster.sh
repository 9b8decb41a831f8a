#!/usr/bin/env bash
# Cluster figures (docs/cluster.md, docs/performance.md "Cluster"), all on 127.0.0.1:
#
#   bench/cluster.sh
#
# 1. Local against remote invocations in one run: nats-server (JetStream), proxies A and B on one
#    SQLite file, one spawn-bench-host behind both. A's host registers the template "lt", B's the
#    template "rt"; `spawnctl load` through A over 1,000 children of each: "l-*" can only live on
#    A (local), "r-*" only on B (every call crosses NATS to B and back).
# 2. Recovery: a third proxy C registers "rt" too; B is killed (SIGKILL) and the time until every
#    "r-*" actor answers again through A (now on C) is measured, with the default node timeout.
# 3. Directory operations per second (spawn-directory-bench): create-if-absent, get, get + CAS.
#
# Settings: SPAWN_BENCH_BUILD_DIR (binaries already built there), SPAWN_BENCH_REQUESTS (per load
# run, default 40000), SPAWN_BENCH_CONCURRENCY (default 64).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bench_name=cluster
# shellcheck source=bench/lib.sh
source bench/lib.sh

requests=${SPAWN_BENCH_REQUESTS:-40000}
concurrency=${SPAWN_BENCH_CONCURRENCY:-64}
nats_port=19422
host_port=19290
ports=(19201 19202 19203)

need_tools nats-server openssl curl
build_targets spawn-proxy spawnctl spawn-bench-host spawn-directory-bench
spawnctl=$build/apps/spawnctl/spawnctl
for port in "$nats_port" "$host_port" "${ports[@]}"; do
  need_free_port "$port" "the ports in bench/cluster.sh"
done

nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$work/jetstream" -l "$work/nats.log" &
started_pids+=($!)
"$build/bench/spawn-bench-host" "$host_port" 1 >"$work/host.log" 2>&1 &
started_pids+=($!)
wait_until "nats-server" port_busy "$nats_port"

key=$(openssl rand -base64 32)
node_pids=()
start_node() {  # start_node <index>
  local i=$1
  env PROXY_HTTP_PORT="${ports[$i]}" USER_FUNCTION_HOST=127.0.0.1 USER_FUNCTION_PORT="$host_port" \
    PROXY_DATABASE_TYPE=sqlite PROXY_DATABASE_NAME="$work/spawn.db" SPAWN_STATESTORE_KEY="$key" \
    SPAWN_PROXY_SHARDS=1 SPAWN_PROXY_NODE="node$i" SPAWN_PROXY_LOGGER_LEVEL=warning \
    SPAWN_USE_INTERNAL_NATS=true SPAWN_INTERNAL_NATS_HOSTS="nats://127.0.0.1:$nats_port" \
    "$build/apps/spawn-proxy/spawn-proxy" >"$work/node$i.log" 2>&1 &
  node_pids[$i]=$!
  started_pids+=($!)
  wait_until "node$i" port_busy "${ports[$i]}"
}

register() {  # register <index> <template>...
  local i=$1 actors="" template
  shift
  for template in "$@"; do
    [[ -n $actors ]] && actors+=","
    actors+="\"$template\":{\"id\":{\"name\":\"$template\",\"system\":\"bench\"},"
    actors+="\"settings\":{\"kind\":\"UNNAMED\",\"stateful\":true},"
    actors+="\"actions\":[{\"name\":\"inc\"}]}"
  done
  echo "{\"name\":\"bench\",\"registry\":{\"actors\":{$actors}}}" >"$work/register$i.json"
  "$spawnctl" --proxy "127.0.0.1:${ports[$i]}" register "$work/register$i.json" >/dev/null
}

load() {  # load <prefix> <requests>: prints spawnctl's summary line
  "$spawnctl" --proxy "127.0.0.1:${ports[0]}" load bench "$1" inc -n "$2" -c "$concurrency" \
    --actors 1000 --parent "${1}t" 2>&1 | tail -n 1
}

start_node 0
start_node 1
register 0 lt
register 1 rt
wait_until "two nodes" bash -c "'$spawnctl' --proxy 127.0.0.1:${ports[0]} cluster | grep -c node | grep -qx 2"

# Node A knows B's registrations from B's next heartbeat.
wait_until "node1's registration at node0" "$spawnctl" --proxy "127.0.0.1:${ports[0]}" load bench \
  r inc -n 10 -c 1 --actors 10 --parent rt
log "warming up (placing 1,000 local and 1,000 remote actors)"
load l 2000 >/dev/null
load r 2000 >/dev/null
echo "| invocations through node A | requests | req/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|"
for round in 1 2; do
  for prefix in l r; do
    line=$(load "$prefix" "$requests")
    read -r _ n _ errors _ _ _ rate _ p50 _ _ p99 _ <<<"$line"
    [[ $errors == 0 ]] || die "load on $prefix-* had $errors errors: $line"
    what=$([[ $prefix == l ]] && echo "local (owner A)" || echo "remote (owner B, over NATS)")
    echo "| $what, round $round | $n | $rate | $p50 | $p99 |"
  done
done

start_node 2
register 2 lt rt
wait_until "three nodes" bash -c "'$spawnctl' --proxy 127.0.0.1:${ports[0]} cluster | grep -c node | grep -qx 3"
kill -KILL "${node_pids[1]}"
killed=$(date +%s%N)
log "node1 killed; waiting for its 1,000 actors to answer through node0"
until "$spawnctl" --proxy "127.0.0.1:${ports[0]}" load bench r inc -n 1000 -c 16 --actors 1000 \
  --parent rt >/dev/null 2>&1; do
  sleep 0.05
done
back=$(date +%s%N)
echo
echo "| recovery after kill -9 (node timeout 3000 ms) | ms |"
echo "|---|---|"
echo "| all 1,000 actors of the killed node answer again | $(((back - killed) / 1000000)) |"

echo
echo "| directory (JetStream KV, 8 threads, 3 s each) | ops/s | p50 ms | p99 ms |"
echo "|---|---|---|---|"
"$build/bench/spawn-directory-bench" "nats://127.0.0.1:$nats_port" 3 8 | grep '^directory ' |
  while read -r _ op _ rate _ p50 _ p99 _ _; do
    echo "| $op | $rate | $p50 | $p99 |"
  done
