//===- Sculpt.h - KVSculpt alternating optimization ------------------------===//
#ifndef KVC_LIB_RUNTIME_COMPRESS_SCULPT_H
#define KVC_LIB_RUNTIME_COMPRESS_SCULPT_H

#include "Internal.h"

namespace kvc::compress {

struct SculptSettings {
  int rounds = 5;
  int keyIterations = 10;
  int lbfgsMemory = 6;
  double ridgeLambda = 1e-3;
  int nanAfterEvals = -1;
  /// Non-null: the value solves pull toward these rows (anchored ridge) instead of zero.
  const MatF* valueAnchor = nullptr;
};

struct SculptTrace {
  LossParts initial, final;
  int rounds = 0, iterations = 0, evaluations = 0, valueSolves = 0;
  bool sawNonFinite = false;
};

/// Alternates `keyIterations` L-BFGS steps on the keys with a ridge value solve, starting
/// from (compKeys, compValues) (the Select+Fit solution). The loss never increases; the
/// returned pairs are the best iterate seen.
void optimizeSculpt(SculptObjective& objective, MatF& compKeys, MatF& compValues,
                    const SculptSettings& settings, SculptTrace& trace);

}  // namespace kvc::compress

#endif  // KVC_LIB_RUNTIME_COMPRESS_SCULPT_H
