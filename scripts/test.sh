#!/usr/bin/env bash
# Builds kvc if needed and runs the whole test suite:
#   1. lit: IR tests (kvc-opt | FileCheck), CPU execution tests vs numpy and the runtime
#      libraries, the codec fuzzer, and the GoogleTest unit tests (nested suite test/Unit);
#   2. pytest: the Python side (runtime bindings, the Gemma 3 reference model, kvc-eval).
# Ends with one summary line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${KVC_BUILD_DIR:-$ROOT/build}
VENV=${KVC_VENV:-$ROOT/.venv}
export KVC_BUILD_DIR=$BUILD_DIR

scripts/setup.sh || { echo "0 passed, 1 failed, 0 skipped (setup/build failed)"; exit 1; }

log=$(mktemp)
/usr/lib/llvm-22/bin/lit -v "$BUILD_DIR/test" "$BUILD_DIR/test/Unit" 2>&1 | tee "$log"
lit_status=${PIPESTATUS[0]}
# lit's own summary counts every GoogleTest case (the PASS lines count shards).
count() { grep -E "^\s+$1\s*:" "$log" | grep -oE "[0-9]+" | head -1 || true; }
n() { local v; v=$(count "$1"); echo "${v:-0}"; }
passed=$(( $(n Passed) + $(n "Expectedly Failed") ))
failed=$(( $(n Failed) + $(n "Unexpectedly Passed") + $(n "Timed Out") + $(n Unresolved) ))
skipped=$(( $(n Unsupported) ))

echo
echo "=== pytest python/tests"
PYTHONPATH="$ROOT/python" "$VENV/bin/python" -m pytest -q -p no:cacheprovider python/tests 2>&1 | tee "$log"
py_status=${PIPESTATUS[0]}
summary=$(grep -E "^(=+ )?[0-9]+ (passed|failed|skipped|error)" "$log" | tail -1)
num() { echo "$summary" | grep -oE "[0-9]+ $1" | grep -oE "[0-9]+" || echo 0; }
passed=$(( passed + $(num passed) ))
failed=$(( failed + $(num failed) + $(num error) + $(num errors) ))
skipped=$(( skipped + $(num skipped) ))
# pytest exits 5 when it collected nothing: that is a failure of the suite here.
if [ "$py_status" -ne 0 ] && [ "$(num failed)" -eq 0 ] && [ "$(num error)" -eq 0 ] && [ "$(num errors)" -eq 0 ]; then
  failed=$(( failed + 1 ))
fi
rm -f "$log"

echo "$passed passed, $failed failed, $skipped skipped"
if [ "$lit_status" -ne 0 ] || [ "$py_status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
