// Range-relative error-bounded quantization of one group (KVComp / SZ "REL" mode):
//   step = fp32(eps * (max - min)), symbol = round((x - min) / step),
//   x^ = min + float(symbol) * step (float32; an FMA, as GPUs contract it, is also allowed)
// so |x - x^| <= step/2 plus float rounding; docs/codec.md states the exact bound.
#ifndef KVC_RUNTIME_CODEC_QUANTIZER_H
#define KVC_RUNTIME_CODEC_QUANTIZER_H

#include <cfloat>
#include <cmath>
#include <cstdint>

namespace kvc::codec {

// Largest symbol a group quantized with relative error `eps` can produce: round(range/step)
// with step = range * eps * (1 +- 2^-24); the 2^-20 margin covers that and the division.
inline uint32_t maxSymbolFor(float eps) {
  return static_cast<uint32_t>(std::floor((1.0 / static_cast<double>(eps)) * (1.0 + 0x1p-20) + 0.5));
}

struct GroupParams {
  float min;
  float step;
};

inline GroupParams groupParams(float min, float max, float eps) {
  if (!(max > min))
    return {min, 0.0f};
  float step = static_cast<float>(static_cast<double>(eps) *
                                  (static_cast<double>(max) - static_cast<double>(min)));
  // A step that underflows would divide by zero; FLT_MIN still keeps every symbol in range.
  if (step < FLT_MIN)
    step = FLT_MIN;
  return {min, step};
}

// Round half to even for 0 <= r < 2^51 without a libm call (nearbyint saves and restores the
// FP environment, which dominated encoding time): adding 1.5 * 2^52 leaves no fraction bits.
inline double roundHalfEven(double r) {
  constexpr double kMagic = 0x1.8p52; // not folded: the build does not use -ffast-math
  return (r + kMagic) - kMagic;
}

inline uint32_t quantize(float x, GroupParams g, uint32_t max_symbol) {
  if (g.step == 0.0f)
    return 0;
  double r = (static_cast<double>(x) - static_cast<double>(g.min)) / static_cast<double>(g.step);
  if (!(r > 0.0))
    return 0;
  double q = roundHalfEven(r);
  return q >= static_cast<double>(max_symbol) ? max_symbol : static_cast<uint32_t>(q);
}

inline float dequantize(uint32_t symbol, float min, float step) {
  return min + static_cast<float>(symbol) * step;
}

} // namespace kvc::codec

#endif
