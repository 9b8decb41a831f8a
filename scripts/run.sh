#!/usr/bin/env bash
# The run command: installs what is missing, builds, and starts spawn-proxy on port 9001 with the
# embedded SQLite statestore in .data/ (no other server needed), together with the counter example
# as its host function, so that spawnctl can invoke an actor at once. Ctrl-C stops both gracefully.
#   SPAWN_RUN_EXAMPLE=false   start only the proxy (your own host on USER_FUNCTION_PORT)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release

data=.data
mkdir -p "$data"
chmod 700 "$data"
# A development key, made once and kept with the data it protects (git-ignored).
if [[ ! -s "$data/statestore.key" ]]; then
  (umask 077 && openssl rand -base64 32 >"$data/statestore.key")
  echo "run: created a development encryption key in $data/statestore.key"
fi

export SPAWN_STATESTORE_KEY=${SPAWN_STATESTORE_KEY:-$(cat "$data/statestore.key")}
export PROXY_DATABASE_TYPE=${PROXY_DATABASE_TYPE:-sqlite}
export PROXY_DATABASE_NAME=${PROXY_DATABASE_NAME:-$data/spawn.sqlite}
export PROXY_HTTP_PORT=${PROXY_HTTP_PORT:-9001}

bin=build/release
if [[ ${SPAWN_RUN_EXAMPLE:-true} != true ]]; then
  exec "$bin/apps/spawn-proxy/spawn-proxy" "$@"
fi

export USER_FUNCTION_PORT=${USER_FUNCTION_PORT:-8091}
"$bin/apps/spawn-proxy/spawn-proxy" "$@" &
proxy=$!
# The counter example serves its actors to the proxy (it registers once the proxy answers).
"$bin/examples/spawn-example-counter" --sidecar --proxy "127.0.0.1:$PROXY_HTTP_PORT" \
  --port "$USER_FUNCTION_PORT" --serve &
example=$!
trap 'kill -TERM "$proxy" "$example" 2>/dev/null || true' INT TERM
cat <<TXT
run: spawn-proxy on :$PROXY_HTTP_PORT, the counter example on :$USER_FUNCTION_PORT. Try:
  $bin/apps/spawnctl/spawnctl --proto examples/counter/counter.proto \\
      invoke examples counter add --type examples.counter.Add --data '{"by": 5}'
  $bin/apps/spawnctl/spawnctl --proto examples/counter/counter.proto state examples counter
TXT
status=0
wait "$proxy" || status=$?
kill -TERM "$example" 2>/dev/null || true
wait "$example" 2>/dev/null || true
exit "$status"
