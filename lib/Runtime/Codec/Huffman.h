// Canonical, length-limited Huffman codebook over quantization symbols, with an escape code
// for symbols the codebook never saw, and a bounds-checked table-driven decoder.
#ifndef KVC_RUNTIME_CODEC_HUFFMAN_H
#define KVC_RUNTIME_CODEC_HUFFMAN_H

#include "Error.h"

#include <cstdint>
#include <vector>

namespace kvc::codec {

constexpr uint32_t kMaxCodeLength = 16;
constexpr uint32_t kLutBits = 11;

class HuffmanCodebook {
public:
  // Builds the codebook from a histogram over symbols 0..histogram.size()-1 (trailing zeros
  // allowed). max_symbol bounds every symbol the stream may ever contain; raw escapes use
  // bitsFor(max_symbol) bits.
  static HuffmanCodebook build(const std::vector<uint64_t>& histogram, uint32_t max_symbol);
  // Rebuilds from stored code lengths ([num_coded + 1], last = escape); validates them.
  static HuffmanCodebook fromLengths(const std::vector<uint8_t>& code_lengths,
                                     uint32_t max_symbol);

  uint32_t numCoded() const { return num_coded_; }
  uint32_t escapeSymbol() const { return num_coded_; }
  uint32_t rawBits() const { return raw_bits_; }
  uint32_t maxSymbol() const { return max_symbol_; }
  uint32_t maxCodeLength() const { return max_length_; }
  uint32_t numCodes() const { return static_cast<uint32_t>(sorted_symbols_.size()); }
  const std::vector<uint8_t>& codeLengths() const { return lengths_; }
  const std::vector<uint32_t>& codes() const { return codes_; }
  const uint32_t* lengthCount() const { return length_count_; }
  const uint32_t* firstCode() const { return first_code_; }
  const uint32_t* firstIndex() const { return first_index_; }
  const std::vector<uint16_t>& sortedSymbols() const { return sorted_symbols_; }
  const std::vector<uint32_t>& lut() const { return lut_; }

  // Bits this symbol costs (code, or escape + raw).
  uint32_t costBits(uint32_t symbol) const {
    if (symbol < num_coded_ && lengths_[symbol] != 0)
      return lengths_[symbol];
    return lengths_[num_coded_] + raw_bits_;
  }
  uint32_t maxBitsPerSymbol() const { return max_length_ + raw_bits_; }
  bool isCoded(uint32_t symbol) const { return symbol < num_coded_ && lengths_[symbol] != 0; }

  // Decodes one slow-path code (longer than kLutBits) from the 32 most significant bits of
  // `window`; returns (length << 16) | symbol, or 0 if the bits match no code.
  uint32_t decodeLong(uint32_t window) const {
    for (uint32_t len = kLutBits + 1; len <= max_length_; ++len) {
      uint32_t code = window >> (32 - len);
      uint32_t rank = code - first_code_[len];
      if (rank < length_count_[len])
        return (len << 16) | sorted_symbols_[first_index_[len] + rank];
    }
    return 0;
  }

private:
  void finish(); // canonical codes + decode tables from lengths_

