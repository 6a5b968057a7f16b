//===- Internal.h - shared internals of the compression library ----------===//
//
// Eigen types, GEMM wrappers (OpenBLAS when available, Eigen otherwise), the error type
// thrown inside the library and turned into status codes at the C boundary, and the
// per-head kernels shared by the C entry points.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_RUNTIME_COMPRESS_INTERNAL_H
#define KVC_LIB_RUNTIME_COMPRESS_INTERNAL_H

#include "kvc/Runtime/Compress.h"

#include <Eigen/Core>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kvc::compress {

using Index = Eigen::Index;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VecF = Eigen::VectorXf;
using VecD = Eigen::VectorXd;
using ConstMapF = Eigen::Map<const MatF>;

/// Thrown inside the library; the C entry points turn it into (status, message).
struct Error {
  int code;
  std::string message;
};
[[noreturn]] void fail(int code, std::string message);

//===-- GEMM ------------------------------------------------------------===//
// Row-major C[M][N] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T; ld* are row strides.
void gemm(bool transA, bool transB, Index M, Index N, Index K, float alpha, const float* A,
          Index lda, const float* B, Index ldb, float beta, float* C, Index ldc);
void gemm(bool transA, bool transB, Index M, Index N, Index K, double alpha, const double* A,
          Index lda, const double* B, Index ldb, double beta, double* C, Index ldc);
/// Upper triangle of C[N][N] = A^T A for row-major A[K][N] (the rest of C is unspecified).
void gramUpper(Index N, Index K, const double* A, Index lda, double* C, Index ldc);

/// Solves (L L^T) X = B in place for symmetric positive definite A whose lower triangle is
/// in the column-major `lowerA` (destroyed); B is [n][nrhs] row-major. False if A is not PD.
bool choleskySolveInPlace(Eigen::MatrixXd& lowerA, MatD& B);

/// Description of the GEMM backend (see kvc_compress_backend()).
std::string backendDescription();

/// Limits the BLAS library to one thread while alive (heads then run in parallel instead).
class ScopedSingleThreadedBlas {
public:
  explicit ScopedSingleThreadedBlas(bool enable);
  ~ScopedSingleThreadedBlas();

private:
  int previous_ = 0;
};

//===-- Attention -------------------------------------------------------===//
/// Softmax of every row of S in place; lse (if non-null) gets each row's log-sum-exp.
/// A row of length 0 gets lse = -inf.
void softmaxRows(MatF& S, VecF* lse);

/// Full attention: out = softmax(scale Q K^T) V, lse of each query, P = the weights (optional).
void attention(const ConstMapF& Q, const ConstMapF& K, const ConstMapF& V, float scale,
               MatF& out, VecF* lse, MatF* weights);

//===-- KVSculpt objective ------------------------------------------------===//
struct LossParts {
  double outputSq = 0;  // sum_i ||o_i - y_i||^2
  double lseSq = 0;     // sum_i (lse_i - z_i)^2
  double loss = 0;      // outputSq/m + lseWeight * lseSq/m
};

/// L(Ck, Cv) = mean_i ||softmax(q_i [Ck;Kr]^T s) [Cv;Vr] - y_i||^2
///           + lseWeight * mean_i (LSE_i - z_i)^2, evaluated for all m queries by GEMMs.
/// The retained logits scale*Q Kr^T are constant and computed once.
class SculptObjective {
public:
  SculptObjective(const ConstMapF& Q, const MatF& retKeys, const MatF& retValues,
                  const MatF& targets, const VecF& lseTargets, float scale, double lseWeight);

  /// Loss at (Ck[nComp][d], Cv[nComp][dv]); fills gradCk[nComp][d] when non-null. Leaves the
  /// attention weights over [Ck; Kr] (compressed columns first) in weights().
  LossParts evaluate(const float* compKeys, const float* compValues, Index nComp,
                     float* gradCompKeys);
  const MatF& weights() const { return P_; }
  /// sum_i ||y_i||^2, the denominator of the relative MSE.
  double targetSq() const { return targetSq_; }

  /// Ridge value solve for the keys of the last evaluate(): argmin_Cv ||A_c Cv - R||^2 +
  /// lambda ||Cv||^2, R = Y - A_r Vr, lambda = ridgeLambda * trace(A_c^T A_c) / nComp.
  /// Returns false (Cv untouched) when the system cannot be solved. With `anchor`
  /// ([nComp][dv]) the penalty is lambda ||Cv - anchor||^2 (anchored ridge): slots the
  /// queries do not attend to keep the anchor's values instead of shrinking to zero.
  bool solveValues(Index nComp, double ridgeLambda, MatF& compValues,
                   const MatF* anchor = nullptr) const;

  Index numQueries() const { return Q_.rows(); }

private:
  ConstMapF Q_;
  const MatF& retKeys_;
  const MatF& retValues_;
  const MatF& Y_;
  const VecF& z_;
  float scale_;
  double lseWeight_;
  double targetSq_;
  MatF retLogits_;  // scale * Q Kr^T, [m][r]
  // Workspace of the last evaluation.
  MatF P_;          // [m][nComp + r] logits, then weights
  VecF lse_;
  MatF out_;        // [m][dv]
  MatF dP_;         // [m][nComp]
  // Workspace of solveValues (kept to avoid re-faulting large fresh allocations).
  mutable MatF residualTarget_;
  mutable MatD Ac_, R_, rhs_;
  mutable Eigen::MatrixXd gram_;
};

//===-- Per-head driver ---------------------------------------------------===//
struct HeadInput {
  const float* keys;
  const float* values;
  const float* queries;
  Index seqLen, headDim, valueDim, numQueries;
  Index budget;
};
struct HeadOutput {
  float* keys;
  float* values;
  int64_t* indices;  // may be null
};
/// Validates and compresses one head (throws Error).
void compressHead(const HeadInput& in, const kvc_compress_options& opts, const HeadOutput& out,
                  kvc_compress_stats& stats);
/// Select+Fit / KVSculpt started from a given kept set (kvc_compress_head_from_kept).
void compressHeadFromKept(const HeadInput& in, const int64_t* kept, Index nKept,
                          bool anchorValues, const kvc_compress_options& opts,
                          const HeadOutput& out, kvc_compress_stats& stats);

/// Runs fn(i) for i in [0, n) on up to numThreads threads, in the given order.
void parallelFor(Index n, int numThreads, const std::vector<Index>& order,
                 const std::function<void(Index)>& fn);
int resolveThreadCount(int requested);

void checkFinite(const float* data, Index count, const char* what);

}  // namespace kvc::compress

#endif  // KVC_LIB_RUNTIME_COMPRESS_INTERNAL_H
