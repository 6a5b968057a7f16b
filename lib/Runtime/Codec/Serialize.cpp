// Serialized form of a CodecHead and its byte accounting (docs/codec.md, "Serialized format").
// All fields little-endian, no padding; a CRC-32 of everything before it ends the buffer.
#include "CodecHead.h"

#include "Half.h"

#include <cstring>
#include <string>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the codec's serialized format is written with memcpy and assumes a little-endian host"
#endif

namespace kvc::codec {

namespace {

constexpr uint8_t kMagic[4] = {'K', 'V', 'C', 'H'};
constexpr uint32_t kVersion = 1;
// magic, version, 8 params (u32/f32), num_tokens (u64), 2 block counts (u32), 2 word counts (u64)
constexpr size_t kHeaderBytes = 4 + 4 + 8 * 4 + 8 + 2 * 4 + 2 * 8;
constexpr size_t kChecksumBytes = 4;

size_t codebookBytes(const EncodedStream& s) {
  return 4 + (s.has_codebook ? s.codebook.codeLengths().size() : 0);
}
size_t paramBytes(const EncodedStream& s) { return s.mins.size() * 8; }
size_t offsetBytes(const EncodedStream& s) {
  return (s.block_word_offsets.size() + s.vector_bit_offsets.size()) * 4;
}
size_t wordBytes(const EncodedStream& s) { return s.words.size() * 4; }

class Writer {
public:
  explicit Writer(uint8_t* out) : out_(out) {}
  template <typename T> void put(T value) { bytes(&value, sizeof(T)); }
  template <typename T> void array(const std::vector<T>& v) { bytes(v.data(), v.size() * sizeof(T)); }
  void bytes(const void* data, size_t n) {
    if (n)
      std::memcpy(out_ + pos_, data, n);
    pos_ += n;
  }
  size_t pos() const { return pos_; }

private:
  uint8_t* out_;
  size_t pos_ = 0;
};

class Reader {
public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T> T get(const char* what) {
    T value;
    take(&value, sizeof(T), what);
    return value;
  }
  // Reads `count` elements, checking the length before allocating anything.
  template <typename T> void array(std::vector<T>& v, uint64_t count, const char* what) {
    if (count > remaining() / sizeof(T))
      corrupt(std::string("truncated buffer while reading ") + what);
    v.resize(count);
    take(v.data(), count * sizeof(T), what);
  }
  size_t remaining() const { return size_ - pos_; }

private:
  void take(void* out, size_t n, const char* what) {
    if (n > remaining())
      corrupt(std::string("truncated buffer while reading ") + what);
    if (n)
      std::memcpy(out, data_ + pos_, n);
    pos_ += n;
  }
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

void writeStream(Writer& w, const EncodedStream& s) {
  w.array(s.mins);
  w.array(s.steps);
  w.array(s.block_word_offsets);
  w.array(s.vector_bit_offsets);
  w.array(s.words);
}

void readCodebook(Reader& r, EncodedStream& s, const char* what) {
  uint32_t length = r.get<uint32_t>(what);
  if (length == 0)
    return;
  std::vector<uint8_t> lengths;
  r.array(lengths, length, what);
  s.codebook = HuffmanCodebook::fromLengths(lengths, s.max_symbol);
  s.has_codebook = true;
}

void readStream(Reader& r, EncodedStream& s, uint32_t blocks, uint64_t words, const char* what) {
  uint64_t params = uint64_t{blocks} * s.shape.params_per_block;
  r.array(s.mins, params, what);
  r.array(s.steps, params, what);
  r.array(s.block_word_offsets, uint64_t{blocks} + 1, what);
  r.array(s.vector_bit_offsets, uint64_t{blocks} * s.shape.vectorsPerBlock(), what);
  r.array(s.words, words, what);
}

} // namespace

uint32_t crc32(const uint8_t* data, size_t size) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i)
    crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

size_t CodecHead::serializedSize() const {
  size_t total = kHeaderBytes + kChecksumBytes;
  for (const EncodedStream* s : {&keys_, &values_})
    total += codebookBytes(*s) + paramBytes(*s) + offsetBytes(*s) + wordBytes(*s);
  total += (key_recent_.size() + value_recent_.size()) * 2;
  return total;
}

void CodecHead::serialize(uint8_t* out) const {
  Writer w(out);
  w.bytes(kMagic, 4);
  w.put<uint32_t>(kVersion);
  w.put<uint32_t>(params_.head_dim);
  w.put<float>(params_.key_error);
  w.put<float>(params_.value_error);
  w.put<uint32_t>(params_.key_block_tokens);
  w.put<uint32_t>(params_.value_block_tokens);
  w.put<uint32_t>(params_.key_recent_tokens);
  w.put<uint32_t>(params_.value_recent_tokens);
  w.put<uint32_t>(params_.key_grouping);
  w.put<uint64_t>(num_tokens_);
  w.put<uint32_t>(keys_.numBlocks());
  w.put<uint32_t>(values_.numBlocks());
  w.put<uint64_t>(keys_.words.size());
  w.put<uint64_t>(values_.words.size());
  for (const EncodedStream* s : {&keys_, &values_}) {
    w.put<uint32_t>(s->has_codebook ? static_cast<uint32_t>(s->codebook.codeLengths().size()) : 0);
    if (s->has_codebook)
      w.array(s->codebook.codeLengths());
  }
  writeStream(w, keys_);
  writeStream(w, values_);
  w.array(key_recent_);
  w.array(value_recent_);
  w.put<uint32_t>(crc32(out, w.pos()));
}

std::unique_ptr<CodecHead> CodecHead::deserialize(const uint8_t* data, size_t size) {
  if (!data && size)
    fail(KVC_CODEC_ERR_INVALID_ARGUMENT, "deserialize: null buffer");
  if (size < kHeaderBytes + kChecksumBytes)
    corrupt("buffer shorter than the header (" + std::to_string(size) + " bytes)");
  if (std::memcmp(data, kMagic, 4) != 0)
    corrupt("bad magic (not a kvc codec head)");
  uint32_t stored_crc;
  std::memcpy(&stored_crc, data + size - kChecksumBytes, 4);
  if (crc32(data, size - kChecksumBytes) != stored_crc)
    corrupt("checksum mismatch");

  Reader r(data + 4, size - 4 - kChecksumBytes);
  uint32_t version = r.get<uint32_t>("version");
  if (version != kVersion)
    corrupt("unsupported version " + std::to_string(version));
  kvc_codec_params params;
  params.head_dim = r.get<uint32_t>("head_dim");
  params.key_error = r.get<float>("key_error");
  params.value_error = r.get<float>("value_error");
  params.key_block_tokens = r.get<uint32_t>("key_block_tokens");
  params.value_block_tokens = r.get<uint32_t>("value_block_tokens");
  params.key_recent_tokens = r.get<uint32_t>("key_recent_tokens");
  params.value_recent_tokens = r.get<uint32_t>("value_recent_tokens");
  params.key_grouping = r.get<uint32_t>("key_grouping");
  try {
    validateParams(params);
  } catch (const CodecError& e) {
    corrupt(std::string("invalid parameters: ") + e.what());
  }
  auto head = std::make_unique<CodecHead>(params);
  const uint64_t d = params.head_dim;
  uint64_t num_tokens = r.get<uint64_t>("num_tokens");
  uint32_t key_blocks = r.get<uint32_t>("key block count");
  uint32_t value_blocks = r.get<uint32_t>("value block count");
  uint64_t key_words = r.get<uint64_t>("key word count");
  uint64_t value_words = r.get<uint64_t>("value word count");

  // Token bookkeeping: every token is either in a block or in the recent window, and the
  // window is shorter than block + recent (otherwise a block would have been cut).
  auto recent_count = [&](uint32_t blocks, uint32_t block_tokens, uint32_t recent) {
    uint64_t encoded = uint64_t{blocks} * block_tokens;
    if (encoded > num_tokens)
      corrupt("more encoded tokens than tokens");
    uint64_t pending = num_tokens - encoded;
    if (pending >= uint64_t{block_tokens} + recent)
      corrupt("recent window longer than block + recent");
    return pending;
  };
  uint64_t key_pending = recent_count(key_blocks, params.key_block_tokens, params.key_recent_tokens);
  uint64_t value_pending =
      recent_count(value_blocks, params.value_block_tokens, params.value_recent_tokens);
  head->num_tokens_ = num_tokens;

  readCodebook(r, head->keys_, "key codebook");
  readCodebook(r, head->values_, "value codebook");
  readStream(r, head->keys_, key_blocks, key_words, "key stream");
  readStream(r, head->values_, value_blocks, value_words, "value stream");
  r.array(head->key_recent_, key_pending * d, "key recent window");
  r.array(head->value_recent_, value_pending * d, "value recent window");
  if (r.remaining() != 0)
    corrupt(std::to_string(r.remaining()) + " trailing bytes");
  for (const std::vector<uint16_t>* recent : {&head->key_recent_, &head->value_recent_})
    for (uint16_t h : *recent)
      if (!halfIsFinite(h))
        corrupt("non-finite fp16 value in a recent window");
  head->keys_.validate();
  head->values_.validate();
  return head;
}

kvc_codec_stats CodecHead::stats() const {
  kvc_codec_stats st;
  std::memset(&st, 0, sizeof(st));
  const uint64_t d = params_.head_dim;
  st.num_tokens = num_tokens_;
  st.head_dim = d;
  st.key_encoded_tokens = keys_.encodedTokens();
  st.value_encoded_tokens = values_.encodedTokens();
  st.key_recent_tokens = recentTokens(KVC_CODEC_KEYS);
  st.value_recent_tokens = recentTokens(KVC_CODEC_VALUES);
  for (const EncodedStream* s : {&keys_, &values_}) {
    st.bitstream_bytes += wordBytes(*s);
    st.offset_bytes += offsetBytes(*s);
    st.quant_param_bytes += paramBytes(*s);
    st.codebook_bytes += codebookBytes(*s);
  }
  st.recent_bytes = (key_recent_.size() + value_recent_.size()) * 2;
  st.header_bytes = kHeaderBytes + kChecksumBytes;
  st.total_bytes = st.bitstream_bytes + st.offset_bytes + st.quant_param_bytes +
                   st.codebook_bytes + st.recent_bytes + st.header_bytes;
  st.fp16_bytes = 2 * num_tokens_ * d * 2;
  const double elements = 2.0 * static_cast<double>(num_tokens_ * d);
  st.bits_per_element = elements > 0 ? 8.0 * st.total_bytes / elements : 0.0;
  st.compression_ratio = st.total_bytes ? double(st.fp16_bytes) / st.total_bytes : 0.0;

  st.key_fixed_width_bits = bitsFor(keys_.max_symbol);
  st.value_fixed_width_bits = bitsFor(values_.max_symbol);
  st.key_huffman_payload_bits = keys_.payload_bits;
  st.value_huffman_payload_bits = values_.payload_bits;
  st.key_escape_count = keys_.escapes;
  st.value_escape_count = values_.escapes;
  const uint64_t key_symbols = st.key_encoded_tokens * d, value_symbols = st.value_encoded_tokens * d;
  st.quant_only_total_bytes = (key_symbols * st.key_fixed_width_bits + 7) / 8 +
                              (value_symbols * st.value_fixed_width_bits + 7) / 8 +
                              st.quant_param_bytes + st.recent_bytes + st.header_bytes;
  st.quant_only_compression_ratio =
      st.quant_only_total_bytes ? double(st.fp16_bytes) / st.quant_only_total_bytes : 0.0;
  auto encoded_bits = [](const EncodedStream& s, uint64_t symbols) {
    if (symbols == 0)
      return 0.0;
    return 8.0 * (wordBytes(s) + offsetBytes(s) + paramBytes(s) + codebookBytes(s)) / symbols;
  };
  st.key_encoded_bits_per_element = encoded_bits(keys_, key_symbols);
  st.value_encoded_bits_per_element = encoded_bits(values_, value_symbols);
  return st;
}

} // namespace kvc::codec
