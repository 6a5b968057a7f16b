#!/bin/bash
# What one launch can read at all: `kvc-bench floor --sizes-mib` over 0 (an empty launch) to
# 2 GiB with both read kernels (kvc_l2_read, one 128-bit load per thread per step, and
# kvc_l2_read_x4, four) and both L2 flushes, plus the x4 read of the batch-1 shapes
# (dense and ragged r = 0.3) for comparison with the x1 floor of run-decode.sh. GPU machine, repo root,
# build/gpu-tests/kvc-bench carried. The fit: python3 -m kvc.bench.floor_fit $OUT/sizes-*.json
set -uo pipefail
T=build/gpu-tests
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
SIZES=0,1,2,4,8,16,32,64,128,256,512,1024,2048
for fl in dirty clean; do
  for r in x1 x4; do
    timeout 120 $T/kvc-bench floor --sizes-mib $SIZES --read $r --flush $fl \
      --json "$OUT/sizes-$r-$fl.json" | grep -v wrote
  done
  timeout 60 $T/kvc-bench floor --read x4 --batches 1 --flush $fl \
    --json "$OUT/floor-x4-$fl-dense.json" | tail -n +3 | grep -v wrote
  timeout 60 $T/kvc-bench floor --read x4 --batches 1 --contexts 16384,65536 --ragged-ratio 0.3 \
    --flush $fl --json "$OUT/floor-x4-$fl-ragged.json" | tail -n +3 | grep -v wrote
done
PYTHONPATH=python python3 -m kvc.bench.floor_fit "$OUT"/sizes-*.json
