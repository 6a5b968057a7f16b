#include "CodecHead.h"

#include "Half.h"
#include "Quantizer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace kvc::codec {

void checkFinite(const float* data, uint64_t count, const char* what) {
  for (uint64_t i = 0; i < count; ++i)
    if (!std::isfinite(data[i]))
      fail(KVC_CODEC_ERR_NONFINITE_INPUT, std::string(what) + " contains a non-finite value (" +
                                              std::to_string(data[i]) + ") at flat index " +
                                              std::to_string(i));
}

void checkFiniteForFp16(const float* data, uint64_t count, const char* what) {
  // One branch-free (vectorisable) pass; the slow passes below only run to name the culprit.
  bool all_ok = true;
  for (uint64_t i = 0; i < count; ++i)
    all_ok &= std::fabs(data[i]) < 65520.0f; // false for NaN and Inf too
  if (all_ok)
    return;
  checkFinite(data, count, what);
  for (uint64_t i = 0; i < count; ++i)
    if (std::fabs(data[i]) >= 65520.0f)
      fail(KVC_CODEC_ERR_OUT_OF_RANGE, std::string(what) + " value " + std::to_string(data[i]) +
                                           " at flat index " + std::to_string(i) +
                                           " overflows fp16 (|x| must be < 65520)");
}

// ---------------------------------------------------------------------------------------------
// EncodedStream

void EncodedStream::encodeBlocks(const uint16_t* rows, uint32_t num_blocks) {
  if (num_blocks == 0)
    return;
  const uint32_t d = shape.head_dim;
  const uint32_t block_tokens = shape.block_tokens;
  const uint64_t block_symbols = shape.symbolsPerBlock();
  const uint32_t params = shape.params_per_block;

  // Pass 1: quantize every block (symbols token-major, like the input rows).
  std::vector<uint16_t> symbols(block_symbols * num_blocks);
  std::vector<float> new_mins(uint64_t{params} * num_blocks), new_steps(new_mins.size());
  std::vector<float> values(block_symbols);
  std::vector<float> group_min(params), group_max(params);
  for (uint32_t b = 0; b < num_blocks; ++b) {
    const uint16_t* block_rows = rows + b * block_symbols;
    for (uint64_t i = 0; i < block_symbols; ++i)
      values[i] = halfToFloat(block_rows[i]);
    std::fill(group_min.begin(), group_min.end(), std::numeric_limits<float>::infinity());
    std::fill(group_max.begin(), group_max.end(), -std::numeric_limits<float>::infinity());
    // Group extremes, one loop per grouping so that each vectorises.
    if (params == 1) {
      float lo = group_min[0], hi = group_max[0];
      for (uint64_t i = 0; i < block_symbols; ++i) {
        lo = std::min(lo, values[i]);
        hi = std::max(hi, values[i]);
      }
      group_min[0] = lo;
      group_max[0] = hi;
    } else if (shape.params_per_channel) {
      for (uint32_t t = 0; t < block_tokens; ++t) {
        const float* row = &values[uint64_t{t} * d];
        for (uint32_t c = 0; c < d; ++c) {
          group_min[c] = std::min(group_min[c], row[c]);
          group_max[c] = std::max(group_max[c], row[c]);
        }
      }
    } else {
      for (uint32_t t = 0; t < block_tokens; ++t) {
        const float* row = &values[uint64_t{t} * d];
        float lo = group_min[t], hi = group_max[t];
        for (uint32_t c = 0; c < d; ++c) {
          lo = std::min(lo, row[c]);
          hi = std::max(hi, row[c]);
        }
        group_min[t] = lo;
        group_max[t] = hi;
      }
    }
    std::vector<GroupParams> groups(params);
    for (uint32_t g = 0; g < params; ++g) {
      groups[g] = groupParams(group_min[g], group_max[g], error);
      new_mins[uint64_t{b} * params + g] = groups[g].min;
      new_steps[uint64_t{b} * params + g] = groups[g].step;
    }
    uint16_t* block_symbols_out = symbols.data() + b * block_symbols;
    for (uint32_t t = 0; t < block_tokens; ++t) {
      const float* row = &values[uint64_t{t} * d];
      uint16_t* row_out = block_symbols_out + uint64_t{t} * d;
      if (shape.params_per_channel) {
        for (uint32_t c = 0; c < d; ++c)
          row_out[c] = static_cast<uint16_t>(quantize(row[c], groups[c], max_symbol));
      } else {
        const GroupParams group = groups[shape.paramIndex(t, 0)];
        for (uint32_t c = 0; c < d; ++c)
          row_out[c] = static_cast<uint16_t>(quantize(row[c], group, max_symbol));
      }
    }
  }

  // The codebook comes from the histogram of the first blocks ever encoded (the prefill).
  if (!has_codebook) {
    std::vector<uint64_t> histogram(uint64_t{max_symbol} + 1, 0);
    for (uint16_t s : symbols)
      ++histogram[s];
    codebook = HuffmanCodebook::build(histogram, max_symbol);
    has_codebook = true;
  }

  // Pass 2: Huffman-code each vector; blocks start on a word boundary.
  const uint32_t vectors = shape.vectorsPerBlock();
  const uint32_t per_vector = shape.symbolsPerVector();
  const uint32_t stride = shape.column_vectors ? d : 1;
  for (uint32_t b = 0; b < num_blocks; ++b) {
    const uint16_t* block_symbols_in = symbols.data() + b * block_symbols;
    const size_t first_word = words.size();
    words.resize(first_word + (block_symbols * codebook.maxBitsPerSymbol() + 31) / 32 + 1);
    BitWriter writer(words.data() + first_word);
    for (uint32_t v = 0; v < vectors; ++v) {
      vector_bit_offsets.push_back(static_cast<uint32_t>(writer.bitCount()));
      const uint16_t* first = shape.column_vectors ? block_symbols_in + v
                                                   : block_symbols_in + uint64_t{v} * d;
      encodeVector(codebook, first, per_vector, stride, writer, escapes);
    }
    payload_bits += writer.bitCount();
    words.resize(first_word + writer.flush());
    if (words.size() > std::numeric_limits<uint32_t>::max())
      fail(KVC_CODEC_ERR_OUT_OF_MEMORY, "encoded stream exceeds 2^32 words");
    block_word_offsets.push_back(static_cast<uint32_t>(words.size()));
  }
  mins.insert(mins.end(), new_mins.begin(), new_mins.end());
  steps.insert(steps.end(), new_steps.begin(), new_steps.end());
}

