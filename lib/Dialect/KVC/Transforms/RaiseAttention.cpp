//===- RaiseAttention.cpp - decomposed Linalg attention -> kvc.attention ----===//
//
// The match runs backwards from a P·V contraction. Elementwise Linalg producers are read as
// expression trees (`Expr`) over "leaf" tensors, so that the same code accepts one fused
// linalg.generic or a chain of named/generic elementwise ops. Every step checks semantics
// (contraction dims, reduction dim and init, max subtraction, broadcast maps); a near miss
// leaves the IR untouched.
//
//===----------------------------------------------------------------------===//

#include "kvc/Dialect/KVC/IR/KVC.h"
#include "kvc/Dialect/KVC/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>
#include <memory>

namespace mlir {
namespace kvc {
#define GEN_PASS_DEF_KVCRAISEATTENTION
#include "kvc/Dialect/KVC/Transforms/Passes.h.inc"
} // namespace kvc
} // namespace mlir

using namespace mlir;
using namespace mlir::kvc;

namespace {

//===----------------------------------------------------------------------===//
// Expression view of elementwise Linalg
//===----------------------------------------------------------------------===//

struct Expr;
using ExprPtr = std::shared_ptr<Expr>;

/// A scalar expression evaluated at every point of an iteration space of rank `rank`.
struct Expr {
  enum class Kind { Leaf, Const, Op } kind;
  Value tensor;         // Leaf: the tensor read
  AffineMap map;        // Leaf: iteration point -> tensor index
  double constant = 0;  // Const
  StringRef opName;     // Op: e.g. "arith.mulf", "math.exp"
  SmallVector<ExprPtr> operands;
  // Op inlined from an elementwise producer: the tensor it computes and the map it is read
  // through (the innermost producer when several forward the same value), so that a
  // sub-expression can be used as a tensor again (e.g. a mask computed by a select).
  Value origin;
  AffineMap originMap;
};

bool isAllParallel(linalg::LinalgOp op) {
  return llvm::all_of(op.getIteratorTypesArray(), [](utils::IteratorType t) { return t == utils::IteratorType::parallel; });
}

/// Elementwise op with one result written through the identity map: safe to inline.
bool isInlinableElementwise(linalg::LinalgOp op, int64_t rank) {
  if (op.getNumDpsInits() != 1 || op->getNumResults() != 1 || op.getNumLoops() != rank ||
      !isAllParallel(op) || !op.hasPureTensorSemantics())
    return false;
  if (!op.getMatchingIndexingMap(op.getDpsInitOperand(0)).isIdentity())
    return false;
  for (Operation &inner : op.getBlock()->without_terminator()) {
    if (inner.getNumResults() != 1 || !isPure(&inner) || isa<linalg::IndexOp>(inner) ||
        inner.getNumRegions() != 0)
      return false;
    if (!isa<arith::ArithDialect, math::MathDialect>(inner.getDialect()))
      return false;
  }
  return true;
}

std::optional<double> getSplatFloat(Value v) {
  Attribute attr;
  if (!matchPattern(v, m_Constant(&attr)))
    return std::nullopt;
  if (auto f = dyn_cast<FloatAttr>(attr))
    return f.getValueAsDouble();
  if (auto dense = dyn_cast<DenseFPElementsAttr>(attr))
    if (dense.isSplat())
      return dense.getSplatValue<APFloat>().convertToDouble();
  return std::nullopt;
}

ExprPtr buildExpr(Value tensor, AffineMap map, int depth = 0);

ExprPtr buildBodyExpr(Value scalar, linalg::LinalgOp op, AffineMap map, int depth) {
  if (auto c = getSplatFloat(scalar)) {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::Const;
    e->constant = *c;
    return e;
  }
  if (auto arg = dyn_cast<BlockArgument>(scalar)) {
    if (arg.getOwner() != op.getBlock())
      return nullptr; // captured from outside: not modelled
    OpOperand *operand = op.getMatchingOpOperand(arg);
    AffineMap opMap = op.getMatchingIndexingMap(operand);
    return buildExpr(operand->get(), opMap.compose(map), depth + 1);
  }
  Operation *def = scalar.getDefiningOp();
  if (!def || def->getBlock() != op.getBlock())
    return nullptr;
  auto e = std::make_shared<Expr>();
  e->kind = Expr::Kind::Op;
  e->opName = def->getName().getStringRef();
  for (Value operand : def->getOperands()) {
    ExprPtr sub = buildBodyExpr(operand, op, map, depth);
    if (!sub)
      return nullptr;
    e->operands.push_back(sub);
  }
  return e;
}

/// Expression for `tensor` read at `map(point)`, inlining elementwise producers.
ExprPtr buildExpr(Value tensor, AffineMap map, int depth) {
  if (auto c = getSplatFloat(tensor)) {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::Const;
    e->constant = *c;
    return e;
  }
  auto leaf = [&] {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::Leaf;
    e->tensor = tensor;
    e->map = map;
    return e;
  };
  auto producer = tensor.getDefiningOp<linalg::LinalgOp>();
  auto tensorType = dyn_cast<RankedTensorType>(tensor.getType());
  if (depth > 16 || !producer || !tensorType ||
      !isInlinableElementwise(producer, tensorType.getRank()))
    return leaf();
  auto yield = cast<linalg::YieldOp>(producer.getBlock()->getTerminator());
  ExprPtr inlined = buildBodyExpr(yield.getOperand(0), producer, map, depth);
  if (!inlined)
    return leaf();
  if (inlined->kind == Expr::Kind::Op && !inlined->origin) {
    inlined->origin = tensor;
    inlined->originMap = map;
  }
  return inlined;
}

bool isOp(const ExprPtr &e, StringRef name, unsigned arity) {
  return e && e->kind == Expr::Kind::Op && e->opName == name && e->operands.size() == arity;
}

bool sameExpr(const ExprPtr &a, const ExprPtr &b) {
  if (!a || !b || a->kind != b->kind)
    return false;
  switch (a->kind) {
  case Expr::Kind::Leaf:
    return a->tensor == b->tensor && a->map == b->map;
  case Expr::Kind::Const:
    return a->constant == b->constant;
  case Expr::Kind::Op:
    if (a->opName != b->opName || a->operands.size() != b->operands.size())
      return false;
    for (auto [x, y] : llvm::zip(a->operands, b->operands))
      if (!sameExpr(x, y))
        return false;
    return true;
  }
  return false;
}

/// Whether some leaf of `e` satisfies `pred`.
bool anyLeaf(const ExprPtr &e, llvm::function_ref<bool(const ExprPtr &)> pred) {
  if (!e)
    return false;
  if (e->kind == Expr::Kind::Leaf)
    return pred(e);
  for (const ExprPtr &o : e->operands)
    if (anyLeaf(o, pred))
      return true;
  return false;
}

//===----------------------------------------------------------------------===//
// Contractions and reductions
//===----------------------------------------------------------------------===//

/// A batched matmul `out[batch.., m, n] = sum_k lhs[..] * rhs[..]` with one m, n and k dim.
struct Contraction {
  linalg::LinalgOp op;
  Value lhs, rhs;
  bool lhsTransposed = false; // lhs stored as [batch.., k, m]
  bool rhsTransposed = false; // rhs stored as [batch.., n, k] (i.e. already "Kᵀ-free")
  int64_t numBatch = 0;
};

std::optional<Contraction> matchContraction(Value result) {
  auto op = result.getDefiningOp<linalg::LinalgOp>();
  if (!op || op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1 ||
      !op.hasPureTensorSemantics() || !linalg::isaContractionOpInterface(op))
    return std::nullopt;
  FailureOr<linalg::ContractionDimensions> dims = linalg::inferContractionDims(op);
  if (failed(dims) || dims->m.size() != 1 || dims->n.size() != 1 || dims->k.size() != 1)
    return std::nullopt;
  // The init must be zero: attention's products start from nothing.
  Value init = op.getDpsInitOperand(0)->get();
  if (auto fill = init.getDefiningOp<linalg::FillOp>()) {
    auto v = getSplatFloat(fill.getInputs()[0]);
    if (!v || *v != 0.0)
      return std::nullopt;
  } else if (auto v = getSplatFloat(init); !v || *v != 0.0) {
    return std::nullopt;
  }
  // Body: a multiply-add on the result's element type, or (f16/bf16 operands accumulated in a
  // wider float, as the ONNX importer writes MatMul) on operands extended to it.
  Type elem = getElementTypeOrSelf(result.getType());
  for (OpOperand *in : op.getDpsInputOperands()) {
    Type inElem = getElementTypeOrSelf(in->get().getType());
    if (inElem == elem)
      continue;
    auto fi = dyn_cast<FloatType>(inElem), fo = dyn_cast<FloatType>(elem);
    if (!fi || !fo || fi.getWidth() >= fo.getWidth())
      return std::nullopt;
    Value arg = op.getMatchingBlockArgument(in);
    if (!arg.hasOneUse() || !isa<arith::ExtFOp>(*arg.getUsers().begin()))
      return std::nullopt;
  }

  unsigned m = dims->m[0], n = dims->n[0], k = dims->k[0];
  SmallVector<unsigned> batch(dims->batch.begin(), dims->batch.end());
  auto dimsOf = [&](AffineMap map) -> std::optional<SmallVector<unsigned>> {
    SmallVector<unsigned> out;
    for (AffineExpr e : map.getResults()) {
      auto d = dyn_cast<AffineDimExpr>(e);
      if (!d)
        return std::nullopt;
      out.push_back(d.getPosition());
    }
    return out;
  };
  auto lhsDims = dimsOf(op.getMatchingIndexingMap(op.getDpsInputOperand(0)));
  auto rhsDims = dimsOf(op.getMatchingIndexingMap(op.getDpsInputOperand(1)));
  auto outDims = dimsOf(op.getMatchingIndexingMap(op.getDpsInitOperand(0)));
  if (!lhsDims || !rhsDims || !outDims)
    return std::nullopt;
  auto withBatch = [&](unsigned a, unsigned b) {
    SmallVector<unsigned> v(batch);
    v.push_back(a);
    v.push_back(b);
    return v;
  };
  Contraction c;
  c.op = op;
  c.numBatch = batch.size();
  c.lhs = op.getDpsInputOperand(0)->get();
  c.rhs = op.getDpsInputOperand(1)->get();
  if (*outDims != withBatch(m, n))
    return std::nullopt;
  if (*lhsDims == withBatch(m, k))
    c.lhsTransposed = false;
  else if (*lhsDims == withBatch(k, m))
    c.lhsTransposed = true;
  else
    return std::nullopt;
  if (*rhsDims == withBatch(k, n))
    c.rhsTransposed = false;
  else if (*rhsDims == withBatch(n, k))
    c.rhsTransposed = true;
  else
    return std::nullopt;
  return c;
}

/// `v` = CastOp(x) elementwise (identity maps, one input): returns x, else null. The importer
/// rounds f32 accumulations back to f16/bf16 with truncf; torch's f16 SDPA upcasts V and the
/// scores to f32 with extf.
template <typename CastOp>
Value peelCast(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  auto op = v.getDefiningOp<linalg::GenericOp>();
  if (!t || !op || op.getNumDpsInputs() != 1 || op.getNumDpsInits() != 1 ||
      op.getNumLoops() != t.getRank() || !isAllParallel(op) ||
      !llvm::all_of(op.getIndexingMapsArray(), [](AffineMap m) { return m.isIdentity(); }))
    return {};
  auto yield = cast<linalg::YieldOp>(op.getBody()->getTerminator());
  auto c = yield.getOperand(0).getDefiningOp<CastOp>();
  if (!c || c->getBlock() != op.getBody() || c.getIn() != op.getBody()->getArgument(0))
    return {};
  return op.getDpsInputOperand(0)->get();
}
Value peelTruncF(Value v) { return peelCast<arith::TruncFOp>(v); }
Value peelExtF(Value v) { return peelCast<arith::ExtFOp>(v); }

enum class ReduceKind { Max, Sum };

/// `result` = reduction over the last dim of a rank-r input (kept as size 1 or dropped).
/// Returns the input expression (identity map over the r loops).
ExprPtr matchRowReduction(Value result, ReduceKind kind, int64_t rank) {
  auto op = result.getDefiningOp<linalg::LinalgOp>();
  if (!op || op.getNumDpsInputs() != 1 || op.getNumDpsInits() != 1 ||
      op.getNumLoops() != rank || !op.hasPureTensorSemantics())
    return nullptr;
  auto iters = op.getIteratorTypesArray();
  for (int64_t i = 0; i < rank; ++i)
    if ((i == rank - 1) != (iters[i] == utils::IteratorType::reduction))
      return nullptr;
  OpOperand *in = op.getDpsInputOperand(0);
  if (!op.getMatchingIndexingMap(in).isIdentity())
    return nullptr;
  AffineMap outMap = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  MLIRContext *ctx = op.getContext();
  SmallVector<AffineExpr> dropLast, keepZero;
  for (int64_t i = 0; i + 1 < rank; ++i) {
    dropLast.push_back(getAffineDimExpr(i, ctx));
    keepZero.push_back(getAffineDimExpr(i, ctx));
  }
  keepZero.push_back(getAffineConstantExpr(0, ctx));
  if (outMap != AffineMap::get(rank, 0, dropLast, ctx) &&
      outMap != AffineMap::get(rank, 0, keepZero, ctx))
    return nullptr;
  // Body: yield combine(in, acc).
  Block *body = op.getBlock();
  auto yield = cast<linalg::YieldOp>(body->getTerminator());
  Operation *combine = yield.getOperand(0).getDefiningOp();
  if (!combine || combine->getNumOperands() != 2 || std::next(body->begin()) != yield->getIterator())
    return nullptr;
  bool isMax = isa<arith::MaximumFOp, arith::MaxNumFOp>(combine);
  bool isSum = isa<arith::AddFOp>(combine);
  if ((kind == ReduceKind::Max && !isMax) || (kind == ReduceKind::Sum && !isSum))
    return nullptr;
  Value a = combine->getOperand(0), b = combine->getOperand(1);
  Value inArg = body->getArgument(0), accArg = body->getArgument(1);
  if (!((a == inArg && b == accArg) || (a == accArg && b == inArg)))
    return nullptr;
  // Init: 0 for a sum; -inf (or the lowest finite value) for a max.
  Value init = op.getDpsInitOperand(0)->get();
  std::optional<double> initValue;
  if (auto fill = init.getDefiningOp<linalg::FillOp>())
    initValue = getSplatFloat(fill.getInputs()[0]);
  else
    initValue = getSplatFloat(init);
  if (!initValue)
    return nullptr;
  if (kind == ReduceKind::Sum && *initValue != 0.0)
    return nullptr;
  if (kind == ReduceKind::Max && !(*initValue <= -3.0e38))
    return nullptr;
  return buildExpr(in->get(), AffineMap::getMultiDimIdentityMap(rank, ctx));
}

/// Map of a row statistic (rank r-1 tensor, or rank r with a size-1 last dim) read from a
/// rank-r elementwise iteration space.
bool isRowBroadcastMap(AffineMap map, int64_t rank) {
  if (map.getNumDims() != rank)
    return false;
  unsigned n = map.getNumResults();
  if (n != rank - 1 && n != rank)
    return false;
  for (int64_t i = 0; i + 1 < rank; ++i)
    if (map.getResult(i) != getAffineDimExpr(i, map.getContext()))
      return false;
  if (n == rank) {
    auto c = dyn_cast<AffineConstantExpr>(map.getResult(rank - 1));
    if (!c || c.getValue() != 0)
      return false;
  }
  return true;
}

/// The tensor an input block argument of `op` reads through the identity map, or null.
Value identityInputOf(linalg::LinalgOp op, Value scalar) {
  auto arg = dyn_cast<BlockArgument>(scalar);
  if (!arg || arg.getOwner() != op.getBlock() || arg.getArgNumber() >= op.getNumDpsInputs())
    return {};
  OpOperand *operand = op.getMatchingOpOperand(arg);
  if (!op.getMatchingIndexingMap(operand).isIdentity())
    return {};
  return operand->get();
}

/// `cond` (a scalar in `op`'s body) is `x != x` (cmpf uno x, x), x read from `tensor`: either
/// computed in the body or read from an elementwise producer that computes it.
bool isNaNTestOf(linalg::LinalgOp op, Value cond, Value tensor, int64_t rank) {
  auto isUnoOf = [&](linalg::LinalgOp o, Value c) {
    auto cmp = c.getDefiningOp<arith::CmpFOp>();
    return cmp && cmp->getBlock() == o.getBlock() &&
           cmp.getPredicate() == arith::CmpFPredicate::UNO &&
           identityInputOf(o, cmp.getLhs()) == tensor && identityInputOf(o, cmp.getRhs()) == tensor;
  };
  if (isUnoOf(op, cond))
    return true;
  Value condTensor = identityInputOf(op, cond);
  auto producer = condTensor ? condTensor.getDefiningOp<linalg::LinalgOp>() : nullptr;
  if (!producer || !isInlinableElementwise(producer, rank))
    return false;
  auto yield = cast<linalg::YieldOp>(producer.getBlock()->getTerminator());
  return isUnoOf(producer, yield.getOperand(0));
}

/// torch's exported scaled_dot_product_attention guards the probabilities of fully-masked rows
/// (softmax of all -inf = NaN): `p' = where(isnan(p), 0, p)`. kvc.attention defines such rows
/// as 0, so the guard is dropped. Returns p, or null when `v` is not such a guard.
Value peelNaNGuard(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  auto op = v.getDefiningOp<linalg::LinalgOp>();
  if (!t || !op || !isInlinableElementwise(op, t.getRank()))
    return {};
  auto yield = cast<linalg::YieldOp>(op.getBlock()->getTerminator());
  auto sel = yield.getOperand(0).getDefiningOp<arith::SelectOp>();
  if (!sel || sel->getBlock() != op.getBlock())
    return {};
  std::optional<double> zero = getSplatFloat(sel.getTrueValue());
  Value p = identityInputOf(op, sel.getFalseValue());
  if (!zero || *zero != 0.0 || !p || p.getType() != t ||
      !isNaNTestOf(op, sel.getCondition(), p, t.getRank()))
    return {};
  return p;
}

//===----------------------------------------------------------------------===//
// Operand sources: transposes, pre-scaling, GQA head repetition
//===----------------------------------------------------------------------===//

/// `v` seen as `c * x` (or `x / c`) elementwise, with a scalar constant c; `x` may be read
/// through a swap of its last two dims (e.g. the scale applied to an explicit Kᵀ).
struct ScaledOperand {
  Value base;          // x (v itself when nothing was peeled)
  double factor = 1.0; // c
  bool swapped = false; // v = c * transpose_last_two(x)
};

ScaledOperand peelConstantScale(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t)
    return {v};
  int64_t rank = t.getRank();
  MLIRContext *ctx = v.getContext();
  ExprPtr e = buildExpr(v, AffineMap::getMultiDimIdentityMap(rank, ctx));
  SmallVector<unsigned> swap = llvm::to_vector(llvm::seq<unsigned>(0, rank));
  if (rank >= 2)
    std::swap(swap[rank - 2], swap[rank - 1]);
  AffineMap swapMap = AffineMap::getPermutationMap(swap, ctx);
  // Returns whether `x` is a plain read of a tensor, directly or through the last-two swap.
  auto leafRead = [&](const ExprPtr &x, bool &swapped) {
    if (x->kind != Expr::Kind::Leaf)
      return false;
    if (x->map.isIdentity() && x->tensor.getType() == t) {
      swapped = false;
      return true;
    }
    if (rank >= 2 && x->map == swapMap) {
      swapped = true;
      return true;
    }
    return false;
  };
  bool swapped = false;
  if (isOp(e, "arith.mulf", 2)) {
    auto &a = e->operands[0], &b = e->operands[1];
    if (b->kind == Expr::Kind::Const && leafRead(a, swapped))
      return {a->tensor, b->constant, swapped};
    if (a->kind == Expr::Kind::Const && leafRead(b, swapped))
      return {b->tensor, a->constant, swapped};
  }
  if (isOp(e, "arith.divf", 2) && e->operands[1]->kind == Expr::Kind::Const &&
      e->operands[1]->constant != 0.0 && leafRead(e->operands[0], swapped))
    return {e->operands[0]->tensor, 1.0 / e->operands[1]->constant, swapped};
  return {v};
}

