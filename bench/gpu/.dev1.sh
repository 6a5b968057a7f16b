set -uo pipefail
T=build/gpu-tests
mkdir -p $OUT/w
exec > >(tee $OUT/log.txt) 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
for c in check check_split check_nopf; do
  timeout 120 $T/kvc-bench check $T/$c.ptx | grep -E "^variant|FAIL|check:"; echo "$c rc=${PIPESTATUS[0]}"
done
timeout 180 compute-sanitizer --tool memcheck --leak-check no $T/kvc-bench check $T/check.ptx --quick 2>&1 | grep -E "ERROR SUMMARY|FAIL|check:"
for g in gemma gemma_split; do
  timeout 120 $T/kvc-bench check-npy $T/$g.ptx $(for d in $T/gemma/*/; do echo --case ${d%/}; done) | tail -2
  echo "check-npy $g rc=${PIPESTATUS[0]}"
done
timeout 180 compute-sanitizer --tool memcheck --leak-check no $T/kvc-bench check-npy $T/gemma.ptx \
  $(for d in $T/gemma/*/; do echo --case ${d%/}; done) 2>&1 | grep -E "ERROR SUMMARY|check-npy:"
echo "== examples"
for e in kvc-decode-example kvc-decode-ir-example kvc-encoded-ir-example; do
  timeout 120 build/bin/$e > $OUT/w/$e.txt 2>&1; echo "$e rc=$?"; tail -4 $OUT/w/$e.txt
done
for e in kvc-decode-ir-example kvc-encoded-ir-example; do
  timeout 200 compute-sanitizer --tool memcheck --leak-check no build/bin/$e 2>&1 | grep -E "ERROR SUMMARY|PASS|FAIL" | tail -3
done
echo "== floor sizes"
bash bench/gpu/run-floor-sizes.sh
cd $OUT && tar czf results.tgz log.txt w sizes-*.json floor-x4-*.json && ls
