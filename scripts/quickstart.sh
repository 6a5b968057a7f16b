#!/usr/bin/env bash
# README quick start, command 1: set up and build kvc (scripts/setup.sh), then run kvc's main job
# on the bundled defaults, printing each step and its check against the reference.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export KVC_BUILD_DIR=${KVC_BUILD_DIR:-$(pwd)/build}
PY=${KVC_VENV:-$(pwd)/.venv}/bin/python

echo
echo "=== kvc main job, part 1: raise + compile + run decomposed attention (examples/gqa_attention.mlir)"
"$PY" -m kvc.demo