  uint32_t num_coded_ = 0;
  uint32_t max_symbol_ = 0;
  uint32_t raw_bits_ = 1;
  uint32_t max_length_ = 0;
  std::vector<uint8_t> lengths_; // [num_coded + 1]
  std::vector<uint32_t> codes_;  // [num_coded + 1]
  uint32_t length_count_[kMaxCodeLength + 1] = {};
  uint32_t first_code_[kMaxCodeLength + 1] = {};
  uint32_t first_index_[kMaxCodeLength + 1] = {};
  std::vector<uint16_t> sorted_symbols_;
  std::vector<uint32_t> lut_;
};

// Number of bits needed to write values 0..max_value.
inline uint32_t bitsFor(uint32_t max_value) {
  uint32_t bits = 1;
  while (bits < 32 && (max_value >> bits) != 0)
    ++bits;
  return bits;
}

// Writes bits MSB-first into 32-bit words (bit i of the stream is bit 31 - i%32 of word i/32).
// The caller sizes the output (at most maxBitsPerSymbol bits per symbol); writing through a raw
// pointer with 64-bit state lets the compiler keep the state in registers.
class BitWriter {
public:
  explicit BitWriter(uint32_t* out) : out_(out) {}
  void put(uint32_t value, uint32_t length) { // length <= 32, value < 2^length
    if (length == 0)
      return;
    accumulator_ |= static_cast<uint64_t>(value) << (64 - filled_ - length);
    filled_ += length;
    if (filled_ >= 32) {
      *out_++ = static_cast<uint32_t>(accumulator_ >> 32);
      ++words_written_;
      accumulator_ <<= 32;
      filled_ -= 32;
    }
  }
  uint64_t bitCount() const { return words_written_ * 32 + filled_; }
  // Pads the last word with zeros; returns the number of words written.
  uint64_t flush() {
    if (filled_ > 0) {
      *out_++ = static_cast<uint32_t>(accumulator_ >> 32);
      ++words_written_;
      accumulator_ = 0;
      filled_ = 0;
    }
    return words_written_;
  }

private:
  uint32_t* out_;
  uint64_t accumulator_ = 0;
  uint64_t filled_ = 0;
  uint64_t words_written_ = 0;
};

// Reads one vector's bits from a block's words. Reads past the block's words see zeros and
// the decoder checks the consumed bit count against the vector's end, so a corrupt stream can
// never read out of bounds.
class BitReader {
public:
  BitReader(const uint32_t* words, uint64_t num_words, uint64_t start_bit)
      : words_(words), num_words_(num_words), next_word_(start_bit >> 5) {
    refill();
    uint32_t skip = static_cast<uint32_t>(start_bit & 31);
    buffer_ <<= skip;
    available_ -= skip;
  }
  // The next 32 bits, MSB-aligned; valid while available() >= the bits the caller uses.
  uint32_t peek32() {
    if (available_ < 32)
      refill();
    return static_cast<uint32_t>(buffer_ >> 32);
  }
  void skip(uint32_t bits) {
    buffer_ <<= bits;
    available_ -= bits;
  }

private:
  void refill() { // keeps available_ >= 32
    uint32_t word = next_word_ < num_words_ ? words_[next_word_] : 0;
    ++next_word_;
    buffer_ |= static_cast<uint64_t>(word) << (32 - available_);
    available_ += 32;
  }
  const uint32_t* words_;
  uint64_t num_words_;
  uint64_t next_word_;
  uint64_t buffer_ = 0;
  uint32_t available_ = 0;
};

// Huffman-codes one vector of symbols.
inline void encodeVector(const HuffmanCodebook& book, const uint16_t* symbols, uint32_t count,
                         uint32_t stride, BitWriter& writer, uint64_t& escapes) {
  const uint8_t* lengths = book.codeLengths().data();
  const uint32_t* codes = book.codes().data();
  uint32_t escape = book.escapeSymbol();
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t symbol = symbols[static_cast<uint64_t>(i) * stride];
    if (symbol < escape && lengths[symbol] != 0) {
      writer.put(codes[symbol], lengths[symbol]);
    } else {
      writer.put(codes[escape], lengths[escape]);
      writer.put(symbol, book.rawBits());
      ++escapes;
    }
  }
}

// Decodes `count` symbols starting at bit `start` of words[0..num_words) into out[0..count);
// the vector must end at or before bit `end`. Throws CodecError on any inconsistency. Returns
// the bit position after the last symbol.
inline uint64_t decodeSymbols(const HuffmanCodebook& book, const uint32_t* words,
                              uint64_t num_words, uint64_t start, uint64_t end, uint32_t count,
                              uint16_t* out) {
  BitReader reader(words, num_words, start);
  const uint32_t* lut = book.lut().data();
  const uint32_t escape = book.escapeSymbol();
  const uint32_t raw_bits = book.rawBits();
  const uint32_t max_symbol = book.maxSymbol();
  uint64_t position = start;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t window = reader.peek32();
    uint32_t entry = lut[window >> (32 - kLutBits)];
    if (entry == 0) {
      entry = book.decodeLong(window);
      if (entry == 0)
        corrupt("bit pattern matches no Huffman code");
    }
    uint32_t length = entry >> 16;
    uint32_t symbol = entry & 0xffffu;
    reader.skip(length);
    position += length;
    if (symbol == escape) {
      symbol = reader.peek32() >> (32 - raw_bits);
      reader.skip(raw_bits);
      position += raw_bits;
      if (symbol > max_symbol)
        corrupt("escaped symbol exceeds the symbol range");
    }
    out[i] = static_cast<uint16_t>(symbol);
  }
  // Checking once at the end is enough: reads past the block's words see zeros, never memory.
  if (position > end)
    corrupt("bitstream vector overruns its end");
  return position;
}

} // namespace kvc::codec

#endif
