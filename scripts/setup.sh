#!/usr/bin/env bash
# Installs what the build and the tests need from Debian's packages, and nothing that is already
# there. Idempotent; run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl openssl
  libboost1.81-dev libprotobuf-dev protobuf-compiler libssl-dev libsqlite3-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libprotoc-dev
  libgtest-dev libgmock-dev libbenchmark-dev libjemalloc-dev
  libpq-dev libmariadb-dev postgresql mariadb-server
  libnats-dev nats-server
  wrk clang-format nginx-light libcaf-dev gnuplot-nox
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  sudo_cmd=(sudo)
fi
echo "setup: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
