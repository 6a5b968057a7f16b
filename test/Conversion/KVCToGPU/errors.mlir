// RUN: kvc-opt %s -split-input-file -convert-kvc-to-gpu -verify-diagnostics

func.func @f32(%q: tensor<1x4x1x64xf32>, %k: tensor<1x4x16x64xf32>, %v: tensor<1x4x16x64xf32>) -> tensor<1x4x1x64xf32> {
  // expected-error @+1 {{convert-kvc-to-gpu: needs f16 or bf16 Q/K/V}}
  %o = kvc.attention %q, %k, %v : (tensor<1x4x1x64xf32>, tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>) -> tensor<1x4x1x64xf32>
  return %o : tensor<1x4x1x64xf32>
}

// -----

func.func @softcap(%q: tensor<1x4x1x64xbf16>, %k: tensor<1x4x16x64xbf16>, %v: tensor<1x4x16x64xbf16>) -> tensor<1x4x1x64xbf16> {
  // expected-error @+1 {{convert-kvc-to-gpu: softcap is not supported}}
  %o = kvc.attention %q, %k, %v {softcap = 30.0 : f32} : (tensor<1x4x1x64xbf16>, tensor<1x4x16x64xbf16>, tensor<1x4x16x64xbf16>) -> tensor<1x4x1x64xbf16>
  return %o : tensor<1x4x1x64xbf16>
}

// -----

func.func @causal_prefill(%q: tensor<1x4x2x64xbf16>, %k: tensor<1x4x16x64xbf16>, %v: tensor<1x4x16x64xbf16>) -> tensor<1x4x2x64xbf16> {
  // expected-error @+1 {{convert-kvc-to-gpu: causal attention needs Sq == 1}}
  %o = kvc.attention %q, %k, %v {causal} : (tensor<1x4x2x64xbf16>, tensor<1x4x16x64xbf16>, tensor<1x4x16x64xbf16>) -> tensor<1x4x2x64xbf16>
  return %o : tensor<1x4x2x64xbf16>
}

// -----

func.func @head_dim(%q: tensor<1x4x1x96xbf16>, %k: tensor<1x4x16x96xbf16>, %v: tensor<1x4x16x96xbf16>) -> tensor<1x4x1x96xbf16> {
  // expected-error @+1 {{convert-kvc-to-gpu: head dim must be a multiple of 8 with D/8 dividing 32}}
  %o = kvc.attention %q, %k, %v : (tensor<1x4x1x96xbf16>, tensor<1x4x16x96xbf16>, tensor<1x4x16x96xbf16>) -> tensor<1x4x1x96xbf16>
  return %o : tensor<1x4x1x96xbf16>
}
