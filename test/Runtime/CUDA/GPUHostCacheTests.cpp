//===- GPUHostCacheTests.cpp - the GPU runtime's host-side caches without a GPU ---------===//
//
// What convert-kvc-to-gpu's host code leans on to allocate nothing per decode step:
//  * kvc_rt_gpu_workspace_<f32|i32> (GPUWorkspaceABI.cpp): one grow-only buffer per thread and
//    slot, i32 buffers zeroed when (re)allocated, freed on release and at thread exit;
//  * mgpuStreamCreate/Destroy (MgpuABI.cpp): destroyed streams are pooled per thread;
//  * kvc_rt_gpu_decode_splits (GPUDecodeABI.cpp): the split count of a compiled decode op from
//    the runtime's plan, the kernel found by name in the program's registered modules.
// The kvc_cuda_* driver API is faked here on host memory, with counters of what was called.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDA.h"
#include "kvc/Runtime/CompilerABI.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>

extern "C" {
void *mgpuStreamCreate();
void mgpuStreamDestroy(void *stream);
void *mgpuModuleLoad(void *data, size_t size);
void mgpuModuleUnload(void *module);
}

namespace {
struct FakeDevice {
  int mallocs = 0, frees = 0, memsets = 0, streamCreates = 0, streamDestroys = 0;
  bool failMalloc = false;
  int moduleLoads = 0, occupancyQueries = 0, ctasPerSM = 3;
  std::set<std::string> functions; // what the fake module holds
  std::set<kvc_cuda_ptr> live;
  uintptr_t nextStream = 1;
} fake;
} // namespace

// The fake driver: the subset the two files call.
extern "C" {
const char *kvc_cuda_last_error(void) { return "fake driver error"; }
int kvc_cuda_init(int) { return 0; }
int kvc_cuda_malloc(kvc_cuda_ptr *out, size_t bytes) {
  if (fake.failMalloc)
    return 1;
  void *p = std::malloc(bytes);
  std::memset(p, 0xAB, bytes); // not zero, like fresh device memory need not be
  *out = kvc_cuda_ptr(uintptr_t(p));
  fake.live.insert(*out);
  ++fake.mallocs;
  return 0;
}
int kvc_cuda_malloc_managed(kvc_cuda_ptr *out, size_t bytes) { return kvc_cuda_malloc(out, bytes); }
int kvc_cuda_free(kvc_cuda_ptr p) {
  if (!fake.live.erase(p))
    return 1;
  std::free(reinterpret_cast<void *>(uintptr_t(p)));
  ++fake.frees;
  return 0;
}
int kvc_cuda_memset_d32_async(kvc_cuda_ptr dst, unsigned v, size_t count, kvc_cuda_stream) {
  auto *w = reinterpret_cast<uint32_t *>(uintptr_t(dst));
  for (size_t i = 0; i < count; ++i)
    w[i] = v;
  ++fake.memsets;
  return 0;
}
int kvc_cuda_synchronize(void) { return 0; }
int kvc_cuda_stream_create(kvc_cuda_stream *out) {
  *out = reinterpret_cast<kvc_cuda_stream>(fake.nextStream++);
  ++fake.streamCreates;
  return 0;
}
int kvc_cuda_stream_destroy(kvc_cuda_stream) {
  ++fake.streamDestroys;
  return 0;
}
int kvc_cuda_stream_synchronize(kvc_cuda_stream) { return 0; }
void kvc_cuda_set_last_error(const char *) {}
int kvc_cuda_module_load(const void *, kvc_cuda_module *out) {
  *out = reinterpret_cast<kvc_cuda_module>(uintptr_t(0x1000));
  ++fake.moduleLoads;
  return 0;
}
int kvc_cuda_module_get_function(kvc_cuda_module, const char *name, kvc_cuda_function *out) {
  auto it = fake.functions.find(name);
  if (it == fake.functions.end())
    return 1;
  *out = reinterpret_cast<kvc_cuda_function>(const_cast<std::string *>(&*it));
  return 0;
}
int kvc_cuda_device_info(char *, size_t, int *sms, int *, int *, int *) {
  if (sms)
    *sms = 132;
  return 0;
}
int kvc_cuda_occupancy(kvc_cuda_function, int, size_t, int *ctas) {
  *ctas = fake.ctasPerSM;
  ++fake.occupancyQueries;
  return 0;
}
int kvc_cuda_memset_d8_async(kvc_cuda_ptr, unsigned char, size_t, kvc_cuda_stream) { return 1; }
int kvc_cuda_function_max_threads(kvc_cuda_function, int *) { return 1; }
int kvc_cuda_launch(kvc_cuda_function, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                    unsigned, kvc_cuda_stream, void **) {
  return 1;
}
} // extern "C"

