#!/usr/bin/env bash
# Fails when a C++ file is not formatted as .clang-format says (clang-format 14, as CI has it).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "check-format: clang-format not installed; skipped"
  exit 0
fi
git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror
