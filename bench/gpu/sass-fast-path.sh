#!/bin/bash
# Static instruction counts of the fast path of each loop of a kernel (no GPU): the PTX is
# assembled for sm_90a with ptxas (CUDA toolkit), disassembled with cuobjdump (the toolkit's,
# else PyPI's nvidia-cuda-cuobjdump, installed into .venv on first use) and read by
# `python -m kvc.bench.sass_fast_path`. docs/gpu.md quotes these counts for the encoded
# decode loop (instructions per 8 decoded symbols of the default kernel, etc.).
# usage: bench/gpu/sass-fast-path.sh [--kernel SUBSTR] [--show] PTX...   (default kernel: _split)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ARGS=(--kernel _split)
FILES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) ARGS=(--kernel "${2:?$0: --kernel needs a name fragment}"); shift 2 ;;
    --show) SHOW=--show; shift ;;
    *) FILES+=("$1"); shift ;;
  esac
done
[ ${#FILES[@]} -gt 0 ] || { echo "usage: $0 [--kernel SUBSTR] [--show] PTX..." >&2; exit 2; }
PTXAS=$(command -v ptxas || echo /usr/local/cuda/bin/ptxas)
[ -x "$PTXAS" ] || { echo "$0: ptxas not found (CUDA toolkit in /usr/local/cuda)" >&2; exit 1; }
OBJDUMP=$(command -v cuobjdump || true)
[ -n "$OBJDUMP" ] || [ ! -x /usr/local/cuda/bin/cuobjdump ] || OBJDUMP=/usr/local/cuda/bin/cuobjdump
if [ -z "$OBJDUMP" ]; then
  # cuobjdump -sass runs nvdisasm: both from PyPI, side by side in the wheel's bin folder.
  PY="$SRC/.venv/bin/python"
  [ -x "$PY" ] || { python3 -m venv "$SRC/.venv" && PY="$SRC/.venv/bin/python"; }
  OBJDUMP=$(find "$SRC/.venv" -path '*nvidia*/bin/cuobjdump' 2>/dev/null | head -1)
  if [ -z "$OBJDUMP" ] || [ ! -e "$(dirname "$OBJDUMP")/nvdisasm" ]; then
    "$PY" -m pip install -q nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm
    OBJDUMP=$(find "$SRC/.venv" -path '*nvidia*/bin/cuobjdump' | head -1)
    [ -n "$OBJDUMP" ] || { echo "$0: no cuobjdump after pip install nvidia-cuda-cuobjdump" >&2; exit 1; }
  fi
  chmod +x "$OBJDUMP" "$(dirname "$OBJDUMP")/nvdisasm"
  export PATH="$(dirname "$OBJDUMP"):$PATH"
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for f in "${FILES[@]}"; do
  echo "== $f"
  "$PTXAS" -arch=sm_90a "$f" -o "$TMP/k.cubin"
  "$OBJDUMP" -sass "$TMP/k.cubin" > "$TMP/k.sass"
  PYTHONPATH="$SRC/python" python3 -m kvc.bench.sass_fast_path "$TMP/k.sass" "${ARGS[@]}" ${SHOW:-}
done
