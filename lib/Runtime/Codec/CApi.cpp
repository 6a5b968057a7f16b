// C ABI of the codec: exceptions become status codes plus a thread-local message.
#include "kvc/Runtime/Codec.h"

#include "CodecHead.h"
#include "Kivi.h"

#include <cstring>
#include <new>
#include <string>

struct kvc_codec_head {
  std::unique_ptr<kvc::codec::CodecHead> impl;
};
struct kvc_kivi_head {
  std::unique_ptr<kvc::codec::KiviHead> impl;
};

namespace {

thread_local std::string g_last_error;

int setError(int status, const std::string& message) {
  g_last_error = message;
  return status;
}

template <typename F> int guarded(const char* function, F&& body) {
  try {
    body();
    g_last_error.clear();
    return KVC_CODEC_OK;
  } catch (const kvc::codec::CodecError& e) {
    return setError(e.status(), std::string(function) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return setError(KVC_CODEC_ERR_OUT_OF_MEMORY, std::string(function) + ": out of memory");
  } catch (const std::exception& e) {
    return setError(KVC_CODEC_ERR_INTERNAL, std::string(function) + ": " + e.what());
  }
}

void require(bool condition, const char* message) {
  if (!condition)
    kvc::codec::fail(KVC_CODEC_ERR_INVALID_ARGUMENT, message);
}

const kvc::codec::CodecHead& headOf(const kvc_codec_head* head) {
  require(head && head->impl, "null head");
  return *head->impl;
}

void fillTables(const kvc::codec::EncodedStream& s, kvc_codec_huffman_tables* t) {
  std::memset(t, 0, sizeof(*t));
  if (!s.has_codebook)
    return;
  const kvc::codec::HuffmanCodebook& b = s.codebook;
  t->num_coded_symbols = b.numCoded();
  t->escape_symbol = b.escapeSymbol();
  t->raw_bits = b.rawBits();
  t->max_symbol = b.maxSymbol();
  t->max_code_length = b.maxCodeLength();
  t->lut_bits = kvc::codec::kLutBits;
  t->num_codes = b.numCodes();
  t->code_lengths = b.codeLengths().data();
  t->codes = b.codes().data();
  t->length_count = b.lengthCount();
  t->first_code = b.firstCode();
  t->first_index = b.firstIndex();
  t->sorted_symbols = b.sortedSymbols().data();
  t->lut = b.lut().data();
}

} // namespace

extern "C" {

const char* kvc_codec_last_error(void) { return g_last_error.c_str(); }

const char* kvc_codec_status_string(int status) {
  switch (status) {
  case KVC_CODEC_OK: return "ok";
  case KVC_CODEC_ERR_INVALID_ARGUMENT: return "invalid argument";
  case KVC_CODEC_ERR_NONFINITE_INPUT: return "non-finite input";
  case KVC_CODEC_ERR_OUT_OF_RANGE: return "value out of fp16 range";
  case KVC_CODEC_ERR_CORRUPT: return "corrupt data";
  case KVC_CODEC_ERR_OUT_OF_MEMORY: return "out of memory";
  case KVC_CODEC_ERR_BUFFER_TOO_SMALL: return "buffer too small";
  case KVC_CODEC_ERR_INTERNAL: return "internal error";
  default: return "unknown status";
  }
}

void kvc_codec_default_params(kvc_codec_params* params, uint32_t head_dim) {
  if (!params)
    return;
  params->head_dim = head_dim;
  params->key_error = 0.05f;
  params->value_error = 0.1f;
  params->key_block_tokens = 64;
  params->value_block_tokens = 128;
  params->key_recent_tokens = 128;
  params->value_recent_tokens = 256;
  params->key_grouping = KVC_CODEC_KEY_BLOCK;
}

int kvc_codec_head_create(const kvc_codec_params* params, kvc_codec_head** out) {
  return guarded("kvc_codec_head_create", [&] {
    require(params && out, "null argument");
    *out = nullptr;
    auto head = new kvc_codec_head{std::make_unique<kvc::codec::CodecHead>(*params)};
    *out = head;
  });
}

void kvc_codec_head_free(kvc_codec_head* head) { delete head; }

int kvc_codec_head_append(kvc_codec_head* head, const float* k, const float* v,
                          uint64_t num_tokens) {
  return guarded("kvc_codec_head_append", [&] {
    require(head && head->impl, "null head");
    head->impl->append(k, v, num_tokens);
  });
}

int kvc_codec_head_params(const kvc_codec_head* head, kvc_codec_params* out) {
  return guarded("kvc_codec_head_params", [&] {
    require(out != nullptr, "null output");
    *out = headOf(head).params();
  });
}

uint64_t kvc_codec_head_num_tokens(const kvc_codec_head* head) {
  return head && head->impl ? head->impl->numTokens() : 0;
}

int kvc_codec_head_decode(const kvc_codec_head* head, float* k_out, float* v_out) {
  return guarded("kvc_codec_head_decode", [&] { headOf(head).decode(k_out, v_out); });
}

int kvc_codec_head_decode_symbols(const kvc_codec_head* head, int stream, uint16_t* out,
                                  uint64_t out_len) {
  return guarded("kvc_codec_head_decode_symbols", [&] {
    require(stream == KVC_CODEC_KEYS || stream == KVC_CODEC_VALUES, "bad stream kind");
    require(out != nullptr || out_len == 0, "null output");
    headOf(head).decodeSymbols(stream, out, out_len);
  });
}

int kvc_codec_head_scores(const kvc_codec_head* head, const float* q, uint32_t num_queries,
                          float* scores) {
  return guarded("kvc_codec_head_scores", [&] {
    const kvc::codec::CodecHead& h = headOf(head);
    require(num_queries == 0 || q, "null q");
    require(num_queries == 0 || h.numTokens() == 0 || scores, "null scores");
    kvc::codec::checkFinite(q, uint64_t{num_queries} * h.params().head_dim, "q");
    h.scores(q, num_queries, scores);
  });
}

int kvc_codec_head_apply(const kvc_codec_head* head, const float* p, uint32_t num_queries,
                         float* out) {
  return guarded("kvc_codec_head_apply", [&] {
    const kvc::codec::CodecHead& h = headOf(head);
    require(num_queries == 0 || h.numTokens() == 0 || p, "null p");
    require(num_queries == 0 || out, "null out");
    kvc::codec::checkFinite(p, uint64_t{num_queries} * h.numTokens(), "p");
    h.apply(p, num_queries, out);
  });
}

int kvc_codec_head_stats(const kvc_codec_head* head, kvc_codec_stats* out) {
  return guarded("kvc_codec_head_stats", [&] {
    require(out != nullptr, "null output");
    *out = headOf(head).stats();
  });
}

int kvc_codec_head_view(const kvc_codec_head* head, int stream, kvc_codec_stream_view* view,
                        kvc_codec_huffman_tables* tables) {
  return guarded("kvc_codec_head_view", [&] {
    const kvc::codec::CodecHead& h = headOf(head);
    require(stream == KVC_CODEC_KEYS || stream == KVC_CODEC_VALUES, "bad stream kind");
    const kvc::codec::EncodedStream& s = h.stream(stream);
    if (view) {
      std::memset(view, 0, sizeof(*view));
      view->num_blocks = s.numBlocks();
      view->block_tokens = s.shape.block_tokens;
      view->vectors_per_block = s.shape.vectorsPerBlock();
      view->symbols_per_vector = s.shape.symbolsPerVector();
      view->params_per_block = s.shape.params_per_block;
      view->has_codebook = s.has_codebook ? 1 : 0;
      view->mins = s.mins.data();
      view->steps = s.steps.data();
      view->block_word_offsets = s.block_word_offsets.data();
      view->vector_bit_offsets = s.vector_bit_offsets.data();
      view->words = s.words.data();
      view->num_words = s.words.size();
      view->recent_tokens = static_cast<uint32_t>(h.recentTokens(stream));
      view->recent_fp16 = h.recent(stream).data();
    }
    if (tables)
      fillTables(s, tables);
  });
}

int kvc_codec_head_serialize(const kvc_codec_head* head, uint8_t* buffer, size_t capacity,
                             size_t* size) {
  return guarded("kvc_codec_head_serialize", [&] {
    const kvc::codec::CodecHead& h = headOf(head);
    require(size != nullptr, "null size");
    size_t needed = h.serializedSize();
    *size = needed;
    if (!buffer)
      return;
    if (capacity < needed)
      kvc::codec::fail(KVC_CODEC_ERR_BUFFER_TOO_SMALL,
                       "need " + std::to_string(needed) + " bytes, capacity " +
                           std::to_string(capacity));
    h.serialize(buffer);
  });
}

int kvc_codec_head_deserialize(const uint8_t* buffer, size_t size, kvc_codec_head** out) {
  return guarded("kvc_codec_head_deserialize", [&] {
    require(out != nullptr, "null output");
    *out = nullptr;
    auto impl = kvc::codec::CodecHead::deserialize(buffer, size);
    *out = new kvc_codec_head{std::move(impl)};
  });
}

void kvc_kivi_default_params(kvc_kivi_params* params, uint32_t head_dim, uint32_t bits) {
  if (!params)
    return;
  params->head_dim = head_dim;
  params->key_bits = bits;
  params->value_bits = bits;
  params->group_tokens = 32;
  params->recent_tokens = 128;
}

int kvc_kivi_quantize(const kvc_kivi_params* params, const float* k, const float* v,
                      uint64_t num_tokens, kvc_kivi_head** out) {
  return guarded("kvc_kivi_quantize", [&] {
    require(params && out, "null argument");
    *out = nullptr;
    auto impl = std::make_unique<kvc::codec::KiviHead>(*params, k, v, num_tokens);
    *out = new kvc_kivi_head{std::move(impl)};
  });
}

int kvc_kivi_dequantize(const kvc_kivi_head* head, float* k_out, float* v_out) {
  return guarded("kvc_kivi_dequantize", [&] {
    require(head && head->impl, "null head");
    head->impl->dequantize(k_out, v_out);
  });
}

int kvc_kivi_stats(const kvc_kivi_head* head, kvc_codec_stats* out) {
  return guarded("kvc_kivi_stats", [&] {
    require(head && head->impl && out, "null argument");
    *out = head->impl->stats();
  });
}

uint64_t kvc_kivi_num_tokens(const kvc_kivi_head* head) {
  return head && head->impl ? head->impl->numTokens() : 0;
}

void kvc_kivi_free(kvc_kivi_head* head) { delete head; }

} // extern "C"
