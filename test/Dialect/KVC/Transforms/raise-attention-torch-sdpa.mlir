// RUN: kvc-opt %s -split-input-file -kvc-raise-attention | FileCheck %s
// The form torch.onnx.export (TorchScript, opset 17) gives F.scaled_dot_product_attention with
// a bool mask, as imported by kvc-translate: an additive mask computed by a select
// (Where(mask, 0, -inf)), and the NaN guard of fully-masked rows after the softmax
// (Where(IsNaN(p), 0, p), which is kvc.attention's semantics for such rows). Near misses stay.

#id4  = affine_map<(b, h, i, j) -> (b, h, i, j)>
#bh4  = affine_map<(b, h, i, j) -> (b, 0, i, j)>
#q5   = affine_map<(b, h, i, j, d) -> (b, h, i, d)>
#kt5  = affine_map<(b, h, i, j, d) -> (b, h, d, j)>
#s5   = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#p5   = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v5   = affine_map<(b, h, i, e, j) -> (b, h, j, e)>
#o5   = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// The select mask is its own generic (broadcast over heads by the add's map); the guard's
// isnan test is a separate generic.
// CHECK-LABEL: func @raise_select_mask_nan_guard
// CHECK-SAME: (%[[Q:.*]]: tensor<1x2x3x8xf32>, %[[KT:.*]]: tensor<1x2x8x5xf32>, %[[V:.*]]: tensor<1x2x5x8xf32>, %[[M:.*]]: tensor<1x1x3x5xi1>)
// CHECK: %[[BIAS:.*]] = linalg.generic {{.*}} ins(%[[M]] : tensor<1x1x3x5xi1>)
// CHECK: arith.select
// CHECK: %[[K:.*]] = linalg.transpose ins(%[[KT]] : tensor<1x2x8x5xf32>)
// CHECK: %[[O:.*]] = kvc.attention %[[Q]], %[[K]], %[[V]] mask(%[[BIAS]]) {scale = 5.000000e-01 : f32}
// CHECK-NOT: math.exp
// CHECK-NOT: arith.cmpf
// CHECK: return %[[O]]
func.func @raise_select_mask_nan_guard(%q: tensor<1x2x3x8xf32>, %kt: tensor<1x2x8x5xf32>, %v: tensor<1x2x5x8xf32>, %m: tensor<1x1x3x5xi1>) -> tensor<1x2x3x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s0 = tensor.empty() : tensor<1x2x3x5xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %s = linalg.generic {indexing_maps = [#q5, #kt5, #s5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %kt : tensor<1x2x3x8xf32>, tensor<1x2x8x5xf32>) outs(%sf : tensor<1x2x3x5xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x5xf32>
  %b0 = tensor.empty() : tensor<1x1x3x5xf32>
  %bias = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%m : tensor<1x1x3x5xi1>) outs(%b0 : tensor<1x1x3x5xf32>) {
  ^bb0(%c: i1, %o: f32):
    %z = arith.constant 0.0 : f32
    %ninf = arith.constant 0xFF800000 : f32
    %r = arith.select %c, %z, %ninf : f32
    linalg.yield %r : f32
  } -> tensor<1x1x3x5xf32>
  %sc = linalg.generic {indexing_maps = [#id4, #bh4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s, %bias : tensor<1x2x3x5xf32>, tensor<1x1x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) {
  ^bb0(%a: f32, %bb: f32, %o: f32):
    %c = arith.constant 0.5 : f32
    %x = arith.mulf %a, %c : f32
    %y = arith.addf %x, %bb : f32
    linalg.yield %y : f32
  } -> tensor<1x2x3x5xf32>
  %p = linalg.softmax dimension(3) ins(%sc : tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %n0 = tensor.empty() : tensor<1x2x3x5xi1>
  %isnan = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p : tensor<1x2x3x5xf32>) outs(%n0 : tensor<1x2x3x5xi1>) {
  ^bb0(%a: f32, %o: i1):
    %r = arith.cmpf uno, %a, %a : f32
    linalg.yield %r : i1
  } -> tensor<1x2x3x5xi1>
  %pg = linalg.generic {indexing_maps = [#id4, #id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%isnan, %p : tensor<1x2x3x5xi1>, tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) {
  ^bb0(%c: i1, %a: f32, %o: f32):
    %z = arith.constant 0.0 : f32
    %r = arith.select %c, %z, %a : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x5xf32>
  %o0 = tensor.empty() : tensor<1x2x3x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<1x2x3x8xf32>) -> tensor<1x2x3x8xf32>
  %o = linalg.generic {indexing_maps = [#p5, #v5, #o5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%pg, %v : tensor<1x2x3x5xf32>, tensor<1x2x5x8xf32>) outs(%of : tensor<1x2x3x8xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %pr = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %pr : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x8xf32>
  return %o : tensor<1x2x3x8xf32>
}

// -----

#id4  = affine_map<(b, h, i, j) -> (b, h, i, j)>
#q5   = affine_map<(b, h, i, j, d) -> (b, h, i, d)>
#k5   = affine_map<(b, h, i, j, d) -> (b, h, j, d)>
#s5   = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#p5   = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v5   = affine_map<(b, h, i, e, j) -> (b, h, j, e)>
#o5   = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// The guard fused into one generic (isnan test and select in one body); a float mask leaf.
// CHECK-LABEL: func @raise_fused_nan_guard
// CHECK-SAME: (%[[Q:.*]]: tensor<1x2x3x8xf32>, %[[K:.*]]: tensor<1x2x5x8xf32>, %[[V:.*]]: tensor<1x2x5x8xf32>, %[[M:.*]]: tensor<1x2x3x5xf32>)
// CHECK: %[[O:.*]] = kvc.attention %[[Q]], %[[K]], %[[V]] mask(%[[M]]) {scale = 1.000000e+00 : f32}
// CHECK-NOT: linalg.
// CHECK: return %[[O]]
func.func @raise_fused_nan_guard(%q: tensor<1x2x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>, %m: tensor<1x2x3x5xf32>) -> tensor<1x2x3x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s0 = tensor.empty() : tensor<1x2x3x5xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %s = linalg.generic {indexing_maps = [#q5, #k5, #s5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : tensor<1x2x3x8xf32>, tensor<1x2x5x8xf32>) outs(%sf : tensor<1x2x3x5xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x5xf32>
  %sc = linalg.add ins(%s, %m : tensor<1x2x3x5xf32>, tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %p = linalg.softmax dimension(3) ins(%sc : tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %pg = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p : tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) {
  ^bb0(%a: f32, %o: f32):
    %z = arith.constant 0.0 : f32
    %nan = arith.cmpf uno, %a, %a : f32
    %r = arith.select %nan, %z, %a : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x5xf32>
  %o0 = tensor.empty() : tensor<1x2x3x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<1x2x3x8xf32>) -> tensor<1x2x3x8xf32>
  %o = linalg.generic {indexing_maps = [#p5, #v5, #o5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%pg, %v : tensor<1x2x3x5xf32>, tensor<1x2x5x8xf32>) outs(%of : tensor<1x2x3x8xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %pr = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %pr : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x8xf32>
  return %o : tensor<1x2x3x8xf32>
}

// -----

#id4  = affine_map<(b, h, i, j) -> (b, h, i, j)>
#q5   = affine_map<(b, h, i, j, d) -> (b, h, i, d)>
#k5   = affine_map<(b, h, i, j, d) -> (b, h, j, d)>
#s5   = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#p5   = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v5   = affine_map<(b, h, i, e, j) -> (b, h, j, e)>
#o5   = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// Near miss: NaN rows replaced by 1, not 0 (not kvc.attention's fully-masked semantics).
// CHECK-LABEL: func @near_miss_guard_not_zero
// CHECK-NOT: kvc.attention
// CHECK: linalg.softmax
func.func @near_miss_guard_not_zero(%q: tensor<1x2x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x3x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s0 = tensor.empty() : tensor<1x2x3x5xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %s = linalg.generic {indexing_maps = [#q5, #k5, #s5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : tensor<1x2x3x8xf32>, tensor<1x2x5x8xf32>) outs(%sf : tensor<1x2x3x5xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x5xf32>
  %p = linalg.softmax dimension(3) ins(%s : tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %pg = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p : tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) {
  ^bb0(%a: f32, %o: f32):
    %one = arith.constant 1.0 : f32
    %nan = arith.cmpf uno, %a, %a : f32
    %r = arith.select %nan, %one, %a : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x5xf32>
  %o0 = tensor.empty() : tensor<1x2x3x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<1x2x3x8xf32>) -> tensor<1x2x3x8xf32>
  %o = linalg.generic {indexing_maps = [#p5, #v5, #o5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%pg, %v : tensor<1x2x3x5xf32>, tensor<1x2x5x8xf32>) outs(%of : tensor<1x2x3x8xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %pr = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %pr : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x8xf32>
  return %o : tensor<1x2x3x8xf32>
}

// -----

#id4  = affine_map<(b, h, i, j) -> (b, h, i, j)>
#q5   = affine_map<(b, h, i, j, d) -> (b, h, i, d)>
#k5   = affine_map<(b, h, i, j, d) -> (b, h, j, d)>
#s5   = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#p5   = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v5   = affine_map<(b, h, i, e, j) -> (b, h, j, e)>
#o5   = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// Near miss: the "guard" tests `ord` (not NaN), i.e. zeroes every ordinary probability.
// CHECK-LABEL: func @near_miss_guard_ord
// CHECK-NOT: kvc.attention
// CHECK: linalg.softmax
func.func @near_miss_guard_ord(%q: tensor<1x2x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x3x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s0 = tensor.empty() : tensor<1x2x3x5xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %s = linalg.generic {indexing_maps = [#q5, #k5, #s5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : tensor<1x2x3x8xf32>, tensor<1x2x5x8xf32>) outs(%sf : tensor<1x2x3x5xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x5xf32>
  %p = linalg.softmax dimension(3) ins(%s : tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %pg = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p : tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) {
  ^bb0(%a: f32, %o: f32):
    %z = arith.constant 0.0 : f32
    %nan = arith.cmpf ord, %a, %a : f32
    %r = arith.select %nan, %z, %a : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x5xf32>
  %o0 = tensor.empty() : tensor<1x2x3x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<1x2x3x8xf32>) -> tensor<1x2x3x8xf32>
  %o = linalg.generic {indexing_maps = [#p5, #v5, #o5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%pg, %v : tensor<1x2x3x5xf32>, tensor<1x2x5x8xf32>) outs(%of : tensor<1x2x3x8xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %pr = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %pr : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x8xf32>
  return %o : tensor<1x2x3x8xf32>
}

// -----

#id4  = affine_map<(b, h, i, j) -> (b, h, i, j)>
#q5   = affine_map<(b, h, i, j, d) -> (b, h, i, d)>
#k5   = affine_map<(b, h, i, j, d) -> (b, h, j, d)>
#s5   = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#p5   = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v5   = affine_map<(b, h, i, e, j) -> (b, h, j, e)>
#o5   = affine_map<(b, h, i, e, j) -> (b, h, i, e)>

// Near miss: the select "mask" depends on the scores themselves (s > 0 ? 0 : -inf): not a mask.
// CHECK-LABEL: func @near_miss_mask_reads_scores
// CHECK-NOT: kvc.attention
// CHECK: linalg.softmax
func.func @near_miss_mask_reads_scores(%q: tensor<1x2x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x3x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s0 = tensor.empty() : tensor<1x2x3x5xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %s = linalg.generic {indexing_maps = [#q5, #k5, #s5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : tensor<1x2x3x8xf32>, tensor<1x2x5x8xf32>) outs(%sf : tensor<1x2x3x5xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x5xf32>
  %bias = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s : tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) {
  ^bb0(%a: f32, %o: f32):
    %z = arith.constant 0.0 : f32
    %ninf = arith.constant 0xFF800000 : f32
    %pos = arith.cmpf ogt, %a, %z : f32
    %r = arith.select %pos, %z, %ninf : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x5xf32>
  %sc = linalg.add ins(%s, %bias : tensor<1x2x3x5xf32>, tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %p = linalg.softmax dimension(3) ins(%sc : tensor<1x2x3x5xf32>) outs(%s0 : tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32>
  %o0 = tensor.empty() : tensor<1x2x3x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<1x2x3x8xf32>) -> tensor<1x2x3x8xf32>
  %o = linalg.generic {indexing_maps = [#p5, #v5, #o5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %v : tensor<1x2x3x5xf32>, tensor<1x2x5x8xf32>) outs(%of : tensor<1x2x3x8xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %pr = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %pr : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x8xf32>
  return %o : tensor<1x2x3x8xf32>
}

// -----

// kvc.attention (e.g. imported from ONNX Attention) whose K and V were repeated per query head
// before the op, as the dynamo exporter writes GQA: it reads the unrepeated K/V instead.
// CHECK-LABEL: func @fold_head_repeat
// CHECK-SAME: (%[[Q:.*]]: tensor<1x4x3x8xf32>, %[[K:.*]]: tensor<1x2x5x8xf32>, %[[V:.*]]: tensor<1x2x5x8xf32>, %[[M:.*]]: tensor<1x1x3x5xi1>)
// CHECK: %[[O:.*]] = kvc.attention %[[Q]], %[[K]], %[[V]] mask(%[[M]]) {scale = 2.500000e-01 : f32} : (tensor<1x4x3x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x1x3x5xi1>)
// CHECK: return %[[O]]
func.func @fold_head_repeat(%q: tensor<1x4x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>, %m: tensor<1x1x3x5xi1>) -> tensor<1x4x3x8xf32> {
  %kb0 = tensor.empty() : tensor<1x2x2x5x8xf32>
  %kb = linalg.broadcast ins(%k : tensor<1x2x5x8xf32>) outs(%kb0 : tensor<1x2x2x5x8xf32>) dimensions = [2]
  %kr = tensor.collapse_shape %kb [[0], [1, 2], [3], [4]] : tensor<1x2x2x5x8xf32> into tensor<1x4x5x8xf32>
  %vb0 = tensor.empty() : tensor<1x2x2x5x8xf32>
  %vb = linalg.broadcast ins(%v : tensor<1x2x5x8xf32>) outs(%vb0 : tensor<1x2x2x5x8xf32>) dimensions = [2]
  %vr = tensor.collapse_shape %vb [[0], [1, 2], [3], [4]] : tensor<1x2x2x5x8xf32> into tensor<1x4x5x8xf32>
  %o = kvc.attention %q, %kr, %vr mask(%m) {scale = 0.25 : f32} : (tensor<1x4x3x8xf32>, tensor<1x4x5x8xf32>, tensor<1x4x5x8xf32>, tensor<1x1x3x5xi1>) -> tensor<1x4x3x8xf32>
  return %o : tensor<1x4x3x8xf32>
}

// Near miss: only K is repeated (V has Hq heads of its own): left as it is.
// CHECK-LABEL: func @no_fold_head_repeat_k_only
// CHECK: %[[KR:.*]] = tensor.collapse_shape
// CHECK: kvc.attention %arg0, %[[KR]], %arg2
func.func @no_fold_head_repeat_k_only(%q: tensor<1x4x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x4x5x8xf32>) -> tensor<1x4x3x8xf32> {
  %kb0 = tensor.empty() : tensor<1x2x2x5x8xf32>
  %kb = linalg.broadcast ins(%k : tensor<1x2x5x8xf32>) outs(%kb0 : tensor<1x2x2x5x8xf32>) dimensions = [2]
  %kr = tensor.collapse_shape %kb [[0], [1, 2], [3], [4]] : tensor<1x2x2x5x8xf32> into tensor<1x4x5x8xf32>
  %o = kvc.attention %q, %kr, %v : (tensor<1x4x3x8xf32>, tensor<1x4x5x8xf32>, tensor<1x4x5x8xf32>) -> tensor<1x4x3x8xf32>
  return %o : tensor<1x4x3x8xf32>
}

// Near miss: the repeat interleaves the heads (broadcast dim before the head dim: head h reads
// K head h mod 2, not h / 2): not repeat_kv, left as it is.
// CHECK-LABEL: func @no_fold_head_repeat_interleaved
// CHECK: %[[KR:.*]] = tensor.collapse_shape
// CHECK: %[[VR:.*]] = tensor.collapse_shape
// CHECK: kvc.attention %arg0, %[[KR]], %[[VR]]
func.func @no_fold_head_repeat_interleaved(%q: tensor<1x4x3x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x4x3x8xf32> {
  %kb0 = tensor.empty() : tensor<1x2x2x5x8xf32>
  %kb = linalg.broadcast ins(%k : tensor<1x2x5x8xf32>) outs(%kb0 : tensor<1x2x2x5x8xf32>) dimensions = [1]
  %kr = tensor.collapse_shape %kb [[0], [1, 2], [3], [4]] : tensor<1x2x2x5x8xf32> into tensor<1x4x5x8xf32>
  %vb0 = tensor.empty() : tensor<1x2x2x5x8xf32>
  %vb = linalg.broadcast ins(%v : tensor<1x2x5x8xf32>) outs(%vb0 : tensor<1x2x2x5x8xf32>) dimensions = [1]
  %vr = tensor.collapse_shape %vb [[0], [1, 2], [3], [4]] : tensor<1x2x2x5x8xf32> into tensor<1x4x5x8xf32>
  %o = kvc.attention %q, %kr, %vr : (tensor<1x4x3x8xf32>, tensor<1x4x5x8xf32>, tensor<1x4x5x8xf32>) -> tensor<1x4x3x8xf32>
  return %o : tensor<1x4x3x8xf32>
}
