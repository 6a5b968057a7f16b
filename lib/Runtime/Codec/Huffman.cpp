#include "Huffman.h"

#include <algorithm>
#include <numeric>
#include <queue>

namespace kvc::codec {

namespace {

// Huffman code lengths for the given positive weights (priority-queue construction).
std::vector<uint32_t> huffmanLengths(const std::vector<uint64_t>& weights) {
  size_t n = weights.size();
  std::vector<uint32_t> lengths(n, 0);
  if (n == 1) {
    lengths[0] = 1;
    return lengths;
  }
  // Nodes 0..n-1 are leaves, n.. are internal; parent links give the depths.
  std::vector<uint64_t> node_weight(weights);
  std::vector<size_t> parent(2 * n - 1, 0);
  using Item = std::pair<uint64_t, size_t>; // (weight, node); ties broken by node index
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue;
  for (size_t i = 0; i < n; ++i)
    queue.push({weights[i], i});
  while (queue.size() > 1) {
    Item a = queue.top();
    queue.pop();
    Item b = queue.top();
    queue.pop();
    size_t node = node_weight.size();
    node_weight.push_back(a.first + b.first);
    parent[a.second] = node;
    parent[b.second] = node;
    queue.push({a.first + b.first, node});
  }
  size_t root = node_weight.size() - 1;
  std::vector<uint32_t> depth(node_weight.size(), 0);
  for (size_t node = root; node-- > 0;) // parents have larger indices than children
    depth[node] = depth[parent[node]] + 1;
  for (size_t i = 0; i < n; ++i)
    lengths[i] = depth[i];
  return lengths;
}

// Caps lengths at max_length and restores the Kraft inequality by lengthening the cheapest
// (least frequent) codes, then uses any slack to shorten the most frequent ones.
void limitLengths(std::vector<uint32_t>& lengths, const std::vector<uint64_t>& weights,
                  uint32_t max_length) {
  size_t n = lengths.size();
  const uint64_t capacity = uint64_t{1} << max_length;
  auto kraft = [&] {
    uint64_t sum = 0;
    for (uint32_t len : lengths)
      sum += uint64_t{1} << (max_length - len);
    return sum;
  };
  bool capped = false;
  for (uint32_t& len : lengths)
    if (len > max_length) {
      len = max_length;
      capped = true;
    }
  if (!capped)
    return;
  // Order symbols from least to most frequent.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return weights[a] != weights[b] ? weights[a] < weights[b] : a < b;
  });
  uint64_t sum = kraft();
  while (sum > capacity) {
    // Lengthen the least frequent code that is still shorter than the limit.
    for (size_t i : order) {
      if (lengths[i] < max_length) {
        sum -= uint64_t{1} << (max_length - lengths[i] - 1);
        ++lengths[i];
        break;
      }
    }
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    size_t i = *it;
    while (lengths[i] > 1 && sum + (uint64_t{1} << (max_length - lengths[i])) <= capacity) {
      sum += uint64_t{1} << (max_length - lengths[i]);
      --lengths[i];
    }
  }
}

} // namespace

HuffmanCodebook HuffmanCodebook::build(const std::vector<uint64_t>& histogram,
                                       uint32_t max_symbol) {
  // Alphabet: symbols up to the largest one seen, plus the escape.
  uint32_t num_coded = 0;
  for (uint32_t s = 0; s < histogram.size() && s <= max_symbol; ++s)
    if (histogram[s] != 0)
      num_coded = s + 1;
  std::vector<uint64_t> weights;
  std::vector<uint32_t> members;
  for (uint32_t s = 0; s < num_coded; ++s)
    if (histogram[s] != 0) {
      weights.push_back(histogram[s]);
      members.push_back(s);
    }
  weights.push_back(1); // the escape: present but (by construction of the prefill) unused
  members.push_back(num_coded);
  std::vector<uint32_t> lengths = huffmanLengths(weights);
  limitLengths(lengths, weights, kMaxCodeLength);

  std::vector<uint8_t> code_lengths(num_coded + 1, 0);
  for (size_t i = 0; i < members.size(); ++i)
    code_lengths[members[i]] = static_cast<uint8_t>(lengths[i]);
  return fromLengths(code_lengths, max_symbol);
}

HuffmanCodebook HuffmanCodebook::fromLengths(const std::vector<uint8_t>& code_lengths,
                                             uint32_t max_symbol) {
  if (code_lengths.empty() || code_lengths.size() > static_cast<size_t>(max_symbol) + 2)
    corrupt("codebook size out of range");
  HuffmanCodebook book;
  book.num_coded_ = static_cast<uint32_t>(code_lengths.size() - 1);
  book.max_symbol_ = max_symbol;
  book.raw_bits_ = bitsFor(max_symbol);
  book.lengths_ = code_lengths;
  if (code_lengths.back() == 0)
    corrupt("codebook has no escape code");
  uint64_t kraft = 0;
  for (uint8_t len : code_lengths) {
    if (len > kMaxCodeLength)
      corrupt("code length exceeds the limit");
    if (len != 0)
      kraft += uint64_t{1} << (kMaxCodeLength - len);
  }
  if (kraft > (uint64_t{1} << kMaxCodeLength))
    corrupt("code lengths violate the Kraft inequality");
  book.finish();
  return book;
}

void HuffmanCodebook::finish() {
  const uint32_t alphabet = num_coded_ + 1;
  std::fill(std::begin(length_count_), std::end(length_count_), 0u);
  max_length_ = 0;
  for (uint32_t s = 0; s < alphabet; ++s) {
    ++length_count_[lengths_[s]];
    max_length_ = std::max<uint32_t>(max_length_, lengths_[s]);
  }
  length_count_[0] = 0;
  // Canonical order: by (length, symbol).
  sorted_symbols_.clear();
  for (uint32_t len = 1; len <= kMaxCodeLength; ++len)
    for (uint32_t s = 0; s < alphabet; ++s)
      if (lengths_[s] == len)
        sorted_symbols_.push_back(static_cast<uint16_t>(s));
  uint32_t code = 0, index = 0;
  for (uint32_t len = 1; len <= kMaxCodeLength; ++len) {
    code <<= 1;
    first_code_[len] = code;
    first_index_[len] = index;
    code += length_count_[len];
    index += length_count_[len];
  }
  first_code_[0] = first_index_[0] = 0;
  codes_.assign(alphabet, 0);
  for (uint32_t i = 0; i < sorted_symbols_.size(); ++i) {
    uint32_t s = sorted_symbols_[i];
    uint32_t len = lengths_[s];
    codes_[s] = first_code_[len] + (i - first_index_[len]);
  }
  lut_.assign(size_t{1} << kLutBits, 0);
  for (uint32_t s = 0; s < alphabet; ++s) {
    uint32_t len = lengths_[s];
    if (len == 0 || len > kLutBits)
      continue;
    uint32_t first = codes_[s] << (kLutBits - len);
    uint32_t span = 1u << (kLutBits - len);
    for (uint32_t j = 0; j < span; ++j)
      lut_[first + j] = (len << 16) | s;
  }
}

} // namespace kvc::codec