/// If `v` = transpose of the last two dims of some x (linalg.transpose), returns x.
Value peelLastTwoTranspose(Value v) {
  auto tr = v.getDefiningOp<linalg::TransposeOp>();
  if (!tr)
    return {};
  ArrayRef<int64_t> perm = tr.getPermutation();
  int64_t r = perm.size();
  if (r < 2)
    return {};
  for (int64_t i = 0; i < r - 2; ++i)
    if (perm[i] != i)
      return {};
  if (perm[r - 2] != r - 1 || perm[r - 1] != r - 2)
    return {};
  return tr.getInput();
}

/// GQA: `v` = collapse_shape(broadcast(x)) where the broadcast inserts a group dim right after
/// the head dim of a rank-4 [B, Hkv, S, D] tensor and the collapse merges [Hkv, G].
/// Returns (x, G) or (null, 0).
std::pair<Value, int64_t> peelHeadRepeat(Value v) {
  auto collapse = v.getDefiningOp<tensor::CollapseShapeOp>();
  if (!collapse || collapse.getResultType().getRank() != 4 ||
      collapse.getSrcType().getRank() != 5)
    return {};
  auto reassoc = collapse.getReassociationIndices();
  if (reassoc.size() != 4 || reassoc[0] != ReassociationIndices{0} ||
      reassoc[1] != ReassociationIndices{1, 2} || reassoc[2] != ReassociationIndices{3} ||
      reassoc[3] != ReassociationIndices{4})
    return {};
  Value src = collapse.getSrc();
  int64_t group = collapse.getSrcType().getDimSize(2);
  if (ShapedType::isDynamic(group))
    return {};
  if (auto bc = src.getDefiningOp<linalg::BroadcastOp>()) {
    if (bc.getDimensions() != ArrayRef<int64_t>{2})
      return {};
    return {bc.getInput(), group};
  }
  // A linalg.generic that only copies its input through a map that skips the group dim.
  auto op = src.getDefiningOp<linalg::GenericOp>();
  if (!op || op.getNumDpsInputs() != 1 || op.getNumDpsInits() != 1 || !isAllParallel(op) ||
      op.getNumLoops() != 5)
    return {};
  auto yield = cast<linalg::YieldOp>(op.getBody()->getTerminator());
  if (yield.getOperand(0) != op.getBody()->getArgument(0))
    return {};
  MLIRContext *ctx = op.getContext();
  AffineMap expected = AffineMap::get(5, 0,
                                      {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx),
                                       getAffineDimExpr(3, ctx), getAffineDimExpr(4, ctx)},
                                      ctx);
  if (op.getIndexingMapsArray()[0] != expected || !op.getIndexingMapsArray()[1].isIdentity())
    return {};
  return {op.getDpsInputOperand(0)->get(), group};
}

