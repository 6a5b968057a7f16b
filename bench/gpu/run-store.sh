#!/bin/bash
# Runs on the GPU machine from the repository root with build-store/store-tests carried there
# (bench/gpu/build-store-tests.sh): the bit-exact check of the store kernels against the CPU
# codec (default and 1024-thread builds), compute-sanitizer memcheck and racecheck (--quick
# sizes) and the timing at 256/512/1024 threads per CTA. Results go to $OUT.
# usage: bench/gpu/run-store.sh [check|sanitize|bench|all]...
set -uo pipefail
T=build-store/store-tests
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/store-log.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
for what in "${@:-all}"; do
  if [ "$what" = check ] || [ "$what" = all ]; then
    for p in store store-t1024; do
      echo "== $p.ptx" >> "$OUT/store-check.txt"
      timeout 200 $T/kvc-bench store check $T/$p.ptx >> "$OUT/store-check.txt" 2>&1
      echo "store check $p rc=$?"
    done
    grep -E "^==|DIFF|MISMATCH|STATUS|threads|total:" "$OUT/store-check.txt"
  fi
  if [ "$what" = sanitize ] || [ "$what" = all ]; then
    for tool in memcheck racecheck; do
      for p in store store-t1024; do
        echo "== $p.ptx" >> "$OUT/store-$tool.txt"
        timeout 200 compute-sanitizer --tool $tool \
          $T/kvc-bench store check $T/$p.ptx --quick >> "$OUT/store-$tool.txt" 2>&1
        echo "$tool $p rc=$?"
      done
      grep -E "^==|ERROR SUMMARY|RACECHECK SUMMARY|total:|Invalid|hazard" "$OUT/store-$tool.txt" | head -16
    done
  fi
  if [ "$what" = bench ] || [ "$what" = all ]; then
    for t in 256 512 1024; do
      timeout 100 $T/kvc-bench store bench $T/bench-t$t.ptx --jobs 8,64,512,2048 \
        --json "$OUT/h100-store-t$t.json"
      echo "store bench t$t rc=$?"
    done
  fi
done
