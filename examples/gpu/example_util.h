/* bf16 conversions and the deterministic uniform generator shared by the GPU examples. */
#ifndef KVC_EXAMPLES_GPU_EXAMPLE_UTIL_H
#define KVC_EXAMPLES_GPU_EXAMPLE_UTIL_H

#include <stdint.h>
#include <string.h>

/* float -> bf16 bits, round to nearest even. */
static inline uint16_t to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}
static inline float from_bf16(uint16_t h) {
  uint32_t x = (uint32_t)h << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}
/* U(-1, 1) from a 32-bit LCG state. */
static inline float uniform(unsigned *state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

/* MLIR's descriptor of a rank-4 memref of 16-bit elements, as C wrappers take and return it,
 * and a contiguous one over p. */
typedef struct {
  uint16_t *allocated, *aligned;
  int64_t offset, sizes[4], strides[4];
} MemRef4;
static inline MemRef4 memref(uint16_t *p, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  MemRef4 m = {p, p, 0, {d0, d1, d2, d3}, {d1 * d2 * d3, d2 * d3, d3, 1}};
  return m;
}

/* Returns 2 from the calling function with "<prog>: <call> failed: <CUDA error>" on stderr. */
#define KVC_EXAMPLE_CHECK(prog, call)                                                          \
  do {                                                                                         \
    if ((call) != 0) {                                                                         \
      fprintf(stderr, "%s: %s failed: %s\n", prog, #call, kvc_cuda_last_error());              \
      return 2;                                                                                \
    }                                                                                          \
  } while (0)

#endif
