#!/bin/bash
# The l2-prefetch sweep (docs/gpu.md §5.0, "L2 bulk prefetch"): dense and ragged decode with
# each split CTA requesting P tiles of K and V ahead into L2 (cp.async.bulk.prefetch), P = 0 (off), 2, 4,
# 8, 16, for the three benchmarked main loops, with and without the fused merge; correctness
# (kvc-bench check, memcheck) of P = 4 and 16.
#   bench/gpu/sweep-l2-prefetch.sh build [BUILD_DIR]   # here: PTX -> $BUILD/gpu-tests/l2
#   bench/gpu/sweep-l2-prefetch.sh run                 # GPU machine, build/gpu-tests carried
# Table: python3 -m kvc.bench.variant_table --by l2p $OUT/l2-dirty.json (and l2-clean.json;
# without --by, every variant).
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
case ${1:-} in
build)
  set -e
  BUILD=${2:-$SRC/build}; O=$BUILD/gpu-tests/l2; mkdir -p "$O"
  ninja -C "$BUILD" kvc-opt kvc-bench
  cp "$BUILD/bin/kvc-bench" "$BUILD/gpu-tests/"
  OPT=$BUILD/bin/kvc-opt; X=$BUILD/bin/kvc-bench
  for p in 0 2 4 8 16; do
    for cfg in "b128_u4pf:block-size=128 unroll=4" "b256_u2pf:block-size=256 unroll=2" \
               "b64_u4pf:block-size=64 unroll=4"; do
      n=${cfg%%:*}
      for fm in "" _fm; do
        o="${cfg#*:} prefetch=true l2-prefetch=$p small-rows=0 fuse-merge=$([ -n "$fm" ] && echo true || echo false)"
        "$OPT" "$SRC/bench/gpu/decode.mlir" --kvc-gpu-pipeline="$o" -o "$O/t.mlir"
        "$X" extract "$O/t.mlir" -o "$O/dense_${n}${fm}_l2p$p.ptx"
        "$OPT" "$SRC/bench/gpu/decode-ragged.mlir" --kvc-gpu-pipeline="$o" -o "$O/t.mlir"
        "$X" extract "$O/t.mlir" -o "$O/ragged_${n}${fm}_l2p$p.ptx"
      done
    done
  done
  for p in 4 16; do
    "$OPT" "$SRC/bench/gpu/check.mlir" --kvc-gpu-pipeline="l2-prefetch=$p fuse-merge=false" -o "$O/t.mlir"
    "$X" extract "$O/t.mlir" -o "$O/check_l2p$p.ptx"
    "$OPT" "$SRC/bench/gpu/check.mlir" --kvc-gpu-pipeline="l2-prefetch=$p fuse-merge=true" -o "$O/t.mlir"
    "$X" extract "$O/t.mlir" -o "$O/check_fm_l2p$p.ptx"
  done
  rm -f "$O/t.mlir"
  ;;
run)
  T=build/gpu-tests; L=$T/l2; OUT=${OUT:-/tmp/out}; W=/tmp/kvc-l2; mkdir -p "$OUT" "$W"
  exec > >(tee "$OUT/l2-log.txt") 2>&1
  for c in check_l2p4 check_l2p16 check_fm_l2p4 check_fm_l2p16; do
    echo "== $c"; timeout 120 $T/kvc-bench check $L/$c.ptx | grep -E "FAIL|check:"
  done
  for c in check_fm_l2p16 check_l2p4; do
    timeout 180 compute-sanitizer --tool memcheck --leak-check no $T/kvc-bench check $L/$c.ptx \
      --quick 2>&1 | grep -E "ERROR SUMMARY|FAIL|check:"
  done
  for fl in dirty clean; do
    for f in $L/dense_*.ptx; do
      timeout 60 $T/kvc-bench decode $f --batches 1,8,32 --contexts 16384,65536 --flush $fl \
        --json "$W/$fl-$(basename $f .ptx).json" | tail -n +3 | grep -v wrote
    done
    for f in $L/ragged_*.ptx; do
      timeout 60 $T/kvc-bench decode $f --batches 1,8,32 --contexts 16384,65536 \
        --ragged-ratio 0.3 --flush $fl --json "$W/$fl-$(basename $f .ptx).json" | tail -n +3 | grep -v wrote
    done
    PYTHONPATH=python python3 -m kvc.bench.merge_results "$W"/$fl-*.json > "$OUT/l2-$fl.json"
  done
  ;;
*) sed -n 2,9p "$0"; exit 2 ;;
esac
