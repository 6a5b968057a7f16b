#include "Kivi.h"

#include "CodecHead.h"
#include "Half.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace kvc::codec {

namespace {

// KIVI quantizer: scale = (max - min) / (2^b - 1), code = clamp(round((x - min) / scale)).
struct KiviGroup {
  float min, scale;
};

KiviGroup kiviGroup(float min, float max, uint32_t bits) {
  if (!(max > min))
    return {min, 0.0f};
  float scale = static_cast<float>((static_cast<double>(max) - min) / ((1u << bits) - 1));
  return {min, std::max(scale, 1.17549435e-38f)};
}

uint32_t kiviCode(float x, KiviGroup g, uint32_t bits) {
  if (g.scale == 0.0f)
    return 0;
  double q = std::nearbyint((static_cast<double>(x) - g.min) / g.scale);
  double top = static_cast<double>((1u << bits) - 1);
  return static_cast<uint32_t>(std::clamp(q, 0.0, top));
}

void putBits(std::vector<uint8_t>& out, uint64_t index, uint32_t bits, uint32_t code) {
  uint64_t bit = index * bits;
  for (uint32_t i = 0; i < bits; ++i, ++bit)
    if ((code >> i) & 1u)
      out[bit >> 3] |= static_cast<uint8_t>(1u << (bit & 7));
}

uint32_t getBits(const std::vector<uint8_t>& in, uint64_t index, uint32_t bits) {
  uint64_t bit = index * bits;
  uint32_t code = 0;
  for (uint32_t i = 0; i < bits; ++i, ++bit)
    code |= static_cast<uint32_t>((in[bit >> 3] >> (bit & 7)) & 1u) << i;
  return code;
}

constexpr size_t kKiviHeaderBytes = 5 * 4 + 8; // params + num_tokens, counted like a header

} // namespace