namespace {
kvc_memref_1d f32(int64_t slot, int64_t n) {
  kvc_memref_1d m{};
  _mlir_ciface_kvc_rt_gpu_workspace_f32(&m, slot, n);
  return m;
}
kvc_memref_1d i32(int64_t slot, int64_t n) {
  kvc_memref_1d m{};
  _mlir_ciface_kvc_rt_gpu_workspace_i32(&m, slot, n);
  return m;
}

TEST(GPUWorkspace, GrowsOnlyAndReusesItsBuffer) {
  kvc_rt_gpu_workspace_release();
  const int m0 = fake.mallocs, f0 = fake.frees;
  kvc_memref_1d a = f32(0, 1000);
  EXPECT_EQ(fake.mallocs, m0 + 1);
  EXPECT_EQ(a.sizes[0], 1000);
  EXPECT_EQ(a.strides[0], 1);
  EXPECT_EQ(a.offset, 0);
  EXPECT_EQ(a.allocated, a.aligned);
  // Same or smaller: the same buffer, nothing allocated or freed.
  kvc_memref_1d b = f32(0, 1000), c = f32(0, 10);
  EXPECT_EQ(b.aligned, a.aligned);
  EXPECT_EQ(c.aligned, a.aligned);
  EXPECT_EQ(c.sizes[0], 10);
  EXPECT_EQ(fake.mallocs, m0 + 1);
  EXPECT_EQ(fake.frees, f0);
  // Larger: the old buffer is freed and a new one taken.
  kvc_memref_1d d = f32(0, 5000);
  EXPECT_EQ(d.sizes[0], 5000);
  EXPECT_EQ(fake.mallocs, m0 + 2);
  EXPECT_EQ(fake.frees, f0 + 1);
  // Back to a small size: still the large buffer.
  EXPECT_EQ(f32(0, 1000).aligned, d.aligned);
  EXPECT_EQ(fake.mallocs, m0 + 2);
  kvc_rt_gpu_workspace_release();
  EXPECT_EQ(fake.frees, f0 + 2);
}

TEST(GPUWorkspace, SlotsAndTypesAreDistinct) {
  kvc_rt_gpu_workspace_release();
  std::set<void *> seen;
  for (int64_t s = 0; s < 8; ++s) {
    seen.insert(f32(s, 64).aligned);
    seen.insert(i32(s, 64).aligned);
  }
  EXPECT_EQ(seen.size(), 16u);
  kvc_rt_gpu_workspace_release();
}

TEST(GPUWorkspace, I32IsZeroWhenAllocatedOrGrown) {
  kvc_rt_gpu_workspace_release();
  kvc_memref_1d a = i32(0, 16);
  auto *w = static_cast<uint32_t *>(a.aligned);
  for (int i = 0; i < 16; ++i)
    EXPECT_EQ(w[i], 0u) << i;
  // Users leave it zero; reuse does not zero again (that would cost a memset per call).
  const int ms = fake.memsets;
  EXPECT_EQ(i32(0, 16).aligned, a.aligned);
  EXPECT_EQ(fake.memsets, ms);
  // Grown: the new buffer is zero too.
  kvc_memref_1d b = i32(0, 4096);
  auto *wb = static_cast<uint32_t *>(b.aligned);
  for (int i = 0; i < 4096; ++i)
    ASSERT_EQ(wb[i], 0u) << i;
  // f32 workspaces are not zeroed (the kernels write every element they read).
  kvc_memref_1d f = f32(0, 4);
  uint32_t bits;
  std::memcpy(&bits, f.aligned, 4);
  EXPECT_EQ(bits, 0xABABABABu);
  kvc_rt_gpu_workspace_release();
}

TEST(GPUWorkspace, ThreadsHaveTheirOwnAndFreeThemAtExit) {
  kvc_rt_gpu_workspace_release();
  void *mine = f32(0, 256).aligned;
  void *theirs = nullptr;
  int freesBeforeJoin = 0;
  std::thread t([&] {
    theirs = f32(0, 256).aligned;
    freesBeforeJoin = fake.frees;
  });
  t.join();
  EXPECT_NE(theirs, nullptr);
  EXPECT_NE(theirs, mine);
  EXPECT_EQ(fake.frees, freesBeforeJoin + 1); // the thread's buffer went with it
  EXPECT_EQ(f32(0, 256).aligned, mine);
  kvc_rt_gpu_workspace_release();
}

TEST(GPUWorkspaceDeath, BadSlotOrSizeExitsWithStatus1) {
  EXPECT_EXIT(f32(8, 1), testing::ExitedWithCode(1),
              "kvc runtime: GPU workspace: f32 slot 8 out of range \\[0, 8\\)");
  EXPECT_EXIT(i32(-1, 1), testing::ExitedWithCode(1), "i32 slot -1 out of range");
  EXPECT_EXIT(f32(0, -5), testing::ExitedWithCode(1), "f32 slot 0: negative size -5");
}

TEST(GPUWorkspaceDeath, DriverFailureExitsWithStatus2) {
  kvc_rt_gpu_workspace_release();
  EXPECT_EXIT(
      {
        fake.failMalloc = true;
        f32(3, 100);
      },
      testing::ExitedWithCode(2),
      "kvc runtime: GPU workspace: allocating 400 bytes \\(f32 slot 3\\): fake driver error");
}

TEST(MgpuStreams, DestroyedStreamsArePooledPerThread) {
  const int c0 = fake.streamCreates, d0 = fake.streamDestroys;
  void *s1 = mgpuStreamCreate();
  EXPECT_EQ(fake.streamCreates, c0 + 1);
  mgpuStreamDestroy(s1);
  EXPECT_EQ(fake.streamDestroys, d0); // pooled, not destroyed
  void *s2 = mgpuStreamCreate();
  EXPECT_EQ(s2, s1);
  EXPECT_EQ(fake.streamCreates, c0 + 1);
  mgpuStreamDestroy(s2);
  // A blocking launch's create/sync/destroy cycle repeated: one driver stream in all.
  for (int i = 0; i < 100; ++i) {
    void *s = mgpuStreamCreate();
    EXPECT_EQ(s, s1);
    mgpuStreamDestroy(s);
  }
  EXPECT_EQ(fake.streamCreates, c0 + 1);
  // Beyond 8 idle streams the extra ones are destroyed.
  void *many[12];
  for (void *&s : many)
    s = mgpuStreamCreate();
  EXPECT_EQ(fake.streamCreates, c0 + 12);
  for (void *s : many)
    mgpuStreamDestroy(s);
  EXPECT_EQ(fake.streamDestroys, d0 + 4); // many[0] was s1, taken from the pool
}

int64_t splits(const char *name, int64_t b, int64_t hkv, int64_t skv) {
  kvc_memref_1d m{};
  m.allocated = m.aligned = const_cast<char *>(name);
  m.sizes[0] = int64_t(std::strlen(name)) + 1;
  m.strides[0] = 1;
  return _mlir_ciface_kvc_rt_gpu_decode_splits(&m, b, hkv, skv);
}

TEST(GPUDecodeSplits, FollowTheRuntimePlanAtTheKernelsOccupancy) {
  const char *k = "kvc_attn0_d128_g4_q1_bf16_b128_u4_fm_pf";
  fake.functions = {std::string(k) + "_split"};
  const int loads = fake.moduleLoads, q0 = fake.occupancyQueries;
  void *mod = mgpuModuleLoad(const_cast<char *>("image"), 0);
  EXPECT_EQ(fake.moduleLoads, loads); // registered, loaded on first use
  // 132 SMs x 3 CTAs: the split counts kvc-bench's plan chose on the H100 for this kernel
  // (bench/gpu/results/h100-ir-bench-kernel.json): whole waves, >= 256 keys per split, except
  // that short rows at batch 1 go down to 4 tiles (128 keys) within one wave: 4k -> 32 (16
  // before session 6's rule; h100-min-keys-per-split.log).
  EXPECT_EQ(splits(k, 1, 8, 4096), 32);
  EXPECT_EQ(splits(k, 1, 8, 16384), 49);
  EXPECT_EQ(splits(k, 8, 8, 4096), 6);
  EXPECT_EQ(splits(k, 8, 8, 16384), 6);
  EXPECT_EQ(fake.moduleLoads, loads + 1);
  EXPECT_EQ(fake.occupancyQueries, q0 + 1); // measured once per kernel
  // The old fixed rule (one wave of 4 CTAs per SM) gave 8 at batch 8: 512 CTAs for 396 slots.
  EXPECT_LE(8 * 8 * splits(k, 8, 8, 16384), 132 * 3);
  // The small-rows kernel (block 256, unroll 2) fits 2 CTAs/SM: 264 slots, one wave of 33
  // splits at batch 1; 4k rows give 32 splits of 128 keys; ragged rows planned by capacity.
  const char *s2 = "kvc_attn1_d128_g4_q1_bf16_b256_u2_ragged_fm_pf";
  fake.functions.insert(std::string(s2) + "_split");
  fake.ctasPerSM = 2;
  EXPECT_EQ(splits(s2, 1, 8, 4096), 32);
  EXPECT_EQ(splits(s2, 1, 8, 16384), 33);
  EXPECT_EQ(splits(s2, 1, 8, 65536), 33);
  fake.ctasPerSM = 3;
  mgpuModuleUnload(mod);
}

TEST(GPUDecodeSplitsDeath, MissingKernelExits2BadRequestExits1) {
  fake.functions = {};
  void *mod = mgpuModuleLoad(const_cast<char *>("image"), 0);
  EXPECT_EXIT(splits("kvc_attn0_d64_g8_q1_f16_b64_u4", 1, 1, 100), testing::ExitedWithCode(2),
              "kvc runtime: GPU decode plan: no kernel 'kvc_attn0_d64_g8_q1_f16_b64_u4_split' in "
              "the program's GPU modules");
  EXPECT_EXIT(splits("kvc_attn0_d64_g8_q1_f16_b64_u4", 0, 1, 100), testing::ExitedWithCode(1),
              "bad shape for 'kvc_attn0_d64_g8_q1_f16_b64_u4': batch 0");
  EXPECT_EXIT(splits("not_a_kernel", 1, 1, 100), testing::ExitedWithCode(1),
              "'not_a_kernel_split' is not a dense/ragged decode kernel name");
  mgpuModuleUnload(mod);
}

TEST(MgpuStreams, PoolsAreNotShared) {
  void *mine = mgpuStreamCreate();
  mgpuStreamDestroy(mine); // into this thread's pool
  void *theirs = nullptr;
  std::thread t([&] {
    theirs = mgpuStreamCreate();
    mgpuStreamDestroy(theirs);
  });
  t.join();
  EXPECT_NE(theirs, mine);
  EXPECT_EQ(mgpuStreamCreate(), mine);
}
} // namespace