void EncodedStream::blockSymbols(uint32_t block, uint16_t* out) const {
  const uint32_t d = shape.head_dim;
  std::vector<uint16_t> vector(shape.symbolsPerVector());
  for (uint32_t v = 0; v < shape.vectorsPerBlock(); ++v) {
    if (shape.column_vectors) {
      decodeVector(block, v, vector.data());
      for (uint32_t t = 0; t < shape.block_tokens; ++t)
        out[uint64_t{t} * d + v] = vector[t];
    } else {
      decodeVector(block, v, out + uint64_t{v} * d);
    }
  }
}

void EncodedStream::validate() {
  const uint32_t blocks = numBlocks();
  if (blocks > 0 && !has_codebook)
    corrupt("encoded blocks without a codebook");
  if (blocks == 0 && has_codebook)
    corrupt("codebook without encoded blocks");
  if (block_word_offsets.front() != 0 || block_word_offsets.back() != words.size())
    corrupt("block word offsets do not span the bitstream");
  for (uint32_t b = 0; b < blocks; ++b)
    if (block_word_offsets[b] > block_word_offsets[b + 1])
      corrupt("block word offsets decrease");
  for (size_t i = 0; i < mins.size(); ++i)
    if (!std::isfinite(mins[i]) || !std::isfinite(steps[i]) || steps[i] < 0.0f)
      corrupt("non-finite quantization parameter or negative step");

  payload_bits = 0;
  escapes = 0;
  const uint32_t vectors = shape.vectorsPerBlock();
  std::vector<uint16_t> symbols(shape.symbolsPerVector());
  for (uint32_t b = 0; b < blocks; ++b) {
    const uint32_t* offsets = &vector_bit_offsets[uint64_t{b} * vectors];
    uint64_t block_bits = uint64_t{block_word_offsets[b + 1] - block_word_offsets[b]} * 32;
    if (offsets[0] != 0)
      corrupt("first vector of a block does not start at bit 0");
    uint64_t end_of_last = 0;
    for (uint32_t v = 0; v < vectors; ++v) {
      // decodeVector checks the offsets' order and that the vector stays before the next one.
      uint64_t end = decodeVector(b, v, symbols.data());
      for (uint16_t symbol : symbols)
        if (!codebook.isCoded(symbol))
          ++escapes;
      if (v + 1 < vectors && end != offsets[v + 1])
        corrupt("vector does not end at the next vector's offset");
      end_of_last = end;
    }
    if (block_bits - end_of_last >= 32 || (block_bits == 0) != (end_of_last == 0))
      corrupt("block has more than one word of padding");
    if (end_of_last % 32 != 0) {
      uint32_t last_word = words[block_word_offsets[b + 1] - 1];
      if ((last_word & ((1u << (32 - end_of_last % 32)) - 1)) != 0)
        corrupt("non-zero padding bits");
    }
    payload_bits += end_of_last;
  }
}

