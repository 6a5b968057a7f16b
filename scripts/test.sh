#!/usr/bin/env bash
# Builds kvc if needed and runs the whole test suite: lit IR tests, CPU execution tests and the
# GoogleTest unit tests (a nested lit suite). Ends with one summary line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${KVC_BUILD_DIR:-$ROOT/build}

scripts/setup.sh || { echo "0 passed, 1 failed (setup/build failed)"; exit 1; }

log=$(mktemp)
/usr/lib/llvm-22/bin/lit -v "$BUILD_DIR/test" "$BUILD_DIR/test/Unit" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
count() { grep -cE "^$1: " "$log" || true; }
passed=$(( $(count PASS) + $(count XFAIL) ))
failed=$(( $(count FAIL) + $(count XPASS) + $(count TIMEOUT) + $(count UNRESOLVED) ))
skipped=$(( $(count UNSUPPORTED) ))
rm -f "$log"
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
