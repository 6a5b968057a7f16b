//===- Sculpt.cpp - KVSculpt objective, ridge value solve, L-BFGS key steps ===//
#include "Internal.h"
#include "Sculpt.h"

#include <LBFGS.h>

#include <cmath>
#include <exception>
#include <limits>

namespace kvc::compress {

SculptObjective::SculptObjective(const ConstMapF& Q, const MatF& retKeys, const MatF& retValues,
                                 const MatF& targets, const VecF& lseTargets, float scale,
                                 double lseWeight)
    : Q_(Q), retKeys_(retKeys), retValues_(retValues), Y_(targets), z_(lseTargets),
      scale_(scale), lseWeight_(lseWeight) {
  const Index m = Q.rows(), d = Q.cols(), r = retKeys.rows();
  retLogits_.resize(m, r);
  gemm(false, true, m, r, d, scale, Q.data(), d, retKeys.data(), d, 0.f, retLogits_.data(), r);
  targetSq_ = 0;
  for (Index i = 0; i < m; ++i) targetSq_ += Y_.row(i).cast<double>().squaredNorm();
}

LossParts SculptObjective::evaluate(const float* compKeys, const float* compValues,
                                    Index nComp, float* gradCompKeys) {
  const Index m = Q_.rows(), d = Q_.cols(), dv = Y_.cols(), r = retKeys_.rows();
  const Index t = nComp + r;
  LossParts parts;
  P_.resize(m, t);
  gemm(false, true, m, nComp, d, scale_, Q_.data(), d, compKeys, d, 0.f, P_.data(), t);
  if (r > 0) P_.rightCols(r) = retLogits_;
  softmaxRows(P_, &lse_);
  // out_ = P [Cv; Vr] - Y: the residual E.
  out_ = Y_;
  gemm(false, false, m, dv, nComp, 1.f, P_.data(), t, compValues, dv, -1.f, out_.data(), dv);
  if (r > 0)
    gemm(false, false, m, dv, r, 1.f, P_.data() + nComp, t, retValues_.data(), dv, 1.f,
         out_.data(), dv);
  VecD rowResidualSq(m), lseDiff(m);
  for (Index i = 0; i < m; ++i) {
    rowResidualSq[i] = out_.row(i).cast<double>().squaredNorm();
    lseDiff[i] = lseWeight_ != 0 ? double(lse_[i]) - double(z_[i]) : 0.0;
  }
  parts.outputSq = rowResidualSq.sum();
  parts.lseSq = lseDiff.squaredNorm();
  parts.loss = (parts.outputSq + lseWeight_ * parts.lseSq) / double(m);
  if (!gradCompKeys || nComp == 0) return parts;

  // dL/dP_ij = (2/m) e_i.v_j; softmax backward: dS_ij = P_ij (dL/dP_ij - sum_k P_ik dL/dP_ik)
  // with sum_k P_ik dL/dP_ik = (2/m) e_i.o_i = (2/m)(||e_i||^2 + e_i.y_i); the LSE term adds
  // (2 w/m)(lse_i - z_i) P_ij. Then dL/dCk = scale dS_c^T Q.
  dP_.resize(m, nComp);
  gemm(false, true, m, nComp, dv, 1.f, out_.data(), dv, compValues, dv, 0.f, dP_.data(), nComp);
  const float twoOverM = float(2.0 / double(m));
  for (Index i = 0; i < m; ++i) {
    const double eDotO = rowResidualSq[i] + out_.row(i).cast<double>().dot(Y_.row(i).cast<double>());
    const float rowShift =
        float((-2.0 * eDotO + 2.0 * lseWeight_ * lseDiff[i]) / double(m));
    dP_.row(i).array() =
        P_.row(i).head(nComp).array() * (twoOverM * dP_.row(i).array() + rowShift);
  }
  gemm(true, false, nComp, d, m, scale_, dP_.data(), nComp, Q_.data(), d, 0.f, gradCompKeys, d);
  return parts;
}

bool SculptObjective::solveValues(Index nComp, double ridgeLambda, MatF& compValues,
                                  const MatF* anchor) const {
  const Index m = Q_.rows(), dv = Y_.cols(), r = retKeys_.rows(), t = nComp + r;
  if (nComp == 0) return true;
  // R = Y - A_r Vr, in double from here on: the Gram matrix squares the conditioning.
  residualTarget_ = Y_;
  if (r > 0)
    gemm(false, false, m, dv, r, -1.f, P_.data() + nComp, t, retValues_.data(), dv, 1.f,
         residualTarget_.data(), dv);
  Ac_ = P_.leftCols(nComp).cast<double>();
  R_ = residualTarget_.cast<double>();
  // Row-major upper triangle == column-major lower triangle of the same buffer.
  gram_.resize(nComp, nComp);
  gramUpper(nComp, m, Ac_.data(), nComp, gram_.data(), nComp);
  rhs_.resize(nComp, dv);
  gemm(true, false, nComp, dv, m, 1.0, Ac_.data(), nComp, R_.data(), dv, 0.0, rhs_.data(), dv);
  const double meanDiag = gram_.diagonal().sum() / double(nComp);
  double lambda = ridgeLambda * meanDiag;
  // A floor keeps slots that no query attends to (zero columns) solvable.
  lambda = std::max(lambda, 1e-12 * std::max(meanDiag, 1e-300));
  gram_.diagonal().array() += lambda;
  if (anchor) rhs_ += lambda * anchor->cast<double>();
  // lambda > 0 makes the system positive definite; failure means a numerical breakdown.
  if (!choleskySolveInPlace(gram_, rhs_) || !rhs_.allFinite()) return false;
  compValues = rhs_.cast<float>();
  return compValues.allFinite();
}

namespace {
/// The key step's objective for LBFGS++: x = vec(Ck) in double, values fixed. Remembers the
/// best finite point seen, so an aborted or diverging run can fall back to it.
struct KeyProblem {
  SculptObjective& objective;
  const MatF& compValues;
  Index nComp, headDim;
  int nanAfterEvals;  // test hook, < 0 off
  int& evaluations;
  bool& sawNonFinite;
  MatF keys, grad;
  VecD bestX;
  double bestLoss;
  LossParts bestParts;
  bool lastIsBest = false;  // the objective's weights() are those of bestX