// ---------------------------------------------------------------------------------------------
// CodecHead

void CodecHead::validateParams(const kvc_codec_params& p) {
  auto bad = [](const std::string& m) { fail(KVC_CODEC_ERR_INVALID_ARGUMENT, m); };
  if (p.head_dim < 1 || p.head_dim > 4096)
    bad("head_dim must be in [1, 4096], got " + std::to_string(p.head_dim));
  auto check_error = [&](float e, const char* name) {
    if (!(e >= 1e-4f && e <= 1.0f))
      bad(std::string(name) + " must be in [1e-4, 1], got " + std::to_string(e));
  };
  check_error(p.key_error, "key_error");
  check_error(p.value_error, "value_error");
  auto check_block = [&](uint32_t tokens, const char* name) {
    if (tokens < 1 || tokens > 4096)
      bad(std::string(name) + " must be in [1, 4096], got " + std::to_string(tokens));
  };
  check_block(p.key_block_tokens, "key_block_tokens");
  check_block(p.value_block_tokens, "value_block_tokens");
  if (p.key_recent_tokens > (1u << 24) || p.value_recent_tokens > (1u << 24))
    bad("recent windows must be at most 2^24 tokens");
  if (p.key_grouping != KVC_CODEC_KEY_BLOCK && p.key_grouping != KVC_CODEC_KEY_CHANNEL)
    bad("key_grouping must be KVC_CODEC_KEY_BLOCK (0) or KVC_CODEC_KEY_CHANNEL (1)");
}

CodecHead::CodecHead(const kvc_codec_params& params) : params_(params) {
  validateParams(params);
  keys_.shape.head_dim = params.head_dim;
  keys_.shape.block_tokens = params.key_block_tokens;
  keys_.shape.column_vectors = false;
  keys_.shape.params_per_channel = params.key_grouping == KVC_CODEC_KEY_CHANNEL;
  keys_.shape.params_per_block = keys_.shape.params_per_channel ? params.head_dim : 1;
  keys_.error = params.key_error;
  keys_.max_symbol = maxSymbolFor(params.key_error);

  values_.shape.head_dim = params.head_dim;
  values_.shape.block_tokens = params.value_block_tokens;
  values_.shape.column_vectors = true;
  values_.shape.params_per_channel = false;
  values_.shape.params_per_block = params.value_block_tokens; // one group per token
  values_.error = params.value_error;
  values_.max_symbol = maxSymbolFor(params.value_error);
}

