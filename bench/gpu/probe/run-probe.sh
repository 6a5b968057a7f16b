#!/bin/bash
# The fixed-width design probe (fixed_width_mma.cu) on the GPU machine, with torch's SDPA
# (flash, cuDNN) timed in the same run for the speedup. Build here first:
#   bench/gpu/probe/build-probe.sh            # -> build/probe/fixed_width_mma
# then on the GPU machine, repo root, build/probe (and for `floor`, build/gpu-tests/kvc-bench from
# bench/gpu/build-decode-ptx.sh) carried:
#   OUT=<dir> bench/gpu/probe/run-probe.sh [check|bench|ncu|ncu-full|sass|variants|floor|splits]...   (default: all but ncu-full)
# The table: python3 -m kvc.bench.probe_table --probe probe.json --sdpa sdpa.json \
#   --sweep probe-splits-*.json --floor-fit FIXED_US,TBPS (from `floor`)
set -uo pipefail
P=${P:-build/probe/fixed_width_mma}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(check bench floor splits variants ncu sass)
for m in "${modes[@]}"; do
  case $m in
  check)
    echo "== check"; timeout 300 $P check | tee "$OUT/probe-check.txt"
    echo "== memcheck"
    timeout 300 compute-sanitizer --tool memcheck $P check 2>&1 | tail -3 | tee "$OUT/probe-memcheck.txt"
    echo "== racecheck (shared-memory hazards)"
    timeout 400 compute-sanitizer --tool racecheck $P check 2>&1 | tail -3 | tee "$OUT/probe-racecheck.txt" ;;
  bench)
    echo "== probe, dirty flush"; timeout 300 $P bench --json "$OUT/probe.json"
    echo "== probe with the codec's fp16 value window (256 tokens), dirty flush"
    timeout 300 $P bench --window 256 --json "$OUT/probe-window.json"
    echo "== torch SDPA, dirty flush"
    timeout 300 env PYTHONPATH=python python3 -m kvc.bench.sdpa_decode --json "$OUT/sdpa.json" ;;
  ncu)
    echo "== ncu, batch 8 x 16k"
    timeout 300 ncu --kernel-name regex:fwSplit --launch-skip 5 --launch-count 1 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
      --section LaunchStats --section SchedulerStats --section WarpStateStats \
      --metrics smsp__inst_executed.sum,sm__cycles_elapsed.avg \
      $P bench --batches 8 --contexts 16384 --reps 3 --warmup 3 > "$OUT/probe-ncu-b8-16k.txt" 2>&1
    grep -E "Duration|Throughput|inst_executed|Registers|Achieved Occupancy|Theoretical Occ|No Eligible|Issued Warp" "$OUT/probe-ncu-b8-16k.txt" | head -30 ;;
  ncu-full)
    echo "== ncu full set, batch 8 x 16k, splits ${SPLITS:-auto}"
    timeout 400 ncu --kernel-name regex:fwSplit --launch-skip 5 --launch-count 1 --set full \
      --import-source yes $P bench --batches 8 --contexts 16384 --reps 3 --warmup 3 \
      ${SPLITS:+--splits $SPLITS} > "$OUT/probe-ncu-full-b8-16k.txt" 2>&1
    grep -E "Duration|DRAM Throughput|Issued Warp|No Eligible|Active Warps Per|Eligible Warps|Registers Per|Achieved Occ|Stall|L1/TEX Hit|L2 Hit|Mem Busy|Max Bandwidth|Executed Ipc A" "$OUT/probe-ncu-full-b8-16k.txt" | head -40 ;;
  sass)
    cuobjdump -sass $P > "$OUT/probe-sass.txt" 2>&1 || echo "no cuobjdump"
    awk '/Function : /{f = /fwSplit/} f' "$OUT/probe-sass.txt" | grep -oE "^\s+/\*[0-9a-f]{4}\*/\s+[A-Z0-9_.]+" | awk '{print $2}' | sed 's/\..*//' | sort | uniq -c | sort -rn | head -20 ;;
  variants)
    for b in build/probe/fixed_width_mma build/probe/fixed_width_mma_*; do
      [[ $b == *.log ]] && continue
      n=$(basename "$b")
      echo "== $n"; timeout 300 $b check | tail -6
      timeout 300 $b bench --json "$OUT/probe-$n.json" | tee "$OUT/probe-$n.txt"
      for sp in ${VSPLITS:-}; do # the same kernel at fixed split counts (plans differ by occupancy)
        timeout 300 $b bench --batches 8,32 --contexts 16384,65536 --splits $sp \
          --json "$OUT/probe-$n-splits$sp.json" | tail -4 | tee "$OUT/probe-$n-splits$sp.txt"
      done
    done ;;
  floor) # the read floor's fit on this machine (build/gpu-tests/kvc-bench carried)
    timeout 120 build/gpu-tests/kvc-bench floor --sizes-mib 0,1,2,4,8,16,32,64,128,256,512,1024,2048 \
      --read x1 --flush dirty --json "$OUT/sizes-x1-dirty.json" | grep -v wrote
    PYTHONPATH=python python3 -m kvc.bench.floor_fit "$OUT/sizes-x1-dirty.json" | grep -E "^fit|at most" ;;
  splits)
    for s in 4 8 12 16 24 33 66 132; do echo "== $s code splits (+ window splits), --window 256"; timeout 300 $P bench --window 256 --batches 1,8,32 --contexts 16384,65536 --splits $s --reps 20 --json "$OUT/probe-splits-$s.json" | tail -6; done ;;
  *) echo "unknown mode $m"; exit 2 ;;
  esac
done
