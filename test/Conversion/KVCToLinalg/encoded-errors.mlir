// RUN: not kvc-opt %s -split-input-file -convert-kvc-to-linalg 2>&1 | FileCheck %s

// The runtime updates encoded caches in place: reading the old value after an append is an error.
// CHECK: encoded-errors.mlir:[[@LINE+4]]:12: error: 'kvc.cache.view' op reads an encoded cache after (or apart from) the append that updates it in place
func.func @read_after_append(%c: !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>, %kd: tensor<1x2x1x8xf32>) -> tensor<1x2x16x8xf32> {
  %e = kvc.encode %c : !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>> -> !kvc.encoded_cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 0.05 : f64, value_group = token, value_block = 128, value_error = 0.1 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
  %a = kvc.cache.append %e, %kd, %kd : !kvc.encoded_cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 0.05 : f64, value_group = token, value_block = 128, value_error = 0.1 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>, tensor<1x2x1x8xf32>, tensor<1x2x1x8xf32> -> !kvc.encoded_cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 0.05 : f64, value_group = token, value_block = 128, value_error = 0.1 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
  %k, %v = kvc.cache.view %e : !kvc.encoded_cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 0.05 : f64, value_group = token, value_block = 128, value_error = 0.1 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>> -> tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>
  return %k : tensor<1x2x16x8xf32>
}

// -----

// CHECK: error: 'kvc.encode' op produces {{.*}}, which the CPU runtime cannot hold: it needs f32, equal key and value head dims
func.func @f16(%c: !kvc.cache<tensor<1x2x16x8xf16>, tensor<1x2x16x8xf16>>) -> tensor<1x2x16x8xf16> {
  %e = kvc.encode %c : !kvc.cache<tensor<1x2x16x8xf16>, tensor<1x2x16x8xf16>> -> !kvc.encoded_cache<tensor<1x2x16x8xf16>, tensor<1x2x16x8xf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 0.05 : f64, value_group = token, value_block = 128, value_error = 0.1 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
  %k, %v = kvc.cache.view %e : !kvc.encoded_cache<tensor<1x2x16x8xf16>, tensor<1x2x16x8xf16>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 0.05 : f64, value_group = token, value_block = 128, value_error = 0.1 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>> -> tensor<1x2x16x8xf16>, tensor<1x2x16x8xf16>
  return %k : tensor<1x2x16x8xf16>
}

// -----

// Appending in a loop body to a cache encoded outside it: every iteration would append to the
// same handle, which grows in place.
// CHECK: encoded-errors.mlir:[[@LINE+6]]:10: error: 'kvc.cache.append' op appends to an encoded cache defined outside its block (e.g. in a loop body), which the runtime's in-place update cannot repeat
!enc8 = !kvc.encoded_cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 0.05 : f64, value_group = token, value_block = 128, value_error = 0.1 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
!enc9 = !kvc.encoded_cache<tensor<1x2x17x8xf32>, tensor<1x2x17x8xf32>, #kvc.codec<bits = 0, key_group = block, key_block = 64, key_error = 0.05 : f64, value_group = token, value_block = 128, value_error = 0.1 : f64, entropy = huffman, recent_keys = 128, recent_values = 256>>
func.func @append_in_loop(%c: !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>>, %kd: tensor<1x2x1x8xf32>, %lo: index, %hi: index, %st: index) {
  %e = kvc.encode %c : !kvc.cache<tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>> -> !enc8
  scf.for %i = %lo to %hi step %st {
    %a = kvc.cache.append %e, %kd, %kd : !enc8, tensor<1x2x1x8xf32>, tensor<1x2x1x8xf32> -> !enc9
  }
  return
}
