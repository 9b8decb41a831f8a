#!/usr/bin/env bash
# The run command: installs what is missing, builds, and starts spawn-proxy on port 9001 with the
# embedded SQLite statestore in .data/ (no other server needed). Ctrl-C stops it gracefully.
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
exec build/release/apps/spawn-proxy/spawn-proxy "$@"
