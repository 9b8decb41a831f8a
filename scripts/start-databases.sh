#!/usr/bin/env bash
# Starts the PostgreSQL and MariaDB servers that the SQL statestore tests use, on 127.0.0.1 only,
# and creates their test user (spawn/spawn, allowed to create databases) and a database
# `spawn_it` for the end-to-end tests (unit tests create a database per test). Idempotent: a server
# that already runs is left alone. Uses Debian's own clusters (postgresql 15 "main", mariadb's
# /var/lib/mysql), so it needs root or sudo.
#
# Prints the connection settings as shell exports on stdout (everything else goes to stderr), so
# callers do:   eval "$(scripts/start-databases.sh)"
#   SPAWN_TEST_POSTGRES="host=127.0.0.1 port=5432 user=spawn password=spawn dbname=spawn_it"
#   SPAWN_TEST_MYSQL="host=127.0.0.1 port=3306 user=spawn password=spawn dbname=spawn_it"
# A server that cannot start is reported and its variable is not printed; the tests then skip
# (or fail under CI=true, STYLE.md §6).
set -uo pipefail

user=spawn
password=spawn
database=spawn_it

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  as_root=(sudo -n)
fi

log() { echo "start-databases: $*" >&2; }

wait_for() {  # wait_for <what> <command...>: up to 30 s
  local what=$1
  shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  log "$what did not come up"
  return 1
}

start_postgres() {
  if ! command -v pg_lsclusters >/dev/null; then
    log "postgresql is not installed (scripts/setup.sh installs it)"
    return 1
  fi
  local version
  version=$(pg_lsclusters --no-header 2>/dev/null | awk 'NR == 1 { print $1 }')
  if [[ -z $version ]]; then
    log "no PostgreSQL cluster found"
    return 1
  fi
  local port
  port=$(pg_lsclusters --no-header | awk 'NR == 1 { print $3 }')
  if ! pg_lsclusters --no-header | awk 'NR == 1 { print $4 }' | grep -q online; then
    log "starting PostgreSQL $version/main on 127.0.0.1:$port"
    "${as_root[@]}" pg_ctlcluster "$version" main start -- -o "-c listen_addresses=127.0.0.1" \
      >&2 || return 1
  fi
  wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p "$port" || return 1
  "${as_root[@]}" runuser -u postgres -- psql -q -p "$port" -v ON_ERROR_STOP=1 >&2 <<SQL || return 1
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN
    CREATE ROLE $user LOGIN CREATEDB PASSWORD '$password';
  END IF;
END
\$\$;
-- Lets tests drop their databases while an autovacuum worker is still in them.
GRANT pg_signal_backend TO $user;
SELECT 'CREATE DATABASE $database OWNER $user'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$database') \gexec
SQL
  echo "export SPAWN_TEST_POSTGRES='host=127.0.0.1 port=$port user=$user password=$password" \
    "dbname=$database'"
}

start_mariadb() {
  if ! command -v mariadbd >/dev/null && ! command -v mysqld >/dev/null \
    && [[ ! -x /usr/sbin/mariadbd ]]; then
    log "mariadb-server is not installed (scripts/setup.sh installs it)"
    return 1
  fi
  local port=3306
  if ! mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$port" ping >/dev/null 2>&1 \
    && ! "${as_root[@]}" mariadb-admin ping >/dev/null 2>&1; then
    log "starting MariaDB on 127.0.0.1:$port"
    "${as_root[@]}" /etc/init.d/mariadb start >&2 || return 1
  fi
  wait_for MariaDB "${as_root[@]}" mariadb-admin ping || return 1
  "${as_root[@]}" mariadb >&2 <<SQL || return 1
CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO '$user'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$user'@'localhost';
CREATE DATABASE IF NOT EXISTS $database CHARACTER SET utf8mb4;
SQL
  echo "export SPAWN_TEST_MYSQL='host=127.0.0.1 port=$port user=$user password=$password" \
    "dbname=$database'"
}

status=0
start_postgres || status=1
start_mariadb || status=1
exit $status
