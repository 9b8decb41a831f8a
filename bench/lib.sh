# shellcheck shell=bash disable=SC2154  # bench_name and root come from the script sourcing this
# Shared by bench/run.sh and bench/run-sdk.sh (sourced, not run): logging, the build step,
# starting and stopping processes, and spawn-proxy itself. Set before sourcing:
#   bench_name   the prefix of log lines
#   root         the repository
# Every process started with the functions below is stopped by the EXIT trap set here, and the
# temporary folder $work is removed.

log() { echo "$bench_name: $*" >&2; }

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

need_tools() {  # need_tools <tool>...: dies naming the first one missing
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/setup.sh installs it)"
  done
}

# Sets $build: SPAWN_BENCH_BUILD_DIR if set, else builds <target>... with the ci preset into
# build/ci.
build_targets() {
  if [[ -n ${SPAWN_BENCH_BUILD_DIR:-} ]]; then
    build=$SPAWN_BENCH_BUILD_DIR
    return
  fi
  build=$root/build/ci
  log "building $* with the ci preset into $build"
  cmake --preset ci >/dev/null
  cmake --build --preset ci -j "${SPAWN_BUILD_JOBS:-$(nproc)}" --target "$@" >/dev/null
}

work=$(mktemp -d "${TMPDIR:-/tmp}/spawn-$bench_name.XXXXXX")
proxy_pid=""
started_pids=()

stop_pid() {  # stop_pid <pid>: TERM, then KILL after 10 s
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
  for pid in "${started_pids[@]}"; do
    stop_pid "$pid"
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need_free_port() {  # need_free_port <port> <variable that sets it>
  port_busy "$1" && die "port $1 is in use (set $2)"
  return 0
}

wait_until() {  # wait_until <what> <command...>: up to 10 s
  local what=$1
  shift
  for _ in $(seq 200); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  die "$what did not come up"
}

# Runs <command...> in the background, stopped on exit; its pid is in $last_pid.
start_bg() {
  "$@" &
  last_pid=$!
  started_pids+=("$last_pid")
}

# start_proxy <port> <store> <shards> <host port> [VAR=value...]: spawn-proxy on 127.0.0.1 with a
# new SQLite file and key, its log in $work/proxy.log; returns once it is ready.
start_proxy() {
  local port=$1 store=$2 shards=$3 host=$4
  shift 4
  rm -f "$work"/state.sqlite*
  env PROXY_HTTP_PORT="$port" SPAWN_PROXY_BIND_ADDRESS=127.0.0.1 \
    USER_FUNCTION_HOST=127.0.0.1 USER_FUNCTION_PORT="$host" \
    PROXY_DATABASE_TYPE="$store" PROXY_DATABASE_NAME="$work/state.sqlite" \
    SPAWN_STATESTORE_KEY="$(openssl rand -base64 32)" SPAWN_PROXY_SHARDS="$shards" \
    SPAWN_PROXY_LOGGER_LEVEL=warning SPAWN_PROXY_SHUTDOWN_DRAIN_MS=0 "$@" \
    "$build/apps/spawn-proxy/spawn-proxy" 2>>"$work/proxy.log" &  # env execs: $! is the proxy
  proxy_pid=$!
  wait_until "spawn-proxy" curl -sf "http://127.0.0.1:$port/health/readiness"
}

stop_proxy() {
  stop_pid "$proxy_pid"
  proxy_pid=""
}

load_average() { cut -d' ' -f1-3 /proc/loadavg; }

machine() { echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"; }
