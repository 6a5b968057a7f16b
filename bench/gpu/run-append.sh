#!/bin/bash
# Runs on the GPU machine from the repository root with build-append/append-tests carried
# there (bench/gpu/build-append-tests.sh): the append driver's check against the CPU codec
# (kvc-bench encoded append-check: exact device-form compare + decode vs float64 and vs a fresh
# upload), the same with row-by-row window copies, corrupted runs that must fail,
# compute-sanitizer memcheck on the --quick cases, and the per-step timing at B=8, Hkv=8,
# D=128. Results go to $OUT.
# usage: bench/gpu/run-append.sh [check|sanitize|bench|bench-main|bench-more|all]...
# (bench = bench-main: 4k prefill, 2048 steps; + bench-more: 16k, row-by-row copies, n = 8)
set -uo pipefail
T=${APPEND_TESTS:-build-append/append-tests}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/append-log.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
B="$T/kvc-bench encoded"
for what in "${@:-all}"; do
  if [ "$what" = check ] || [ "$what" = all ]; then
    timeout 240 $B append-check $T/check-encoded.ptx $T/store.ptx > "$OUT/append-check.txt" 2>&1
    echo "append-check rc=$?"; grep -E "FAIL|append check:" "$OUT/append-check.txt"
    # Real-model K/V (Gemma 3 270M layers from bench/gpu/build-decode-ptx.sh's cases), if carried.
    for l in 0 5 17; do
      G=build/gpu-tests/gemma/dense_l$l
      [ -d "$G" ] || continue
      timeout 240 $B append-check $T/check-encoded.ptx $T/store.ptx --npy-kv $G \
        > "$OUT/append-check-gemma-l$l.txt" 2>&1
      echo "append-check --npy-kv gemma layer $l rc=$?"
      grep -E "real K/V|FAIL|append check:" "$OUT/append-check-gemma-l$l.txt"
    done
    KVC_APPEND_ROW_COPIES=1 timeout 120 $B append-check $T/check-encoded.ptx $T/store.ptx \
      --quick > "$OUT/append-check-rowcopies.txt" 2>&1
    echo "append-check (row copies, quick) rc=$?"
    grep -E "FAIL|append check:" "$OUT/append-check-rowcopies.txt"
    for c in word window; do
      timeout 120 $B append-check $T/check-encoded.ptx $T/store.ptx --quick --corrupt $c \
        >> "$OUT/append-check-corrupt.txt" 2>&1
      echo "append-check --corrupt $c rc=$? (must be 1)"
    done
    grep -E "^FAIL|row 0:|append check:" "$OUT/append-check-corrupt.txt" | head -12
  fi
  if [ "$what" = sanitize ] || [ "$what" = all ]; then
    timeout 240 compute-sanitizer --tool memcheck --leak-check no \
      $B append-check $T/check-encoded.ptx $T/store.ptx --quick > "$OUT/append-memcheck.txt" 2>&1
    echo "memcheck rc=$?"
    grep -E "ERROR SUMMARY|append check:|FAIL|Invalid" "$OUT/append-memcheck.txt" | head -12
  fi
  if [ "$what" = bench ] || [ "$what" = bench-main ] || [ "$what" = all ]; then
    timeout 150 $B append-bench $T/check-encoded.ptx $T/store.ptx --batch 8 --hkv 8 \
      --prefill 4096 --steps 2048 --json "$OUT/h100-append-b8-p4096.json"
    echo "append-bench prefill 4096 rc=$?"
  fi
  if [ "$what" = bench ] || [ "$what" = bench-more ] || [ "$what" = all ]; then
    timeout 120 $B append-bench $T/check-encoded.ptx $T/store.ptx --batch 8 --hkv 8 \
      --prefill 16384 --steps 512 --json "$OUT/h100-append-b8-p16384.json"
    echo "append-bench prefill 16384 rc=$?"
    KVC_APPEND_ROW_COPIES=1 timeout 120 $B append-bench $T/check-encoded.ptx $T/store.ptx \
      --batch 8 --hkv 8 --prefill 4096 --steps 512 \
      --json "$OUT/h100-append-b8-p4096-rowcopies.json"
    echo "append-bench row copies rc=$?"
    timeout 120 $B append-bench $T/check-encoded.ptx $T/store.ptx --batch 8 --hkv 8 \
      --prefill 4096 --steps 64 --n 8 --json "$OUT/h100-append-b8-p4096-n8.json"
    echo "append-bench n=8 rc=$?"
  fi
done
