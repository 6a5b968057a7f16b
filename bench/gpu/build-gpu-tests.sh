#!/bin/bash
# Builds everything the GPU machine needs into $BUILD/gpu-tests (no MLIR needed there):
# kvc-bench (self-contained), PTX for the check kernels and for each decode variant.
# usage: bench/gpu/build-gpu-tests.sh [BUILD_DIR]   (default build-gpu)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build-gpu}
OUTD=$BUILD/gpu-tests
mkdir -p "$OUTD"
ninja -j1 -C "$BUILD" kvc-opt kvc-bench
cp "$BUILD/bin/kvc-bench" "$OUTD/"
OPT="$BUILD/bin/kvc-opt"
BENCHX="$BUILD/bin/kvc-bench"
"$OPT" "$SRC/bench/gpu/check.mlir" --kvc-gpu-pipeline -o "$OUTD/check.gpu.mlir"
"$BENCHX" extract "$OUTD/check.gpu.mlir" -o "$OUTD/check.ptx"
for v in "64 4" "128 4" "256 4" "256 2"; do
  set -- $v
  "$OPT" "$SRC/bench/gpu/decode.mlir" --kvc-gpu-pipeline="block-size=$1 unroll=$2" \
    -o "$OUTD/decode_b$1_u$2.gpu.mlir"
  "$BENCHX" extract "$OUTD/decode_b$1_u$2.gpu.mlir" -o "$OUTD/decode_b$1_u$2.ptx" \
    --header "$OUTD/decode_b$1_u$2.h"
done
if command -v ptxas >/dev/null || [ -x /usr/local/cuda/bin/ptxas ]; then
  PTXAS=$(command -v ptxas || echo /usr/local/cuda/bin/ptxas)
  for p in "$OUTD"/*.ptx; do
    echo "== $p"; "$PTXAS" -arch=sm_90a -v "$p" -o /dev/null 2>&1 | grep -E "Compiling|Used|spill" | sed -n '1,40p'
  done > "$OUTD/ptxas.txt"
fi
ls -la "$OUTD"
