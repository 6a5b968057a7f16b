#!/bin/bash
# Builds what bench/gpu/run-decode.sh needs into $BUILD/gpu-tests (default build): kvc-bench
# (self-contained: libstdc++ + the runtime's CUDA objects), check.ptx, and dense/ragged decode
# PTX for block sizes 64, 128, 256 (unroll 4) from bench/gpu/decode{,-ragged}.mlir, Gemma 3
# 270M's decode kernels (bench/gpu/gemma.mlir) and its real-model cases (gemma/<case>/).
# dense_b<N>/ragged_b<N> are the plain main loop (prefetch=false); *_u{2,4}pf.ptx the
# software-pipelined ones (prefetch=true, unroll 2 and 4; b128_u4pf is the default
# main loop), *_u{2,4}pf_fm.ptx the same with the fused merge (fuse-merge=true; b128_u4pf_fm is
# kvc-gpu-pipeline's default); every variant spells out fuse-merge. check.ptx and gemma.ptx use
# the defaults (with a dynamic batch also the small-rows kernel), check_split.ptx / gemma_split.ptx
# split + merge kernels (fuse-merge=false),
# check_nopf.ptx the plain loop.
# usage: bench/gpu/build-decode-ptx.sh [BUILD_DIR]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
OUTD=$BUILD/gpu-tests
mkdir -p "$OUTD"
ninja -C "$BUILD" kvc-opt kvc-bench
cp "$BUILD/bin/kvc-bench" "$OUTD/"
OPT="$BUILD/bin/kvc-opt"
BENCHX="$BUILD/bin/kvc-bench"
"$OPT" "$SRC/bench/gpu/check.mlir" --kvc-gpu-pipeline -o "$OUTD/check.gpu.mlir"
"$BENCHX" extract "$OUTD/check.gpu.mlir" -o "$OUTD/check.ptx"
"$OPT" "$SRC/bench/gpu/check.mlir" --kvc-gpu-pipeline="fuse-merge=false" -o "$OUTD/check_split.gpu.mlir"
"$BENCHX" extract "$OUTD/check_split.gpu.mlir" -o "$OUTD/check_split.ptx"
"$OPT" "$SRC/bench/gpu/check.mlir" --kvc-gpu-pipeline="prefetch=false" -o "$OUTD/check_nopf.gpu.mlir"
"$BENCHX" extract "$OUTD/check_nopf.gpu.mlir" -o "$OUTD/check_nopf.ptx"
# The plain main loop (prefetch=false), and the software-pipelined ones (prefetch=true) with
# unroll 2 (same registers as the default) and 4, each also with the fused merge.
for b in 64 128 256; do
  for s in "" _u2pf _u4pf _u2pf_fm _u4pf_fm; do
    case $s in
      "") o="block-size=$b unroll=4 prefetch=false fuse-merge=false small-rows=0" ;;
      *) u=${s:2:1}; o="block-size=$b unroll=$u prefetch=true small-rows=0"
         if [[ $s == *_fm ]]; then o="$o fuse-merge=true"; else o="$o fuse-merge=false"; fi ;;
    esac
    "$OPT" "$SRC/bench/gpu/decode.mlir" --kvc-gpu-pipeline="$o" -o "$OUTD/d.mlir"
    "$BENCHX" extract "$OUTD/d.mlir" -o "$OUTD/dense_b$b$s.ptx"
    "$OPT" "$SRC/bench/gpu/decode-ragged.mlir" --kvc-gpu-pipeline="$o" -o "$OUTD/r.mlir"
    "$BENCHX" extract "$OUTD/r.mlir" -o "$OUTD/ragged_b$b$s.ptx"
  done
done
rm -f "$OUTD/d.mlir" "$OUTD/r.mlir"
"$OPT" "$SRC/bench/gpu/gemma.mlir" --kvc-gpu-pipeline -o "$OUTD/gemma.gpu.mlir"
"$BENCHX" extract "$OUTD/gemma.gpu.mlir" -o "$OUTD/gemma.ptx"
"$OPT" "$SRC/bench/gpu/gemma.mlir" --kvc-gpu-pipeline="fuse-merge=false" -o "$OUTD/gemma_split.gpu.mlir"
"$BENCHX" extract "$OUTD/gemma_split.gpu.mlir" -o "$OUTD/gemma_split.ptx"
"$OPT" "$SRC/bench/gpu/gemma-encoded.mlir" --kvc-gpu-pipeline -o "$OUTD/gemma_enc.gpu.mlir"
"$BENCHX" extract "$OUTD/gemma_enc.gpu.mlir" -o "$OUTD/gemma_enc.ptx"
# Real-model cases (Gemma 3 270M caches + kvc's CPU-path outputs) for kvc-bench check-npy.
if [ ! -f "$OUTD/gemma/ragged_sculpt/expected.npy" ]; then
  PY=${PYTHON:-$SRC/.venv/bin/python}
  PYTHONPATH=$SRC/python "$PY" -m kvc.bench.gemma_decode_cases --out "$OUTD/gemma" \
    --kvc-run "$BUILD/bin/kvc-run"
fi
ls -la "$OUTD"
