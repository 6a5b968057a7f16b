// IEEE-754 binary16 <-> binary32 conversion without F16C (portable builds), round to nearest
// even. The codec stores an fp16 cache, so every input goes through floatToHalf once.
#ifndef KVC_RUNTIME_CODEC_HALF_H
#define KVC_RUNTIME_CODEC_HALF_H

#include <cstdint>
#include <cstring>

namespace kvc::codec {

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t floatToHalf(float value) {
  uint32_t bits = floatBits(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) // Inf / NaN
    return sign | 0x7c00u | (magnitude > 0x7f800000u ? 0x200u : 0u);
  if (magnitude >= 0x477ff000u) // rounds to >= 65520: overflow to Inf
    return sign | 0x7c00u;
  if (magnitude < 0x38800000u) { // below the smallest normal half (2^-14): subnormal or zero
    if (magnitude < 0x33000000u) // < 2^-25 rounds to zero
      return sign;
    uint32_t exponent = magnitude >> 23;
    uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exponent; // 14..24 for the value in units of 2^-24
    uint32_t half = mantissa >> shift;
    uint32_t remainder = mantissa & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (half & 1u)))
      ++half;
    return sign | static_cast<uint16_t>(half);
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits (carry may bump exp).
  uint32_t rebased = magnitude - 0x38000000u;
  uint32_t half = rebased >> 13;
  uint32_t remainder = rebased & 0x1fffu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (half & 1u)))
    ++half;
  return sign | static_cast<uint16_t>(half);
}

inline float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f)
    return bitsToFloat(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {
    // Subnormal: value = mantissa * 2^-24, exact in float.
    float value = static_cast<float>(mantissa) * 5.9604644775390625e-08f;
    return sign ? -value : value;
  }
  return bitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

inline bool halfIsFinite(uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }

} // namespace kvc::codec

#endif