//===----------------------------------------------------------------------===//
// The pattern
//===----------------------------------------------------------------------===//

struct RaiseAttentionPattern : RewritePattern {
  RaiseAttentionPattern(MLIRContext *ctx)
      : RewritePattern(MatchAnyOpTypeTag(), /*benefit=*/1, ctx) {}

  LogicalResult matchAndRewrite(Operation *rootOp, PatternRewriter &rewriter) const override {
    auto root = dyn_cast<linalg::LinalgOp>(rootOp);
    if (!root || rootOp->getNumResults() != 1)
      return failure();
    Value out = rootOp->getResult(0);
    auto outType = dyn_cast<RankedTensorType>(out.getType());
    if (!outType || outType.getRank() < 2 || outType.getRank() > 4)
      return failure();
    int64_t rank = outType.getRank();
    MLIRContext *ctx = rewriter.getContext();

    // P·V (for f16/bf16: truncf(P·V accumulated in f32), with f16/bf16 P and V)
    Value pvValue = out;
    if (Value wide = peelTruncF(out))
      pvValue = wide;
    auto pv = matchContraction(pvValue);
    if (!pv || pv->lhsTransposed)
      return failure();
    if (getElementTypeOrSelf(pv->lhs.getType()) != outType.getElementType() ||
        getElementTypeOrSelf(pv->rhs.getType()) != outType.getElementType())
      return rewriter.notifyMatchFailure(rootOp, "P·V operands are not of the result's type");
    Value probs = pv->lhs;
    if (Value guarded = peelNaNGuard(probs))
      probs = guarded;
    auto probsType = cast<RankedTensorType>(probs.getType());
    if (probsType.getRank() != rank)
      return failure();

    // softmax(X) over the last dim.
    ExprPtr scoresExpr; // X, over the identity iteration space of rank `rank`
    AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
    if (auto sm = probs.getDefiningOp<linalg::SoftmaxOp>()) {
      if (int64_t(sm.getDimension()) != rank - 1)
        return rewriter.notifyMatchFailure(rootOp, "softmax over a dimension other than the last");
      scoresExpr = buildExpr(sm.getInput(), id);
    } else {
      ExprPtr p = buildExpr(probs, id);
      // p = e / sum(e), e = exp(x - max(x))
      if (!isOp(p, "arith.divf", 2))
        return failure();
      ExprPtr numer = p->operands[0], denom = p->operands[1];
      // f16/bf16: the sum is accumulated in f32 over extf(e) and rounded back.
      if (isOp(denom, "arith.truncf", 1))
        denom = denom->operands[0];
      if (denom->kind != Expr::Kind::Leaf || !isRowBroadcastMap(denom->map, rank))
        return failure();
      ExprPtr sumInput = matchRowReduction(denom->tensor, ReduceKind::Sum, rank);
      if (sumInput && isOp(sumInput, "arith.extf", 1) && isOp(p->operands[1], "arith.truncf", 1))
        sumInput = sumInput->operands[0];
      if (!sumInput || !sameExpr(sumInput, numer))
        return failure();
      if (!isOp(numer, "math.exp", 1) || !isOp(numer->operands[0], "arith.subf", 2))
        return rewriter.notifyMatchFailure(rootOp, "softmax without exp(x - max)");
      ExprPtr x = numer->operands[0]->operands[0], mx = numer->operands[0]->operands[1];
      if (mx->kind != Expr::Kind::Leaf || !isRowBroadcastMap(mx->map, rank))
        return failure();
      ExprPtr maxInput = matchRowReduction(mx->tensor, ReduceKind::Max, rank);
      if (!maxInput || !sameExpr(maxInput, x))
        return rewriter.notifyMatchFailure(rootOp, "max is not over the softmax input rows");
      scoresExpr = x;
    }

    auto isContractionLeaf = [&](const ExprPtr &e) {
      return matchContraction(e->tensor).has_value();
    };
    // A mask is a tensor read (a leaf), or an elementwise computation that does not involve
    // the scores (e.g. `where(bool_mask, 0, -inf)`), read through the tensor it computes.
    auto isMaskLeaf = [&](const ExprPtr &e) {
      if (e->kind == Expr::Kind::Leaf)
        return !isContractionLeaf(e);
      return e->kind == Expr::Kind::Op && e->origin && !anyLeaf(e, isContractionLeaf);
    };
    auto asLeaf = [](const ExprPtr &e) {
      if (e->kind == Expr::Kind::Leaf)
        return e;
      auto l = std::make_shared<Expr>();
      l->kind = Expr::Kind::Leaf;
      l->tensor = e->origin;
      l->map = e->originMap;
      return l;
    };

    // X = select(cond, X', fill) or select(cond, fill, X') with a large negative fill
    // (Where(mask, s, -1e9), masked_fill(~mask, -inf)): the additive mask
    // select(cond, 0, fill) (resp. select(cond, fill, 0)) on X'.
    ExprPtr selectCond;
    double selectFill = 0.0;
    bool keepWhenTrue = true;
    if (isOp(scoresExpr, "arith.select", 3)) {
      ExprPtr c = scoresExpr->operands[0], t = scoresExpr->operands[1], f = scoresExpr->operands[2];
      auto isFill = [](const ExprPtr &e) {
        return e->kind == Expr::Kind::Const && e->constant <= -1.0e4;
      };
      if (isFill(f) && !isFill(t)) {
        selectFill = f->constant;
        scoresExpr = t;
      } else if (isFill(t) && !isFill(f)) {
        selectFill = t->constant;
        keepWhenTrue = false;
        scoresExpr = f;
      } else {
        return rewriter.notifyMatchFailure(rootOp, "select on the scores without a large negative fill");
      }
      if (!isMaskLeaf(c))
        return rewriter.notifyMatchFailure(rootOp, "select condition reads the scores");
      selectCond = asLeaf(c);
      if (!getElementTypeOrSelf(selectCond->tensor.getType()).isInteger(1))
        return failure();
    }

    // X = S*c [+ mask]   (also c*S, S/c, S)
    ExprPtr maskExpr;
    ExprPtr scaled = scoresExpr;
    auto isScoresLeaf = [&](const ExprPtr &e) {
      return e->kind == Expr::Kind::Leaf && e->map.isIdentity() &&
             matchContraction(e->tensor).has_value();
    };
    if (isOp(scoresExpr, "arith.addf", 2)) {
      ExprPtr a = scoresExpr->operands[0], b = scoresExpr->operands[1];
      if (selectCond)
        return rewriter.notifyMatchFailure(rootOp, "both a select mask and an additive mask");
      if (isMaskLeaf(b) && !isMaskLeaf(a)) {
        scaled = a;
        maskExpr = asLeaf(b);
      } else if (isMaskLeaf(a) && !isMaskLeaf(b)) {
        scaled = b;
        maskExpr = asLeaf(a);
      } else {
        return failure();
      }
    }
    double scale = 1.0;
    ExprPtr scoresLeaf;
    // Q·Kᵀ, possibly accumulated in f32 and rounded to f16/bf16 (truncf).
    // Or upcast again (extf(truncf(.)): f16 scores cast to f32 for the softmax).
    auto scoresOf = [&](const ExprPtr &e) -> ExprPtr {
      ExprPtr x = e;
      if (isOp(x, "arith.extf", 1) && isOp(x->operands[0], "arith.truncf", 1))
        x = x->operands[0];
      if (isOp(x, "arith.truncf", 1))
        x = x->operands[0];
      return isScoresLeaf(x) ? x : nullptr;
    };
    if (ExprPtr sl = scoresOf(scaled)) {
      scoresLeaf = sl;
    } else if (isOp(scaled, "arith.mulf", 2)) {
      ExprPtr a = scaled->operands[0], b = scaled->operands[1];
      if (scoresOf(a) && b->kind == Expr::Kind::Const) {
        scoresLeaf = scoresOf(a);
        scale = b->constant;
      } else if (scoresOf(b) && a->kind == Expr::Kind::Const) {
        scoresLeaf = scoresOf(b);
        scale = a->constant;
      }
    } else if (isOp(scaled, "arith.divf", 2) && scoresOf(scaled->operands[0]) &&
               scaled->operands[1]->kind == Expr::Kind::Const &&
               scaled->operands[1]->constant != 0.0) {
      scoresLeaf = scoresOf(scaled->operands[0]);
      scale = 1.0 / scaled->operands[1]->constant;
    }
    if (!scoresLeaf)
      return rewriter.notifyMatchFailure(rootOp, "scores are not Q·Kᵀ scaled by a constant");

    // Q·Kᵀ
    auto qk = matchContraction(scoresLeaf->tensor);
    if (!qk || qk->numBatch != pv->numBatch)
      return failure();
    // Q/K of the result's type, or narrower floats (f16 scores upcast for an f32 softmax:
    // extended to the result's type below).
    auto narrowerOrSame = [&](Value x) {
      auto fx = dyn_cast<FloatType>(getElementTypeOrSelf(x.getType()));
      auto fo = cast<FloatType>(outType.getElementType());
      return fx && (fx == fo || fx.getWidth() < fo.getWidth());
    };
    if (!narrowerOrSame(qk->lhs) || !narrowerOrSame(qk->rhs))
      return rewriter.notifyMatchFailure(rootOp, "Q/K are not of the result's type");
    // Constant factors applied to Q or K before the product fold into the scale (elementwise, so
    // they commute with the transposes below).
    ScaledOperand qs = peelConstantScale(qk->lhs), ks = peelConstantScale(qk->rhs);
    scale *= qs.factor * ks.factor;
    // A peeled swap flips whether the operand still needs transposing.
    bool qTransposed = qk->lhsTransposed != qs.swapped;
    bool kNeedsTranspose = !qk->rhsTransposed != ks.swapped;
    if (!(scale > 0.0) || !std::isfinite(scale))
      return rewriter.notifyMatchFailure(rootOp, "scale is not positive and finite");
    if (maskExpr && !isa<FloatType>(getElementTypeOrSelf(maskExpr->tensor.getType())))
      return rewriter.notifyMatchFailure(rootOp, "mask is not a float tensor");

    // Everything below builds IR and cannot fail: the two contractions and the elementwise
    // chain between them already guarantee consistent shapes.
    Location loc = rootOp->getLoc();
    rewriter.setInsertionPoint(rootOp);

    auto transposeLastTwo = [&](Value x) -> Value {
      if (Value peeled = peelLastTwoTranspose(x))
        return peeled;
      auto t = cast<RankedTensorType>(x.getType());
      SmallVector<int64_t> perm = llvm::to_vector(llvm::seq<int64_t>(0, t.getRank()));
      std::swap(perm[t.getRank() - 2], perm[t.getRank() - 1]);
      // x = transpose(z, p) with another permutation (e.g. Kᵀ written as Transpose(K, [0,2,3,1])
      // of a (B, S, H, D) K): one transpose of z by the composed permutation p∘swap.
      if (auto tr = x.getDefiningOp<linalg::TransposeOp>()) {
        ArrayRef<int64_t> p = tr.getPermutation();
        SmallVector<int64_t> composed;
        for (int64_t i : perm)
          composed.push_back(p[i]);
        x = tr.getInput();
        perm = composed;
        if (llvm::equal(perm, llvm::seq<int64_t>(0, t.getRank())))
          return x;
      }
      SmallVector<OpFoldResult> inSizes = tensor::getMixedSizes(rewriter, loc, x);
      SmallVector<OpFoldResult> sizes;
      for (int64_t i : perm)
        sizes.push_back(inSizes[i]);
      Value init = tensor::EmptyOp::create(rewriter, loc, sizes, t.getElementType());
      return linalg::TransposeOp::create(rewriter, loc, x, init, perm).getResult()[0];
    };

    // Q [.., Sq, D]; K [.., Skv, D]; V [.., Skv, Dv]
    Value q = qTransposed ? transposeLastTwo(qs.base) : qs.base;
    // rhs of Q·Kᵀ is Kᵀ [.., D, Skv] unless the map already reads it transposed.
    Value k = kNeedsTranspose ? transposeLastTwo(ks.base) : ks.base;
    Value v = pv->rhsTransposed ? transposeLastTwo(pv->rhs) : pv->rhs;

    // Bring everything to rank 4 by prepending unit dims.
    auto toRank4 = [&](Value x) -> Value {
      auto t = cast<RankedTensorType>(x.getType());
      int64_t pad = 4 - t.getRank();
      if (pad == 0)
        return x;
      SmallVector<int64_t> shape(pad, 1);
      llvm::append_range(shape, t.getShape());
      SmallVector<ReassociationIndices> reassoc;
      for (int64_t i = 0; i < t.getRank(); ++i) {
        ReassociationIndices group;
        if (i == 0)
          for (int64_t j = 0; j < pad; ++j)
            group.push_back(j);
        group.push_back(pad + i);
        reassoc.push_back(group);
      }
      auto type = RankedTensorType::get(shape, t.getElementType());
      return tensor::ExpandShapeOp::create(rewriter, loc, type, x, reassoc);
    };
    q = toRank4(q);
    k = toRank4(k);
    v = toRank4(v);

    // A V upcast from f16 (torch's f16 SDPA): look through the cast, extend again below.
    if (Value narrow = peelExtF(v))
      if (narrowerOrSame(narrow))
        v = narrow;

    // GQA: use the unrepeated K/V when both were repeated by the same group size.
    auto [kSrc, kGroup] = peelHeadRepeat(k);
    auto [vSrc, vGroup] = peelHeadRepeat(v);
    if (kSrc && vSrc && kGroup == vGroup) {
      k = kSrc;
      v = vSrc;
    }

    // Operands narrower than the result are extended to it (the attention then runs in the
    // result's type, as the graph's softmax and P·V did).
    auto extendToResult = [&](Value x) -> Value {
      auto t = cast<RankedTensorType>(x.getType());
      Type elem = outType.getElementType();
      if (t.getElementType() == elem)
        return x;
      SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, x);
      Value init = tensor::EmptyOp::create(rewriter, loc, sizes, elem);
      AffineMap idr = AffineMap::getMultiDimIdentityMap(t.getRank(), ctx);
      return linalg::GenericOp::create(
                 rewriter, loc, init.getType(), ValueRange{x}, ValueRange{init},
                 SmallVector<AffineMap>{idr, idr},
                 SmallVector<utils::IteratorType>(t.getRank(), utils::IteratorType::parallel),
                 [&](OpBuilder &b, Location l, ValueRange args) {
                   linalg::YieldOp::create(b, l,
                                           Value(arith::ExtFOp::create(b, l, elem, args[0])));
                 })
          .getResult(0);
    };
    q = extendToResult(q);
    k = extendToResult(k);
    v = extendToResult(v);

