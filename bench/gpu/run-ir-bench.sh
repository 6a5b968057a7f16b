#!/bin/bash
# Time per decode step through the compiled program's host code (kvc-decode-ir-bench: the
# wall-clock time of one _mlir_ciface_decode call, host work included) next to the kernel alone
# (kvc-bench decode on the same default kernel, CUDA events), at batch 1 and 8 x 4k and 16k,
# with the dirty L2 flush and without a flush. Every kvc-decode-ir-bench* in $D is timed in the
# same run, interleaved: kvc-decode-ir-bench (this checkout), kvc-decode-ir-bench-devout (the
# same with output-memory=device) and, if present, builds of older commits named
# kvc-decode-ir-bench-<tag> (session 6 used -before: f46b9f7, -ws: 6806a40).
# GPU machine, repo root; $D (default build/ir-bench) carried, holding those binaries,
# kvc-bench and dense_b128_u4pf_fm.ptx (bench/gpu/build-decode-ptx.sh). Also runs the two IR
# examples and their memcheck when they are in $D.
set -uo pipefail
D=${D:-build/ir-bench}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
AFTER=$D/kvc-decode-ir-bench
BINS=$(ls "$D"/kvc-decode-ir-bench* | sort)
for ex in kvc-decode-ir-example kvc-encoded-ir-example; do
  if [ -x "$D/$ex" ]; then
    echo "== $ex"; timeout 300 "$D/$ex" | tail -n 3
    echo "== memcheck $ex"
    timeout 600 compute-sanitizer --tool memcheck "$D/$ex" 2>&1 | tail -n 2
  fi
done
for bin in "$AFTER" "$AFTER-devout"; do
  echo "== memcheck $(basename "$bin") (B=1 and 8, S=4096, 3 calls)"
  for b in 1 8; do
    timeout 300 compute-sanitizer --tool memcheck "$bin" --batch $b --context 4096 --reps 3 \
      --warmup 1 --flush none 2>&1 | tail -n 2
  done
done
for round in 1 2; do
  for fl in dirty none; do
    for b in 1 8; do
      for s in 4096 16384; do
        for bin in $BINS; do
          echo -n "round $round $(basename "$bin"): "
          timeout 120 "$bin" --batch $b --context $s --reps 100 --warmup 10 --flush $fl
        done
      done
    done
  done
done
echo "== the kernel alone (kvc-bench decode, CUDA events, dirty flush)"
timeout 300 "$D/kvc-bench" decode "$D/dense_b128_u4pf_fm.ptx" --batches 1,8 --contexts 4096,16384 \
  --json "$OUT/ir-bench-kernel.json" | grep -v wrote
