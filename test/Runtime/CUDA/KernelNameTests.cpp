//===- KernelNameTests.cpp - kernel names and the encoded split plan ------===//
//
// The runtime and kvc-bench find a generated kernel's specialisation from its name
// (encodedKernelTag in EncodedKernelGen.cpp writes it). Names the generator can emit must
// parse to the same configuration; anything else must be refused. The encoded kernels' split
// plan (kvc_cuda_encoded_make_plan) needs no GPU either; nor do the fixed-width kernels' names
// (CUDAFixedWidth.h) and plan.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDAEncoded.h"
#include "kvc/Runtime/CUDAFixedWidth.h"

#include <gtest/gtest.h>

namespace {

// A name the generator can emit and the configuration it must parse to.
struct Parsed {
  const char *name;
  int head_dim, group, query_seq, query_type, query_bytes, key_block, value_block, unroll;
};

void expectParses(const Parsed &w) {
  SCOPED_TRACE(w.name);
  kvc_encoded_kernel_config c{};
  ASSERT_EQ(kvc_cuda_encoded_parse_name(w.name, &c), 0);
  EXPECT_EQ(c.head_dim, w.head_dim);
  EXPECT_EQ(c.group, w.group);
  EXPECT_EQ(c.query_seq, w.query_seq);
  EXPECT_EQ(c.query_type, w.query_type);
  EXPECT_EQ(c.query_bytes, w.query_bytes);
  EXPECT_EQ(c.key_block, w.key_block);
  EXPECT_EQ(c.value_block, w.value_block);
  EXPECT_EQ(c.unroll, w.unroll);
}

TEST(EncodedKernelName, PairDecoder) {
  expectParses({"kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u4_enc_split", 128, 4, 1, 0, 2, 64, 128, 4});
}

// Refill groups (_r<G>), then the tags after _enc: _mma, _ov, _l1, _ms<bits>x<slots>.
TEST(EncodedKernelName, RefillGroupAndVariantTags) {
  const Parsed names[] = {
      {"kvc_attn3_d64_g8_q1_f16_kb64_vb128_u8_r8_enc_split", 64, 8, 1, 1, 2, 64, 128, 8},
      {"kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_mma_split", 128, 4, 1, 0, 2, 64, 128, 8},
      {"kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_enc_mma_ms10x3_split", 128, 4, 1, 0, 2, 64, 128,
       8},
      {"kvc_attn1_d128_g4_q1_f16_kb64_vb128_u4_r4_enc_ov_split", 128, 4, 1, 1, 2, 64, 128, 4},
      {"kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_ov_l1_split", 128, 4, 1, 0, 2, 64, 128, 8},
      {"k_d128_g2_q2_f32_kb64_vb128_u4_enc_ms10x3_merge", 128, 2, 2, 2, 4, 64, 128, 4},
  };
  for (const Parsed &w : names)
    expectParses(w);
}

TEST(EncodedKernelName, Refused) {
  kvc_encoded_kernel_config c{};
  // a dense kernel, a missing _enc, a malformed group, an unknown query type
  EXPECT_NE(kvc_cuda_encoded_parse_name("kvc_attn0_d128_g4_q1_bf16_b128_u4_split", &c), 0);
  EXPECT_NE(kvc_cuda_encoded_parse_name("kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u4_split", &c), 0);
  EXPECT_NE(kvc_cuda_encoded_parse_name("kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u4_rx_enc_split", &c), 0);
  EXPECT_NE(kvc_cuda_encoded_parse_name("kvc_attn0_d128_g4_q1_f64_kb64_vb128_u4_enc_split", &c), 0);
}

// The encoded kernels' split plan (no GPU: the resident CTAs are given). Many rows tie between
// one wave and several; the plan takes the smallest s of the best waves(s)/s, at most one
// tile per split and 32 x the resident CTAs per row (batch 32 x 64k: 33 splits, 8 waves,
// measured 4.6% faster than 4; batch 1 x 4k: 32 splits, 29% faster than 16).
TEST(EncodedPlan, SplitsMinimiseWavesPerSplit) {
  kvc_encoded_kernel_config cfg{};
  cfg.head_dim = 128, cfg.group = 4, cfg.query_seq = 1, cfg.value_block = 128;
  kvc_cuda_encoded_cache c{};
  c.hkv = 8;
  kvc_encoded_plan p{};
  auto splits = [&](int64_t batch, int64_t tokens, int resident) {
    c.batch = batch, c.max_tokens = tokens;
    EXPECT_EQ(kvc_cuda_encoded_make_plan(&cfg, &c, 0, resident, &p), 0);
    return p.num_splits;
  };
  EXPECT_EQ(splits(32, 65536, 1056), 33);  // was 4 with the 4-waves cap
  EXPECT_EQ(splits(32, 16384, 1056), 33);
  EXPECT_EQ(splits(8, 65536, 1056), 33);
  EXPECT_EQ(splits(1, 65536, 1056), 132);  // one full wave
  EXPECT_EQ(splits(1, 16384, 1056), 128);  // one tile per split (was tiles / 2)
  EXPECT_EQ(splits(1, 4096, 1056), 32);
  EXPECT_EQ(splits(8, 4096, 1056), 16);    // one wave; 32 (two) ties and is not taken
  EXPECT_EQ(splits(1, 200, 1056), 2);      // 2 tiles
  c.batch = 2;
  EXPECT_EQ(kvc_cuda_encoded_make_plan(&cfg, &c, 7, 1056, &p), 0); // forced
  EXPECT_EQ(p.num_splits, 7);
  EXPECT_EQ(p.workspace_bytes, size_t(2 * 8 * 4 * 7 * (128 + 2)) * 4);
}

// Fixed-width kernels: <tag>_d<D>_g<g>_q<Sq>_<bf16|f16>_kb<KB>_fw_split / _fw_merge.
TEST(FixedWidthKernelName, Parses) {
  kvc_fw_kernel_config c{};
  ASSERT_EQ(kvc_cuda_fw_parse_name("kvc_fw_attn0_d128_g4_q1_bf16_kb64_fw_split", &c), 0);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.group, 4);
  EXPECT_EQ(c.query_seq, 1);
  EXPECT_EQ(c.key_block, 64);
  EXPECT_EQ(c.query_type, 0);
  EXPECT_EQ(c.query_bytes, 2);
  EXPECT_EQ(c.fused_merge, 0);
  ASSERT_EQ(kvc_cuda_fw_parse_name("k_decode_d256_g8_q1_f16_kb128_fw_merge", &c), 0);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.group, 8);
  EXPECT_EQ(c.key_block, 128);
  EXPECT_EQ(c.query_type, 1);
  EXPECT_EQ(c.fused_merge, 0);
  // The merge fused into the split kernel (fixed-width-fuse-merge): _fw_fm_split, no merge.
  ASSERT_EQ(kvc_cuda_fw_parse_name("kvc_attn0_d128_g4_q1_bf16_kb64_fw_fm_split", &c), 0);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.fused_merge, 1);
  EXPECT_NE(kvc_cuda_fw_parse_name("kvc_attn0_d128_g4_q1_bf16_kb64_fw_fm_merge", &c), 0);
}

