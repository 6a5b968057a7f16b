// Bad options and budgets: a clear error and a non-zero exit.
// RUN: not kvc-opt %s --kvc-compress-present="budget=3 sinks=2 recent=2" 2>&1 | FileCheck %s --check-prefix=SMALL
// RUN: not kvc-opt %s --kvc-compress-present="ratio=0.5 budget=4" 2>&1 | FileCheck %s --check-prefix=BOTH
// RUN: not kvc-opt %s --kvc-compress-present="method=bogus ratio=0.5" 2>&1 | FileCheck %s --check-prefix=METHOD
// SMALL: error: kvc-compress-present: output 'present.0.key': budget 3 is smaller than sinks + recent = 2 + 2
// BOTH: error: kvc-compress-present: give exactly one of ratio in (0, 1] and budget > 0 (got ratio=5.000000e-01, budget=4)
// METHOD: error: kvc-compress-present: unknown method 'bogus' (expected streaming, snapkv, h2o, select_fit or sculpt)
func.func @prefill(%k: tensor<1x2x16x8xf32>, %v: tensor<1x2x16x8xf32>)
    -> (tensor<1x2x16x8xf32> {kvc.onnx.name = "present.0.key"}, tensor<1x2x16x8xf32> {kvc.onnx.name = "present.0.value"}) {
  return %k, %v : tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>
}
