#!/bin/bash
# Builds what the GPU machine needs for the fixed-width (entropy = none) KVComp kernels into
# $BUILD/fw-tests (no MLIR needed there): kvc-bench (self-contained), the check variants' PTX,
# the store kernels' PTX (GPU appends), the benchmark kernel's PTX (the default: a two-tile
# cp.async ring) and its variants (words
# straight to registers: _r0; no register cap: _m0), the Huffman-coded benchmark kernel
# for comparison in the same run (bench/gpu/run-fixed-width.sh), and Gemma 3 270M's kernels
# (bench/gpu/gemma-fixed-width.mlir: key blocks 32, 64, 128) with its real-model cases in
# gemma/<case>/ (~18 MB, for `kvc-bench fixed-width check-npy`): copied from
# $BUILD/gpu-tests/gemma (bench/gpu/build-decode-ptx.sh) when that has them, else written by
# python -m kvc.bench.gemma_decode_cases (needs the model; skipped with a note if it fails).
# usage: bench/gpu/build-fixed-width-tests.sh [BUILD_DIR]   (default build)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
OUTD=$BUILD/fw-tests
mkdir -p "$OUTD"
rm -f "$OUTD"/*.ptx
if [ "${NO_BUILD:-0}" != 1 ]; then
  ninja -C "$BUILD" kvc-opt kvc-bench
  ninja -C "$BUILD" kvc-fixed-width-ir-example || echo "(no IR example: it needs clang and mlir-translate)"
fi
cp "$BUILD/bin/kvc-bench" "$OUTD/"
OPT="$BUILD/bin/kvc-opt"
BENCHX="$BUILD/bin/kvc-bench"
# ptx MLIR OUT.ptx [PIPELINE OPTIONS]: bench/gpu/MLIR through kvc-gpu-pipeline, then its PTX.
ptx() {
  "$OPT" "$SRC/bench/gpu/$1" --kvc-gpu-pipeline="${3:-}" -o "$OUTD/t.gpu.mlir"
  "$BENCHX" extract "$OUTD/t.gpu.mlir" -o "$OUTD/$2"
}
ptx check-fixed-width.mlir check-fixed-width.ptx
ptx check-fixed-width.mlir check-fixed-width_r0.ptx "fixed-width-ring=0"
ptx decode-fixed-width.mlir decode-fixed-width.ptx
ptx decode-fixed-width.mlir decode-fixed-width_r0.ptx "fixed-width-ring=0"
ptx decode-fixed-width.mlir decode-fixed-width_m0.ptx "fixed-width-min-ctas=0"
# The merge fused into the split kernel (fixed-width-fuse-merge): its check and benchmark PTX.
ptx check-fixed-width.mlir check-fixed-width_fm.ptx "fixed-width-fuse-merge=1"
ptx decode-fixed-width.mlir decode-fixed-width_fm.ptx "fixed-width-fuse-merge=1"
ptx decode-encoded.mlir decode-encoded.ptx
ptx check-encoded.mlir check-encoded.ptx # the Huffman form shares the launcher (quick check)
ptx gemma-fixed-width.mlir gemma-fixed-width.ptx
# The store kernels for GPU appends (kvc_cuda_fw_gpu_append), one set per (D, KB) of the
# check variants and of Gemma's (D 256, key blocks 32, 64, 128).
"$BENCHX" store gen --fixed-width 128,64 --fixed-width 64,32 --fixed-width 256,32 \
  --fixed-width 96,128 --fixed-width 32,64 --fixed-width 256,64 --fixed-width 256,128 \
  -o "$OUTD/store-fw.mlir"
"$OPT" "$OUTD/store-fw.mlir" --kvc-gpu-pipeline -o "$OUTD/t.gpu.mlir"
"$BENCHX" extract "$OUTD/t.gpu.mlir" -o "$OUTD/store-fixed-width.ptx"
rm -f "$OUTD/store-fw.mlir"
[ ! -x "$BUILD/bin/kvc-fixed-width-ir-example" ] || cp "$BUILD/bin/kvc-fixed-width-ir-example" "$OUTD/"
rm -f "$OUTD/t.gpu.mlir"
# Real-model cases (Gemma 3 270M caches + kvc's CPU-path outputs), as build-decode-ptx.sh.
if [ ! -f "$OUTD/gemma/ragged_sculpt/expected.npy" ]; then
  rm -rf "$OUTD/gemma"
  if [ -f "$BUILD/gpu-tests/gemma/ragged_sculpt/expected.npy" ]; then
    cp -r "$BUILD/gpu-tests/gemma" "$OUTD/gemma"
  else
    PY=${PYTHON:-$SRC/.venv/bin/python}
    PYTHONPATH=$SRC/python "$PY" -m kvc.bench.gemma_decode_cases --out "$OUTD/gemma" \
      --kvc-run "$BUILD/bin/kvc-run" ||
      { echo "(no Gemma cases: kvc.bench.gemma_decode_cases failed)"; rm -rf "$OUTD/gemma"; }
  fi
fi
# ptxas (where the toolkit is here) says whether a kernel spills; the GPU machine has it too.
if command -v /usr/local/cuda/bin/ptxas >/dev/null; then
  for f in "$OUTD"/decode-fixed-width*.ptx "$OUTD"/gemma-fixed-width.ptx; do
    echo "== $(basename "$f")"
    /usr/local/cuda/bin/ptxas -arch=sm_90a -v "$f" -o /dev/null 2>&1 |
      awk '/Compiling entry function/ { on = /fw_(fm_)?split/ } on && /registers|spill/' 
  done
fi
ls -la "$OUTD"
du -sh "$OUTD" # carried to the GPU machine: at most 64 MiB with everything else carried
