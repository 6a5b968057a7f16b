/* Wall-clock time of one decode step through the compiled program's host code: what a caller of
 * _mlir_ciface_decode (examples/gpu/decode.mlir, kvc-gpu-pipeline host=llvm) waits for, host
 * work included (workspace and stream handling, the launch, the synchronisation, the managed
 * output). kvc-bench decode times the kernels alone with CUDA events; the difference between the
 * two is what the host code adds per call.
 *
 *   kvc-decode-ir-bench [--batch B] [--context S] [--reps N] [--warmup W] [--flush none|dirty]
 *
 * Inputs are device memory holding bf16 1.0 (the timing does not depend on the values; the
 * example kvc-decode-ir-example checks the numbers against a float64 reference). Each timed call is followed, untimed, by
 * freeing the returned output, as a caller must. --flush dirty writes 256 MiB before each call
 * (like kvc-bench's default flush), so K/V come from HBM; none leaves whatever L2 holds.
 * Prints the median, minimum and maximum over the reps, in microseconds. Before the last call
 * V is refilled with a different constant per KV head, and that call's output is checked
 * against it (each query head's output is its KV head's constant). The output's free is not
 * timed. Exit status: 0, 1 bad arguments or a wrong output,
 * 2 no usable GPU / CUDA error.
 */
#include "example_util.h"
#include "kvc/Runtime/CUDA.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void _mlir_ciface_decode(MemRef4 *result, MemRef4 *q, MemRef4 *k, MemRef4 *v);

#define CHECK(call) KVC_EXAMPLE_CHECK("decode_ir_bench", call)
enum { HKV_ = 8, HQ_ = 32, D_ = 128 };

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}
/* The last call's V value of KV row bh = b * Hkv + h (earlier calls: 1.0). */
static float head_value(long bh) { return 1.0f + (float)(bh % 32) / 8.0f; }
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static int usage(const char *msg) {
  fprintf(stderr,
          "decode_ir_bench: %s\nusage: kvc-decode-ir-bench [--batch B] [--context S] [--reps N] "
          "[--warmup W] [--flush none|dirty]\n",
          msg);
  return 1;
}
static int parse_pos(const char *s, long *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == 0 || *end != 0 || v < 1)
    return 0;
  *out = v;
  return 1;
}

int main(int argc, char **argv) {
  long batch = 1, ctx = 16384, reps = 50, warmup = 5;
  int flush = 1;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    if (i + 1 >= argc)
      return usage("every option takes a value");
    const char *v = argv[++i];
    long *dst = !strcmp(a, "--batch")     ? &batch
                : !strcmp(a, "--context") ? &ctx
                : !strcmp(a, "--reps")    ? &reps
                : !strcmp(a, "--warmup")  ? &warmup
                                          : NULL;
    if (dst) {
      if (!parse_pos(v, dst))
        return usage("option values must be positive integers");
    } else if (!strcmp(a, "--flush")) {
      if (strcmp(v, "none") && strcmp(v, "dirty"))
        return usage("--flush takes none or dirty");
      flush = !strcmp(v, "dirty");
    } else {
      return usage("unknown option");
    }
  }

  const size_t nq = (size_t)batch * HQ_ * D_, nkv = (size_t)batch * HKV_ * ctx * D_;
  const size_t flushBytes = (size_t)256 << 20;
  kvc_cuda_ptr dq, dk, dv, dflush = 0;
  CHECK(kvc_cuda_init(0));
  CHECK(kvc_cuda_malloc(&dq, nq * 2));
  CHECK(kvc_cuda_malloc(&dk, nkv * 2));
  CHECK(kvc_cuda_malloc(&dv, nkv * 2));
  const unsigned one2 = 0x3F803F80u; /* two bf16 1.0 */
  CHECK(kvc_cuda_memset_d32_async(dq, one2, nq / 2, NULL));
  CHECK(kvc_cuda_memset_d32_async(dk, one2, nkv / 2, NULL));
  CHECK(kvc_cuda_memset_d32_async(dv, one2, nkv / 2, NULL));
  if (flush)
    CHECK(kvc_cuda_malloc(&dflush, flushBytes));
  CHECK(kvc_cuda_synchronize());

  uint16_t *q = (uint16_t *)(uintptr_t)dq, *k = (uint16_t *)(uintptr_t)dk,
           *v = (uint16_t *)(uintptr_t)dv;
  MemRef4 mq = memref(q, batch, HQ_, 1, D_), mk = memref(k, batch, HKV_, ctx, D_),
          mv = memref(v, batch, HKV_, ctx, D_);
  double *t = malloc(sizeof(double) * (size_t)reps);
  if (!t)
    return 2;
  for (long r = -warmup; r < reps; ++r) {
    if (r == reps - 1) {
      /* Before the last call V changes to a different constant per KV head (1 + k/8, exact in
       * bf16), so its output must change too: a stale, unwritten or mis-merged output, or
       * one with heads mixed up, fails the check below. */
      for (long bh = 0; bh < batch * HKV_; ++bh) {
        const unsigned h = to_bf16(head_value(bh));
        CHECK(kvc_cuda_memset_d32_async(dv + (kvc_cuda_ptr)bh * ctx * D_ * 2, (h << 16) | h,
                                        (size_t)ctx * D_ / 2, NULL));
      }
      CHECK(kvc_cuda_synchronize());
    }
    if (flush) {
      CHECK(kvc_cuda_memset_d8_async(dflush, (unsigned char)r, flushBytes, NULL));
      CHECK(kvc_cuda_synchronize());
    }
    MemRef4 out;
    const double t0 = now_us();
    _mlir_ciface_decode(&out, &mq, &mk, &mv);
    const double t1 = now_us();
    if (r >= 0)
      t[r] = t1 - t0;
    if (r == reps - 1) {
      /* V is constant along the sequence within each KV head, so every output element of query
       * head (b, hq) is that head's constant whatever the softmax weights. Copied to the host,
       * so managed and device outputs both work. */
      uint16_t *h = malloc(nq * 2);
      if (!h)
        return 2;
      CHECK(kvc_cuda_memcpy_dtoh(h, (kvc_cuda_ptr)(uintptr_t)(out.aligned + out.offset), nq * 2));
      size_t bad = 0;
      for (size_t i = 0; i < nq; ++i) {
        const long b = (long)(i / ((size_t)HQ_ * D_)), hq = (long)(i / D_ % HQ_);
        const float want = head_value(b * HKV_ + hq / (HQ_ / HKV_));
        bad += fabsf(from_bf16(h[i]) - want) > 1e-2f * want;
      }
      free(h);
      if (bad) {
        fprintf(stderr, "decode_ir_bench: %zu of %zu output elements differ from their KV head's V\n",
                bad, nq);
        return 1;
      }
    }
    CHECK(kvc_cuda_free((kvc_cuda_ptr)(uintptr_t)out.allocated));
  }
  qsort(t, (size_t)reps, sizeof(double), cmp_double);
  printf("decode_ir_bench: _mlir_ciface_decode B=%ld Hq=%d Hkv=%d S=%ld D=%d bf16, flush %s: "
         "median %.1f us, min %.1f, max %.1f over %ld calls (%ld warm-up), output ok\n",
         batch, HQ_, HKV_, ctx, D_, flush ? "dirty" : "none", t[reps / 2], t[0], t[reps - 1],
         reps, warmup);
  free(t);
  kvc_cuda_free(dq);
  kvc_cuda_free(dk);
  kvc_cuda_free(dv);
  if (dflush)
    kvc_cuda_free(dflush);
  return 0;
}
