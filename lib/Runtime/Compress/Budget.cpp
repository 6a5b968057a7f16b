//===- Budget.cpp - budget allocation and RoPE synthetic queries ----------===//
#include "Budget.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace kvc::compress {

std::vector<int64_t> allocateBudgets(const std::vector<double>& difficulty,
                                     const std::vector<int64_t>& sizes, int64_t total,
                                     int64_t tMin, double alpha) {
  const size_t n = sizes.size();
  if (difficulty.size() != n)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "difficulty and sizes differ in length");
  if (!std::isfinite(alpha) || alpha < 0)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "alpha must be finite and >= 0");
  if (tMin < 0 || total < 0)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "total and t_min must be >= 0");
  std::vector<double> lo(n), hi(n), weight(n);
  double sumLo = 0, sumHi = 0, sumWeight = 0;
  for (size_t c = 0; c < n; ++c) {
    if (sizes[c] < 0) fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "component sizes must be >= 0");
    if (!std::isfinite(difficulty[c]) || difficulty[c] < 0)
      fail(KVC_COMPRESS_ERR_NONFINITE_INPUT, "difficulties must be finite and >= 0");
    hi[c] = double(sizes[c]);
    lo[c] = double(std::min(tMin, sizes[c]));
    weight[c] = hi[c] * (alpha == 0 ? 1.0 : std::pow(difficulty[c], alpha));
    sumLo += lo[c];
    sumHi += hi[c];
    sumWeight += weight[c];
  }
  if (double(total) < sumLo || double(total) > sumHi)
    fail(KVC_COMPRESS_ERR_BUDGET, "total budget " + std::to_string(total) +
                                      " is outside [sum of minimums, sum of sizes] = [" +
                                      std::to_string(int64_t(sumLo)) + ", " +
                                      std::to_string(int64_t(sumHi)) + "]");
  if (!(sumWeight > 0) || !std::isfinite(sumWeight)) {  // all difficulties 0: by size
    for (size_t c = 0; c < n; ++c) weight[c] = hi[c];
  }

  // Water-filling: find mu with sum_c clamp(mu w_c, lo_c, hi_c) = total (monotone in mu).
  auto filled = [&](double mu) {
    double s = 0;
    for (size_t c = 0; c < n; ++c) s += std::clamp(mu * weight[c], lo[c], hi[c]);
    return s;
  };
  double muLo = 0, muHi = 1;
  while (filled(muHi) < double(total) && muHi < 1e300) muHi *= 2;
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (muLo + muHi);
    (filled(mid) <= double(total) ? muLo : muHi) = mid;
  }
  std::vector<double> target(n);
  for (size_t c = 0; c < n; ++c) target[c] = std::clamp(muLo * weight[c], lo[c], hi[c]);

  // Integer budgets: floors, then +1 by largest remainder, then (when weights are zero and
  // the water level cannot rise) fill any remaining room, largest weight first.
  std::vector<int64_t> budgets(n);
  int64_t assigned = 0;
  for (size_t c = 0; c < n; ++c) {
    budgets[c] = std::clamp<int64_t>(int64_t(std::floor(target[c])), int64_t(lo[c]), sizes[c]);
    assigned += budgets[c];
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return target[a] - double(budgets[a]) > target[b] - double(budgets[b]);
  });
  for (size_t k = 0; k < n && assigned < total; ++k) {
    const size_t c = order[k];
    if (budgets[c] < sizes[c]) {
      ++budgets[c];
      ++assigned;
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return weight[a] > weight[b]; });
  for (size_t k = 0; k < n && assigned < total; ++k) {
    const size_t c = order[k];
    const int64_t add = std::min(total - assigned, sizes[c] - budgets[c]);
    budgets[c] += add;
    assigned += add;
  }
  // Floors never exceed the continuous targets, whose sum is <= total; guard regardless.
  for (size_t k = n; k-- > 0 && assigned > total;) {
    const size_t c = order[k];
    const int64_t remove = std::min(assigned - total, budgets[c] - int64_t(lo[c]));
    budgets[c] -= remove;
    assigned -= remove;
  }
  if (assigned != total) fail(KVC_COMPRESS_ERR_INTERNAL, "budget allocation did not converge");
  return budgets;
}

double difficultySpread(const std::vector<double>& difficulty) {
  if (difficulty.empty()) return 1.0;
  const auto [mn, mx] = std::minmax_element(difficulty.begin(), difficulty.end());
  if (*mx == 0) return 1.0;
  if (*mn == 0) return std::numeric_limits<double>::infinity();
  return *mx / *mn;
}

void syntheticQueries(const float* queries, const int64_t* positions, Index nQueries,
                      Index nHeads, Index headDim, Index rotaryDim, double theta,
                      double positionScale, int64_t refPosition, Index nOut, float* out,
                      int64_t* outPositions) {
  if (rotaryDim <= 0) rotaryDim = headDim;
  if (rotaryDim > headDim || rotaryDim % 2 != 0)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "rotary_dim must be even and <= head_dim");
  if (!(theta > 0) || !std::isfinite(theta) || !(positionScale > 0) ||
      !std::isfinite(positionScale))
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "theta and position_scale must be finite and > 0");
  if (nQueries < 1 || nHeads < 1 || nOut < 0)
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "need n_queries >= 1, n_query_heads >= 1, n_out >= 0");
  if (!queries || !positions || (nOut > 0 && !out))
    fail(KVC_COMPRESS_ERR_INVALID_ARGUMENT, "null queries, positions or output");
  checkFinite(queries, nQueries * nHeads * headDim, "queries");

  const Index half = rotaryDim / 2;
  std::vector<double> invFreq(half);
  for (Index i = 0; i < half; ++i)
    invFreq[i] = positionScale * std::pow(theta, -2.0 * double(i) / double(rotaryDim));
  // Rotates pair (x_i, x_{i+half}) by angle p * invFreq_i in place (NeoX / HF rotate_half).
  auto rotate = [&](std::vector<double>& x, double position) {
    for (Index i = 0; i < half; ++i) {
      const double angle = position * invFreq[i];
      const double c = std::cos(angle), s = std::sin(angle);
      const double x1 = x[i], x2 = x[i + half];
      x[i] = x1 * c - x2 * s;
      x[i + half] = x2 * c + x1 * s;
    }
  };
  std::vector<double> row(headDim);
  for (Index k = 0; k < nOut; ++k) {
    const Index source = (k * nQueries) / nOut;  // evenly spaced; repeats when nOut > nQueries
    const int64_t futurePosition = refPosition + 1 + k;
    if (outPositions) outPositions[k] = futurePosition;
    for (Index h = 0; h < nHeads; ++h) {
      const float* src = queries + (h * nQueries + source) * headDim;
      for (Index i = 0; i < headDim; ++i) row[i] = src[i];
      rotate(row, -double(positions[source]));  // back to the un-rotated query
      rotate(row, double(futurePosition));
      float* dst = out + (h * nOut + k) * headDim;
      for (Index i = 0; i < headDim; ++i) dst[i] = float(row[i]);
    }
  }
}

}  // namespace kvc::compress
