#!/bin/bash
# The fixed-width (entropy = none) KVComp kernels on the GPU machine, from the repository root
# with build/fw-tests carried (bench/gpu/build-fixed-width-tests.sh): `check` = kvc-bench
# fixed-width check of every variant (ring and register forms), compute-sanitizer memcheck and
# racecheck (--quick sizes), appends (host-assisted, then on the GPU with the store kernels:
# append-check --store, memcheck, racecheck), Gemma 3 270M caches (also appended on the GPU) (check-npy, where build/fw-tests/gemma has
# them), the compiled-IR example (host=llvm: kvc.encode + attention against the CPU codec); `bench` = in one run torch SDPA (flash, cuDNN), the fixed-width kernel and its
# variants, and kvc's Huffman-coded kernel on the shapes (dirty L2 flush), then the
# table (python -m kvc.bench.fixed_width_table); `ncu` = a full profile of the fixed-width
# split kernel at batch 8 x 16k; `splits` = a sweep of the split count (not in `all`). Results
# go to $OUT.
# usage: bench/gpu/run-fixed-width.sh [check|bench|ncu|splits|all]...
set -uo pipefail
T=${T:-build/fw-tests}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
for what in "${@:-all}"; do
  if [ "$what" = check ] || [ "$what" = all ]; then
    for f in $T/check-fixed-width.ptx $T/check-fixed-width_r0.ptx; do
      echo "== check $(basename $f)"
      timeout 200 $T/kvc-bench fixed-width check $f | grep -E "FAIL|variant|fixed-width check:"
    done
    for tool in memcheck racecheck; do
      echo "== $tool"
      timeout 300 compute-sanitizer --tool $tool $([ $tool = memcheck ] && echo --leak-check no) \
        $T/kvc-bench fixed-width check $T/check-fixed-width.ptx --quick 2>&1 |
        grep -E "ERROR SUMMARY|RACECHECK SUMMARY|fixed-width check:|Invalid|hazard"
    done
    echo "== appends (host-assisted appender) and memcheck"
    timeout 200 $T/kvc-bench fixed-width append-check $T/check-fixed-width.ptx |
      grep -E "FAIL|single-token|append-check:"
    timeout 200 compute-sanitizer --tool memcheck --leak-check no $T/kvc-bench fixed-width \
      append-check $T/check-fixed-width.ptx --quick 2>&1 | grep -E "ERROR SUMMARY|append-check:"
    echo "== appends on the GPU (store kernels), memcheck and racecheck"
    timeout 200 $T/kvc-bench fixed-width append-check $T/check-fixed-width.ptx \
      --store $T/store-fixed-width.ptx | grep -E "FAIL|device form|single-token|append-check:"
    for tool in memcheck racecheck; do
      timeout 300 compute-sanitizer --tool $tool $([ $tool = memcheck ] && echo --leak-check no) \
        $T/kvc-bench fixed-width append-check $T/check-fixed-width.ptx --quick \
        --store $T/store-fixed-width.ptx 2>&1 |
        grep -E "ERROR SUMMARY|RACECHECK SUMMARY|append-check:|Invalid|hazard"
    done
    echo "== the Huffman form through the shared launcher (encoded check --quick)"
    timeout 200 $T/kvc-bench encoded check $T/check-encoded.ptx --quick | grep -E "FAIL|encoded check:"
    echo "== Gemma 3 270M caches (check-npy)"
    if [ -d $T/gemma ]; then
      timeout 200 $T/kvc-bench fixed-width check-npy $T/gemma-fixed-width.ptx \
        --store $T/store-fixed-width.ptx $(for d in $T/gemma/*/; do echo --case ${d%/}; done)
      echo "fixed-width check-npy rc=$?"
    fi
    echo "== compiled IR example (host=llvm)"
    timeout 120 $T/kvc-fixed-width-ir-example
    echo "kvc-fixed-width-ir-example rc=$?"
    timeout 200 compute-sanitizer --tool memcheck --leak-check no $T/kvc-fixed-width-ir-example 2>&1 |
      grep -E "ERROR SUMMARY|PASS|FAIL"
  fi
  if [ "$what" = bench ] || [ "$what" = all ]; then
    PYTHONPATH=python PYTHONUNBUFFERED=1 timeout 200 python3 -m kvc.bench.sdpa_decode \
      --json "$OUT/sdpa.json" | tail -n 12
    timeout 200 $T/kvc-bench fixed-width decode $T/decode-fixed-width.ptx --json "$OUT/kvc-fixed-width.json"
    echo "fixed-width decode rc=$?"
    for v in r0 m0; do
      timeout 200 $T/kvc-bench fixed-width decode $T/decode-fixed-width_$v.ptx \
        --json "$OUT/kvc-fixed-width_$v.json" | tail -n +3
    done
    timeout 250 $T/kvc-bench encoded decode $T/decode-encoded.ptx --json "$OUT/kvc-encoded.json" |
      tail -n +3
    echo "encoded decode rc=$?"
    PYTHONPATH=python python3 -m kvc.bench.fixed_width_table --sdpa "$OUT/sdpa.json" \
      --fixed-width "$OUT/kvc-fixed-width.json" "$OUT"/kvc-fixed-width_r0.json \
      "$OUT"/kvc-fixed-width_m0.json --encoded "$OUT/kvc-encoded.json" | tee "$OUT/table.md"
  fi
  if [ "$what" = splits ]; then
    # The split count (total, window splits included) against the plan's, every shape: the
    # data behind kvc_cuda_fw_make_plan's rule (merged into $OUT/fw-splits.json).
    W=/tmp/kvc-fw-splits; rm -rf "$W"; mkdir -p "$W"
    for sp in ${SPLITS:-4 6 8 10 12 18 35 68}; do
      timeout 200 $T/kvc-bench fixed-width decode $T/decode-fixed-width.ptx --splits $sp \
        --json $W/s$sp.json | tail -n +3 | grep -v wrote
    done
    PYTHONPATH=python python3 -m kvc.bench.merge_results $W/s*.json > "$OUT/fw-splits.json"
  fi
  if [ "$what" = ncu ] || [ "$what" = all ]; then
    timeout 200 ncu --kernel-name regex:fw_split --launch-count 1 --section SpeedOfLight \
      --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
      --section WarpStateStats --section SchedulerStats --section InstructionStats \
      $T/kvc-bench fixed-width decode $T/decode-fixed-width.ptx --batches 8 --contexts 16384 \
      --reps 1 --warmup 0 > "$OUT/ncu-fixed-width-b8-16k.txt" 2>&1
    grep -E "Duration|Memory Throughput|DRAM Throughput|Registers Per|Achieved Occupancy|Executed Instructions  |Theoretical Occupancy" \
      "$OUT/ncu-fixed-width-b8-16k.txt"
  fi
done