    Value mask;
    if (maskExpr) {
      auto mT = cast<RankedTensorType>(maskExpr->tensor.getType());
      AffineMap mm = maskExpr->map;
      // Right-aligned numpy broadcasting: result i reads loop dim (rank - n + i), or 0 for a
      // size-1 dim. Such a mask broadcasts to the rank-4 scores as it is.
      bool numpyBroadcast = mm.getNumResults() == unsigned(mT.getRank());
      for (unsigned i = 0; numpyBroadcast && i < mm.getNumResults(); ++i) {
        AffineExpr e = mm.getResult(i);
        int64_t loopDim = rank - mm.getNumResults() + i;
        if (e == getAffineDimExpr(loopDim, ctx))
          continue;
        auto c = dyn_cast<AffineConstantExpr>(e);
        numpyBroadcast = c && c.getValue() == 0 && mT.getDimSize(i) == 1;
      }
      if (numpyBroadcast) {
        mask = maskExpr->tensor;
      } else {
        // Materialise the broadcast through the original map.
        SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, scoresLeaf->tensor);
        Value init = tensor::EmptyOp::create(rewriter, loc, sizes, mT.getElementType());
        mask = linalg::GenericOp::create(
                   rewriter, loc, init.getType(), ValueRange{maskExpr->tensor}, ValueRange{init},
                   SmallVector<AffineMap>{mm, id},
                   SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
                   [](OpBuilder &b, Location l, ValueRange args) {
                     linalg::YieldOp::create(b, l, ValueRange{args[0]});
                   })
                   .getResult(0);
      }
    }

    if (selectCond) {
      // The select as an additive mask over the scores' iteration space.
      SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(rewriter, loc, scoresLeaf->tensor);
      Type elem = outType.getElementType();
      Value init = tensor::EmptyOp::create(rewriter, loc, sizes, elem);
      double fill = selectFill;
      bool keep = keepWhenTrue;
      mask = linalg::GenericOp::create(
                 rewriter, loc, init.getType(), ValueRange{selectCond->tensor}, ValueRange{init},
                 SmallVector<AffineMap>{selectCond->map, id},
                 SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
                 [&](OpBuilder &b, Location l, ValueRange args) {
                   auto ft = cast<FloatType>(elem);
                   Value zero = arith::ConstantOp::create(b, l, b.getFloatAttr(ft, 0.0));
                   Value neg = arith::ConstantOp::create(b, l, b.getFloatAttr(ft, fill));
                   Value r = keep ? arith::SelectOp::create(b, l, args[0], zero, neg)
                                  : arith::SelectOp::create(b, l, args[0], neg, zero);
                   linalg::YieldOp::create(b, l, r);
                 })
                 .getResult(0);
    }

    auto qT = cast<RankedTensorType>(q.getType());
    auto vT = cast<RankedTensorType>(v.getType());
    SmallVector<int64_t> resShape{qT.getDimSize(0), qT.getDimSize(1), qT.getDimSize(2),
                                  vT.getDimSize(3)};
    auto resType = RankedTensorType::get(resShape, outType.getElementType());
    auto attn = AttentionOp::create(rewriter, loc, resType, q, k, v, mask, /*kv_lengths=*/Value(),
                                    rewriter.getF32FloatAttr(float(scale)),
                                    /*causal=*/false, /*softcap=*/FloatAttr(),
                                    /*window=*/IntegerAttr());
    Value result = attn.getResult();
    if (rank < 4) {
      SmallVector<ReassociationIndices> reassoc;
      int64_t pad = 4 - rank;
      for (int64_t i = 0; i < rank; ++i) {
        ReassociationIndices group;
        if (i == 0)
          for (int64_t j = 0; j < pad; ++j)
            group.push_back(j);
        group.push_back(pad + i);
        reassoc.push_back(group);
      }
      result = tensor::CollapseShapeOp::create(rewriter, loc, result, reassoc);
    }
    if (result.getType() != outType)
      result = tensor::CastOp::create(rewriter, loc, outType, result);
    rewriter.replaceOp(rootOp, result);
    return success();
  }
};

/// kvc.attention whose K and V were both repeated per query head (repeat_kv written out before
/// the op, e.g. the dynamo exporter's GQA in front of ONNX Attention) reads the unrepeated
/// Hkv-head tensors instead: the same attention in kvc.attention's GQA form.
struct FoldAttentionHeadRepeat : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op, PatternRewriter &rewriter) const override {
    std::pair<Value, int64_t> kr = peelHeadRepeat(op.getKey());
    std::pair<Value, int64_t> vr = peelHeadRepeat(op.getValue());
    Value kSrc = kr.first, vSrc = vr.first;
    if (!kSrc || !vSrc || kr.second != vr.second)
      return failure();
    rewriter.modifyOpInPlace(op, [&] {
      op.getKeyMutable().assign(kSrc);
      op.getValueMutable().assign(vSrc);
    });
    return success();
  }
};

struct KVCRaiseAttentionPass
    : public mlir::kvc::impl::KVCRaiseAttentionBase<KVCRaiseAttentionPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateRaiseAttentionPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace

void mlir::kvc::populateRaiseAttentionPatterns(RewritePatternSet &patterns) {
  patterns.add<RaiseAttentionPattern, FoldAttentionHeadRepeat>(patterns.getContext());
}
