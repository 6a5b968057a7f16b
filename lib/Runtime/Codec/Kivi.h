// KIVI-style baseline: plain b-bit asymmetric min/max quantization, keys per channel over
// groups of G tokens, values per token, fp16 recent window; bytes counted like the codec.
#ifndef KVC_RUNTIME_CODEC_KIVI_H
#define KVC_RUNTIME_CODEC_KIVI_H

#include "kvc/Runtime/Codec.h"

#include <cstdint>
#include <vector>

namespace kvc::codec {

class KiviHead {
public:
  KiviHead(const kvc_kivi_params& params, const float* k, const float* v, uint64_t num_tokens);
  void dequantize(float* k_out, float* v_out) const;
  kvc_codec_stats stats() const;
  uint64_t numTokens() const { return num_tokens_; }

private:
  kvc_kivi_params params_;
  uint64_t num_tokens_ = 0;
  uint64_t key_quantized_tokens_ = 0, value_quantized_tokens_ = 0;
  std::vector<uint8_t> key_codes_, value_codes_; // bit-packed, LSB-first
  std::vector<float> key_mins_, key_scales_;     // [groups x head_dim]
  std::vector<float> value_mins_, value_scales_; // [quantized tokens]
  std::vector<uint16_t> key_recent_, value_recent_;
};

} // namespace kvc::codec

#endif
