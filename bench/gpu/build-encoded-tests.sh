#!/bin/bash
# Builds what the GPU machine needs for the encoded-cache (KVComp) kernels into
# $BUILD/enc-tests (no MLIR needed there): kvc-bench (self-contained), the check variants'
# PTX, the benchmark kernel's PTX (+ C header) and the dense bf16 kernels for comparison.
# usage: bench/gpu/build-encoded-tests.sh [BUILD_DIR]   (default build-gpu)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build-gpu}
OUTD=$BUILD/enc-tests
mkdir -p "$OUTD"
rm -f "$OUTD"/*.ptx # variants that an older run built would be timed too
[ "${NO_BUILD:-0}" = 1 ] || ninja -j1 -C "$BUILD" kvc-opt kvc-bench
cp "$BUILD/bin/kvc-bench" "$OUTD/"
OPT="$BUILD/bin/kvc-opt"
BENCHX="$BUILD/bin/kvc-bench"
# ptx MLIR OUT.ptx [PIPELINE OPTIONS]: bench/gpu/MLIR through kvc-gpu-pipeline, then its PTX.
ptx() {
  "$OPT" "$SRC/bench/gpu/$1" --kvc-gpu-pipeline="${3:-}" -o "$OUTD/t.gpu.mlir"
  "$BENCHX" extract "$OUTD/t.gpu.mlir" -o "$OUTD/$2"
}
"$OPT" "$SRC/bench/gpu/check-encoded.mlir" --kvc-gpu-pipeline -o "$OUTD/check-encoded.gpu.mlir"
"$BENCHX" extract "$OUTD/check-encoded.gpu.mlir" -o "$OUTD/check-encoded.ptx"
"$OPT" "$SRC/bench/gpu/check-encoded.mlir" --convert-kvc-to-gpu="encoded-min-ctas=0" \
  --kvc-gpu-pipeline -o "$OUTD/check-encoded_m0.gpu.mlir"
"$BENCHX" extract "$OUTD/check-encoded_m0.gpu.mlir" -o "$OUTD/check-encoded_m0.ptx"
"$OPT" "$SRC/bench/gpu/check-encoded-g16.mlir" --kvc-gpu-pipeline -o "$OUTD/c.gpu.mlir"
"$BENCHX" extract "$OUTD/c.gpu.mlir" -o "$OUTD/check-encoded-g16.ptx"
"$OPT" "$SRC/bench/gpu/decode-encoded.mlir" --kvc-gpu-pipeline -o "$OUTD/decode-encoded.gpu.mlir"
"$BENCHX" extract "$OUTD/decode-encoded.gpu.mlir" -o "$OUTD/decode-encoded.ptx" \
  --header "$OUTD/decode-encoded.h"
# Other register caps (nvvm.minctasm; the default is 8): 0 = ptxas decides, 6.
for m in 0 6; do
  "$OPT" "$SRC/bench/gpu/decode-encoded.mlir" --convert-kvc-to-gpu="encoded-min-ctas=$m" \
    --kvc-gpu-pipeline -o "$OUTD/decode-encoded_m$m.gpu.mlir"
  "$BENCHX" extract "$OUTD/decode-encoded_m$m.gpu.mlir" -o "$OUTD/decode-encoded_m$m.ptx"
done
# The multi-symbol decoder (encoded-multi-symbol=true): LUT index bits 10/11 x 2/3 symbols
# per lookup; check variants without a register cap, benchmark kernels with caps 0 and 6.
for ms in 10x3 10x2 11x3 11x2; do
  o="encoded-multi-symbol=true encoded-ms-bits=${ms%x*} encoded-ms-slots=${ms#*x}"
  "$OPT" "$SRC/bench/gpu/check-encoded.mlir" --kvc-gpu-pipeline="$o encoded-min-ctas=0" \
    -o "$OUTD/c.gpu.mlir"
  "$BENCHX" extract "$OUTD/c.gpu.mlir" -o "$OUTD/check-encoded_ms${ms}.ptx"
  if [ "${ms%x*}" = 10 ]; then # D=64 g=16 fits 48 KiB with 10-bit tables only
    "$OPT" "$SRC/bench/gpu/check-encoded-g16.mlir" --kvc-gpu-pipeline="$o encoded-min-ctas=0" \
      -o "$OUTD/c.gpu.mlir"
    "$BENCHX" extract "$OUTD/c.gpu.mlir" -o "$OUTD/check-encoded-g16_ms${ms}.ptx"
  fi
  for m in 0 6; do
    "$OPT" "$SRC/bench/gpu/decode-encoded.mlir" --kvc-gpu-pipeline="$o encoded-min-ctas=$m" \
      -o "$OUTD/d.gpu.mlir"
    "$BENCHX" extract "$OUTD/d.gpu.mlir" -o "$OUTD/decode-encoded_ms${ms}_m$m.ptx"
  done
done
# Refill groups (encoded-refill-group: symbols decoded per refill of the bit window; the
# default is 4 with encoded-unroll=8, 2 = the pair decoder): u<unroll>r<group>[_m<min-ctas>];
# check variants with the default cap.
for v in u4r2 u4r4 u8r8 u4r4_m6; do
  u=${v#u}; u=${u%%r*}; r=${v#*r}; r=${r%%_*}; m=8; case $v in *_m*) m=${v##*_m};; esac
  o="encoded-unroll=$u encoded-refill-group=$r encoded-min-ctas=$m"
  ptx decode-encoded.mlir decode-encoded_$v.ptx "$o"
  [ "$m" != 8 ] || ptx check-encoded.mlir check-encoded_$v.ptx "$o"
done
# Overlapped phases (encoded-overlap: a tile's value columns and the next tile's key rows in
# one loop): ov_u<unroll>_m<min-ctas>; check kernels with caps 8 and 0.
for v in u8_m8 u8_m6 u8_m0 u4_m8 u4_m0; do
  u=${v%%_*}; u=${u#u}; m=${v##*_m}
  ptx decode-encoded.mlir decode-encoded_ov_$v.ptx \
    "encoded-overlap=true encoded-unroll=$u encoded-min-ctas=$m"
done
for m in 8 0; do
  ptx check-encoded.mlir check-encoded_ov_m$m.ptx "encoded-overlap=true encoded-min-ctas=$m"
done
# Two-level code tables (encoded-lut-l1), alone and with encoded-overlap: decode and check.
for v in l1 l1_ov; do
  o="encoded-lut-l1=true"; [ $v = l1_ov ] && o="$o encoded-overlap=true"
  ptx decode-encoded.mlir decode-encoded_$v.ptx "$o"
  ptx check-encoded.mlir check-encoded_$v.ptx "$o"
done
# Tensor-core dot products (encoded-mma): register caps 8 (the default), 6 and 0; the check
# kernels (bf16/f16 with g*Sq <= 8) with the default.
for m in 8 6 0; do
  "$OPT" "$SRC/bench/gpu/decode-encoded.mlir" --kvc-gpu-pipeline="encoded-mma=true encoded-min-ctas=$m" \
    -o "$OUTD/d.gpu.mlir"
  "$BENCHX" extract "$OUTD/d.gpu.mlir" -o "$OUTD/decode-encoded_mma_m$m.ptx"
done
"$OPT" "$SRC/bench/gpu/check-encoded-mma.mlir" --kvc-gpu-pipeline="encoded-mma=true" \
  -o "$OUTD/c.gpu.mlir"
"$BENCHX" extract "$OUTD/c.gpu.mlir" -o "$OUTD/check-encoded_mma.ptx"
# ... with the multi-symbol decoder writing into the staging (10-bit tables, 3 or 2 slots)
for ms in 10x3 10x2; do
  o="encoded-mma=true encoded-multi-symbol=true encoded-ms-bits=${ms%x*} encoded-ms-slots=${ms#*x}"
  for m in 8 0; do
    ptx decode-encoded.mlir decode-encoded_mma_ms${ms}_m$m.ptx "$o encoded-min-ctas=$m"
  done
  ptx check-encoded-mma.mlir check-encoded_mma_ms$ms.ptx "$o"
done
for b in 64 256; do
  "$OPT" "$SRC/bench/gpu/decode.mlir" --kvc-gpu-pipeline="block-size=$b unroll=4" \
    -o "$OUTD/dense_b$b.gpu.mlir"
  "$BENCHX" extract "$OUTD/dense_b$b.gpu.mlir" -o "$OUTD/dense_b$b.ptx"
done
rm -f "$OUTD"/*.gpu.mlir
PTXAS=$(command -v ptxas || echo /usr/local/cuda/bin/ptxas)
if [ -x "$PTXAS" ]; then
  for p in "$OUTD"/*.ptx; do
    echo "== $p"; "$PTXAS" -arch=sm_90a -v "$p" -o /dev/null 2>&1 | grep -E "Compiling|Used|spill"
  done > "$OUTD/ptxas.txt"
fi
ls -la "$OUTD"
