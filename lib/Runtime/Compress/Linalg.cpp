//===- Linalg.cpp - GEMM wrappers, softmax and attention ------------------===//
//
// The hot products go through cblas_*gemm when the library is built with OpenBLAS (its
// kernels are chosen at run time for the CPU, so the build stays portable and gets
// AVX2/AVX-512 speed); otherwise through Eigen's own GEMM.
//
//===----------------------------------------------------------------------===//
#include "Internal.h"

#include <cctype>
#include <cmath>
#include <limits>

#include <Eigen/Cholesky>

#ifdef KVC_COMPRESS_HAVE_OPENBLAS
#include <cblas.h>
// LAPACK from OpenBLAS (Fortran ABI; the trailing argument is the hidden length of `uplo`).
extern "C" void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info,
                        size_t uploLen);
#endif

namespace kvc::compress {

void fail(int code, std::string message) { throw Error{code, std::move(message)}; }

namespace {
#ifndef KVC_COMPRESS_HAVE_OPENBLAS
template <typename Scalar>
void eigenGemm(bool transA, bool transB, Index M, Index N, Index K, Scalar alpha,
               const Scalar* A, Index lda, const Scalar* B, Index ldb, Scalar beta, Scalar* C,
               Index ldc) {
  using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  using CMap = Eigen::Map<const Mat, 0, Stride>;
  Eigen::Map<Mat, 0, Stride> c(C, M, N, Stride(ldc));
  CMap a(A, transA ? K : M, transA ? M : K, Stride(lda));
  CMap b(B, transB ? N : K, transB ? K : N, Stride(ldb));
  if (beta == Scalar(0))
    c.setZero();
  else if (beta != Scalar(1))
    c *= beta;
  if (!transA && !transB)
    c.noalias() += alpha * a * b;
  else if (!transA && transB)
    c.noalias() += alpha * a * b.transpose();
  else if (transA && !transB)
    c.noalias() += alpha * a.transpose() * b;
  else
    c.noalias() += alpha * a.transpose() * b.transpose();
}
#endif
}  // namespace

void gemm(bool transA, bool transB, Index M, Index N, Index K, float alpha, const float* A,
          Index lda, const float* B, Index ldb, float beta, float* C, Index ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (Index i = 0; i < M; ++i)
      for (Index j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
    return;
  }
#ifdef KVC_COMPRESS_HAVE_OPENBLAS
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
              transB ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda, B,
              (int)ldb, beta, C, (int)ldc);
#else
  eigenGemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

void gemm(bool transA, bool transB, Index M, Index N, Index K, double alpha, const double* A,
          Index lda, const double* B, Index ldb, double beta, double* C, Index ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (Index i = 0; i < M; ++i)
      for (Index j = 0; j < N; ++j) C[i * ldc + j] = beta == 0. ? 0. : beta * C[i * ldc + j];
    return;
  }
#ifdef KVC_COMPRESS_HAVE_OPENBLAS
  cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
              transB ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda, B,
              (int)ldb, beta, C, (int)ldc);
#else
  eigenGemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

void gramUpper(Index N, Index K, const double* A, Index lda, double* C, Index ldc) {
  if (N == 0) return;
#ifdef KVC_COMPRESS_HAVE_OPENBLAS
  if (K == 0) {
    for (Index i = 0; i < N; ++i)
      for (Index j = 0; j < N; ++j) C[i * ldc + j] = 0;
    return;
  }
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)N, (int)K, 1.0, A, (int)lda, 0.0, C,
              (int)ldc);
#else
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<const MatD, 0, Stride> a(A, K, N, Stride(lda));
  Eigen::Map<MatD, 0, Stride> c(C, N, N, Stride(ldc));
  c.setZero();
  c.template selfadjointView<Eigen::Upper>().rankUpdate(a.transpose());
#endif
}

bool choleskySolveInPlace(Eigen::MatrixXd& lowerA, MatD& B) {
  const Index n = lowerA.rows();
  if (n == 0) return true;
#ifdef KVC_COMPRESS_HAVE_OPENBLAS
  // OpenBLAS's potrf is several times faster than Eigen's LLT without -mavx2.
  const int nInt = int(n);
  int info = 0;
  dpotrf_("L", &nInt, lowerA.data(), &nInt, &info, 1);
  if (info != 0) return false;
  // Row-major view of the column-major factor is L^T (upper): solve L Y = B, then L^T X = Y.
  cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, nInt,
              int(B.cols()), 1.0, lowerA.data(), nInt, B.data(), int(B.cols()));
  cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, nInt,
              int(B.cols()), 1.0, lowerA.data(), nInt, B.data(), int(B.cols()));
  return true;
