#!/bin/bash
# Runs on the GPU machine from the repository root, with build-gpu/gpu-tests carried there:
# correctness (kvc-bench check, compute-sanitizer memcheck), the decode benchmark for each
# variant, the torch SDPA baselines, the comparison table and an ncu profile of one shape.
# Results go to $OUT (few files: the device tool returns at most 8).
# usage: bench/gpu/run-device.sh [check|bench|all]
set -uo pipefail
T=build-gpu/gpu-tests
OUT=${OUT:-/tmp/out}
W=/tmp/kvc-work
mkdir -p "$OUT" "$W"
what=${1:-all}
exec > >(tee "$OUT/log.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
if [ "$what" = check ] || [ "$what" = all ]; then
  timeout 120 $T/kvc-bench check $T/check.ptx; echo "check rc=$?"
  timeout 180 compute-sanitizer --tool memcheck --leak-check no $T/kvc-bench check $T/check.ptx --quick \
    > "$W/memcheck.txt" 2>&1; echo "memcheck rc=$?"
  grep -E "ERROR SUMMARY|check:|FAIL|Invalid" "$W/memcheck.txt" | head -20
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  for p in $T/decode_b*.ptx; do
    n=$(basename "$p" .ptx)
    timeout 90 $T/kvc-bench decode "$p" --json "$W/$n.json"
  done
  PYTHONPATH=python python3 -m kvc.bench.merge_results "$W"/decode_b*.json > "$OUT/kvc.json"
  PYTHONPATH=python PYTHONUNBUFFERED=1 timeout 150 python3 -m kvc.bench.sdpa_decode --json "$OUT/sdpa.json"
  PYTHONPATH=python python3 -m kvc.bench.compare "$OUT/sdpa.json" "$OUT/kvc.json" \
    | tee "$OUT/table.md"
fi
