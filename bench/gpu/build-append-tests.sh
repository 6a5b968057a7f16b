#!/bin/bash
# Builds what the GPU machine needs for the append driver (kvc_cuda_encoded_append: store
# kernels + row tables) into $BUILD/append-tests (no MLIR needed there): kvc-bench
# (self-contained), the encoded decode kernels' check PTX (bench/gpu/check-encoded.mlir: bf16
# D=128 g=4, f32 D=128 g=4, f16 D=64 g=8, bf16 D=128 g=2 Sq=2) and the store kernels for the
# fp16 window source with key block groups at D = 128 and D = 64 (KB 64, VB 128).
# usage: bench/gpu/build-append-tests.sh [BUILD_DIR]   (default build-append)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build-append}
OUTD=$BUILD/append-tests
mkdir -p "$OUTD"
[ "${NO_BUILD:-0}" = 1 ] || ninja -j1 -C "$BUILD" kvc-opt kvc-bench
cp "$BUILD/bin/kvc-bench" "$OUTD/"
OPT="$BUILD/bin/kvc-opt"
BENCHX="$OUTD/kvc-bench"
"$OPT" "$SRC/bench/gpu/check-encoded.mlir" --kvc-gpu-pipeline -o "$OUTD/check-encoded.gpu.mlir"
"$BENCHX" extract "$OUTD/check-encoded.gpu.mlir" -o "$OUTD/check-encoded.ptx"
"$BENCHX" store gen --config 128,64,128,f16,kblk --config 64,64,128,f16,kblk -o "$OUTD/store.mlir"
"$OPT" "$OUTD/store.mlir" --kvc-gpu-pipeline -o "$OUTD/store.gpu.mlir"
"$BENCHX" extract "$OUTD/store.gpu.mlir" -o "$OUTD/store.ptx"
rm -f "$OUTD"/*.gpu.mlir "$OUTD/store.mlir"
PTXAS=$(command -v ptxas || echo /usr/local/cuda/bin/ptxas)
if [ -x "$PTXAS" ]; then
  for p in "$OUTD"/*.ptx; do
    echo "== $(basename "$p")"
    "$PTXAS" -arch=sm_90a -v "$p" -o /dev/null 2>&1 | grep -E "Compiling|Used|spill"
  done > "$OUTD/ptxas.txt"
fi
ls -la "$OUTD"
