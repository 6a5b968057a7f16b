// RUN: kvc-opt %s -split-input-file -kvc-raise-attention | FileCheck %s
// The functions named @raise_* are also executed with and without raising by
// test/Integration/CPU/raise-then-lower.py, which checks that the numbers agree.

#map_q   = affine_map<(b, h, i, j, d) -> (b, h, i, d)>
#map_kt  = affine_map<(b, h, i, j, d) -> (b, h, d, j)>
#map_s   = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#map_p   = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#map_v   = affine_map<(b, h, i, e, j) -> (b, h, j, e)>
#map_o   = affine_map<(b, h, i, e, j) -> (b, h, i, e)>
#id4     = affine_map<(b, h, i, j) -> (b, h, i, j)>
#mask4   = affine_map<(b, h, i, j) -> (0, 0, i, j)>

// 4-D generic contractions, explicit Kᵀ (linalg.transpose), scale by multiply, additive mask
// broadcast over batch and heads, linalg.softmax.
// CHECK-LABEL: func @raise_sdpa_4d_softmax
// CHECK-SAME: (%[[Q:.*]]: tensor<1x4x8x16xf32>, %[[K:.*]]: tensor<1x4x8x16xf32>, %[[V:.*]]: tensor<1x4x8x16xf32>, %[[M:.*]]: tensor<1x1x8x8xf32>)
// CHECK: %[[O:.*]] = kvc.attention %[[Q]], %[[K]], %[[V]] mask(%[[M]]) {scale = 2.500000e-01 : f32}
// CHECK-NOT: linalg
// CHECK: return %[[O]]
func.func @raise_sdpa_4d_softmax(%q: tensor<1x4x8x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>, %m: tensor<1x1x8x8xf32>) -> tensor<1x4x8x16xf32> {
  %zero = arith.constant 0.0 : f32
  %scale = arith.constant 0.25 : f32
  %kt0 = tensor.empty() : tensor<1x4x16x8xf32>
  %kt = linalg.transpose ins(%k : tensor<1x4x8x16xf32>) outs(%kt0 : tensor<1x4x16x8xf32>) permutation = [0, 1, 3, 2]
  %s0 = tensor.empty() : tensor<1x4x8x8xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %s = linalg.generic {indexing_maps = [#map_q, #map_kt, #map_s], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %kt : tensor<1x4x8x16xf32>, tensor<1x4x16x8xf32>) outs(%sf : tensor<1x4x8x8xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<1x4x8x8xf32>
  %sc = linalg.generic {indexing_maps = [#id4, #mask4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s, %m : tensor<1x4x8x8xf32>, tensor<1x1x8x8xf32>) outs(%s0 : tensor<1x4x8x8xf32>) {
  ^bb0(%a: f32, %mm: f32, %o: f32):
    %x = arith.mulf %a, %scale : f32
    %y = arith.addf %x, %mm : f32
    linalg.yield %y : f32
  } -> tensor<1x4x8x8xf32>
  %p = linalg.softmax dimension(3) ins(%sc : tensor<1x4x8x8xf32>) outs(%s0 : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %o0 = tensor.empty() : tensor<1x4x8x16xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  %o = linalg.generic {indexing_maps = [#map_p, #map_v, #map_o], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %v : tensor<1x4x8x8xf32>, tensor<1x4x8x16xf32>) outs(%of : tensor<1x4x8x16xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %pr = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %pr : f32
    linalg.yield %r : f32
  } -> tensor<1x4x8x16xf32>
  return %o : tensor<1x4x8x16xf32>
}

// -----

#id3 = affine_map<(b, i, j) -> (b, i, j)>
#row3 = affine_map<(b, i, j) -> (b, i)>

// 3-D batch_matmul with a transposed K, scale by dividing by sqrt(D), softmax written out as
// max / sub / exp / sum / div in separate generics. Raised on [1, B*H, S, D] views.
// CHECK-LABEL: func @raise_bmm_decomposed_softmax
// CHECK: %[[Q4:.*]] = tensor.expand_shape %arg0 {{\[\[}}0, 1], [2], [3]] output_shape [1, 6, 5, 32]
// CHECK: %[[K4:.*]] = tensor.expand_shape %arg1
// CHECK: %[[V4:.*]] = tensor.expand_shape %arg2
// CHECK: %[[O:.*]] = kvc.attention %[[Q4]], %[[K4]], %[[V4]] {scale = 0.176776692 : f32} : (tensor<1x6x5x32xf32>, tensor<1x6x9x32xf32>, tensor<1x6x9x16xf32>) -> tensor<1x6x5x16xf32>
// CHECK: %[[R:.*]] = tensor.collapse_shape %[[O]] {{\[\[}}0, 1], [2], [3]] : tensor<1x6x5x16xf32> into tensor<6x5x16xf32>
// CHECK-NOT: linalg.
// CHECK: return %[[R]]
func.func @raise_bmm_decomposed_softmax(%q: tensor<6x5x32xf32>, %k: tensor<6x9x32xf32>, %v: tensor<6x9x16xf32>) -> tensor<6x5x16xf32> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %sqrtd = arith.constant 5.65685424949 : f32
  %kt0 = tensor.empty() : tensor<6x32x9xf32>
  %kt = linalg.transpose ins(%k : tensor<6x9x32xf32>) outs(%kt0 : tensor<6x32x9xf32>) permutation = [0, 2, 1]
  %s0 = tensor.empty() : tensor<6x5x9xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<6x5x9xf32>) -> tensor<6x5x9xf32>
  %s = linalg.batch_matmul ins(%q, %kt : tensor<6x5x32xf32>, tensor<6x32x9xf32>) outs(%sf : tensor<6x5x9xf32>) -> tensor<6x5x9xf32>
  %sd = linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%s : tensor<6x5x9xf32>) outs(%s0 : tensor<6x5x9xf32>) {
  ^bb0(%a: f32, %o: f32):
    %x = arith.divf %a, %sqrtd : f32
    linalg.yield %x : f32
  } -> tensor<6x5x9xf32>
  %m0 = tensor.empty() : tensor<6x5xf32>
  %mf = linalg.fill ins(%ninf : f32) outs(%m0 : tensor<6x5xf32>) -> tensor<6x5xf32>
  %mx = linalg.generic {indexing_maps = [#id3, #row3], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%sd : tensor<6x5x9xf32>) outs(%mf : tensor<6x5xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %x = arith.maximumf %a, %acc : f32
    linalg.yield %x : f32
  } -> tensor<6x5xf32>
  %sub = linalg.generic {indexing_maps = [#id3, #row3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%sd, %mx : tensor<6x5x9xf32>, tensor<6x5xf32>) outs(%s0 : tensor<6x5x9xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %x = arith.subf %a, %b : f32
    linalg.yield %x : f32
  } -> tensor<6x5x9xf32>
  %e = linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%sub : tensor<6x5x9xf32>) outs(%s0 : tensor<6x5x9xf32>) {
  ^bb0(%a: f32, %o: f32):
    %x = math.exp %a : f32
    linalg.yield %x : f32
  } -> tensor<6x5x9xf32>
  %sum0 = linalg.fill ins(%zero : f32) outs(%m0 : tensor<6x5xf32>) -> tensor<6x5xf32>
  %sum = linalg.generic {indexing_maps = [#id3, #row3], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%e : tensor<6x5x9xf32>) outs(%sum0 : tensor<6x5xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %x = arith.addf %a, %acc : f32
    linalg.yield %x : f32
  } -> tensor<6x5xf32>
  %p = linalg.generic {indexing_maps = [#id3, #row3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%e, %sum : tensor<6x5x9xf32>, tensor<6x5xf32>) outs(%s0 : tensor<6x5x9xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %x = arith.divf %a, %b : f32
    linalg.yield %x : f32
  } -> tensor<6x5x9xf32>
  %o0 = tensor.empty() : tensor<6x5x16xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<6x5x16xf32>) -> tensor<6x5x16xf32>
  %o = linalg.batch_matmul ins(%p, %v : tensor<6x5x9xf32>, tensor<6x9x16xf32>) outs(%of : tensor<6x5x16xf32>) -> tensor<6x5x16xf32>
  return %o : tensor<6x5x16xf32>
}

// -----

#q5 = affine_map<(b, h, i, j, d) -> (b, h, i, d)>
#k5 = affine_map<(b, h, i, j, d) -> (b, h, j, d)>
#s5 = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#p5 = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v5 = affine_map<(b, h, i, e, j) -> (b, h, j, e)>
#o5 = affine_map<(b, h, i, e, j) -> (b, h, i, e)>
#id4b = affine_map<(b, h, i, j) -> (b, h, i, j)>
#rowk = affine_map<(b, h, i, j) -> (b, h, i, 0)>

// GQA as in Hugging Face's repeat_kv: K/V [1,2,S,D] broadcast to [1,2,4,S,D] and collapsed to
// [1,8,S,D]. Kᵀ read through the contraction's map; keepdims row statistics ([.., 1]); the
// scale applied to Q before the product. Raised onto the unrepeated K/V.
// CHECK-LABEL: func @raise_gqa_repeat_kv
// CHECK-SAME: (%[[Q:.*]]: tensor<2x8x3x16xf32>, %[[K:.*]]: tensor<2x2x7x16xf32>, %[[V:.*]]: tensor<2x2x7x8xf32>)
// CHECK: kvc.attention %[[Q]], %[[K]], %[[V]] {scale = 2.500000e-01 : f32} : (tensor<2x8x3x16xf32>, tensor<2x2x7x16xf32>, tensor<2x2x7x8xf32>) -> tensor<2x8x3x8xf32>
// CHECK-NOT: linalg.
func.func @raise_gqa_repeat_kv(%q: tensor<2x8x3x16xf32>, %k: tensor<2x2x7x16xf32>, %v: tensor<2x2x7x8xf32>) -> tensor<2x8x3x8xf32> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %qs_scale = arith.constant dense<0.25> : tensor<2x8x3x16xf32>
  %qs0 = tensor.empty() : tensor<2x8x3x16xf32>
  %qs = linalg.mul ins(%q, %qs_scale : tensor<2x8x3x16xf32>, tensor<2x8x3x16xf32>) outs(%qs0 : tensor<2x8x3x16xf32>) -> tensor<2x8x3x16xf32>
  %kb0 = tensor.empty() : tensor<2x2x4x7x16xf32>
  %kb = linalg.broadcast ins(%k : tensor<2x2x7x16xf32>) outs(%kb0 : tensor<2x2x4x7x16xf32>) dimensions = [2]
  %kr = tensor.collapse_shape %kb [[0], [1, 2], [3], [4]] : tensor<2x2x4x7x16xf32> into tensor<2x8x7x16xf32>
  %vb0 = tensor.empty() : tensor<2x2x4x7x8xf32>
  %vb = linalg.broadcast ins(%v : tensor<2x2x7x8xf32>) outs(%vb0 : tensor<2x2x4x7x8xf32>) dimensions = [2]
  %vr = tensor.collapse_shape %vb [[0], [1, 2], [3], [4]] : tensor<2x2x4x7x8xf32> into tensor<2x8x7x8xf32>
  %s0 = tensor.empty() : tensor<2x8x3x7xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<2x8x3x7xf32>) -> tensor<2x8x3x7xf32>
  %s = linalg.generic {indexing_maps = [#q5, #k5, #s5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%qs, %kr : tensor<2x8x3x16xf32>, tensor<2x8x7x16xf32>) outs(%sf : tensor<2x8x3x7xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %p : f32
    linalg.yield %r : f32
  } -> tensor<2x8x3x7xf32>
  %m0 = tensor.empty() : tensor<2x8x3x1xf32>
  %mf = linalg.fill ins(%ninf : f32) outs(%m0 : tensor<2x8x3x1xf32>) -> tensor<2x8x3x1xf32>
  %mx = linalg.generic {indexing_maps = [#id4b, #rowk], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%s : tensor<2x8x3x7xf32>) outs(%mf : tensor<2x8x3x1xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %x = arith.maximumf %acc, %a : f32
    linalg.yield %x : f32
  } -> tensor<2x8x3x1xf32>
  %e = linalg.generic {indexing_maps = [#id4b, #rowk, #id4b], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s, %mx : tensor<2x8x3x7xf32>, tensor<2x8x3x1xf32>) outs(%s0 : tensor<2x8x3x7xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %x = arith.subf %a, %b : f32
    %y = math.exp %x : f32
    linalg.yield %y : f32
  } -> tensor<2x8x3x7xf32>
  %sum0 = linalg.fill ins(%zero : f32) outs(%m0 : tensor<2x8x3x1xf32>) -> tensor<2x8x3x1xf32>
  %sum = linalg.generic {indexing_maps = [#id4b, #rowk], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%e : tensor<2x8x3x7xf32>) outs(%sum0 : tensor<2x8x3x1xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %x = arith.addf %acc, %a : f32
    linalg.yield %x : f32
  } -> tensor<2x8x3x1xf32>
  %p = linalg.generic {indexing_maps = [#id4b, #rowk, #id4b], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%e, %sum : tensor<2x8x3x7xf32>, tensor<2x8x3x1xf32>) outs(%s0 : tensor<2x8x3x7xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %x = arith.divf %a, %b : f32
    linalg.yield %x : f32
  } -> tensor<2x8x3x7xf32>
  %o0 = tensor.empty() : tensor<2x8x3x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<2x8x3x8xf32>) -> tensor<2x8x3x8xf32>
  %o = linalg.generic {indexing_maps = [#p5, #v5, #o5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %vr : tensor<2x8x3x7xf32>, tensor<2x8x7x8xf32>) outs(%of : tensor<2x8x3x8xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %pr = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %pr : f32
    linalg.yield %r : f32
  } -> tensor<2x8x3x8xf32>
  return %o : tensor<2x8x3x8xf32>
}

// -----

#mA = affine_map<(i, j, d) -> (i, d)>
#mB = affine_map<(i, j, d) -> (j, d)>
#mC = affine_map<(i, j, d) -> (i, j)>
#id2 = affine_map<(i, j) -> (i, j)>
#row2 = affine_map<(i, j) -> (i)>

// 2-D: linalg.matmul with transposed-B indexing maps (the old matmul_transpose_b), an additive
// [Sq, Skv] mask (mask on the left of the add), unscaled scores (scale 1).
// CHECK-LABEL: func @raise_matmul_transpose_b
// CHECK: kvc.attention %{{.*}}, %{{.*}}, %{{.*}} mask(%arg3) {scale = 1.000000e+00 : f32} : (tensor<1x1x4x8xf32>, tensor<1x1x6x8xf32>, tensor<1x1x6x8xf32>, tensor<4x6xf32>) -> tensor<1x1x4x8xf32>
func.func @raise_matmul_transpose_b(%q: tensor<4x8xf32>, %k: tensor<6x8xf32>, %v: tensor<6x8xf32>, %m: tensor<4x6xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s0 = tensor.empty() : tensor<4x6xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %s = linalg.matmul indexing_maps = [#mA, #mB, #mC] ins(%q, %k : tensor<4x8xf32>, tensor<6x8xf32>) outs(%sf : tensor<4x6xf32>) -> tensor<4x6xf32>
  %sm = linalg.add ins(%m, %s : tensor<4x6xf32>, tensor<4x6xf32>) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %p = linalg.softmax dimension(1) ins(%sm : tensor<4x6xf32>) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %o0 = tensor.empty() : tensor<4x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<4x8xf32>) -> tensor<4x8xf32>
  %o = linalg.matmul ins(%p, %v : tensor<4x6xf32>, tensor<6x8xf32>) outs(%of : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %o : tensor<4x8xf32>
}

// -----
// Near misses: each changes the meaning, so nothing may be raised.

// Softmax over the query dimension instead of the key dimension.
// CHECK-LABEL: func @keep_softmax_wrong_dim
// CHECK-NOT: kvc.attention
// CHECK: linalg.softmax dimension(0)
func.func @keep_softmax_wrong_dim(%q: tensor<4x8xf32>, %k: tensor<6x8xf32>, %v: tensor<6x8xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s0 = tensor.empty() : tensor<4x6xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %kt0 = tensor.empty() : tensor<8x6xf32>
  %kt = linalg.transpose ins(%k : tensor<6x8xf32>) outs(%kt0 : tensor<8x6xf32>) permutation = [1, 0]
  %s = linalg.matmul ins(%q, %kt : tensor<4x8xf32>, tensor<8x6xf32>) outs(%sf : tensor<4x6xf32>) -> tensor<4x6xf32>
  %p = linalg.softmax dimension(0) ins(%s : tensor<4x6xf32>) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %o0 = tensor.empty() : tensor<4x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<4x8xf32>) -> tensor<4x8xf32>
  %o = linalg.matmul ins(%p, %v : tensor<4x6xf32>, tensor<6x8xf32>) outs(%of : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %o : tensor<4x8xf32>
}

// -----

#i2 = affine_map<(i, j) -> (i, j)>
#r2 = affine_map<(i, j) -> (i)>

// exp(x) / sum(exp(x)) without subtracting the row max: overflows where attention does not.
// CHECK-LABEL: func @keep_softmax_without_max
// CHECK-NOT: kvc.attention
// CHECK: math.exp
func.func @keep_softmax_without_max(%q: tensor<4x8xf32>, %k: tensor<8x6xf32>, %v: tensor<6x8xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s0 = tensor.empty() : tensor<4x6xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %s = linalg.matmul ins(%q, %k : tensor<4x8xf32>, tensor<8x6xf32>) outs(%sf : tensor<4x6xf32>) -> tensor<4x6xf32>
  %e = linalg.generic {indexing_maps = [#i2, #i2], iterator_types = ["parallel", "parallel"]} ins(%s : tensor<4x6xf32>) outs(%s0 : tensor<4x6xf32>) {
  ^bb0(%a: f32, %o: f32):
    %x = math.exp %a : f32
    linalg.yield %x : f32
  } -> tensor<4x6xf32>
  %z0 = tensor.empty() : tensor<4xf32>
  %zf = linalg.fill ins(%zero : f32) outs(%z0 : tensor<4xf32>) -> tensor<4xf32>
  %sum = linalg.generic {indexing_maps = [#i2, #r2], iterator_types = ["parallel", "reduction"]} ins(%e : tensor<4x6xf32>) outs(%zf : tensor<4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %x = arith.addf %a, %acc : f32
    linalg.yield %x : f32
  } -> tensor<4xf32>
  %p = linalg.generic {indexing_maps = [#i2, #r2, #i2], iterator_types = ["parallel", "parallel"]} ins(%e, %sum : tensor<4x6xf32>, tensor<4xf32>) outs(%s0 : tensor<4x6xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %x = arith.divf %a, %b : f32
    linalg.yield %x : f32
  } -> tensor<4x6xf32>
  %o0 = tensor.empty() : tensor<4x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<4x8xf32>) -> tensor<4x8xf32>
  %o = linalg.matmul ins(%p, %v : tensor<4x6xf32>, tensor<6x8xf32>) outs(%of : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %o : tensor<4x8xf32>
}

// -----

#i2b = affine_map<(i, j) -> (i, j)>
#r2b = affine_map<(i, j) -> (i)>

// The row max starts at 0 instead of -inf. For rows whose scores are all far below 0,
// exp(s - 0) underflows to 0 and the division gives NaN where softmax does not: a different
// function, so it is not raised.
// CHECK-LABEL: func @keep_max_init_zero
// CHECK-NOT: kvc.attention
func.func @keep_max_init_zero(%q: tensor<4x8xf32>, %k: tensor<8x6xf32>, %v: tensor<6x8xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s0 = tensor.empty() : tensor<4x6xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %s = linalg.matmul ins(%q, %k : tensor<4x8xf32>, tensor<8x6xf32>) outs(%sf : tensor<4x6xf32>) -> tensor<4x6xf32>
  %z0 = tensor.empty() : tensor<4xf32>
  %zf = linalg.fill ins(%zero : f32) outs(%z0 : tensor<4xf32>) -> tensor<4xf32>
  %mx = linalg.generic {indexing_maps = [#i2b, #r2b], iterator_types = ["parallel", "reduction"]} ins(%s : tensor<4x6xf32>) outs(%zf : tensor<4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %x = arith.maximumf %a, %acc : f32
    linalg.yield %x : f32
  } -> tensor<4xf32>
  %e = linalg.generic {indexing_maps = [#i2b, #r2b, #i2b], iterator_types = ["parallel", "parallel"]} ins(%s, %mx : tensor<4x6xf32>, tensor<4xf32>) outs(%s0 : tensor<4x6xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %x = arith.subf %a, %b : f32
    %y = math.exp %x : f32
    linalg.yield %y : f32
  } -> tensor<4x6xf32>
  %sum = linalg.generic {indexing_maps = [#i2b, #r2b], iterator_types = ["parallel", "reduction"]} ins(%e : tensor<4x6xf32>) outs(%zf : tensor<4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %x = arith.addf %a, %acc : f32
    linalg.yield %x : f32
  } -> tensor<4xf32>
  %p = linalg.generic {indexing_maps = [#i2b, #r2b, #i2b], iterator_types = ["parallel", "parallel"]} ins(%e, %sum : tensor<4x6xf32>, tensor<4xf32>) outs(%s0 : tensor<4x6xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %x = arith.divf %a, %b : f32
    linalg.yield %x : f32
  } -> tensor<4x6xf32>
  %o0 = tensor.empty() : tensor<4x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<4x8xf32>) -> tensor<4x8xf32>
  %o = linalg.matmul ins(%p, %v : tensor<4x6xf32>, tensor<6x8xf32>) outs(%of : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %o : tensor<4x8xf32>
}

// -----

// The max is taken over the query dimension (wrong reduction dim) while the sum is over keys.
// CHECK-LABEL: func @keep_max_wrong_dim
// CHECK-NOT: kvc.attention
#c2 = affine_map<(i, j) -> (i, j)>
#col = affine_map<(i, j) -> (j)>
#row = affine_map<(i, j) -> (i)>
#t2 = affine_map<(j, i) -> (i, j)>
#tcol = affine_map<(j, i) -> (j)>
func.func @keep_max_wrong_dim(%q: tensor<4x8xf32>, %k: tensor<8x4xf32>, %v: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %s0 = tensor.empty() : tensor<4x4xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<4x4xf32>) -> tensor<4x4xf32>
  %s = linalg.matmul ins(%q, %k : tensor<4x8xf32>, tensor<8x4xf32>) outs(%sf : tensor<4x4xf32>) -> tensor<4x4xf32>
  %z0 = tensor.empty() : tensor<4xf32>
  %mf = linalg.fill ins(%ninf : f32) outs(%z0 : tensor<4xf32>) -> tensor<4xf32>
  %mx = linalg.generic {indexing_maps = [#t2, #tcol], iterator_types = ["parallel", "reduction"]} ins(%s : tensor<4x4xf32>) outs(%mf : tensor<4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %x = arith.maximumf %a, %acc : f32
    linalg.yield %x : f32
  } -> tensor<4xf32>
  %e = linalg.generic {indexing_maps = [#c2, #row, #c2], iterator_types = ["parallel", "parallel"]} ins(%s, %mx : tensor<4x4xf32>, tensor<4xf32>) outs(%s0 : tensor<4x4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %x = arith.subf %a, %b : f32
    %y = math.exp %x : f32
    linalg.yield %y : f32
  } -> tensor<4x4xf32>
  %zf = linalg.fill ins(%zero : f32) outs(%z0 : tensor<4xf32>) -> tensor<4xf32>
  %sum = linalg.generic {indexing_maps = [#c2, #row], iterator_types = ["parallel", "reduction"]} ins(%e : tensor<4x4xf32>) outs(%zf : tensor<4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %x = arith.addf %a, %acc : f32
    linalg.yield %x : f32
  } -> tensor<4xf32>
  %p = linalg.generic {indexing_maps = [#c2, #row, #c2], iterator_types = ["parallel", "parallel"]} ins(%e, %sum : tensor<4x4xf32>, tensor<4xf32>) outs(%s0 : tensor<4x4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %x = arith.divf %a, %b : f32
    linalg.yield %x : f32
  } -> tensor<4x4xf32>
  %o0 = tensor.empty() : tensor<4x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<4x8xf32>) -> tensor<4x8xf32>
  %o = linalg.matmul ins(%p, %v : tensor<4x4xf32>, tensor<4x8xf32>) outs(%of : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %o : tensor<4x8xf32>
}

// -----

// A scale that is not a constant (a function argument) is not folded into kvc.attention.
// CHECK-LABEL: func @keep_dynamic_scale
// CHECK-NOT: kvc.attention
#d2 = affine_map<(i, j) -> (i, j)>
func.func @keep_dynamic_scale(%q: tensor<4x8xf32>, %k: tensor<8x6xf32>, %v: tensor<6x8xf32>, %c: f32) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s0 = tensor.empty() : tensor<4x6xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %s = linalg.matmul ins(%q, %k : tensor<4x8xf32>, tensor<8x6xf32>) outs(%sf : tensor<4x6xf32>) -> tensor<4x6xf32>
  %sc = linalg.generic {indexing_maps = [#d2, #d2], iterator_types = ["parallel", "parallel"]} ins(%s : tensor<4x6xf32>) outs(%s0 : tensor<4x6xf32>) {
  ^bb0(%a: f32, %o: f32):
    %x = arith.mulf %a, %c : f32
    linalg.yield %x : f32
  } -> tensor<4x6xf32>
  %p = linalg.softmax dimension(1) ins(%sc : tensor<4x6xf32>) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %o0 = tensor.empty() : tensor<4x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<4x8xf32>) -> tensor<4x8xf32>
  %o = linalg.matmul ins(%p, %v : tensor<4x6xf32>, tensor<6x8xf32>) outs(%of : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %o : tensor<4x8xf32>
}

// -----

// A mask multiplied into the scores (not added) is not an attention mask.
// CHECK-LABEL: func @keep_multiplied_mask
// CHECK-NOT: kvc.attention
func.func @keep_multiplied_mask(%q: tensor<4x8xf32>, %k: tensor<8x6xf32>, %v: tensor<6x8xf32>, %m: tensor<4x6xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %s0 = tensor.empty() : tensor<4x6xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %s = linalg.matmul ins(%q, %k : tensor<4x8xf32>, tensor<8x6xf32>) outs(%sf : tensor<4x6xf32>) -> tensor<4x6xf32>
  %sm = linalg.mul ins(%s, %m : tensor<4x6xf32>, tensor<4x6xf32>) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %p = linalg.softmax dimension(1) ins(%sm : tensor<4x6xf32>) outs(%s0 : tensor<4x6xf32>) -> tensor<4x6xf32>
  %o0 = tensor.empty() : tensor<4x8xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<4x8xf32>) -> tensor<4x8xf32>
  %o = linalg.matmul ins(%p, %v : tensor<4x6xf32>, tensor<6x8xf32>) outs(%of : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %o : tensor<4x8xf32>
}