void CodecHead::cutBlocks(EncodedStream& stream, std::vector<uint16_t>& recent,
                          uint32_t recent_tokens) {
  const uint64_t d = params_.head_dim;
  const uint64_t pending = recent.size() / d;
  const uint64_t block = stream.shape.block_tokens;
  if (pending < block + recent_tokens)
    return;
  uint64_t blocks = (pending - recent_tokens) / block;
  if (blocks > std::numeric_limits<uint32_t>::max() - stream.numBlocks())
    fail(KVC_CODEC_ERR_INVALID_ARGUMENT, "too many blocks");
  stream.encodeBlocks(recent.data(), static_cast<uint32_t>(blocks));
  recent.erase(recent.begin(), recent.begin() + static_cast<std::ptrdiff_t>(blocks * block * d));
}

void CodecHead::append(const float* k, const float* v, uint64_t num_tokens) {
  if (num_tokens == 0)
    return;
  if (!k || !v)
    fail(KVC_CODEC_ERR_INVALID_ARGUMENT, "append: k and v must not be null");
  const uint64_t d = params_.head_dim;
  if (num_tokens > (uint64_t{1} << 40) / d)
    fail(KVC_CODEC_ERR_INVALID_ARGUMENT, "append: too many tokens");
  checkFiniteForFp16(k, num_tokens * d, "K");
  checkFiniteForFp16(v, num_tokens * d, "V");
  // Inputs are validated before anything changes, so invalid input leaves the head unchanged
  // (only running out of memory can fail later). Copying the streams for a full rollback would
  // make every decode-time append O(cache size).
  const size_t key_old = key_recent_.size(), value_old = value_recent_.size();
  key_recent_.resize(key_old + num_tokens * d); // geometric growth for one-token appends
  value_recent_.resize(value_old + num_tokens * d);
  for (uint64_t i = 0; i < num_tokens * d; ++i) {
    key_recent_[key_old + i] = floatToHalf(k[i]);
    value_recent_[value_old + i] = floatToHalf(v[i]);
  }
  cutBlocks(keys_, key_recent_, params_.key_recent_tokens);
  cutBlocks(values_, value_recent_, params_.value_recent_tokens);
  num_tokens_ += num_tokens;
}

void CodecHead::decode(float* k_out, float* v_out) const {
  const uint32_t d = params_.head_dim;
  std::vector<uint16_t> symbols(std::max(d, std::max(params_.key_block_tokens,
                                                     params_.value_block_tokens)));
  if (k_out) {
    const EncodedStream& s = keys_;
    for (uint32_t b = 0; b < s.numBlocks(); ++b) {
      float* block_out = k_out + uint64_t{b} * s.shape.block_tokens * d;
      const float* mins = &s.mins[uint64_t{b} * s.shape.params_per_block];
      const float* steps = &s.steps[uint64_t{b} * s.shape.params_per_block];
      for (uint32_t t = 0; t < s.shape.block_tokens; ++t) {
        float* row = block_out + uint64_t{t} * d;
        s.decodeVector(b, t, symbols.data());
        if (s.shape.params_per_channel)
          for (uint32_t c = 0; c < d; ++c)
            row[c] = dequantize(symbols[c], mins[c], steps[c]);
        else
          for (uint32_t c = 0; c < d; ++c)
            row[c] = dequantize(symbols[c], mins[0], steps[0]);
      }
    }
    float* recent_out = k_out + s.encodedTokens() * d;
    for (size_t i = 0; i < key_recent_.size(); ++i)
      recent_out[i] = halfToFloat(key_recent_[i]);
  }
  if (v_out) {
    const EncodedStream& s = values_;
    for (uint32_t b = 0; b < s.numBlocks(); ++b) {
      float* block_out = v_out + uint64_t{b} * s.shape.block_tokens * d;
      const float* mins = &s.mins[uint64_t{b} * s.shape.params_per_block];
      const float* steps = &s.steps[uint64_t{b} * s.shape.params_per_block];
      for (uint32_t c = 0; c < d; ++c) {
        s.decodeVector(b, c, symbols.data());
        for (uint32_t t = 0; t < s.shape.block_tokens; ++t)
          block_out[uint64_t{t} * d + c] = dequantize(symbols[t], mins[t], steps[t]);
      }
    }
    float* recent_out = v_out + s.encodedTokens() * d;
    for (size_t i = 0; i < value_recent_.size(); ++i)
      recent_out[i] = halfToFloat(value_recent_[i]);
  }
}

