#!/bin/bash
# Runs on the GPU machine from the repository root with build-gpu/enc-tests carried there:
# encoded check, compute-sanitizer memcheck (--quick sizes), the encoded decode benchmark, the
# dense bf16 kernels on the same shapes, and an ncu profile of the encoded kernel at batch 8 x
# 16k; `ms` the multi-symbol decoder's sweep, `group` the refill groups', `mma` the
# tensor-core variant's, `ov` the overlapped phases', `ov-splits` their split counts' and
# `l1` the two-level code tables' (none is part of `all`). Results go to $OUT.
# usage: bench/gpu/run-encoded.sh [check|bench|ncu|ms|group|mma|ov|ov-splits|l1|all]...
set -uo pipefail
T=${T:-build-gpu/enc-tests}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
# sweep NAME "DECODE ARGS" PTX...: times each PTX with `kvc-bench encoded decode` into a fresh
# folder (no results of an earlier run in the merge) and merges them into $OUT/NAME.json.
sweep() {
  local name=$1 args=$2 W=/tmp/kvc-sweep-$1 f
  shift 2
  rm -rf "$W"; mkdir -p "$W"
  for f in "$@"; do
    timeout 200 $T/kvc-bench encoded decode $f $args \
      --json $W/$(basename $f .ptx).json | tail -n +3 | grep -v wrote
  done
  PYTHONPATH=python python3 -m kvc.bench.merge_results --ptx $W/*.json > "$OUT/$name.json"
}
# checks PTX...: `kvc-bench encoded check` of each, its summary (and FAIL lines).
checks() {
  local f
  for f in "$@"; do
    echo "== check $(basename $f)"
    timeout 200 $T/kvc-bench encoded check $f | grep -E "FAIL|variant|encoded check:"
  done
}
# memcheck PTX...: compute-sanitizer memcheck of `kvc-bench encoded check --quick` on each.
memcheck() {
  local f
  for f in "$@"; do
    timeout 200 compute-sanitizer --tool memcheck --leak-check no $T/kvc-bench encoded check \
      $f --quick 2>&1 | grep -E "ERROR SUMMARY|encoded check:|Invalid"
  done
}
# profile OUTFILE KERNEL-REGEX PTX [ncu args...]: ncu of one split kernel at batch 8 x 16k.
profile() {
  local out=$1 re=$2 ptx=$3
  shift 3
  timeout 150 ncu --kernel-name regex:$re --launch-count 1 --section SpeedOfLight \
    --section Occupancy --section InstructionStats --section WarpStateStats "$@" $T/kvc-bench \
    encoded decode $ptx --batches 8 --contexts 16384 --reps 1 --warmup 0 > "$OUT/$out" 2>&1
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
for what in "${@:-all}"; do
  if [ "$what" = check ] || [ "$what" = all ]; then
    timeout 150 $T/kvc-bench encoded check $T/check-encoded.ptx; echo "encoded check rc=$?"
    timeout 150 $T/kvc-bench encoded check $T/check-encoded_m0.ptx > "$OUT/check-m0.txt" 2>&1
    echo "encoded check (min-ctas 0) rc=$?"; grep "encoded check:" "$OUT/check-m0.txt"
    timeout 150 compute-sanitizer --tool memcheck --leak-check no \
      $T/kvc-bench encoded check $T/check-encoded.ptx --quick > "$OUT/memcheck.txt" 2>&1
    echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|encoded check:|FAIL|Invalid" "$OUT/memcheck.txt" | head -20
  fi
  if [ "$what" = bench ] || [ "$what" = all ]; then
    timeout 200 $T/kvc-bench encoded decode $T/decode-encoded.ptx --json "$OUT/h100-encoded-kvc.json"
    echo "encoded decode rc=$?"
    for m in 0 6; do
      timeout 200 $T/kvc-bench encoded decode $T/decode-encoded_m$m.ptx --json "$OUT/h100-encoded-kvc_m$m.json"
      echo "encoded decode (min-ctas $m) rc=$?"
    done
    [ "${SKIP_DENSE:-0}" = 1 ] || for b in 64 256; do
      timeout 100 $T/kvc-bench decode $T/dense_b$b.ptx --json "$OUT/h100-encoded-dense_b$b.json"
    done
  fi
  if [ "$what" = ms ]; then
    # The multi-symbol decoder (encoded-multi-symbol; build-encoded-tests.sh builds the
    # variants): check each LUT shape, memcheck one, time all against the default kernel.
    checks $T/check-encoded_ms{10x3,10x2,11x3,11x2}.ptx \
      $T/check-encoded-g16{,_ms10x3,_ms10x2}.ptx
    memcheck $T/check-encoded_ms10x2.ptx
    sweep encoded-ms-sweep "--batches 1,8 --contexts 16384,65536" $T/decode-encoded.ptx \
      $T/decode-encoded_ms*.ptx
    profile ncu-encoded-ms-b8-16k.txt enc_ms $T/decode-encoded_ms10x2_m0.ptx
  fi
  if [ "$what" = group ]; then
    # Refill groups (encoded-refill-group; build-encoded-tests.sh builds the variants): check
    # each, memcheck the 8-symbol one, time all against the default (4) on every shape.
    checks $T/check-encoded_{u4r2,u4r4,u8r8}.ptx
    memcheck $T/check-encoded_u8r8.ptx
    sweep encoded-group-sweep "${GROUP_ARGS:-}" $T/decode-encoded.ptx $T/decode-encoded_u*.ptx
    profile ncu-encoded-group-b8-16k.txt enc_split $T/decode-encoded.ptx
  fi
  if [ "$what" = ov ]; then
    # Overlapped phases (encoded-overlap; build-encoded-tests.sh builds the variants): check
    # with caps 8 and 0, memcheck, time unroll 8/4 and register caps against the default.
    checks $T/check-encoded_ov_m{8,0}.ptx
    memcheck $T/check-encoded_ov_m8.ptx
    sweep encoded-ov-sweep "${OV_ARGS:-}" $T/decode-encoded.ptx $T/decode-encoded_ov_*.ptx
    profile ncu-encoded-ov-b8-16k.txt enc_ov_split $T/decode-encoded_ov_u8_m0.ptx
  fi
  if [ "$what" = l1 ]; then
    # Two-level code tables (encoded-lut-l1; build-encoded-tests.sh builds the variants):
    # check, memcheck, time against the default (and the overlap kernel), ncu with the
    # shared-memory wavefront counters for the default and the l1 kernel.
    checks $T/check-encoded_l1.ptx $T/check-encoded_l1_ov.ptx
    memcheck $T/check-encoded_l1.ptx
    sweep encoded-l1-sweep "${L1_ARGS:-}" $T/decode-encoded.ptx $T/decode-encoded_l1.ptx \
      $T/decode-encoded_ov_u8_m0.ptx $T/decode-encoded_l1_ov.ptx
    for f in decode-encoded decode-encoded_l1; do
      profile ncu-$f-b8-16k.txt "enc.*_split" $T/$f.ptx --metrics \
        l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_ld.sum,smsp__inst_executed_op_shared_ld.sum
    done
  fi
  if [ "$what" = ov-splits ]; then
    # The split count against encoded-overlap: the default kernel and the overlap kernels at
    # the runtime's plan and at fixed --splits, contexts >= 16k (the "ptx" field of each row
    # of encoded-ov-splits.json is <kernel>_s<splits|plan>.ptx).
    W=/tmp/kvc-sweep-ov-splits; rm -rf "$W"; mkdir -p "$W"
    for f in $T/decode-encoded.ptx $T/decode-encoded_ov_u8_m0.ptx $T/decode-encoded_ov_u8_m6.ptx; do
      for sp in plan 16 33 66 132 264; do
        a=""; [ $sp = plan ] || a="--splits $sp"
        timeout 200 $T/kvc-bench encoded decode $f --contexts 16384,65536 $a \
          --json $W/$(basename $f .ptx)_s$sp.json | tail -n +3 | grep -v wrote
      done
    done
    PYTHONPATH=python python3 -m kvc.bench.merge_results --ptx $W/*.json > "$OUT/encoded-ov-splits.json"
  fi
  if [ "$what" = mma ]; then
    # Tensor-core dot products (encoded-mma; build-encoded-tests.sh builds the variants):
    # check, memcheck, time register caps 8, 6 and 0 (and the multi-symbol variants) against
    # the default on every shape.
    checks $T/check-encoded_mma*.ptx
    memcheck $T/check-encoded_mma.ptx $T/check-encoded_mma_ms10x3.ptx
    sweep encoded-mma-sweep "${MMA_ARGS:-}" $T/decode-encoded.ptx \
      $T/decode-encoded_mma_m{8,6,0}.ptx $T/decode-encoded_mma_ms*_m*.ptx
    profile ncu-encoded-mma-b8-16k.txt enc_mma_split $T/decode-encoded_mma_m8.ptx
  fi
  if [ "$what" = ncu ] || [ "$what" = all ]; then
    timeout 150 ncu --kernel-name regex:enc_split --launch-count 1 --section SpeedOfLight \
      --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis \
      --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
      --section InstructionStats \
      $T/kvc-bench encoded decode $T/decode-encoded.ptx --batches 8 --contexts 16384 --reps 1 \
      --warmup 0 > "$OUT/ncu-encoded-b8-16k.txt" 2>&1
    echo "ncu rc=$?"; grep -E "Duration|DRAM Throughput|Compute \(SM\)|Achieved Occupancy|Registers|Issue Slots|Executed Ipc" "$OUT/ncu-encoded-b8-16k.txt" | head -20
  fi
done