TEST(FixedWidthKernelName, Refused) {
  kvc_fw_kernel_config c{};
  // an encoded kernel, a tag after _fw, f32 queries, D not a multiple of 32, D > 256, key block 16
  EXPECT_NE(kvc_cuda_fw_parse_name("kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u4_enc_split", &c), 0);
  EXPECT_NE(kvc_cuda_fw_parse_name("kvc_fw0_d128_g4_q1_bf16_kb64_fw_x_split", &c), 0);
  EXPECT_NE(kvc_cuda_fw_parse_name("kvc_fw0_d128_g4_q1_f32_kb64_fw_split", &c), 0);
  EXPECT_NE(kvc_cuda_fw_parse_name("kvc_fw0_d48_g4_q1_bf16_kb64_fw_split", &c), 0);
  EXPECT_NE(kvc_cuda_fw_parse_name("kvc_fw0_d288_g4_q1_bf16_kb64_fw_split", &c), 0);
  EXPECT_NE(kvc_cuda_fw_parse_name("kvc_fw0_d128_g4_q1_bf16_kb16_fw_split", &c), 0);
  EXPECT_NE(kvc_cuda_fw_parse_name("kvc_fw0_d128_g4_q1_bf16_kb64_fw", &c), 0);
  EXPECT_NE(kvc_cuda_fw_parse_name("kvc_fw0_d128_g16_q1_bf16_kb64_fw_split", &c), 0); // g > 8
  EXPECT_NE(kvc_cuda_fw_parse_name("kvc_fw0_d128_g4_q2_bf16_kb64_fw_split", &c), 0);  // Sq > 1
}

// The fixed-width plan: the encoded rule over the longest row's code tiles (128 tokens), plus
// one split per window tile of the row with the most.
TEST(FixedWidthPlan, CodeSplitsPlusWindowTiles) {
  kvc_fw_kernel_config cfg{};
  cfg.head_dim = 128, cfg.group = 4, cfg.query_seq = 1, cfg.key_block = 64;
  kvc_cuda_fw_cache c{};
  c.hkv = 8, c.head_dim = 128, c.key_block = 64;
  kvc_fw_plan p{};
  auto splits = [&](int64_t batch, int64_t codeTiles, int64_t windowTiles, int resident) {
    c.batch = batch, c.max_code_tiles = codeTiles, c.max_window_tiles = windowTiles;
    EXPECT_EQ(kvc_cuda_fw_make_plan(&cfg, &c, 0, resident, &p), 0);
    return p.num_splits;
  };
  EXPECT_EQ(splits(32, 512, 2, 1056), 33 + 2); // the encoded plan at 64k, plus the window
  EXPECT_EQ(splits(1, 128, 3, 1056), 128 + 3); // 16k: one code tile per split
  EXPECT_EQ(splits(1, 0, 1, 1056), 1 + 1);     // all window: one (empty) code split
  EXPECT_EQ(splits(1, 2, 0, 1056), 2);
  c.batch = 2;
  EXPECT_EQ(kvc_cuda_fw_make_plan(&cfg, &c, 5, 1056, &p), 0); // forced
  EXPECT_EQ(p.num_splits, 5);
  EXPECT_EQ(p.o_part_offset, 0u);
  EXPECT_EQ(p.ml_part_offset, size_t(2 * 8 * 4 * 5 * 128) * 4);
  EXPECT_EQ(p.workspace_bytes, size_t(2 * 8 * 4 * 5 * (128 + 2)) * 4);
}

} // namespace