void CodecHead::decodeSymbols(int kind, uint16_t* out, uint64_t out_len) const {
  const EncodedStream& s = stream(kind);
  uint64_t needed = s.encodedTokens() * params_.head_dim;
  if (out_len < needed)
    fail(KVC_CODEC_ERR_BUFFER_TOO_SMALL,
         "decode_symbols: need " + std::to_string(needed) + " symbols, got " +
             std::to_string(out_len));
  for (uint32_t b = 0; b < s.numBlocks(); ++b)
    s.blockSymbols(b, out + b * s.shape.symbolsPerBlock());
}

// Zero-centred factorisation of a group: x^ = min + step * sym = zero + step * (sym - zero_sym)
// with zero_sym the symbol nearest to 0. Factoring around zero instead of min avoids the
// cancellation of min * sum(q) against step * sym when |min| >> |x| (outlier channels).
struct CentredGroup {
  float zero;       // min + step * zero_symbol
  float zero_symbol;
};

// Dot product with 8 independent partial sums, which the compiler vectorises without
// -ffast-math (a single running sum cannot be reordered).
static inline float dot(const float* a, const float* b, uint32_t n) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  uint32_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (uint32_t l = 0; l < 8; ++l)
      lanes[l] += a[i + l] * b[i + l];
  float tail = 0.0f;
  for (; i < n; ++i)
    tail += a[i] * b[i];
  return ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) +
         ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])) + tail;
}

static CentredGroup centre(float min, float step, uint32_t max_symbol) {
  if (step == 0.0f)
    return {min, 0.0f};
  double r = -static_cast<double>(min) / step; // symbols are >= 0: clamp to the range
  double nearest = r > 0.0 ? std::min(roundHalfEven(r), static_cast<double>(max_symbol)) : 0.0;
  return {min + static_cast<float>(nearest) * step, static_cast<float>(nearest)};
}

// scores[g, t] = sum_c q[g, c] * K^[t, c]. Per key block this is
// bias[g] + sum_c w[g, c] * (sym[t, c] - zero_sym[c]) with w = q * step and
// bias = sum_c q * zero, so each row is decoded once and shared by the GQA group's queries.
void CodecHead::scores(const float* q, uint32_t num_queries, float* out) const {
  const uint32_t d = params_.head_dim;
  const uint64_t T = num_tokens_;
  const EncodedStream& s = keys_;
  std::vector<float> weights(uint64_t{num_queries} * d), bias(num_queries), row(d);
  std::vector<CentredGroup> groups(s.shape.params_per_block);
  std::vector<float> zero_symbol(d);
  std::vector<uint16_t> symbols(d);
  for (uint32_t b = 0; b < s.numBlocks(); ++b) {
    const float* mins = &s.mins[uint64_t{b} * s.shape.params_per_block];
    const float* steps = &s.steps[uint64_t{b} * s.shape.params_per_block];
    for (uint32_t i = 0; i < s.shape.params_per_block; ++i)
      groups[i] = centre(mins[i], steps[i], s.max_symbol);
    for (uint32_t c = 0; c < d; ++c)
      zero_symbol[c] = groups[s.shape.params_per_channel ? c : 0].zero_symbol;
    for (uint32_t g = 0; g < num_queries; ++g) {
      const float* qg = q + uint64_t{g} * d;
      double sum = 0.0;
      for (uint32_t c = 0; c < d; ++c) {
        uint32_t group = s.shape.params_per_channel ? c : 0;
        weights[uint64_t{g} * d + c] = qg[c] * steps[group];
        sum += static_cast<double>(qg[c]) * groups[group].zero;
      }
      bias[g] = static_cast<float>(sum);
    }
    for (uint32_t t = 0; t < s.shape.block_tokens; ++t) {
      s.decodeVector(b, t, symbols.data());
      for (uint32_t c = 0; c < d; ++c)
        row[c] = static_cast<float>(symbols[c]) - zero_symbol[c];
      uint64_t token = uint64_t{b} * s.shape.block_tokens + t;
      for (uint32_t g = 0; g < num_queries; ++g)
        out[uint64_t{g} * T + token] = bias[g] + dot(&weights[uint64_t{g} * d], row.data(), d);
    }
  }
  const uint64_t encoded = s.encodedTokens();
  for (uint64_t t = encoded; t < T; ++t) {
    const uint16_t* key = &key_recent_[(t - encoded) * d];
    for (uint32_t c = 0; c < d; ++c)
      row[c] = halfToFloat(key[c]);
    for (uint32_t g = 0; g < num_queries; ++g)
      out[uint64_t{g} * T + t] = dot(q + uint64_t{g} * d, row.data(), d);
  }
}

