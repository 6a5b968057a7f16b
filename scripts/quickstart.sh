#!/usr/bin/env bash
# README quick start, command 1: set up and build kvc (scripts/setup.sh), then run kvc's main job
# on the bundled defaults, printing each step and its check against the reference.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export KVC_BUILD_DIR=${KVC_BUILD_DIR:-$(pwd)/build}
PY=${KVC_VENV:-$(pwd)/.venv}/bin/python
mkdir -p out

echo
echo "=== kvc main job, part 1: raise + compile + run decomposed attention (examples/gqa_attention.mlir)"
"$PY" -m kvc.demo

echo
echo "=== kvc main job, part 2: compress Gemma 3 270M's KV cache of a bundled text, report quality and memory"
echo "    (r = fraction of cached pairs KEPT; KL(p_full || p_compressed) over the next 64 tokens)"
KVC_RUNTIME_LIB="$KVC_BUILD_DIR/lib/libkvc_runtime.so" "$PY" -m kvc.eval kl --model gemma3-270m \
  --text-file examples/texts/gpl-3.txt --context 1024 --continuation 64 \
  --methods full,streaming,snapkv,select-fit,sculpt --ratios 0.3 --json out/quickstart-kl.json
