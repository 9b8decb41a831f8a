#!/usr/bin/env bash
# The test command: installs what is missing, builds with warnings as errors, and runs every test
# (unit and integration) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/check-format.sh
scripts/build.sh ci
eval "$(scripts/start-databases.sh)"
ctest --test-dir build/ci --output-on-failure --timeout 300 -j "${SPAWN_TEST_JOBS:-2}" "$@"
