// A decode step of grouped-query attention, written the way a frontend that knows nothing
// about attention emits it: Hugging Face's repeat_kv (broadcast + collapse of K/V from 2 to 8
// heads), Q·Kᵀ as a linalg.generic contraction, a scale multiply, an additive padding mask, a
// softmax spelled out as max / sub+exp / sum / div, and P·V.
//
//   kvc-opt examples/gqa_attention.mlir --kvc-raise-attention      # -> one kvc.attention
//   kvc-opt examples/gqa_attention.mlir --kvc-cpu-pipeline=raise-attention=1 | mlir-runner ...
//
// Shapes: query [1, 8, 4, 64] (4 new tokens, 8 query heads), keys/values [1, 2, 160, 64]
// (past + new tokens, 2 KV heads), mask [1, 1, 4, 160].

#q5 = affine_map<(b, h, i, j, d) -> (b, h, i, d)>
#k5 = affine_map<(b, h, i, j, d) -> (b, h, j, d)>
#s5 = affine_map<(b, h, i, j, d) -> (b, h, i, j)>
#p5 = affine_map<(b, h, i, e, j) -> (b, h, i, j)>
#v5 = affine_map<(b, h, i, e, j) -> (b, h, j, e)>
#o5 = affine_map<(b, h, i, e, j) -> (b, h, i, e)>
#id4 = affine_map<(b, h, i, j) -> (b, h, i, j)>
#row = affine_map<(b, h, i, j) -> (b, h, i)>
#msk = affine_map<(b, h, i, j) -> (b, 0, i, j)>

func.func @gqa_attention(%q: tensor<1x8x4x64xf32>, %k: tensor<1x2x160x64xf32>,
                         %v: tensor<1x2x160x64xf32>, %mask: tensor<1x1x4x160xf32>)
    -> tensor<1x8x4x64xf32> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %scale = arith.constant 0.125 : f32

  // repeat_kv: [1, 2, 160, 64] -> [1, 2, 4, 160, 64] -> [1, 8, 160, 64]
  %kb0 = tensor.empty() : tensor<1x2x4x160x64xf32>
  %kb = linalg.broadcast ins(%k : tensor<1x2x160x64xf32>) outs(%kb0 : tensor<1x2x4x160x64xf32>) dimensions = [2]
  %kr = tensor.collapse_shape %kb [[0], [1, 2], [3], [4]] : tensor<1x2x4x160x64xf32> into tensor<1x8x160x64xf32>
  %vb0 = tensor.empty() : tensor<1x2x4x160x64xf32>
  %vb = linalg.broadcast ins(%v : tensor<1x2x160x64xf32>) outs(%vb0 : tensor<1x2x4x160x64xf32>) dimensions = [2]
  %vr = tensor.collapse_shape %vb [[0], [1, 2], [3], [4]] : tensor<1x2x4x160x64xf32> into tensor<1x8x160x64xf32>

  // scores = (Q·Kᵀ) * scale + mask
  %s0 = tensor.empty() : tensor<1x8x4x160xf32>
  %sf = linalg.fill ins(%zero : f32) outs(%s0 : tensor<1x8x4x160xf32>) -> tensor<1x8x4x160xf32>
  %qk = linalg.generic {indexing_maps = [#q5, #k5, #s5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %kr : tensor<1x8x4x64xf32>, tensor<1x8x160x64xf32>) outs(%sf : tensor<1x8x4x160xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %m : f32
    linalg.yield %r : f32
  } -> tensor<1x8x4x160xf32>
  %s = linalg.generic {indexing_maps = [#id4, #msk, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%qk, %mask : tensor<1x8x4x160xf32>, tensor<1x1x4x160xf32>) outs(%s0 : tensor<1x8x4x160xf32>) {
  ^bb0(%a: f32, %mm: f32, %o: f32):
    %x = arith.mulf %a, %scale : f32
    %y = arith.addf %x, %mm : f32
    linalg.yield %y : f32
  } -> tensor<1x8x4x160xf32>

  // softmax over keys: e = exp(s - max(s)); p = e / sum(e)
  %r0 = tensor.empty() : tensor<1x8x4xf32>
  %mf = linalg.fill ins(%ninf : f32) outs(%r0 : tensor<1x8x4xf32>) -> tensor<1x8x4xf32>
  %mx = linalg.generic {indexing_maps = [#id4, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%s : tensor<1x8x4x160xf32>) outs(%mf : tensor<1x8x4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %x = arith.maximumf %a, %acc : f32
    linalg.yield %x : f32
  } -> tensor<1x8x4xf32>
  %e = linalg.generic {indexing_maps = [#id4, #row, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s, %mx : tensor<1x8x4x160xf32>, tensor<1x8x4xf32>) outs(%s0 : tensor<1x8x4x160xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %x = arith.subf %a, %b : f32
    %y = math.exp %x : f32
    linalg.yield %y : f32
  } -> tensor<1x8x4x160xf32>
  %zf = linalg.fill ins(%zero : f32) outs(%r0 : tensor<1x8x4xf32>) -> tensor<1x8x4xf32>
  %sum = linalg.generic {indexing_maps = [#id4, #row], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%e : tensor<1x8x4x160xf32>) outs(%zf : tensor<1x8x4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %x = arith.addf %a, %acc : f32
    linalg.yield %x : f32
  } -> tensor<1x8x4xf32>
  %p = linalg.generic {indexing_maps = [#id4, #row, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%e, %sum : tensor<1x8x4x160xf32>, tensor<1x8x4xf32>) outs(%s0 : tensor<1x8x4x160xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %x = arith.divf %a, %b : f32
    linalg.yield %x : f32
  } -> tensor<1x8x4x160xf32>

  // out = P·V
  %o0 = tensor.empty() : tensor<1x8x4x64xf32>
  %of = linalg.fill ins(%zero : f32) outs(%o0 : tensor<1x8x4x64xf32>) -> tensor<1x8x4x64xf32>
  %out = linalg.generic {indexing_maps = [#p5, #v5, #o5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%p, %vr : tensor<1x8x4x160xf32>, tensor<1x8x160x64xf32>) outs(%of : tensor<1x8x4x64xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %m : f32
    linalg.yield %r : f32
  } -> tensor<1x8x4x64xf32>
  return %out : tensor<1x8x4x64xf32>
}
