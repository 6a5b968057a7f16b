// One (layer, KV head) of the KVComp-style codec: two append-only encoded streams (keys in
// token-row vectors, values in channel-column vectors) plus the fp16 recent windows.
#ifndef KVC_RUNTIME_CODEC_CODECHEAD_H
#define KVC_RUNTIME_CODEC_CODECHEAD_H

#include "Huffman.h"

#include "kvc/Runtime/Codec.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace kvc::codec {

// How the blocks of one stream are cut into vectors and quantization groups.
struct StreamShape {
  uint32_t head_dim = 0;
  uint32_t block_tokens = 0;
  bool column_vectors = false;   // values: a vector is one channel over the block's tokens
  uint32_t params_per_block = 1; // 1 (key block), head_dim (key channel), block_tokens (value)
  bool params_per_channel = false;

  uint32_t vectorsPerBlock() const { return column_vectors ? head_dim : block_tokens; }
  uint32_t symbolsPerVector() const { return column_vectors ? block_tokens : head_dim; }
  uint64_t symbolsPerBlock() const { return uint64_t{block_tokens} * head_dim; }
  // Index of the quantization group of element (token, channel) of a block.
  uint32_t paramIndex(uint32_t token, uint32_t channel) const {
    if (params_per_block == 1)
      return 0;
    return params_per_channel ? channel : token;
  }
};

class EncodedStream {
public:
  StreamShape shape;
  float error = 0.0f;
  uint32_t max_symbol = 0;
  bool has_codebook = false;
  HuffmanCodebook codebook;
  std::vector<float> mins, steps;              // [num_blocks * params_per_block]
  std::vector<uint32_t> block_word_offsets{0}; // [num_blocks + 1]
  std::vector<uint32_t> vector_bit_offsets;    // [num_blocks * vectors_per_block]
  std::vector<uint32_t> words;
  uint64_t payload_bits = 0; // coded bits without block padding
  uint64_t escapes = 0;

  uint32_t numBlocks() const { return static_cast<uint32_t>(block_word_offsets.size() - 1); }
  uint64_t encodedTokens() const { return uint64_t{numBlocks()} * shape.block_tokens; }

  // Quantizes and Huffman-codes num_blocks whole blocks of fp16 rows
  // ([num_blocks * block_tokens x head_dim]); builds the codebook on the first call.
  void encodeBlocks(const uint16_t* rows, uint32_t num_blocks);

  // Decodes vector `vector` of block `block` into out[0..symbolsPerVector()); returns the bit
  // position (from the block start) after its last symbol.
  uint64_t decodeVector(uint32_t block, uint32_t vector, uint16_t* out) const {
    uint64_t word_begin = block_word_offsets[block];
    uint64_t word_end = block_word_offsets[block + 1];
    uint64_t block_bits = (word_end - word_begin) * 32;
    uint32_t vectors = shape.vectorsPerBlock();
    const uint32_t* offsets = &vector_bit_offsets[uint64_t{block} * vectors];
    uint64_t start = offsets[vector];
    uint64_t end = vector + 1 < vectors ? offsets[vector + 1] : block_bits;
    if (start > end || end > block_bits)
      corrupt("vector bit offsets out of order");
    return decodeSymbols(codebook, words.data() + word_begin, word_end - word_begin, start, end,
                         shape.symbolsPerVector(), out);
  }

  // Symbols of one block, token-major [block_tokens x head_dim].
  void blockSymbols(uint32_t block, uint16_t* out) const;

  // Full structural check after deserialization: offsets, every code, exact vector ends, zero
  // padding; recomputes payload_bits and escapes.
  void validate();
};

class CodecHead {
public:
  explicit CodecHead(const kvc_codec_params& params); // validates params

  const kvc_codec_params& params() const { return params_; }
  uint64_t numTokens() const { return num_tokens_; }
  const EncodedStream& stream(int kind) const { return kind == KVC_CODEC_KEYS ? keys_ : values_; }
  const std::vector<uint16_t>& recent(int kind) const {
    return kind == KVC_CODEC_KEYS ? key_recent_ : value_recent_;
  }
  uint64_t recentTokens(int kind) const { return recent(kind).size() / params_.head_dim; }

  void append(const float* k, const float* v, uint64_t num_tokens);
  void decode(float* k_out, float* v_out) const;
  void decodeSymbols(int kind, uint16_t* out, uint64_t out_len) const;
  void scores(const float* q, uint32_t num_queries, float* out) const;
  void apply(const float* p, uint32_t num_queries, float* out) const;
  kvc_codec_stats stats() const;

  size_t serializedSize() const;
  void serialize(uint8_t* out) const; // writes serializedSize() bytes
  static std::unique_ptr<CodecHead> deserialize(const uint8_t* data, size_t size);

  static void validateParams(const kvc_codec_params& params);

private:
  void cutBlocks(EncodedStream& stream, std::vector<uint16_t>& recent, uint32_t recent_tokens);

  kvc_codec_params params_;
  EncodedStream keys_, values_;
  std::vector<uint16_t> key_recent_, value_recent_; // fp16 rows
  uint64_t num_tokens_ = 0;
};

// Rejects NaN/Inf (and values overflowing fp16) with a message naming the tensor and index.
void checkFiniteForFp16(const float* data, uint64_t count, const char* what);
void checkFinite(const float* data, uint64_t count, const char* what);

uint32_t crc32(const uint8_t* data, size_t size);

} // namespace kvc::codec

#endif
