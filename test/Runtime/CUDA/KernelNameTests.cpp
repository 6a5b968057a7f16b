//===- KernelNameTests.cpp - kernel-name parsing of the CUDA runtime ------===//
//
// The runtime and kvc-bench find a generated kernel's specialisation from its name
// (encodedKernelTag in EncodedKernelGen.cpp writes it). Names the generator can emit must
// parse to the same configuration; anything else must be refused.
//
//===----------------------------------------------------------------------===//
#include "kvc/Runtime/CUDAEncoded.h"

#include <gtest/gtest.h>

namespace {

TEST(EncodedKernelName, PairDecoder) {
  kvc_encoded_kernel_config c{};
  ASSERT_EQ(kvc_cuda_encoded_parse_name("kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u4_enc_split", &c), 0);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.group, 4);
  EXPECT_EQ(c.query_seq, 1);
  EXPECT_EQ(c.query_type, 0);
  EXPECT_EQ(c.query_bytes, 2);
  EXPECT_EQ(c.key_block, 64);
  EXPECT_EQ(c.value_block, 128);
  EXPECT_EQ(c.unroll, 4);
}

TEST(EncodedKernelName, RefillGroupAndMultiSymbol) {
  kvc_encoded_kernel_config c{};
  ASSERT_EQ(kvc_cuda_encoded_parse_name("kvc_attn3_d64_g8_q1_f16_kb64_vb128_u8_r8_enc_split", &c), 0);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.group, 8);
  EXPECT_EQ(c.query_type, 1);
  EXPECT_EQ(c.unroll, 8);
  ASSERT_EQ(kvc_cuda_encoded_parse_name("kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_r4_enc_mma_split", &c), 0);
  EXPECT_EQ(c.unroll, 8);
  ASSERT_EQ(kvc_cuda_encoded_parse_name("kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u8_enc_mma_ms10x3_split", &c), 0);
  EXPECT_EQ(c.query_type, 0);
  ASSERT_EQ(kvc_cuda_encoded_parse_name("k_d128_g2_q2_f32_kb64_vb128_u4_enc_ms10x3_merge", &c), 0);
  EXPECT_EQ(c.query_type, 2);
  EXPECT_EQ(c.query_bytes, 4);
  EXPECT_EQ(c.query_seq, 2);
}

TEST(EncodedKernelName, Refused) {
  kvc_encoded_kernel_config c{};
  // a dense kernel, a missing _enc, a malformed group, an unknown query type
  EXPECT_NE(kvc_cuda_encoded_parse_name("kvc_attn0_d128_g4_q1_bf16_b128_u4_split", &c), 0);
  EXPECT_NE(kvc_cuda_encoded_parse_name("kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u4_split", &c), 0);
  EXPECT_NE(kvc_cuda_encoded_parse_name("kvc_attn0_d128_g4_q1_bf16_kb64_vb128_u4_rx_enc_split", &c), 0);
  EXPECT_NE(kvc_cuda_encoded_parse_name("kvc_attn0_d128_g4_q1_f64_kb64_vb128_u4_enc_split", &c), 0);
}

} // namespace
