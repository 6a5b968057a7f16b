#!/bin/bash
# Issue 6's benchmark in ONE run on the GPU machine (repo root; build/gpu-tests and
# build/enc-tests carried, from bench/gpu/build-decode-ptx.sh and
# `bench/gpu/build-encoded-tests.sh build`, and build/fw-tests when it is there, from
# bench/gpu/build-fixed-width-tests.sh, its gemma/ copy left out): copy bandwidth, torch SDPA
# (flash, cuDNN), kvc dense bf16, kvc ragged at r = 0.3 and kvc encoded (K eps 0.05, V eps 0.1;
# Huffman-coded, and fixed-width with build/fw-tests), plus every correctness
# check (random and Gemma 3 caches, memcheck), the ncu profiles and the streaming-read floor of
# each shape (kvc-bench floor), and the floor's size sweep with its fit (run-floor-sizes.sh:
# what one launch can read at all). $OUT gets more than the device tool's 8 files: tar it. The
# table: python3 -m kvc.bench.issue_table --sdpa sdpa.json --dense kvc-dense.json
#        --ragged kvc-ragged.json --encoded kvc-encoded.json --floor floor.json
#        [--fixed-width kvc-fixed-width.json]
set -uo pipefail
E=build/enc-tests
F=build/fw-tests
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
bash bench/gpu/run-decode.sh
exec > >(tee -a "$OUT/log.txt") 2>&1
echo "== encoded: check, memcheck, decode"
timeout 150 $E/kvc-bench encoded check $E/check-encoded.ptx | tail -1; echo "encoded check rc=$?"
timeout 150 compute-sanitizer --tool memcheck --leak-check no \
  $E/kvc-bench encoded check $E/check-encoded.ptx --quick 2>&1 | grep -E "ERROR SUMMARY|encoded check:"
timeout 250 $E/kvc-bench encoded decode $E/decode-encoded.ptx --json "$OUT/kvc-encoded.json"
echo "encoded decode rc=$?"
timeout 250 $E/kvc-bench encoded decode $E/decode-encoded.ptx --flush clean \
  --json "$OUT/kvc-encoded-clean.json"
echo "encoded decode (clean flush) rc=$?"
FWD= FWC=
if [ -x $F/kvc-bench ]; then
  echo "== encoded, fixed-width (entropy = none): check, decode"
  timeout 150 $F/kvc-bench fixed-width check $F/check-fixed-width.ptx | tail -1
  timeout 200 $F/kvc-bench fixed-width decode $F/decode-fixed-width.ptx \
    --json "$OUT/kvc-fixed-width.json" | tail -n +3 | grep -v wrote
  timeout 200 $F/kvc-bench fixed-width decode $F/decode-fixed-width.ptx --flush clean \
    --json "$OUT/kvc-fixed-width-clean.json" | tail -n +3 | grep -v wrote
  FWD="--fixed-width $OUT/kvc-fixed-width.json" FWC="--fixed-width $OUT/kvc-fixed-width-clean.json"
fi
echo "== the table, dirty L2 flush"
PYTHONPATH=python python3 -m kvc.bench.issue_table --sdpa "$OUT/sdpa.json" \
  --dense "$OUT/kvc-dense.json" --ragged "$OUT/kvc-ragged.json" --encoded "$OUT/kvc-encoded.json" \
  --floor "$OUT/floor.json" $FWD
echo "== the table, clean L2 flush"
PYTHONPATH=python python3 -m kvc.bench.issue_table --sdpa "$OUT/sdpa-clean.json" \
  --dense "$OUT/kvc-dense-clean.json" --ragged "$OUT/kvc-ragged-clean.json" \
  --encoded "$OUT/kvc-encoded-clean.json" --floor "$OUT/floor-clean.json" $FWC
echo "== what one launch can read: size sweep and fit"
bash bench/gpu/run-floor-sizes.sh