  double operator()(const VecD& x, VecD& gradOut) {
    keys = Eigen::Map<const MatD>(x.data(), nComp, headDim).cast<float>();
    grad.resize(nComp, headDim);
    lastIsBest = false;
    const LossParts parts = objective.evaluate(keys.data(), compValues.data(), nComp, grad.data());
    double loss = parts.loss;
    if (nanAfterEvals >= 0 && evaluations >= nanAfterEvals) {
      loss = std::numeric_limits<double>::quiet_NaN();
      grad.setConstant(std::numeric_limits<float>::quiet_NaN());
    }
    ++evaluations;
    if (!std::isfinite(loss) || !grad.allFinite()) {
      // +inf with a zero gradient makes the line search shrink the step.
      sawNonFinite = true;
      gradOut.setZero(x.size());
      return std::numeric_limits<double>::infinity();
    }
    gradOut = Eigen::Map<const VecF>(grad.data(), grad.size()).cast<double>();
    if (loss < bestLoss) {
      bestLoss = loss;
      bestParts = parts;
      bestX = x;
      lastIsBest = true;
    }
    return loss;
  }
};
}  // namespace

void optimizeSculpt(SculptObjective& objective, MatF& compKeys, MatF& compValues,
                    const SculptSettings& settings, SculptTrace& trace) {
  const Index nComp = compKeys.rows(), headDim = compKeys.cols();
  LossParts current =
      objective.evaluate(compKeys.data(), compValues.data(), nComp, /*grad=*/nullptr);
  ++trace.evaluations;
  trace.initial = current;
  if (nComp == 0 || !std::isfinite(current.loss)) {
    trace.final = current;
    return;
  }

  LBFGSpp::LBFGSParam<double> param;
  param.m = std::max(1, settings.lbfgsMemory);
  param.max_iterations = std::max(1, settings.keyIterations);
  // Convergence is decided by the iteration budget, not by gradient tolerances whose
  // absolute scale depends on the model's value norms.
  param.epsilon = 0;
  param.epsilon_rel = 0;
  param.linesearch = LBFGSpp::LBFGS_LINESEARCH_BACKTRACKING_WOLFE;
  param.max_linesearch = 20;

  for (int round = 0; round < settings.rounds; ++round) {
    KeyProblem problem{objective, compValues, nComp, headDim, settings.nanAfterEvals,
                       trace.evaluations, trace.sawNonFinite, {}, {}, {}, current.loss,
                       current};
    VecD x = Eigen::Map<const VecF>(compKeys.data(), nComp * headDim).cast<double>();
    problem.bestX = x;
    double fx = 0;
    try {
      LBFGSpp::LBFGSSolver<double, LBFGSpp::LineSearchBacktracking> solver(param);
      trace.iterations += solver.minimize(problem, x, fx);
    } catch (const std::exception&) {
      // Line-search failure (no further descent in float precision) or a non-finite
      // direction: keep the best point seen in this round.
      trace.iterations += param.max_iterations;
    }
    compKeys = Eigen::Map<const MatD>(problem.bestX.data(), nComp, headDim).cast<float>();
    current = problem.bestParts;

    // Value step at the best keys; accepted only if it does not increase the loss (the
    // ridge term makes the closed form minimize a slightly different objective). The
    // attention weights depend on the keys only: re-evaluate unless they are current.
    if (!problem.lastIsBest) {
      current = objective.evaluate(compKeys.data(), compValues.data(), nComp, nullptr);
      ++trace.evaluations;
    }
    MatF newValues = compValues;
    if (objective.solveValues(nComp, settings.ridgeLambda, newValues, settings.valueAnchor)) {
      ++trace.valueSolves;
      LossParts withNew = objective.evaluate(compKeys.data(), newValues.data(), nComp, nullptr);
      ++trace.evaluations;
      if (std::isfinite(withNew.loss) && withNew.loss <= current.loss) {
        compValues.swap(newValues);
        current = withNew;
      }
    }
    ++trace.rounds;
  }
  trace.final = current;
}

}  // namespace kvc::compress