KiviHead::KiviHead(const kvc_kivi_params& params, const float* k, const float* v,
                   uint64_t num_tokens)
    : params_(params), num_tokens_(num_tokens) {
  auto bad = [](const std::string& m) { fail(KVC_CODEC_ERR_INVALID_ARGUMENT, m); };
  auto valid_bits = [](uint32_t b) { return b == 2 || b == 3 || b == 4 || b == 8; };
  if (params.head_dim < 1 || params.head_dim > 4096)
    bad("kivi: head_dim must be in [1, 4096]");
  if (!valid_bits(params.key_bits) || !valid_bits(params.value_bits))
    bad("kivi: bits must be 2, 3, 4 or 8");
  if (params.group_tokens < 1 || params.group_tokens > 4096)
    bad("kivi: group_tokens must be in [1, 4096]");
  if (num_tokens > 0 && (!k || !v))
    bad("kivi: k and v must not be null");
  const uint64_t d = params.head_dim;
  if (num_tokens > (uint64_t{1} << 40) / d)
    bad("kivi: too many tokens");
  checkFiniteForFp16(k, num_tokens * d, "K");
  checkFiniteForFp16(v, num_tokens * d, "V");

  // Same cut rule as the codec: quantize whole groups older than the recent window.
  const uint64_t old_tokens = num_tokens > params.recent_tokens ? num_tokens - params.recent_tokens : 0;
  key_quantized_tokens_ = old_tokens / params.group_tokens * params.group_tokens;
  value_quantized_tokens_ = old_tokens;

  auto half_of = [](float x) { return halfToFloat(floatToHalf(x)); };
  const uint32_t G = params.group_tokens;
  const uint64_t key_groups = key_quantized_tokens_ / G;
  key_codes_.assign((key_quantized_tokens_ * d * params.key_bits + 7) / 8, 0);
  key_mins_.resize(key_groups * d);
  key_scales_.resize(key_groups * d);
  for (uint64_t g = 0; g < key_groups; ++g)
    for (uint64_t c = 0; c < d; ++c) {
      float lo = INFINITY, hi = -INFINITY;
      for (uint64_t t = g * G; t < (g + 1) * G; ++t) {
        float x = half_of(k[t * d + c]);
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
      KiviGroup grp = kiviGroup(lo, hi, params.key_bits);
      key_mins_[g * d + c] = grp.min;
      key_scales_[g * d + c] = grp.scale;
      for (uint64_t t = g * G; t < (g + 1) * G; ++t)
        putBits(key_codes_, t * d + c, params.key_bits,
                kiviCode(half_of(k[t * d + c]), grp, params.key_bits));
    }
  value_codes_.assign((value_quantized_tokens_ * d * params.value_bits + 7) / 8, 0);
  value_mins_.resize(value_quantized_tokens_);
  value_scales_.resize(value_quantized_tokens_);
  for (uint64_t t = 0; t < value_quantized_tokens_; ++t) {
    float lo = INFINITY, hi = -INFINITY;
    for (uint64_t c = 0; c < d; ++c) {
      float x = half_of(v[t * d + c]);
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
    KiviGroup grp = kiviGroup(lo, hi, params.value_bits);
    value_mins_[t] = grp.min;
    value_scales_[t] = grp.scale;
    for (uint64_t c = 0; c < d; ++c)
      putBits(value_codes_, t * d + c, params.value_bits,
              kiviCode(half_of(v[t * d + c]), grp, params.value_bits));
  }
  for (uint64_t i = key_quantized_tokens_ * d; i < num_tokens * d; ++i)
    key_recent_.push_back(floatToHalf(k[i]));
  for (uint64_t i = value_quantized_tokens_ * d; i < num_tokens * d; ++i)
    value_recent_.push_back(floatToHalf(v[i]));
}

void KiviHead::dequantize(float* k_out, float* v_out) const {
  const uint64_t d = params_.head_dim;
  const uint32_t G = params_.group_tokens;
  if (k_out) {
    for (uint64_t t = 0; t < key_quantized_tokens_; ++t)
      for (uint64_t c = 0; c < d; ++c) {
        uint64_t group = (t / G) * d + c;
        k_out[t * d + c] = key_mins_[group] +
                           static_cast<float>(getBits(key_codes_, t * d + c, params_.key_bits)) *
                               key_scales_[group];
      }
    for (size_t i = 0; i < key_recent_.size(); ++i)
      k_out[key_quantized_tokens_ * d + i] = halfToFloat(key_recent_[i]);
  }
  if (v_out) {
    for (uint64_t t = 0; t < value_quantized_tokens_; ++t)
      for (uint64_t c = 0; c < d; ++c)
        v_out[t * d + c] = value_mins_[t] +
                           static_cast<float>(getBits(value_codes_, t * d + c, params_.value_bits)) *
                               value_scales_[t];
    for (size_t i = 0; i < value_recent_.size(); ++i)
      v_out[value_quantized_tokens_ * d + i] = halfToFloat(value_recent_[i]);
  }
}

kvc_codec_stats KiviHead::stats() const {
  kvc_codec_stats st;
  std::memset(&st, 0, sizeof(st));
  const uint64_t d = params_.head_dim;
  st.num_tokens = num_tokens_;
  st.head_dim = d;
  st.key_encoded_tokens = key_quantized_tokens_;
  st.value_encoded_tokens = value_quantized_tokens_;
  st.key_recent_tokens = num_tokens_ - key_quantized_tokens_;
  st.value_recent_tokens = num_tokens_ - value_quantized_tokens_;
  st.bitstream_bytes = key_codes_.size() + value_codes_.size();
  st.quant_param_bytes = (key_mins_.size() + value_mins_.size()) * 8;
  st.recent_bytes = (key_recent_.size() + value_recent_.size()) * 2;
  st.header_bytes = kKiviHeaderBytes;
  st.total_bytes = st.bitstream_bytes + st.quant_param_bytes + st.recent_bytes + st.header_bytes;
  st.fp16_bytes = 2 * num_tokens_ * d * 2;
  const double elements = 2.0 * static_cast<double>(num_tokens_ * d);
  st.bits_per_element = elements > 0 ? 8.0 * st.total_bytes / elements : 0.0;
  st.compression_ratio = st.total_bytes ? double(st.fp16_bytes) / st.total_bytes : 0.0;
  st.key_fixed_width_bits = params_.key_bits;
  st.value_fixed_width_bits = params_.value_bits;
  st.key_huffman_payload_bits = key_quantized_tokens_ * d * params_.key_bits;
  st.value_huffman_payload_bits = value_quantized_tokens_ * d * params_.value_bits;
  st.quant_only_total_bytes = st.total_bytes;
  st.quant_only_compression_ratio = st.compression_ratio;
  const uint64_t ks = key_quantized_tokens_ * d, vs = value_quantized_tokens_ * d;
  st.key_encoded_bits_per_element = ks ? 8.0 * (key_codes_.size() + key_mins_.size() * 8) / ks : 0.0;
  st.value_encoded_bits_per_element =
      vs ? 8.0 * (value_codes_.size() + value_mins_.size() * 8) / vs : 0.0;
  return st;
}

} // namespace kvc::codec