// out[g, c] = sum_t p[g, t] * V^[t, c]. Per value block this is
// A[g] + sum_t w[g, t] * (sym[t, c] - zero_sym[t]) with w = p * step and A = sum_t p * zero
// (zero-centred per token, as in scores), so each channel column is decoded once.
void CodecHead::apply(const float* p, uint32_t num_queries, float* out) const {
  const uint32_t d = params_.head_dim;
  const uint64_t T = num_tokens_;
  const EncodedStream& s = values_;
  const uint32_t block_tokens = s.shape.block_tokens;
  std::vector<double> acc(uint64_t{num_queries} * d, 0.0);
  std::vector<float> weights(uint64_t{num_queries} * block_tokens), column(block_tokens);
  std::vector<float> zero_symbol(block_tokens), zero(block_tokens);
  std::vector<uint16_t> symbols(block_tokens);
  std::vector<double> bias(num_queries);
  for (uint32_t b = 0; b < s.numBlocks(); ++b) {
    const float* mins = &s.mins[uint64_t{b} * block_tokens];
    const float* steps = &s.steps[uint64_t{b} * block_tokens];
    const uint64_t first_token = uint64_t{b} * block_tokens;
    for (uint32_t t = 0; t < block_tokens; ++t) {
      CentredGroup centred = centre(mins[t], steps[t], s.max_symbol);
      zero_symbol[t] = centred.zero_symbol;
      zero[t] = centred.zero;
    }
    for (uint32_t g = 0; g < num_queries; ++g) {
      const float* pg = p + uint64_t{g} * T + first_token;
      double sum = 0.0;
      for (uint32_t t = 0; t < block_tokens; ++t) {
        weights[uint64_t{g} * block_tokens + t] = pg[t] * steps[t];
        sum += static_cast<double>(pg[t]) * zero[t];
      }
      bias[g] = sum;
    }
    for (uint32_t c = 0; c < d; ++c) {
      s.decodeVector(b, c, symbols.data());
      for (uint32_t t = 0; t < block_tokens; ++t)
        column[t] = static_cast<float>(symbols[t]) - zero_symbol[t];
      for (uint32_t g = 0; g < num_queries; ++g) {
        acc[uint64_t{g} * d + c] +=
            bias[g] + dot(&weights[uint64_t{g} * block_tokens], column.data(), block_tokens);
      }
    }
  }
  const uint64_t encoded = s.encodedTokens();
  std::vector<float> row(d);
  for (uint64_t t = encoded; t < T; ++t) {
    const uint16_t* value = &value_recent_[(t - encoded) * d];
    for (uint32_t c = 0; c < d; ++c)
      row[c] = halfToFloat(value[c]);
    for (uint32_t g = 0; g < num_queries; ++g) {
      double pt = p[uint64_t{g} * T + t];
      for (uint32_t c = 0; c < d; ++c)
        acc[uint64_t{g} * d + c] += pt * row[c];
    }
  }
  for (size_t i = 0; i < acc.size(); ++i)
    out[i] = static_cast<float>(acc[i]);
}

} // namespace kvc::codec
