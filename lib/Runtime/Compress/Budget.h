//===- Budget.h - budget allocation and synthetic queries ------------------===//
#ifndef KVC_LIB_RUNTIME_COMPRESS_BUDGET_H
#define KVC_LIB_RUNTIME_COMPRESS_BUDGET_H

#include "Internal.h"

namespace kvc::compress {

/// t_c proportional to sizes_c * difficulty_c^alpha, clamped to [min(tMin, T_c), T_c], summing
/// exactly to total (water-filling + largest remainder). Throws Error when infeasible.
std::vector<int64_t> allocateBudgets(const std::vector<double>& difficulty,
                                     const std::vector<int64_t>& sizes, int64_t total,
                                     int64_t tMin, double alpha);
double difficultySpread(const std::vector<double>& difficulty);

void syntheticQueries(const float* queries, const int64_t* positions, Index nQueries,
                      Index nHeads, Index headDim, Index rotaryDim, double theta,
                      double positionScale, int64_t refPosition, Index nOut, float* out,
                      int64_t* outPositions);

}  // namespace kvc::compress

#endif  // KVC_LIB_RUNTIME_COMPRESS_BUDGET_H
