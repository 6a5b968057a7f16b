#!/bin/bash
# Builds the fixed-width design probe with the CUDA toolkit's nvcc (sm_90a) -> build/probe/:
# fixed_width_mma (the defaults: a 2-tile cp.async ring, min blocks 4, per-warp softmax, merge
# launch) and one binary per variant in $VARIANTS, named by the macros it changes:
#   s<N>      FW_STAGES=N: 0 = register prefetch of the next tile, N >= 2 = a cp.async ring
#   minb<M>   __launch_bounds__ min blocks M (caps registers; 1 = no cap)
#   qs        query fragments in shared memory (FW_Q_SMEM)
#   magic     FW_KEEP_MAGIC=1: keep the 128 / 1024 offsets in the mma operands, removed in f32
#   old       FW_INDEP=0: one softmax state per CTA (two CTA barriers per tile)
#   fused     FW_FUSED=1: the last CTA of a row merges (no merge launch)
#   nowin     FW_WINDOW=0: no fp16-window tiles in the kernel (what that code costs the rest)
# Prints each split kernel's registers and spills (ptxas -v); a failed build prints nvcc's log.
set -euo pipefail
cd "$(dirname "$0")/../../.."
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
VARIANTS=${VARIANTS-"nowin s0 s3 minb1 old magic fused"}
mkdir -p build/probe
rm -f build/probe/fixed_width_mma*
for v in default $VARIANTS; do
  flags=""
  for part in ${v//_/ }; do
    case $part in
    default) ;;
    s[0-9]*) flags="$flags -DFW_STAGES=${part#s}" ;;
    minb[0-9]*) flags="$flags -DFW_MIN_BLOCKS=${part#minb}" ;;
    qs) flags="$flags -DFW_Q_SMEM" ;;
    magic) flags="$flags -DFW_KEEP_MAGIC=1" ;;
    old) flags="$flags -DFW_INDEP=0" ;;
    fused) flags="$flags -DFW_FUSED=1" ;;
    nowin) flags="$flags -DFW_WINDOW=0" ;;
    *) echo "build-probe.sh: unknown variant part '$part' in '$v'" >&2; exit 2 ;;
    esac
  done
  out=build/probe/fixed_width_mma_$v
  [ "$v" = default ] && out=build/probe/fixed_width_mma
  if ! "$NVCC" -O3 -std=c++17 -arch=sm_90a -lineinfo -Xptxas -v $flags \
      -o "$out" bench/gpu/probe/fixed_width_mma.cu > "$out.log" 2>&1; then
    cat "$out.log" >&2
    echo "build-probe.sh: nvcc failed for variant $v" >&2
    exit 1
  fi
  echo "$out: $(grep -A3 'entry function.*fwSplit' "$out.log" | grep -oE 'Used [0-9]+ registers|[0-9]+ bytes spill stores' | paste -sd, -)"
done