#else
  Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>, Eigen::Lower> llt(lowerA);
  if (llt.info() != Eigen::Success) return false;
  B = llt.solve(B);
  return true;
#endif
}

std::string backendDescription() {
#ifdef KVC_COMPRESS_HAVE_OPENBLAS
  const char* core = openblas_get_corename();
  std::string description = std::string("openblas ") + (core ? core : "unknown");
#if defined(__x86_64__) || defined(__i386__)
  // Kernel families older than Haswell have no AVX2/FMA GEMM kernels.
  static const char* const kPreAvx2[] = {"prescott", "core2",  "penryn", "dunnington",
                                         "nehalem",  "atom",   "sandybridge", "katmai",
                                         "northwood", "banias", "unknown"};
  std::string lower = core ? core : "unknown";
  for (char& c : lower) c = char(std::tolower((unsigned char)c));
  bool preAvx2 = false;
  for (const char* name : kPreAvx2) preAvx2 |= lower == name;
  if (preAvx2 && __builtin_cpu_supports("avx2"))
    description += __builtin_cpu_supports("avx512f")
                       ? " (generic kernels on an AVX-512 CPU: set OPENBLAS_CORETYPE=SkylakeX)"
                       : " (generic kernels on an AVX2 CPU: set OPENBLAS_CORETYPE=Haswell)";
#endif
  return description;
#else
  return "eigen";
#endif
}

ScopedSingleThreadedBlas::ScopedSingleThreadedBlas(bool enable) {
#ifdef KVC_COMPRESS_HAVE_OPENBLAS
  if (enable) {
    previous_ = openblas_get_num_threads();
    openblas_set_num_threads(1);
  }
#else
  (void)enable;
#endif
}

ScopedSingleThreadedBlas::~ScopedSingleThreadedBlas() {
#ifdef KVC_COMPRESS_HAVE_OPENBLAS
  if (previous_ > 0) openblas_set_num_threads(previous_);
#endif
}

namespace {
constexpr float kMinLogit = -60.0f;   // keeps exp() away from denormals
constexpr float kMinWeight = 1e-20f;  // exp(-46)
}  // namespace

void softmaxRows(MatF& S, VecF* lse) {
  const Index m = S.rows();
  if (lse) lse->resize(m);
  if (S.cols() == 0) {
    if (lse) lse->setConstant(-std::numeric_limits<float>::infinity());
    return;
  }
  for (Index i = 0; i < m; ++i) {
    auto row = S.row(i).array();
    const float maxLogit = row.maxCoeff();
    // Weights below e^-46 (~1e-20) are set to 0: they change no output, and their products in
    // the backward pass could become float denormals, which are slow on many CPUs.
    row = (row - maxLogit).max(kMinLogit).exp();
    const float sum = row.sum();
    row = (row > kMinWeight).select(row * (1.0f / sum), 0.0f);
    if (lse) (*lse)[i] = maxLogit + std::log(sum);
  }
}

void attention(const ConstMapF& Q, const ConstMapF& K, const ConstMapF& V, float scale,
               MatF& out, VecF* lse, MatF* weights) {
  const Index m = Q.rows(), T = K.rows(), d = Q.cols(), dv = V.cols();
  MatF local;
  MatF& P = weights ? *weights : local;
  P.resize(m, T);
  gemm(false, true, m, T, d, scale, Q.data(), d, K.data(), d, 0.f, P.data(), T);
  softmaxRows(P, lse);
  out.resize(m, dv);
  gemm(false, false, m, dv, T, 1.f, P.data(), T, V.data(), dv, 0.f, out.data(), dv);
  if (T == 0) out.setZero();
}

void checkFinite(const float* data, Index count, const char* what) {
  if (count > 0 && !Eigen::Map<const VecF>(data, count).allFinite())
    fail(KVC_COMPRESS_ERR_NONFINITE_INPUT, std::string(what) + " contain NaN or Inf");
}

}  // namespace kvc::compress
