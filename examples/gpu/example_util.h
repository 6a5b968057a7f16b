/* bf16 conversions and the deterministic uniform generator shared by the GPU examples. */
#ifndef KVC_EXAMPLES_GPU_EXAMPLE_UTIL_H
#define KVC_EXAMPLES_GPU_EXAMPLE_UTIL_H

#include <stdint.h>
#include <string.h>

/* float -> bf16 bits, round to nearest even. */
static uint16_t to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}
static float from_bf16(uint16_t h) {
  uint32_t x = (uint32_t)h << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}
/* U(-1, 1) from a 32-bit LCG state. */
static float uniform(unsigned *state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

#endif
