#!/bin/bash
# Runs on the GPU machine from the repository root with build/gpu-tests carried there
# (built by bench/gpu/build-decode-ptx.sh): correctness of the dense and ragged kernels
# (kvc-bench check + compute-sanitizer memcheck; check-npy on Gemma 3 270M caches vs kvc's CPU
# path), dense decode for every issue shape, ragged
# decode at r = 0.3 (every variant, dirty and clean L2 flush), a split-count sweep at batch 1,
# torch SDPA (flash, cuDNN; both flushes), the comparison table, and an ncu summary of
# batch 1 x 16k.
# usage: bench/gpu/run-decode.sh
set -uo pipefail
T=build/gpu-tests
OUT=${OUT:-/tmp/out}
W=/tmp/kvc-work
mkdir -p "$OUT" "$W"
exec > >(tee "$OUT/log.txt") 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
for c in check check_split check_nopf; do
  timeout 120 $T/kvc-bench check $T/$c.ptx | grep -E "^variant|FAIL|check:"; echo "$c rc=$?"
  timeout 180 compute-sanitizer --tool memcheck --leak-check no $T/kvc-bench check $T/$c.ptx --quick \
    > "$W/memcheck_$c.txt" 2>&1; echo "memcheck $c rc=$?"
  grep -E "ERROR SUMMARY|FAIL|Invalid" "$W/memcheck_$c.txt" | head -20
done
cat "$W"/memcheck_*.txt > "$OUT/memcheck.txt"
echo "== real-model caches (Gemma 3 270M) vs kvc's CPU path"
for g in gemma gemma_split; do
  timeout 120 $T/kvc-bench check-npy $T/$g.ptx $(for d in $T/gemma/*/; do echo --case ${d%/}; done)
  echo "check-npy $g rc=$?"
done
timeout 120 $T/kvc-bench encoded check-npy $T/gemma_enc.ptx $(for d in $T/gemma/*/; do echo --case ${d%/}; done)
echo "encoded check-npy rc=$?"
timeout 180 compute-sanitizer --tool memcheck --leak-check no $T/kvc-bench check-npy $T/gemma.ptx \
  $(for d in $T/gemma/*/; do echo --case ${d%/}; done) 2>&1 | grep -E "ERROR SUMMARY|check-npy:"
# Dense and ragged decode, every variant: the plain main loop (b64/b128/b256, unroll 4), the
# software-pipelined ones (_u2pf, _u4pf) and those with the fused merge (_u2pf_fm, _u4pf_fm;
# b128_u4pf_fm is kvc-gpu-pipeline's default). Twice: with the dirty L2 flush (memset, as torch's
# numbers and Triton's do_bench) and the clean one (a read pass; BenchCommon.h).
DENSE=""; RAGGED=""
for b in 64 128 256; do
  for s in "" _u2pf _u4pf _u2pf_fm _u4pf_fm; do
    DENSE="$DENSE dense_b$b$s"; RAGGED="$RAGGED ragged_b$b$s"
  done
done
for fl in dirty clean; do
  for v in $DENSE; do
    timeout 120 $T/kvc-bench decode $T/$v.ptx --batches 1,8,32 --contexts 4096,16384,65536 \
      --flush $fl --json "$W/$fl-$v.json" | tail -n +3
  done
  for v in $RAGGED; do
    timeout 120 $T/kvc-bench decode $T/$v.ptx --batches 1,8,32 --contexts 16384,65536 \
      --ragged-ratio 0.3 --flush $fl --json "$W/$fl-$v.json" | tail -n +3
  done
done
# The floor of each shape: a plain streaming read of the same bytes after the same flush.
for fl in dirty clean; do
  timeout 60 $T/kvc-bench floor --batches 1,8,32 --contexts 4096,16384,65536 --flush $fl \
    --json "$W/floor-$fl-dense.json" | tail -n +2 | grep -v wrote
  timeout 60 $T/kvc-bench floor --batches 1,8,32 --contexts 16384,65536 --ragged-ratio 0.3 \
    --flush $fl --json "$W/floor-$fl-ragged.json" | tail -n +3 | grep -v wrote
done
merge() { PYTHONPATH=python python3 -m kvc.bench.merge_results "$@"; }
merge "$W"/dirty-dense_b*.json > "$OUT/kvc-dense.json"
merge "$W"/dirty-ragged_b*.json > "$OUT/kvc-ragged.json"
merge "$W"/clean-dense_b*.json > "$OUT/kvc-dense-clean.json"
merge "$W"/clean-ragged_b*.json > "$OUT/kvc-ragged-clean.json"
merge "$W"/floor-dirty-*.json > "$OUT/floor.json"
merge "$W"/floor-clean-*.json > "$OUT/floor-clean.json"
echo "== batch-1 split sweep (dense)"
for v in dense_b128_u4pf_fm dense_b256_u2pf_fm; do
  for s in 16 33 66 132 264; do
    timeout 60 $T/kvc-bench decode $T/$v.ptx --batches 1 --contexts 16384,65536 --splits $s \
      | tail -n +3
  done
done
PYTHONPATH=python PYTHONUNBUFFERED=1 timeout 200 python3 -m kvc.bench.sdpa_decode --json "$OUT/sdpa.json"
PYTHONPATH=python PYTHONUNBUFFERED=1 timeout 200 python3 -m kvc.bench.sdpa_decode --flush clean \
  --json "$OUT/sdpa-clean.json"
PYTHONPATH=python python3 -m kvc.bench.compare "$OUT/sdpa.json" "$OUT/kvc-dense.json" | tee "$OUT/table.md"
echo "== ncu: batch 1 x 16k, dense b128_u4pf_fm (the default) and b256_u2pf_fm (plan's splits)"
for v in dense_b128_u4pf_fm dense_b256_u2pf_fm; do
  timeout 120 ncu --section SpeedOfLight --section Occupancy --section LaunchStats -c 1 \
    $T/kvc-bench decode $T/$v.ptx --batches 1 --contexts 16384 --reps 1 --warmup 0
done > "$OUT/ncu-b1-16k.txt" 2>&1; echo "ncu rc=$?"
grep -E "Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Grid Size|Block Size" "$OUT/ncu-b1-16k.txt" | head -20
