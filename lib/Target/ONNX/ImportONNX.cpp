//===- ImportONNX.cpp - ONNX ModelProto -> kvc/linalg on tensors ----------===//
//
// One pass over the graph in node order (ONNX graphs are topologically sorted). Every value is a
// `TV`: a static-shaped ranked tensor type, plus the MLIR value and/or its constant contents when
// known at import time. Ops whose inputs are all known (initializers, Constant, Shape, ...) and
// whose result is small are evaluated on the host ("folded"); the rest emit
// linalg/tensor/arith/math, and `Attention` emits `kvc.attention` (+ `kvc.cache.*` for
// past/present). Dispatch is keyed by (domain, op_type, opset): the entry with the highest
// since-version <= the model's opset for the domain wins.
//
//===----------------------------------------------------------------------===//

#include "kvc/Target/ONNX/ImportONNX.h"

#include "kvc/Dialect/KVC/IR/KVC.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/Verifier.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <onnx/onnx_pb.h>

#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

using namespace mlir;
using namespace mlir::kvc;
using namespace mlir::kvc::onnx_import;

namespace {

constexpr int64_t kMaxFoldElements = 1 << 16;
constexpr int64_t kMaxDefaultOpset = 25;

//===----------------------------------------------------------------------===//
// Values
//===----------------------------------------------------------------------===//

struct TV {
  Value v;                 // the SSA value (null until materialised for pure constants)
  RankedTensorType type;   // always static
  DenseElementsAttr c;     // contents when known at import time
  explicit operator bool() const { return bool(type); }
  ArrayRef<int64_t> shape() const { return type.getShape(); }
  int64_t rank() const { return type.getRank(); }
  Type elem() const { return type.getElementType(); }
};

/// Host copy of a constant: ints (incl. bool) in `i`, floats in `f`.
struct Host {
  SmallVector<int64_t> shape;
  Type elem;
  std::vector<int64_t> i;
  std::vector<double> f;
  bool isF() const { return isa<FloatType>(elem); }
  int64_t size() const {
    return std::accumulate(shape.begin(), shape.end(), int64_t(1), std::multiplies<int64_t>());
  }
};

int64_t numElements(ArrayRef<int64_t> shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t(1), std::multiplies<int64_t>());
}

Host toHost(DenseElementsAttr a) {
  Host h;
  auto t = cast<ShapedType>(a.getType());
  h.shape.assign(t.getShape().begin(), t.getShape().end());
  h.elem = t.getElementType();
  if (h.isF()) {
    for (const APFloat &v : a.getValues<APFloat>())
      h.f.push_back(v.convertToDouble());
  } else {
    unsigned w = h.elem.getIntOrFloatBitWidth();
    for (const APInt &v : a.getValues<APInt>())
      h.i.push_back(w == 1 ? int64_t(v.getZExtValue()) : v.getSExtValue());
  }
  return h;
}

DenseElementsAttr fromHost(const Host &h) {
  auto type = RankedTensorType::get(h.shape, h.elem);
  if (auto ft = dyn_cast<FloatType>(h.elem)) {
    SmallVector<APFloat> vals;
    vals.reserve(h.f.size());
    for (double d : h.f) {
      APFloat x(d);
      bool lost;
      x.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
      vals.push_back(x);
    }
    return DenseElementsAttr::get(type, vals);
  }
  unsigned w = h.elem.getIntOrFloatBitWidth();
  if (w == 1) {
    SmallVector<bool> vals;
    for (int64_t v : h.i)
      vals.push_back(v != 0);
    return DenseElementsAttr::get(type, ArrayRef<bool>(vals.data(), vals.size()));
  }
  SmallVector<APInt> vals;
  for (int64_t v : h.i)
    vals.push_back(APInt(w, uint64_t(v), /*isSigned=*/true, /*implicitTrunc=*/true));
  return DenseElementsAttr::get(type, vals);
}

/// Row-major strides.
SmallVector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> s(shape.size(), 1);
  for (int64_t i = int64_t(shape.size()) - 2; i >= 0; --i)
    s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/// Calls fn(multi-index, linear) for every element of `shape`.
void forEachIndex(ArrayRef<int64_t> shape, const std::function<void(ArrayRef<int64_t>, int64_t)> &fn) {
  int64_t n = numElements(shape);
  SmallVector<int64_t> idx(shape.size(), 0);
  for (int64_t lin = 0; lin < n; ++lin) {
    fn(idx, lin);
    for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d])
        break;
      idx[d] = 0;
    }
  }
}

/// A new host tensor of `shape` whose element k is src element srcIndex[k].
Host gatherHost(const Host &src, ArrayRef<int64_t> shape, ArrayRef<int64_t> srcIndex) {
  Host h;
  h.shape.assign(shape.begin(), shape.end());
  h.elem = src.elem;
  if (src.isF())
    for (int64_t k : srcIndex)
      h.f.push_back(src.f[k]);
  else
    for (int64_t k : srcIndex)
      h.i.push_back(src.i[k]);
  return h;
}

std::optional<SmallVector<int64_t>> broadcastShapes(ArrayRef<SmallVector<int64_t>> shapes) {
  size_t rank = 0;
  for (auto &s : shapes)
    rank = std::max(rank, s.size());
  SmallVector<int64_t> out(rank, 1);
  for (auto &s : shapes) {
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t &o = out[rank - s.size() + i];
      int64_t d = s[i];
      if (d == o || d == 1)
        continue;
      if (o == 1) {
        o = d;
        continue;
      }
      return std::nullopt;
    }
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Elementwise op kinds (shared by IR emission and host folding)
//===----------------------------------------------------------------------===//

enum class EW {
  Add, Sub, Mul, Div, Pow, Mod, FMod, Max, Min, Eq, Lt, Le, Gt, Ge, And, Or, Xor, Not, Where,
  Neg, Sqrt, Recip, Exp, Log, Tanh, Sigmoid, Erf, Cos, Sin, Abs, Relu, IsNaN, IsInfPos, IsInfNeg,
  IsInf, Floor, Ceil, Cast, Copy
};

Value castScalar(OpBuilder &b, Location loc, Value x, Type to) {
  Type from = x.getType();
  if (from == to)
    return x;
  auto ff = dyn_cast<FloatType>(from), tf = dyn_cast<FloatType>(to);
  if (ff && tf)
    return ff.getWidth() < tf.getWidth() ? Value(arith::ExtFOp::create(b, loc, to, x))
           : ff.getWidth() > tf.getWidth() ? Value(arith::TruncFOp::create(b, loc, to, x))
           // same width (f16 <-> bf16): go through f32
           : Value(arith::TruncFOp::create(b, loc, to, arith::ExtFOp::create(b, loc, b.getF32Type(), x)));
  if (ff) {
    if (to.isInteger(1))
      return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, x,
                                   arith::ConstantOp::create(b, loc, b.getFloatAttr(from, 0.0)));
    return arith::FPToSIOp::create(b, loc, to, x);
  }
  unsigned fw = from.getIntOrFloatBitWidth();
  if (tf)
    return fw == 1 ? Value(arith::UIToFPOp::create(b, loc, to, x))
                   : Value(arith::SIToFPOp::create(b, loc, to, x));
  unsigned tw = to.getIntOrFloatBitWidth();
  if (tw == 1)
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, x,
                                 arith::ConstantOp::create(b, loc, b.getIntegerAttr(from, 0)));
  if (fw == 1)
    return arith::ExtUIOp::create(b, loc, to, x);
  return fw < tw ? Value(arith::ExtSIOp::create(b, loc, to, x))
                 : Value(arith::TruncIOp::create(b, loc, to, x));
}

Value fconst(OpBuilder &b, Location loc, Type t, double v) {
  return arith::ConstantOp::create(b, loc, b.getFloatAttr(t, v));
}
Value iconst(OpBuilder &b, Location loc, Type t, int64_t v) {
  return arith::ConstantOp::create(b, loc, b.getIntegerAttr(t, v));
}

/// Scalar IR for `k` on already-broadcast scalar operands; `out` is the result element type.
Value emitScalar(OpBuilder &b, Location loc, EW k, ArrayRef<Value> a, Type out) {
  Type t = a[0].getType();
  bool isF = isa<FloatType>(t);
  auto bin = [&](auto fop, auto iop) -> Value {
    if (isF)
      return decltype(fop)::create(b, loc, a[0], a[1]);
    return decltype(iop)::create(b, loc, a[0], a[1]);
  };
  auto cmp = [&](arith::CmpFPredicate fp, arith::CmpIPredicate ip) -> Value {
    if (isF)
      return arith::CmpFOp::create(b, loc, fp, a[0], a[1]);
    return arith::CmpIOp::create(b, loc, ip, a[0], a[1]);
  };
  switch (k) {
  case EW::Add: return bin(arith::AddFOp(), arith::AddIOp());
  case EW::Sub: return bin(arith::SubFOp(), arith::SubIOp());
  case EW::Mul: return bin(arith::MulFOp(), arith::MulIOp());
  case EW::Div: return bin(arith::DivFOp(), arith::DivSIOp());
  case EW::Max: return bin(arith::MaximumFOp(), arith::MaxSIOp());
  case EW::Min: return bin(arith::MinimumFOp(), arith::MinSIOp());
  case EW::FMod: return bin(arith::RemFOp(), arith::RemSIOp());
  case EW::Mod: {
    // Python-style: the result takes the divisor's sign.
    Value r = bin(arith::RemFOp(), arith::RemSIOp());
    Value zero = isF ? fconst(b, loc, t, 0.0) : iconst(b, loc, t, 0);
    Value rNeg = isF ? Value(arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, r, zero))
                     : Value(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, r, zero));
    Value dNeg = isF ? Value(arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, a[1], zero))
                     : Value(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, a[1], zero));
    Value nz = isF ? Value(arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, r, zero))
                   : Value(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, r, zero));
    Value fix = arith::AndIOp::create(b, loc, nz, arith::XOrIOp::create(b, loc, rNeg, dNeg));
    Value adj = isF ? Value(arith::AddFOp::create(b, loc, r, a[1]))
                    : Value(arith::AddIOp::create(b, loc, r, a[1]));
    return arith::SelectOp::create(b, loc, fix, adj, r);
  }
  case EW::Pow: {
    if (!isF) {
      Value x = arith::SIToFPOp::create(b, loc, b.getF64Type(), a[0]);
      Value y = castScalar(b, loc, a[1], b.getF64Type());
      return arith::FPToSIOp::create(b, loc, t, math::PowFOp::create(b, loc, x, y));
    }
    Value y = castScalar(b, loc, a[1], t);
    return math::PowFOp::create(b, loc, a[0], y);
  }
  case EW::Eq: return cmp(arith::CmpFPredicate::OEQ, arith::CmpIPredicate::eq);
  case EW::Lt: return cmp(arith::CmpFPredicate::OLT, arith::CmpIPredicate::slt);
  case EW::Le: return cmp(arith::CmpFPredicate::OLE, arith::CmpIPredicate::sle);
  case EW::Gt: return cmp(arith::CmpFPredicate::OGT, arith::CmpIPredicate::sgt);
  case EW::Ge: return cmp(arith::CmpFPredicate::OGE, arith::CmpIPredicate::sge);
  case EW::And: return arith::AndIOp::create(b, loc, a[0], a[1]);
  case EW::Or: return arith::OrIOp::create(b, loc, a[0], a[1]);
  case EW::Xor: return arith::XOrIOp::create(b, loc, a[0], a[1]);
  case EW::Not: return arith::XOrIOp::create(b, loc, a[0], iconst(b, loc, t, 1));
  case EW::Where: return arith::SelectOp::create(b, loc, a[0], a[1], a[2]);
  case EW::Neg:
    if (isF)
      return arith::NegFOp::create(b, loc, a[0]);
    return arith::SubIOp::create(b, loc, iconst(b, loc, t, 0), a[0]);
  case EW::Sqrt: return math::SqrtOp::create(b, loc, a[0]);
  case EW::Recip: return arith::DivFOp::create(b, loc, fconst(b, loc, t, 1.0), a[0]);
  case EW::Exp: return math::ExpOp::create(b, loc, a[0]);
  case EW::Log: return math::LogOp::create(b, loc, a[0]);
  case EW::Tanh: return math::TanhOp::create(b, loc, a[0]);
  case EW::Erf: return math::ErfOp::create(b, loc, a[0]);
  case EW::Cos: return math::CosOp::create(b, loc, a[0]);
  case EW::Sin: return math::SinOp::create(b, loc, a[0]);
  case EW::Floor: return math::FloorOp::create(b, loc, a[0]);
  case EW::Ceil: return math::CeilOp::create(b, loc, a[0]);
  case EW::Sigmoid: {
    Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, a[0]));
    Value one = fconst(b, loc, t, 1.0);
    return arith::DivFOp::create(b, loc, one, arith::AddFOp::create(b, loc, one, e));
  }
  case EW::Abs:
    if (isF)
      return math::AbsFOp::create(b, loc, a[0]);
    return math::AbsIOp::create(b, loc, a[0]);
  case EW::Relu:
    if (isF)
      return arith::MaximumFOp::create(b, loc, a[0], fconst(b, loc, t, 0.0));
    return arith::MaxSIOp::create(b, loc, a[0], iconst(b, loc, t, 0));
  case EW::IsNaN: return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, a[0], a[0]);
  case EW::IsInfPos:
    return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, a[0],
                                 fconst(b, loc, t, std::numeric_limits<double>::infinity()));
  case EW::IsInfNeg:
    return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, a[0],
                                 fconst(b, loc, t, -std::numeric_limits<double>::infinity()));
  case EW::IsInf:
    return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, math::AbsFOp::create(b, loc, a[0]),
                                 fconst(b, loc, t, std::numeric_limits<double>::infinity()));
  case EW::Cast: return castScalar(b, loc, a[0], out);
  case EW::Copy: return a[0];
  }
  return {};
}

struct Num {
  double f = 0;
  int64_t i = 0;
};

double pyModF(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0)))
    r += b;
  return r;
}
int64_t pyModI(int64_t a, int64_t b) {
  if (b == 0 || b == -1)
    return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0)))
    r += b;
  return r;
}

/// Host evaluation of `k`; operand types `ts`, result type `out`.
Num foldScalar(EW k, ArrayRef<Num> a, ArrayRef<Type> ts, Type out) {
  bool isF = isa<FloatType>(ts[0]);
  Num r;
  auto setB = [&](bool v) { r.i = v; };
  double x = a[0].f, y = a.size() > 1 ? a[1].f : 0;
  int64_t p = a[0].i, q = a.size() > 1 ? a[1].i : 0;
  switch (k) {
  case EW::Add: isF ? void(r.f = x + y) : void(r.i = p + q); break;
  case EW::Sub: isF ? void(r.f = x - y) : void(r.i = p - q); break;
  case EW::Mul: isF ? void(r.f = x * y) : void(r.i = p * q); break;
  case EW::Div:
    isF ? void(r.f = x / y)
        : void(r.i = q == 0 ? 0 : q == -1 ? int64_t(0 - uint64_t(p)) : p / q);
    break;
  case EW::Max: isF ? void(r.f = (std::isnan(x) || std::isnan(y)) ? NAN : std::max(x, y)) : void(r.i = std::max(p, q)); break;
  case EW::Min: isF ? void(r.f = (std::isnan(x) || std::isnan(y)) ? NAN : std::min(x, y)) : void(r.i = std::min(p, q)); break;
  case EW::FMod: isF ? void(r.f = std::fmod(x, y)) : void(r.i = (q == 0 || q == -1) ? 0 : p % q); break;
  case EW::Mod: isF ? void(r.f = pyModF(x, y)) : void(r.i = pyModI(p, q)); break;
  case EW::Pow: {
    double yy = isa<FloatType>(ts[1]) ? y : double(q);
    if (isF)
      r.f = std::pow(x, yy);
    else
      r.i = int64_t(std::pow(double(p), yy));
    break;
  }
  case EW::Eq: setB(isF ? x == y : p == q); break;
  case EW::Lt: setB(isF ? x < y : p < q); break;
  case EW::Le: setB(isF ? x <= y : p <= q); break;
  case EW::Gt: setB(isF ? x > y : p > q); break;
  case EW::Ge: setB(isF ? x >= y : p >= q); break;
  case EW::And: r.i = p & q; break;
  case EW::Or: r.i = p | q; break;
  case EW::Xor: r.i = p ^ q; break;
  case EW::Not: r.i = !p; break;
  case EW::Where: return a[0].i ? a[1] : a[2];
  case EW::Neg: isF ? void(r.f = -x) : void(r.i = -p); break;
  case EW::Sqrt: r.f = std::sqrt(x); break;
  case EW::Recip: r.f = 1.0 / x; break;
  case EW::Exp: r.f = std::exp(x); break;
  case EW::Log: r.f = std::log(x); break;
  case EW::Tanh: r.f = std::tanh(x); break;
  case EW::Erf: r.f = std::erf(x); break;
  case EW::Cos: r.f = std::cos(x); break;
  case EW::Sin: r.f = std::sin(x); break;
  case EW::Floor: r.f = std::floor(x); break;
  case EW::Ceil: r.f = std::ceil(x); break;
  case EW::Sigmoid: r.f = 1.0 / (1.0 + std::exp(-x)); break;
  case EW::Abs: isF ? void(r.f = std::fabs(x)) : void(r.i = p < 0 ? -p : p); break;
  case EW::Relu: isF ? void(r.f = x > 0 ? x : 0) : void(r.i = p > 0 ? p : 0); break;
  case EW::IsNaN: setB(std::isnan(x)); break;
  case EW::IsInfPos: setB(std::isinf(x) && x > 0); break;
  case EW::IsInfNeg: setB(std::isinf(x) && x < 0); break;
  case EW::IsInf: setB(std::isinf(x)); break;
  case EW::Cast: {
    bool toF = isa<FloatType>(out);
    if (toF)
      r.f = isF ? x : double(p);
    else if (out.isInteger(1))
      r.i = isF ? (x != 0) : (p != 0);
    else
      r.i = isF ? (std::isfinite(x) ? int64_t(std::trunc(x)) : 0) : p;
    break;
  }
  case EW::Copy: return a[0];
  }
  return r;
}

//===----------------------------------------------------------------------===//
// The importer
//===----------------------------------------------------------------------===//

class Importer;
using Handler = LogicalResult (Importer::*)();

struct OpEntry {
  const char *domain;
  const char *opType;
  int64_t since;
  Handler handler;
};

class Importer {
public:
  Importer(MLIRContext *ctx, const ImportOptions &opts)
      : ctx(ctx), b(ctx), opts(opts),
        loc(FileLineColLoc::get(ctx, opts.modelName, 0, 0)) {}

  OwningOpRef<ModuleOp> run(StringRef bytes);
  FailureOr<DenseElementsAttr> tensorAttr(const onnx::TensorProto &t);

private:
  MLIRContext *ctx;
  OpBuilder b;
  const ImportOptions &opts;
  Location loc;
  onnx::ModelProto model;
  std::map<std::string, int64_t> opsets;
  llvm::StringMap<TV> vals;

  // The node being imported.
  const onnx::NodeProto *node = nullptr;
  int64_t opset = 0;
  std::vector<TV> ins;

  static const std::vector<OpEntry> &table();

  //===--- diagnostics -----------------------------------------------------===//
  InFlightDiagnostic err() {
    auto d = emitError(loc);
    if (node)
      d << "node '" << node->name() << "' (" << node->op_type() << ", domain '"
        << (node->domain().empty() ? "ai.onnx" : node->domain()) << "', opset " << opset << "): ";
    return d;
  }
  LogicalResult unsupportedAttr(StringRef attr, StringRef why) {
    return err() << "unsupported attribute '" << attr << "': " << why;
  }

  //===--- attributes ------------------------------------------------------===//
  const onnx::AttributeProto *attr(StringRef name) const {
    for (const auto &a : node->attribute())
      if (a.name() == name)
        return &a;
    return nullptr;
  }
  int64_t attrI(StringRef name, int64_t dflt) const {
    auto *a = attr(name);
    return a ? a->i() : dflt;
  }
  double attrF(StringRef name, double dflt) const {
    auto *a = attr(name);
    return a ? a->f() : dflt;
  }
  std::optional<SmallVector<int64_t>> attrInts(StringRef name) const {
    auto *a = attr(name);
    if (!a)
      return std::nullopt;
    return SmallVector<int64_t>(a->ints().begin(), a->ints().end());
  }

  //===--- values ----------------------------------------------------------===//
  TV in(size_t i) const { return i < ins.size() ? ins[i] : TV(); }
  bool hasOut(int i) const { return i < node->output_size() && !node->output(i).empty(); }
  void setOut(int i, TV v) {
    if (hasOut(i))
      vals[node->output(i)] = v;
  }
  Value mat(TV &t) {
    if (!t.v)
      t.v = arith::ConstantOp::create(b, loc, t.type, t.c);
    return t.v;
  }
  TV mk(Value v) { return TV{v, cast<RankedTensorType>(v.getType()), {}}; }
  TV mkc(DenseElementsAttr c) { return TV{{}, cast<RankedTensorType>(c.getType()), c}; }
  TV mkHost(const Host &h) { return mkc(fromHost(h)); }
  bool foldable(ArrayRef<TV> ts, int64_t outElems) const {
    if (outElems > kMaxFoldElements)
      return false;
    for (const TV &t : ts)
      if (t && (!t.c || numElements(t.shape()) > kMaxFoldElements))
        return false;
    return true;
  }
  /// Integer contents of a constant input (e.g. axes, shapes).
  std::optional<SmallVector<int64_t>> constInts(const TV &t) {
    if (!t || !t.c || isa<FloatType>(t.elem()))
      return std::nullopt;
    Host h = toHost(t.c);
    return SmallVector<int64_t>(h.i.begin(), h.i.end());
  }
  FailureOr<SmallVector<int64_t>> requireConstInts(size_t idx, StringRef what) {
    auto v = constInts(in(idx));
    if (!v) {
      err() << "input " << idx << " (" << what
            << ") must be a constant known at import time (an initializer, Constant or a folded "
               "shape computation)";
      return failure();
    }
    return *v;
  }
  FailureOr<int64_t> normAxis(int64_t axis, int64_t rank) {
    if (rank == 0 || axis < -rank || axis >= rank) {
      err() << "axis " << axis << " out of range for rank " << rank;
      return failure();
    }
    return axis < 0 ? axis + rank : axis;
  }

  //===--- IR helpers ------------------------------------------------------===//
  Value empty(ArrayRef<int64_t> shape, Type elem) {
    return tensor::EmptyOp::create(b, loc, shape, elem);
  }
  Value filled(ArrayRef<int64_t> shape, Type elem, Value scalar) {
    return linalg::FillOp::create(b, loc, scalar, empty(shape, elem)).getResult(0);
  }
  FailureOr<TV> elementwise(EW k, ArrayRef<TV> args, Type out);
  TV reshape(TV x, ArrayRef<int64_t> shape);
  TV transpose(TV x, ArrayRef<int64_t> perm);
  TV broadcastTo(TV x, ArrayRef<int64_t> shape);
  TV slice(TV x, ArrayRef<int64_t> offs, ArrayRef<int64_t> sizes, ArrayRef<int64_t> steps);
  TV concat(ArrayRef<TV> xs, int64_t axis);
  TV pad(TV x, ArrayRef<int64_t> lo, ArrayRef<int64_t> hi, Value padScalar);
  enum class Red { Sum, Max, Min, Prod };
  TV reduce(TV x, ArrayRef<int64_t> axes, bool keep, Red kind);
  TV softmax(TV x, ArrayRef<int64_t> axes);
  FailureOr<TV> matmul(TV a, TV b);
  TV castTo(TV x, Type elem) {
    if (x.elem() == elem)
      return x;
    return *elementwise(EW::Cast, {x}, elem);
  }

  //===--- import steps ----------------------------------------------------===//
  FailureOr<Type> elemType(int dt, StringRef what);
  FailureOr<SmallVector<int64_t>> inputShape(const onnx::ValueInfoProto &vi);
  LogicalResult importNode(const onnx::NodeProto &n);

  //===--- handlers --------------------------------------------------------===//
  LogicalResult ewBinary(EW k, bool cmp);
  LogicalResult ewUnary(EW k, bool floatOnly);
  LogicalResult ewVariadic(EW k);
  FailureOr<SmallVector<int64_t>> squeezeAxes(bool inputRequired);
#define KVC_ONNX_HANDLERS(X)                                                                        \
  X(Add) X(Sub) X(Mul) X(Div) X(Pow) X(Mod) X(Max) X(Min) X(Equal) X(Less) X(LessOrEqual)         \
  X(Greater) X(GreaterOrEqual) X(And) X(Or) X(Xor) X(Not) X(Where) X(Neg) X(Sqrt) X(Reciprocal)   \
  X(Exp) X(Log) X(Tanh) X(Sigmoid) X(Erf) X(Cos) X(Sin) X(Abs) X(Relu) X(IsNaN) X(IsInf) X(Floor) \
  X(Ceil) X(Cast) X(CastLike) X(Identity) X(Constant) X(ConstantOfShape) X(Shape) X(Size)         \
  X(Reshape) X(Flatten) X(Transpose) X(Squeeze) X(Unsqueeze) X(Concat) X(Slice) X(Split)          \
  X(Expand) X(Gather) X(Range) X(Pad) X(Trilu) X(ReduceSum) X(ReduceMean) X(ReduceMax)            \
  X(ReduceMin) X(ReduceProd) X(Softmax) X(MatMul) X(Gemm) X(LayerNormalization)                   \
  X(RMSNormalization) X(SimplifiedLayerNormalization) X(Attention) X(Gelu)            \
  X(GroupQueryAttention) X(GatherND) X(RotaryEmbedding) X(MultiHeadAttention)
#define X(name) LogicalResult on##name();
  KVC_ONNX_HANDLERS(X)
#undef X
  LogicalResult reduceOp(Red kind, bool mean, int64_t axesInputSince);
  TV rotary(TV x, TV cosC, TV sinC, TV pos, int64_t D, int64_t rd, bool interleaved);
  FailureOr<TV> normalize(TV x, TV scale, TV bias, int64_t axis, double eps, bool rms);
};

//===----------------------------------------------------------------------===//
// IR helpers
//===----------------------------------------------------------------------===//

FailureOr<TV> Importer::elementwise(EW k, ArrayRef<TV> args, Type out) {
  SmallVector<SmallVector<int64_t>> shapes;
  for (const TV &a : args)
    shapes.push_back(SmallVector<int64_t>(a.shape()));
  auto shape = broadcastShapes(shapes);
  if (!shape) {
    auto d = err() << "operand shapes do not broadcast:";
    for (const TV &a : args)
      d << " " << a.type;
    return failure();
  }
  int64_t rank = shape->size();
  SmallVector<Type> ts;
  for (const TV &a : args)
    ts.push_back(a.elem());

  // Host folding.
  if (foldable(args, numElements(*shape))) {
    std::vector<Host> hs;
    for (const TV &a : args)
      hs.push_back(toHost(a.c));
    Host r;
    r.shape = *shape;
    r.elem = out;
    SmallVector<SmallVector<int64_t>> strides;
    for (const Host &h : hs)
      strides.push_back(stridesOf(h.shape));
    forEachIndex(*shape, [&](ArrayRef<int64_t> idx, int64_t) {
      SmallVector<Num> xs;
      for (size_t a = 0; a < hs.size(); ++a) {
        const Host &h = hs[a];
        int64_t off = 0, lead = rank - int64_t(h.shape.size());
        for (size_t d = 0; d < h.shape.size(); ++d)
          off += (h.shape[d] == 1 ? 0 : idx[lead + d]) * strides[a][d];
        Num n;
        if (h.isF())
          n.f = h.f[off];
        else
          n.i = h.i[off];
        xs.push_back(n);
      }
      Num y = foldScalar(k, xs, ts, out);
      if (isa<FloatType>(out))
        r.f.push_back(y.f);
      else
        r.i.push_back(y.i);
    });
    return mkHost(r);
  }

  // linalg.generic; splat constants become scalar constants in the body.
  SmallVector<Value> operands;
  SmallVector<AffineMap> maps;
  SmallVector<int> operandOf(args.size(), -1);
  for (size_t a = 0; a < args.size(); ++a) {
    TV t = args[a];
    if (t.c && t.c.isSplat())
      continue;
    SmallVector<AffineExpr> exprs;
    int64_t lead = rank - t.rank();
    for (int64_t d = 0; d < t.rank(); ++d)
      exprs.push_back(t.shape()[d] == 1 && (*shape)[lead + d] != 1
                          ? getAffineConstantExpr(0, ctx)
                          : getAffineDimExpr(lead + d, ctx));
    operandOf[a] = operands.size();
    operands.push_back(mat(t));
    maps.push_back(AffineMap::get(rank, 0, exprs, ctx));
  }
  maps.push_back(AffineMap::getMultiDimIdentityMap(rank, ctx));
  SmallVector<DenseElementsAttr> splats;
  for (const TV &t : args)
    splats.push_back(t.c && t.c.isSplat() ? t.c : DenseElementsAttr());
  Value init = empty(*shape, out);
  auto op = linalg::GenericOp::create(
      b, loc, init.getType(), operands, ValueRange{init}, maps,
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [&](OpBuilder &bb, Location l, ValueRange bargs) {
        SmallVector<Value> scalars;
        for (size_t a = 0; a < args.size(); ++a) {
          if (operandOf[a] >= 0) {
            scalars.push_back(bargs[operandOf[a]]);
          } else {
            TypedAttr s = splats[a].getSplatValue<TypedAttr>();
            scalars.push_back(arith::ConstantOp::create(bb, l, s));
          }
        }
        linalg::YieldOp::create(bb, l, emitScalar(bb, l, k, scalars, out));
      });
  return mk(op.getResult(0));
}

TV Importer::reshape(TV x, ArrayRef<int64_t> shape) {
  if (x.shape() == shape)
    return x;
  auto type = RankedTensorType::get(shape, x.elem());
  if (x.c)
    return mkc(x.c.reshape(type));
  Value v = mat(x);
  if (x.rank() == 0 || shape.empty()) {
    // All dims are 1 on the ranked side: an empty reassociation.
    if (x.rank() == 0)
      return mk(tensor::ExpandShapeOp::create(b, loc, type, v, ArrayRef<ReassociationIndices>{}));
    return mk(tensor::CollapseShapeOp::create(b, loc, type, v, ArrayRef<ReassociationIndices>{}));
  }
  // A pure collapse or expansion of contiguous dims is one collapse_shape/expand_shape (the
  // form kvc-raise-attention reads for GQA head repetition); anything else goes through 1-D.
  if (x.rank() > int64_t(shape.size())) {
    if (auto re = getReassociationIndicesForCollapse(x.shape(), shape))
      return mk(tensor::CollapseShapeOp::create(b, loc, type, v, *re));
  } else if (x.rank() < int64_t(shape.size())) {
    if (auto re = getReassociationIndicesForCollapse(shape, x.shape()))
      return mk(tensor::ExpandShapeOp::create(b, loc, type, v, *re));
  }
  int64_t n = numElements(shape);
  if (x.rank() > 1) {
    ReassociationIndices all;
    for (int64_t i = 0; i < x.rank(); ++i)
      all.push_back(i);
    v = tensor::CollapseShapeOp::create(b, loc, RankedTensorType::get({n}, x.elem()), v,
                                        ArrayRef<ReassociationIndices>{all});
  }
  if (shape.size() > 1) {
    ReassociationIndices all;
    for (size_t i = 0; i < shape.size(); ++i)
      all.push_back(i);
    v = tensor::ExpandShapeOp::create(b, loc, type, v, ArrayRef<ReassociationIndices>{all});
  }
  return mk(v);
}

TV Importer::transpose(TV x, ArrayRef<int64_t> perm) {
  SmallVector<int64_t> shape;
  for (int64_t p : perm)
    shape.push_back(x.shape()[p]);
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i)
    identity &= perm[i] == int64_t(i);
  if (identity)
    return x;
  if (foldable({x}, numElements(shape))) {
    Host h = toHost(x.c);
    auto st = stridesOf(h.shape);
    std::vector<int64_t> src;
    forEachIndex(shape, [&](ArrayRef<int64_t> idx, int64_t) {
      int64_t off = 0;
      for (size_t d = 0; d < perm.size(); ++d)
        off += idx[d] * st[perm[d]];
      src.push_back(off);
    });
    return mkHost(gatherHost(h, shape, src));
  }
  Value init = empty(shape, x.elem());
  return mk(linalg::TransposeOp::create(b, loc, mat(x), init, perm).getResult()[0]);
}

TV Importer::broadcastTo(TV x, ArrayRef<int64_t> shape) {
  if (x.shape() == shape)
    return x;
  if (x.c && x.c.isSplat())
    return mkc(x.c.resizeSplat(RankedTensorType::get(shape, x.elem())));
  // Reuses the elementwise path (a copy with broadcasting maps) by adding a splat zero-size
  // helper would be clumsy; emit the copy directly.
  int64_t rank = shape.size();
  SmallVector<AffineExpr> exprs;
  int64_t lead = rank - x.rank();
  for (int64_t d = 0; d < x.rank(); ++d)
    exprs.push_back(x.shape()[d] == 1 && shape[lead + d] != 1 ? getAffineConstantExpr(0, ctx)
                                                              : getAffineDimExpr(lead + d, ctx));
  // Unsqueeze-then-Expand (e.g. repeat_kv): read the tensor before the unit dims were inserted,
  // so that the broadcast is one generic over the original tensor.
  Value src = x.v;
  if (auto ex = x.v ? x.v.getDefiningOp<tensor::ExpandShapeOp>() : nullptr) {
    auto srcT = ex.getSrcType();
    SmallVector<AffineExpr> srcExprs;
    bool ok = true;
    for (auto [i, group] : llvm::enumerate(ex.getReassociationIndices())) {
      int64_t sz = srcT.getDimSize(i);
      std::optional<int64_t> pick;
      for (int64_t r : group)
        if (x.shape()[r] != 1)
          pick = pick ? -1 : r;
      if (pick && *pick < 0) {
        ok = false;
        break;
      }
      int64_t r = pick ? *pick : group.back();
      srcExprs.push_back(sz == 1 && shape[lead + r] != 1 ? getAffineConstantExpr(0, ctx)
                                                         : getAffineDimExpr(lead + r, ctx));
    }
    if (ok && !foldable({x}, numElements(shape))) {
      exprs = srcExprs;
      src = ex.getSrc();
    }
  }
  if (foldable({x}, numElements(shape))) {
    Host h = toHost(x.c);
    auto st = stridesOf(h.shape);
    std::vector<int64_t> src;
    forEachIndex(shape, [&](ArrayRef<int64_t> idx, int64_t) {
      int64_t off = 0;
      for (int64_t d = 0; d < x.rank(); ++d)
        off += (h.shape[d] == 1 ? 0 : idx[lead + d]) * st[d];
      src.push_back(off);
    });
    return mkHost(gatherHost(h, shape, src));
  }
  Value init = empty(shape, x.elem());
  auto op = linalg::GenericOp::create(
      b, loc, init.getType(), ValueRange{src ? src : mat(x)}, ValueRange{init},
      SmallVector<AffineMap>{AffineMap::get(rank, 0, exprs, ctx),
                             AffineMap::getMultiDimIdentityMap(rank, ctx)},
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [](OpBuilder &bb, Location l, ValueRange a) { linalg::YieldOp::create(bb, l, a[0]); });
  return mk(op.getResult(0));
}

TV Importer::slice(TV x, ArrayRef<int64_t> offs, ArrayRef<int64_t> sizes, ArrayRef<int64_t> steps) {
  if (x.shape() == sizes && llvm::all_of(offs, [](int64_t o) { return o == 0; }))
    return x;
  bool negative = llvm::any_of(steps, [](int64_t s) { return s < 0; });
  if (negative || foldable({x}, numElements(sizes))) {
    // Host path (also the only path for negative steps on constants).
    Host h = toHost(x.c);
    auto st = stridesOf(h.shape);
    std::vector<int64_t> src;
    forEachIndex(sizes, [&](ArrayRef<int64_t> idx, int64_t) {
      int64_t off = 0;
      for (size_t d = 0; d < sizes.size(); ++d)
        off += (offs[d] + idx[d] * steps[d]) * st[d];
      src.push_back(off);
    });
    return mkHost(gatherHost(h, sizes, src));
  }
  auto type = RankedTensorType::get(sizes, x.elem());
  return mk(tensor::ExtractSliceOp::create(b, loc, type, mat(x), ValueRange{}, ValueRange{},
                                           ValueRange{}, offs, sizes, steps));
}

TV Importer::concat(ArrayRef<TV> xs, int64_t axis) {
  SmallVector<int64_t> shape(xs[0].shape());
  shape[axis] = 0;
  for (const TV &x : xs)
    shape[axis] += x.shape()[axis];
  if (foldable(xs, numElements(shape))) {
    Host r;
    r.shape = shape;
    r.elem = xs[0].elem();
    std::vector<Host> hs;
    for (const TV &x : xs)
      hs.push_back(toHost(x.c));
    forEachIndex(shape, [&](ArrayRef<int64_t> idx, int64_t) {
      int64_t a = idx[axis];
      size_t which = 0;
      while (a >= hs[which].shape[axis]) {
        a -= hs[which].shape[axis];
        ++which;
      }
      auto st = stridesOf(hs[which].shape);
      int64_t off = 0;
      for (size_t d = 0; d < shape.size(); ++d)
        off += (int64_t(d) == axis ? a : idx[d]) * st[d];
      if (r.isF())
        r.f.push_back(hs[which].f[off]);
      else
        r.i.push_back(hs[which].i[off]);
    });
    return mkHost(r);
  }
  Value acc = empty(shape, xs[0].elem());
  int64_t at = 0;
  for (TV x : xs) {
    if (x.shape()[axis] == 0)
      continue;
    SmallVector<int64_t> offs(shape.size(), 0), strides(shape.size(), 1);
    offs[axis] = at;
    acc = tensor::InsertSliceOp::create(b, loc, mat(x), acc, ValueRange{}, ValueRange{},
                                        ValueRange{}, offs, x.shape(), strides);
    at += x.shape()[axis];
  }
  return mk(acc);
}

TV Importer::pad(TV x, ArrayRef<int64_t> lo, ArrayRef<int64_t> hi, Value padScalar) {
  SmallVector<int64_t> shape;
  for (int64_t d = 0; d < x.rank(); ++d)
    shape.push_back(x.shape()[d] + lo[d] + hi[d]);
  Value acc = filled(shape, x.elem(), padScalar);
  SmallVector<int64_t> strides(shape.size(), 1);
  return mk(tensor::InsertSliceOp::create(b, loc, mat(x), acc, ValueRange{}, ValueRange{},
                                          ValueRange{}, lo, x.shape(), strides));
}

TV Importer::reduce(TV x, ArrayRef<int64_t> axes, bool keep, Red kind) {
  int64_t rank = x.rank();
  Type e = x.elem();
  // f16/bf16 sums and products accumulate in f32 (as numpy does) and round once.
  if ((e.isF16() || e.isBF16()) && (kind == Red::Sum || kind == Red::Prod) && !x.c)
    return castTo(reduce(castTo(x, b.getF32Type()), axes, keep, kind), e);
  SmallVector<int64_t> outShape;
  SmallVector<AffineExpr> outExprs;
  SmallVector<utils::IteratorType> iters;
  for (int64_t d = 0; d < rank; ++d) {
    bool red = llvm::is_contained(axes, d);
    iters.push_back(red ? utils::IteratorType::reduction : utils::IteratorType::parallel);
    if (red && keep) {
      outShape.push_back(1);
      outExprs.push_back(getAffineConstantExpr(0, ctx));
    } else if (!red) {
      outShape.push_back(x.shape()[d]);
      outExprs.push_back(getAffineDimExpr(d, ctx));
    }
  }
  bool isF = isa<FloatType>(e);
  if (foldable({x}, numElements(x.shape()))) {
    Host h = toHost(x.c);
    Host r;
    r.shape = outShape;
    r.elem = e;
    int64_t n = numElements(outShape);
    double fInit = kind == Red::Sum ? 0 : kind == Red::Prod ? 1
                   : kind == Red::Max ? -INFINITY : INFINITY;
    int64_t iInit = kind == Red::Sum ? 0 : kind == Red::Prod ? 1
                    : kind == Red::Max ? std::numeric_limits<int64_t>::min()
                                       : std::numeric_limits<int64_t>::max();
    r.f.assign(isF ? n : 0, fInit);
    r.i.assign(isF ? 0 : n, iInit);
    auto ost = stridesOf(outShape);
    forEachIndex(x.shape(), [&](ArrayRef<int64_t> idx, int64_t lin) {
      int64_t off = 0, od = 0;
      for (int64_t d = 0; d < rank; ++d) {
        bool red = llvm::is_contained(axes, d);
        if (red && !keep)
          continue;
        off += (red ? 0 : idx[d]) * ost[od++];
      }
      if (isF) {
        double &a = r.f[off], v = h.f[lin];
        a = kind == Red::Sum ? a + v : kind == Red::Prod ? a * v
            : kind == Red::Max ? (std::isnan(v) || std::isnan(a) ? NAN : std::max(a, v))
                               : (std::isnan(v) || std::isnan(a) ? NAN : std::min(a, v));
      } else {
        int64_t &a = r.i[off], v = h.i[lin];
        a = kind == Red::Sum ? a + v : kind == Red::Prod ? a * v
            : kind == Red::Max ? std::max(a, v) : std::min(a, v);
      }
    });
    return mkHost(r);
  }
  Value initV;
  if (isF) {
    double v = kind == Red::Sum ? 0.0 : kind == Red::Prod ? 1.0
               : kind == Red::Max ? -INFINITY : INFINITY;
    initV = fconst(b, loc, e, v);
  } else {
    unsigned w = e.getIntOrFloatBitWidth();
    APInt v = kind == Red::Sum ? APInt(w, 0) : kind == Red::Prod ? APInt(w, 1)
              : kind == Red::Max ? APInt::getSignedMinValue(w) : APInt::getSignedMaxValue(w);
    initV = arith::ConstantOp::create(b, loc, b.getIntegerAttr(e, v));
  }
  Value init = filled(outShape, e, initV);
  auto op = linalg::GenericOp::create(
      b, loc, init.getType(), ValueRange{mat(x)}, ValueRange{init},
      SmallVector<AffineMap>{AffineMap::getMultiDimIdentityMap(rank, ctx),
                             AffineMap::get(rank, 0, outExprs, ctx)},
      iters, [&](OpBuilder &bb, Location l, ValueRange a) {
        Value r;
        switch (kind) {
        case Red::Sum:
          r = isF ? Value(arith::AddFOp::create(bb, l, a[0], a[1]))
                  : Value(arith::AddIOp::create(bb, l, a[0], a[1]));
          break;
        case Red::Prod:
          r = isF ? Value(arith::MulFOp::create(bb, l, a[0], a[1]))
                  : Value(arith::MulIOp::create(bb, l, a[0], a[1]));
          break;
        case Red::Max:
          r = isF ? Value(arith::MaximumFOp::create(bb, l, a[0], a[1]))
                  : Value(arith::MaxSIOp::create(bb, l, a[0], a[1]));
          break;
        case Red::Min:
          r = isF ? Value(arith::MinimumFOp::create(bb, l, a[0], a[1]))
                  : Value(arith::MinSIOp::create(bb, l, a[0], a[1]));
          break;
        }
        linalg::YieldOp::create(bb, l, r);
      });
  return mk(op.getResult(0));
}

/// softmax over `axes`: exp(x - max) / sum(exp(x - max)); the form kvc-raise-attention matches.
TV Importer::softmax(TV x, ArrayRef<int64_t> axes) {
  TV mx = reduce(x, axes, /*keep=*/true, Red::Max);
  // exp(x - max) as one generic.
  SmallVector<int64_t> shape(x.shape());
  int64_t rank = shape.size();
  TV e;
  {
    SmallVector<AffineExpr> mexprs;
    for (int64_t d = 0; d < rank; ++d)
      mexprs.push_back(mx.shape()[d] == 1 && shape[d] != 1 ? getAffineConstantExpr(0, ctx)
                                                           : getAffineDimExpr(d, ctx));
    Value init = empty(shape, x.elem());
    auto op = linalg::GenericOp::create(
        b, loc, init.getType(), ValueRange{mat(x), mat(mx)}, ValueRange{init},
        SmallVector<AffineMap>{AffineMap::getMultiDimIdentityMap(rank, ctx),
                               AffineMap::get(rank, 0, mexprs, ctx),
                               AffineMap::getMultiDimIdentityMap(rank, ctx)},
        SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
        [&](OpBuilder &bb, Location l, ValueRange a) {
          Value s = arith::SubFOp::create(bb, l, a[0], a[1]);
          linalg::YieldOp::create(bb, l, Value(math::ExpOp::create(bb, l, s)));
        });
    e = mk(op.getResult(0));
  }
  TV s = reduce(e, axes, /*keep=*/true, Red::Sum);
  return *elementwise(EW::Div, {e, s}, x.elem());
}

FailureOr<TV> Importer::matmul(TV a, TV bm) {
  if (a.rank() < 2 || bm.rank() < 2) {
    err() << "internal: matmul operands must have rank >= 2";
    return failure();
  }
  int64_t M = a.shape()[a.rank() - 2], K = a.shape()[a.rank() - 1];
  int64_t K2 = bm.shape()[bm.rank() - 2], N = bm.shape()[bm.rank() - 1];
  if (K != K2) {
    err() << "contraction sizes differ: " << a.type << " x " << bm.type;
    return failure();
  }
  SmallVector<int64_t> ab(a.shape().drop_back(2)), bb(bm.shape().drop_back(2));
  auto batch = broadcastShapes({ab, bb});
  if (!batch) {
    err() << "batch dimensions do not broadcast: " << a.type << " x " << bm.type;
    return failure();
  }
  int64_t nb = batch->size();
  int64_t nl = nb + 3; // batch.., m, n, k
  AffineExpr m = getAffineDimExpr(nb, ctx), n = getAffineDimExpr(nb + 1, ctx),
             k = getAffineDimExpr(nb + 2, ctx);
  auto batchExprs = [&](ArrayRef<int64_t> s) {
    SmallVector<AffineExpr> ex;
    int64_t lead = nb - int64_t(s.size());
    for (size_t d = 0; d < s.size(); ++d)
      ex.push_back(s[d] == 1 && (*batch)[lead + d] != 1 ? getAffineConstantExpr(0, ctx)
                                                        : getAffineDimExpr(lead + d, ctx));
    return ex;
  };
  auto ae = batchExprs(ab);
  ae.append({m, k});
  auto be = batchExprs(bb);
  be.append({k, n});
  SmallVector<AffineExpr> oe;
  for (int64_t d = 0; d < nb; ++d)
    oe.push_back(getAffineDimExpr(d, ctx));
  oe.append({m, n});
  SmallVector<int64_t> outShape(*batch);
  outShape.append({M, N});
  Type e = a.elem();
  bool isF = isa<FloatType>(e);
  // f16/bf16 products are accumulated in f32 (as numpy and onnxruntime do) and rounded once.
  Type accT = (e.isF16() || e.isBF16()) ? Type(b.getF32Type()) : e;
  Value zero = isF ? fconst(b, loc, accT, 0.0) : iconst(b, loc, accT, 0);
  Value init = filled(outShape, accT, zero);
  SmallVector<utils::IteratorType> iters(nl, utils::IteratorType::parallel);
  iters[nb + 2] = utils::IteratorType::reduction;
  auto op = linalg::GenericOp::create(
      b, loc, init.getType(), ValueRange{mat(a), mat(bm)}, ValueRange{init},
      SmallVector<AffineMap>{AffineMap::get(nl, 0, ae, ctx), AffineMap::get(nl, 0, be, ctx),
                             AffineMap::get(nl, 0, oe, ctx)},
      iters, [&](OpBuilder &bb2, Location l, ValueRange xs) {
        SmallVector<Value> x{castScalar(bb2, l, xs[0], accT), castScalar(bb2, l, xs[1], accT), xs[2]};
        Value p = isF ? Value(arith::MulFOp::create(bb2, l, x[0], x[1]))
                      : Value(arith::MulIOp::create(bb2, l, x[0], x[1]));
        Value s = isF ? Value(arith::AddFOp::create(bb2, l, x[2], p))
                      : Value(arith::AddIOp::create(bb2, l, x[2], p));
        linalg::YieldOp::create(bb2, l, s);
      });
  return castTo(mk(op.getResult(0)), e);
}

//===----------------------------------------------------------------------===//
// Model-level import
//===----------------------------------------------------------------------===//

FailureOr<Type> Importer::elemType(int dt, StringRef what) {
  switch (dt) {
  case onnx::TensorProto::FLOAT: return Type(b.getF32Type());
  case onnx::TensorProto::DOUBLE: return Type(b.getF64Type());
  case onnx::TensorProto::FLOAT16: return Type(b.getF16Type());
  case onnx::TensorProto::BFLOAT16: return Type(b.getBF16Type());
  case onnx::TensorProto::INT64: return Type(b.getI64Type());
  case onnx::TensorProto::INT32: return Type(b.getI32Type());
  case onnx::TensorProto::INT16: return Type(b.getI16Type());
  case onnx::TensorProto::INT8: return Type(b.getI8Type());
  case onnx::TensorProto::UINT8: return Type(b.getI8Type());
  case onnx::TensorProto::BOOL: return Type(b.getI1Type());
  default:
    break;
  }
  err() << what << ": unsupported ONNX element type " << dt
        << " (supported: float, double, float16, bfloat16, int64, int32, int16, int8, uint8, bool)";
  return failure();
}

FailureOr<DenseElementsAttr> Importer::tensorAttr(const onnx::TensorProto &t) {
  std::string what = "tensor '" + t.name() + "'";
  auto et = elemType(t.data_type(), what);
  if (failed(et))
    return failure();
  SmallVector<int64_t> shape;
  for (int64_t d : t.dims()) {
    if (d < 0) {
      err() << what << " has a negative dimension " << d;
      return failure();
    }
    shape.push_back(d);
  }
  auto type = RankedTensorType::get(shape, *et);
  int64_t n = numElements(shape);
  int dt = t.data_type();
  unsigned bytesPer = dt == onnx::TensorProto::BOOL ? 1 : (et->getIntOrFloatBitWidth() + 7) / 8;

  std::string external;
  StringRef raw;
  bool haveRaw = false;
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto &kv : t.external_data()) {
      if (kv.key() == "location")
        location = kv.value();
      else if (kv.key() == "offset")
        offset = std::atoll(kv.value().c_str());
      else if (kv.key() == "length")
        length = std::atoll(kv.value().c_str());
    }
    if (location.empty()) {
      err() << what << " has external data without a 'location'";
      return failure();
    }
    SmallString<256> path(opts.modelDir);
    llvm::sys::path::append(path, location);
    auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
    if (!buf) {
      err() << what << ": cannot open external data file '" << path
            << "': " << buf.getError().message();
      return failure();
    }
    StringRef all = (*buf)->getBuffer();
    if (length < 0)
      length = int64_t(all.size()) - offset;
    if (offset < 0 || offset + length > int64_t(all.size())) {
      err() << what << ": external data file '" << path << "' has " << all.size()
            << " bytes, less than offset " << offset << " + length " << length;
      return failure();
    }
    external = all.substr(offset, length).str();
    raw = external;
    haveRaw = true;
  } else if (t.has_raw_data()) {
    raw = t.raw_data();
    haveRaw = true;
  }
  if (haveRaw) {
    if (int64_t(raw.size()) != n * int64_t(bytesPer)) {
      err() << what << " has " << raw.size() << " bytes of data, expected " << n * bytesPer
            << " for " << type;
      return failure();
    }
    if (dt == onnx::TensorProto::BOOL) {
      SmallVector<bool> v;
      for (char c : raw)
        v.push_back(c != 0);
      return DenseElementsAttr::get(type, ArrayRef<bool>(v.data(), v.size()));
    }
    bool splat = false;
    if (!DenseElementsAttr::isValidRawBuffer(type, ArrayRef<char>(raw.data(), raw.size()), splat)) {
      err() << what << ": invalid raw data buffer";
      return failure();
    }
    return DenseElementsAttr::getFromRawBuffer(type, ArrayRef<char>(raw.data(), raw.size()));
  }
  // Typed fields.
  auto sizeErr = [&](int64_t got) -> FailureOr<DenseElementsAttr> {
    err() << what << " has " << got << " values, expected " << n << " for " << type;
    return failure();
  };
  switch (dt) {
  case onnx::TensorProto::FLOAT: {
    if (t.float_data_size() != n)
      return sizeErr(t.float_data_size());
    return DenseElementsAttr::get(type, ArrayRef<float>(t.float_data().data(), n));
  }
  case onnx::TensorProto::DOUBLE: {
    if (t.double_data_size() != n)
      return sizeErr(t.double_data_size());
    return DenseElementsAttr::get(type, ArrayRef<double>(t.double_data().data(), n));
  }
  case onnx::TensorProto::INT64: {
    if (t.int64_data_size() != n)
      return sizeErr(t.int64_data_size());
    return DenseElementsAttr::get(type, ArrayRef<int64_t>(t.int64_data().data(), n));
  }
  case onnx::TensorProto::FLOAT16:
  case onnx::TensorProto::BFLOAT16: {
    if (t.int32_data_size() != n)
      return sizeErr(t.int32_data_size());
    std::vector<uint16_t> bits;
    for (int32_t v : t.int32_data())
      bits.push_back(uint16_t(v));
    return DenseElementsAttr::getFromRawBuffer(
        type, ArrayRef<char>(reinterpret_cast<const char *>(bits.data()), bits.size() * 2));
  }
  default: {
    if (t.int32_data_size() != n)
      return sizeErr(t.int32_data_size());
    Host h;
    h.shape = shape;
    h.elem = *et;
    for (int32_t v : t.int32_data())
      h.i.push_back(v);
    return fromHost(h);
  }
  }
}

FailureOr<SmallVector<int64_t>> Importer::inputShape(const onnx::ValueInfoProto &vi) {
  auto pin = opts.shapes.find(vi.name());
  const auto &tt = vi.type().tensor_type();
  if (pin != opts.shapes.end()) {
    if (tt.has_shape() && tt.shape().dim_size() != int64_t(pin->second.size())) {
      err() << "--shape " << vi.name() << ": pinned rank " << pin->second.size()
            << " differs from the model's rank " << tt.shape().dim_size();
      return failure();
    }
    if (tt.has_shape())
      for (int i = 0; i < tt.shape().dim_size(); ++i) {
        const auto &d = tt.shape().dim(i);
        if (d.has_dim_value() && d.dim_value() != pin->second[i]) {
          err() << "--shape " << vi.name() << ": dimension " << i << " is " << d.dim_value()
                << " in the model, pinned to " << pin->second[i];
          return failure();
        }
      }
    return pin->second;
  }
  if (!tt.has_shape()) {
    err() << "graph input '" << vi.name()
          << "' has no shape; pin it with --shape " << vi.name() << "=<d0>x<d1>...";
    return failure();
  }
  SmallVector<int64_t> shape;
  for (int i = 0; i < tt.shape().dim_size(); ++i) {
    const auto &d = tt.shape().dim(i);
    if (!d.has_dim_value() || d.dim_value() < 0) {
      err() << "graph input '" << vi.name() << "' has dynamic dimension " << i
            << (d.has_dim_param() ? " ('" + d.dim_param() + "')" : std::string())
            << "; pin its shape with --shape " << vi.name() << "=<d0>x<d1>...";
      return failure();
    }
    shape.push_back(d.dim_value());
  }
  return shape;
}

OwningOpRef<ModuleOp> Importer::run(StringRef bytes) {
  if (bytes.size() > size_t(std::numeric_limits<int>::max()) ||
      !model.ParseFromArray(bytes.data(), int(bytes.size()))) {
    emitError(loc) << "cannot parse '" << opts.modelName
                   << "' as an ONNX ModelProto (truncated or malformed protobuf)";
    return nullptr;
  }
  if (!model.has_graph()) {
    emitError(loc) << "'" << opts.modelName << "' has no graph (not an ONNX model?)";
    return nullptr;
  }
  if (model.opset_import_size() == 0) {
    emitError(loc) << "bad opset: the model has no opset_import";
    return nullptr;
  }
  for (const auto &o : model.opset_import()) {
    std::string dom = o.domain() == "ai.onnx" ? "" : o.domain();
    if (o.version() <= 0) {
      emitError(loc) << "bad opset: domain '" << (dom.empty() ? "ai.onnx" : dom) << "' version "
                     << o.version();
      return nullptr;
    }
    if (dom.empty() && o.version() > kMaxDefaultOpset) {
      emitError(loc) << "bad opset: ai.onnx version " << o.version()
                     << " is newer than the newest supported (" << kMaxDefaultOpset << ")";
      return nullptr;
    }
    opsets[dom] = o.version();
  }

  const onnx::GraphProto &g = model.graph();
  auto module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module.getBody());
  auto ownedModule = OwningOpRef<ModuleOp>(module);
  module->setAttr("kvc.onnx.ir_version", b.getI64IntegerAttr(model.ir_version()));
  SmallVector<NamedAttribute> opsetAttrs;
  for (auto &[d, v] : opsets)
    opsetAttrs.push_back(b.getNamedAttr(d.empty() ? "ai.onnx" : d, b.getI64IntegerAttr(v)));
  module->setAttr("kvc.onnx.opset_imports", b.getDictionaryAttr(opsetAttrs));
  if (!model.producer_name().empty())
    module->setAttr("kvc.onnx.producer", b.getStringAttr(model.producer_name()));

  // Initializers.
  for (const auto &t : g.initializer()) {
    auto a = tensorAttr(t);
    if (failed(a))
      return nullptr;
    vals[t.name()] = mkc(*a);
  }
  // Graph inputs (those that are also initializers are constants).
  SmallVector<Type> argTypes;
  SmallVector<std::string> argNames;
  for (const auto &vi : g.input()) {
    if (vals.count(vi.name()))
      continue;
    if (!vi.type().has_tensor_type()) {
      emitError(loc) << "graph input '" << vi.name() << "' is not a tensor (sequence/map/optional inputs are unsupported)";
      return nullptr;
    }
    auto et = elemType(vi.type().tensor_type().elem_type(), "graph input '" + vi.name() + "'");
    if (failed(et))
      return nullptr;
    auto shape = inputShape(vi);
    if (failed(shape))
      return nullptr;
    argTypes.push_back(RankedTensorType::get(*shape, *et));
    argNames.push_back(vi.name());
  }
  for (auto &[name, _] : opts.shapes)
    if (!llvm::is_contained(argNames, name)) {
      emitError(loc) << "--shape names '" << name << "', which is not a graph input";
      return nullptr;
    }

  auto func = func::FuncOp::create(b, loc, "main", b.getFunctionType(argTypes, {}));
  Block *entry = func.addEntryBlock();
  for (size_t i = 0; i < argNames.size(); ++i) {
    func.setArgAttr(i, "kvc.onnx.name", b.getStringAttr(argNames[i]));
    vals[argNames[i]] = mk(entry->getArgument(i));
  }
  b.setInsertionPointToEnd(entry);

  for (const auto &n : g.node())
    if (failed(importNode(n)))
      return nullptr;
  node = nullptr;

  // Value infos: shapes are computed at import; a disagreeing (static) value_info is reported as
  // a warning, since exporters sometimes leave stale ones.
  for (const auto &vi : g.value_info()) {
    auto it = vals.find(vi.name());
    if (it == vals.end() || !vi.type().has_tensor_type())
      continue;
    const auto &tt = vi.type().tensor_type();
    if (!tt.has_shape())
      continue;
    bool differs = tt.shape().dim_size() != it->second.rank();
    for (int i = 0; !differs && i < tt.shape().dim_size(); ++i)
      differs = tt.shape().dim(i).has_dim_value() &&
                tt.shape().dim(i).dim_value() != it->second.shape()[i];
    if (differs)
      emitWarning(loc) << "value_info '" << vi.name() << "' disagrees with the computed type "
                       << it->second.type;
  }

  // Outputs.
  SmallVector<Value> results;
  SmallVector<Type> resTypes;
  for (const auto &vi : g.output()) {
    auto it = vals.find(vi.name());
    if (it == vals.end()) {
      emitError(loc) << "graph output '" << vi.name() << "' is not produced by any node";
      return nullptr;
    }
    TV &t = it->second;
    if (vi.type().has_tensor_type() && vi.type().tensor_type().elem_type() != 0) {
      auto et = elemType(vi.type().tensor_type().elem_type(), "graph output '" + vi.name() + "'");
      if (failed(et))
        return nullptr;
      if (*et != t.elem()) {
        emitError(loc) << "graph output '" << vi.name() << "' is declared " << *et
                       << " but computes " << t.elem();
        return nullptr;
      }
      const auto &tt = vi.type().tensor_type();
      if (tt.has_shape()) {
        bool bad = tt.shape().dim_size() != t.rank();
        for (int i = 0; !bad && i < tt.shape().dim_size(); ++i)
          bad = tt.shape().dim(i).has_dim_value() && tt.shape().dim(i).dim_value() != t.shape()[i];
        if (bad) {
          emitError(loc) << "graph output '" << vi.name()
                         << "': the declared shape differs from the computed " << t.type;
          return nullptr;
        }
      }
    }
    Value r = mat(t);
    // For execution, every result gets its own buffer: arguments, constants and views
    // (reshapes, slices) are copied. (The CPU pipeline's deallocation would otherwise return
    // them through bufferization.clone, which it does not lower.)
    if (opts.emitCInterface) {
      Operation *def = r.getDefiningOp();
      bool fresh = def && isa<linalg::LinalgOp>(def) && !isa<linalg::CopyOp>(def) &&
                   !llvm::is_contained(results, r);
      if (!fresh)
        r = linalg::CopyOp::create(b, loc, r, empty(t.shape(), t.elem())).getResult(0);
    }
    results.push_back(r);
    resTypes.push_back(t.type);
  }
  func::ReturnOp::create(b, loc, results);
  func.setType(b.getFunctionType(argTypes, resTypes));
  for (int i = 0; i < g.output_size(); ++i)
    func.setResultAttr(i, "kvc.onnx.name", b.getStringAttr(g.output(i).name()));
  if (opts.emitCInterface)
    func->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  if (failed(verify(module))) {
    emitError(loc) << "internal error: the imported module does not verify";
    return nullptr;
  }
  return ownedModule;
}

LogicalResult Importer::importNode(const onnx::NodeProto &n) {
  node = &n;
  std::string dom = n.domain() == "ai.onnx" ? "" : n.domain();
  auto os = opsets.find(dom);
  opset = os == opsets.end() ? 0 : os->second;
  if (os == opsets.end())
    return err() << "bad opset: domain '" << dom << "' is not in the model's opset_import";
  // Dispatch on (domain, op_type, opset).
  const OpEntry *best = nullptr;
  int64_t minSince = std::numeric_limits<int64_t>::max();
  for (const OpEntry &e : table()) {
    if (dom != e.domain || n.op_type() != e.opType)
      continue;
    minSince = std::min(minSince, e.since);
    if (e.since <= opset && (!best || e.since > best->since))
      best = &e;
  }
  if (!best) {
    if (minSince != std::numeric_limits<int64_t>::max())
      return err() << "unsupported op: '" << n.op_type() << "' is supported from opset "
                   << minSince << " on";
    return err() << "unsupported op '" << n.op_type() << "'";
  }
  for (const auto &a : n.attribute())
    if (a.type() == onnx::AttributeProto::GRAPH || a.type() == onnx::AttributeProto::GRAPHS)
      return err() << "unsupported attribute '" << a.name() << "': subgraphs are not supported";
  // Inputs every handler relies on (optional ones are checked by the handlers).
  static const llvm::StringMap<int> required = {
      {"Constant", 0}, {"MatMul", 2}, {"Gemm", 2}, {"Gather", 2}, {"CastLike", 2}, {"Where", 3},
      {"Range", 3}, {"Add", 2}, {"Sub", 2}, {"Mul", 2}, {"Div", 2}, {"Pow", 2}, {"Mod", 2},
      {"Equal", 2}, {"Less", 2}, {"LessOrEqual", 2}, {"Greater", 2}, {"GreaterOrEqual", 2},
      {"And", 2}, {"Or", 2}, {"Xor", 2}, {"Attention", 3}, {"GatherND", 2},
      {"RotaryEmbedding", 3}};
  auto req = required.find(n.op_type());
  int need = req == required.end() ? 1 : req->second;
  for (int i = 0; i < need; ++i)
    if (i >= n.input_size() || n.input(i).empty())
      return err() << "missing required input " << i;
  ins.clear();
  for (const auto &name : n.input()) {
    if (name.empty()) {
      ins.push_back(TV());
      continue;
    }
    auto it = vals.find(name);
    if (it == vals.end())
      return err() << "input '" << name << "' is not defined before this node";
    ins.push_back(it->second);
  }
  return (this->*(best->handler))();
}

//===----------------------------------------------------------------------===//
// Handlers: elementwise
//===----------------------------------------------------------------------===//

LogicalResult Importer::ewBinary(EW k, bool isCmp) {
  if (!in(0) || !in(1))
    return err() << "expects 2 inputs";
  TV a = in(0), c = in(1);
  if ((k == EW::And || k == EW::Or || k == EW::Xor) && !a.elem().isInteger(1))
    return err() << "expects bool operands, got " << a.elem();
  if ((k == EW::Pow || k == EW::Mod) && a.elem().isInteger(1))
    return err() << "does not take bool operands";
  if (k != EW::Pow && a.elem() != c.elem())
    return err() << "operand element types differ: " << a.elem() << " vs " << c.elem();
  auto r = elementwise(k, {a, c}, isCmp ? Type(b.getI1Type()) : a.elem());
  if (failed(r))
    return failure();
  setOut(0, *r);
  return success();
}

LogicalResult Importer::ewUnary(EW k, bool floatOnly) {
  if (!in(0))
    return err() << "expects 1 input";
  if (floatOnly && !isa<FloatType>(in(0).elem()))
    return err() << "expects a float operand, got " << in(0).elem();
  Type out = (k == EW::IsNaN || k == EW::IsInf || k == EW::IsInfPos || k == EW::IsInfNeg)
                 ? Type(b.getI1Type()) : in(0).elem();
  auto r = elementwise(k, {in(0)}, out);
  if (failed(r))
    return failure();
  setOut(0, *r);
  return success();
}

LogicalResult Importer::onAdd() { return ewBinary(EW::Add, false); }
LogicalResult Importer::onSub() { return ewBinary(EW::Sub, false); }
LogicalResult Importer::onMul() { return ewBinary(EW::Mul, false); }
LogicalResult Importer::onDiv() { return ewBinary(EW::Div, false); }
LogicalResult Importer::onPow() { return ewBinary(EW::Pow, false); }
LogicalResult Importer::onMod() { return ewBinary(attrI("fmod", 0) ? EW::FMod : EW::Mod, false); }
LogicalResult Importer::onEqual() { return ewBinary(EW::Eq, true); }
LogicalResult Importer::onLess() { return ewBinary(EW::Lt, true); }
LogicalResult Importer::onLessOrEqual() { return ewBinary(EW::Le, true); }
LogicalResult Importer::onGreater() { return ewBinary(EW::Gt, true); }
LogicalResult Importer::onGreaterOrEqual() { return ewBinary(EW::Ge, true); }
LogicalResult Importer::onAnd() { return ewBinary(EW::And, false); }
LogicalResult Importer::onOr() { return ewBinary(EW::Or, false); }
LogicalResult Importer::onXor() { return ewBinary(EW::Xor, false); }
LogicalResult Importer::onNot() {
  if (!in(0).elem().isInteger(1))
    return err() << "expects a bool operand, got " << in(0).elem();
  return ewUnary(EW::Not, false);
}
LogicalResult Importer::onNeg() { return ewUnary(EW::Neg, false); }
LogicalResult Importer::onSqrt() { return ewUnary(EW::Sqrt, true); }
LogicalResult Importer::onReciprocal() { return ewUnary(EW::Recip, true); }
LogicalResult Importer::onExp() { return ewUnary(EW::Exp, true); }
LogicalResult Importer::onLog() { return ewUnary(EW::Log, true); }
LogicalResult Importer::onTanh() { return ewUnary(EW::Tanh, true); }
LogicalResult Importer::onSigmoid() { return ewUnary(EW::Sigmoid, true); }
LogicalResult Importer::onErf() { return ewUnary(EW::Erf, true); }
LogicalResult Importer::onCos() { return ewUnary(EW::Cos, true); }
LogicalResult Importer::onSin() { return ewUnary(EW::Sin, true); }
LogicalResult Importer::onAbs() { return ewUnary(EW::Abs, false); }
LogicalResult Importer::onRelu() { return ewUnary(EW::Relu, false); }
LogicalResult Importer::onFloor() { return ewUnary(EW::Floor, true); }
LogicalResult Importer::onCeil() { return ewUnary(EW::Ceil, true); }
LogicalResult Importer::onIsNaN() { return ewUnary(EW::IsNaN, true); }
LogicalResult Importer::onIsInf() {
  bool pos = attrI("detect_positive", 1), neg = attrI("detect_negative", 1);
  if (pos && neg)
    return ewUnary(EW::IsInf, true);
  if (pos)
    return ewUnary(EW::IsInfPos, true);
  if (neg)
    return ewUnary(EW::IsInfNeg, true);
  Host h;
  h.shape.assign(in(0).shape().begin(), in(0).shape().end());
  h.elem = b.getI1Type();
  h.i.assign(numElements(h.shape), 0);
  setOut(0, mkHost(h));
  return success();
}

LogicalResult Importer::onGelu() {
  std::string approx = attr("approximate") ? attr("approximate")->s() : "none";
  if (approx != "none" && approx != "tanh")
    return unsupportedAttr("approximate", "must be 'none' or 'tanh'");
  TV x = in(0);
  Type e = x.elem();
  if (!isa<FloatType>(e))
    return err() << "input must be a float tensor";
  auto mulc = [&](TV t, double c) {
    return *elementwise(EW::Mul, {t, mkHost(Host{{}, e, {}, {c}})}, e);
  };
  if (approx == "tanh") {
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    TV x3 = *elementwise(EW::Mul, {*elementwise(EW::Mul, {x, x}, e), x}, e);
    TV inner = mulc(*elementwise(EW::Add, {x, mulc(x3, 0.044715)}, e), std::sqrt(2.0 / M_PI));
    TV th = *elementwise(EW::Tanh, {inner}, e);
    TV onePlus = *elementwise(EW::Add, {th, mkHost(Host{{}, e, {}, {1.0}})}, e);
    setOut(0, mulc(*elementwise(EW::Mul, {x, onePlus}, e), 0.5));
    return success();
  }
  TV erf = *elementwise(EW::Erf, {mulc(x, M_SQRT1_2)}, e);
  TV onePlus = *elementwise(EW::Add, {erf, mkHost(Host{{}, e, {}, {1.0}})}, e);
  setOut(0, mulc(*elementwise(EW::Mul, {x, onePlus}, e), 0.5));
  return success();
}

/// Max/Min: the broadcast elementwise op folded over all (at least one) inputs.
LogicalResult Importer::ewVariadic(EW k) {
  TV acc = in(0);
  for (size_t i = 1; i < ins.size(); ++i) {
    if (!in(i) || in(i).elem() != acc.elem())
      return err() << "inputs must be present and share one element type";
    auto r = elementwise(k, {acc, in(i)}, acc.elem());
    if (failed(r))
      return failure();
    acc = *r;
  }
  setOut(0, acc);
  return success();
}
LogicalResult Importer::onMax() { return ewVariadic(EW::Max); }
LogicalResult Importer::onMin() { return ewVariadic(EW::Min); }

LogicalResult Importer::onWhere() {
  if (!in(0) || !in(1) || !in(2))
    return err() << "expects 3 inputs";
  if (!in(0).elem().isInteger(1))
    return err() << "condition must be bool, got " << in(0).elem();
  if (in(1).elem() != in(2).elem())
    return err() << "X and Y element types differ: " << in(1).elem() << " vs " << in(2).elem();
  auto r = elementwise(EW::Where, {in(0), in(1), in(2)}, in(1).elem());
  if (failed(r))
    return failure();
  setOut(0, *r);
  return success();
}

LogicalResult Importer::onCast() {
  auto to = elemType(attrI("to", 0), "attribute 'to'");
  if (failed(to))
    return failure();
  setOut(0, castTo(in(0), *to));
  return success();
}
LogicalResult Importer::onCastLike() {
  setOut(0, castTo(in(0), in(1).elem()));
  return success();
}
LogicalResult Importer::onIdentity() {
  setOut(0, in(0));
  return success();
}

//===----------------------------------------------------------------------===//
// Handlers: constants and shapes
//===----------------------------------------------------------------------===//

LogicalResult Importer::onConstant() {
  if (node->attribute_size() != 1)
    return err() << "expects exactly one attribute";
  const auto &a = node->attribute(0);
  Host h;
  if (a.name() == "value") {
    auto t = tensorAttr(a.t());
    if (failed(t))
      return failure();
    setOut(0, mkc(*t));
    return success();
  }
  if (a.name() == "value_float") {
    h = Host{{}, b.getF32Type(), {}, {a.f()}};
  } else if (a.name() == "value_floats") {
    h = Host{{a.floats_size()}, b.getF32Type(), {}, {}};
    for (float f : a.floats())
      h.f.push_back(f);
  } else if (a.name() == "value_int") {
    h = Host{{}, b.getI64Type(), {a.i()}, {}};
  } else if (a.name() == "value_ints") {
    h = Host{{a.ints_size()}, b.getI64Type(), {}, {}};
    for (int64_t v : a.ints())
      h.i.push_back(v);
  } else {
    return unsupportedAttr(a.name(), "only value, value_float(s) and value_int(s) are supported");
  }
  setOut(0, mkHost(h));
  return success();
}

LogicalResult Importer::onConstantOfShape() {
  auto shape = requireConstInts(0, "shape");
  if (failed(shape))
    return failure();
  for (int64_t d : *shape)
    if (d < 0)
      return err() << "negative dimension " << d << " in shape";
  DenseElementsAttr v;
  if (auto *a = attr("value")) {
    auto t = tensorAttr(a->t());
    if (failed(t))
      return failure();
    v = *t;
  } else {
    v = fromHost(Host{{1}, b.getF32Type(), {}, {0.0}});
  }
  auto type = RankedTensorType::get(*shape, v.getElementType());
  setOut(0, mkc(DenseElementsAttr::get(type, v.getValues<Attribute>()[0])));
  return success();
}

LogicalResult Importer::onShape() {
  int64_t r = in(0).rank();
  int64_t start = attrI("start", 0), end = attrI("end", r);
  auto clampAxis = [&](int64_t a) { return std::clamp<int64_t>(a < 0 ? a + r : a, 0, r); };
  start = clampAxis(start);
  end = clampAxis(end);
  Host h{{std::max<int64_t>(0, end - start)}, b.getI64Type(), {}, {}};
  for (int64_t i = start; i < end; ++i)
    h.i.push_back(in(0).shape()[i]);
  setOut(0, mkHost(h));
  return success();
}

LogicalResult Importer::onSize() {
  setOut(0, mkHost(Host{{}, b.getI64Type(), {numElements(in(0).shape())}, {}}));
  return success();
}

LogicalResult Importer::onReshape() {
  auto target = requireConstInts(1, "shape");
  if (failed(target))
    return failure();
  TV x = in(0);
  bool allowZero = attrI("allowzero", 0);
  SmallVector<int64_t> shape;
  int64_t inferAt = -1, known = 1;
  for (size_t i = 0; i < target->size(); ++i) {
    int64_t d = (*target)[i];
    if (d == 0 && !allowZero) {
      if (int64_t(i) >= x.rank())
        return err() << "shape[" << i << "] = 0 copies a dimension the input " << x.type << " lacks";
      d = x.shape()[i];
    }
    if (d == -1) {
      if (inferAt >= 0)
        return err() << "shape has more than one -1";
      inferAt = i;
      shape.push_back(1);
      continue;
    }
    if (d < 0)
      return err() << "invalid dimension " << d << " in shape";
    known *= d;
    shape.push_back(d);
  }
  int64_t n = numElements(x.shape());
  if (inferAt >= 0) {
    if (known == 0 || n % known != 0)
      return err() << "cannot infer -1: " << n << " elements into a shape with product " << known;
    shape[inferAt] = n / known;
  }
  if (numElements(shape) != n)
    return err() << "cannot reshape " << x.type << " (" << n << " elements) to "
                 << numElements(shape) << " elements";
  setOut(0, reshape(x, shape));
  return success();
}

LogicalResult Importer::onFlatten() {
  TV x = in(0);
  auto axis = normAxis(attrI("axis", 1), x.rank() + 1);
  if (failed(axis))
    return failure();
  int64_t outer = numElements(x.shape().take_front(*axis));
  int64_t inner = numElements(x.shape().drop_front(*axis));
  setOut(0, reshape(x, {outer, inner}));
  return success();
}

LogicalResult Importer::onTranspose() {
  TV x = in(0);
  SmallVector<int64_t> perm;
  if (auto p = attrInts("perm")) {
    perm = *p;
  } else {
    for (int64_t i = x.rank() - 1; i >= 0; --i)
      perm.push_back(i);
  }
  if (int64_t(perm.size()) != x.rank())
    return err() << "perm has " << perm.size() << " entries for rank " << x.rank();
  SmallVector<bool> seen(x.rank(), false);
  for (int64_t &p : perm) {
    if (p < 0)
      p += x.rank();
    if (p < 0 || p >= x.rank() || seen[p])
      return err() << "perm is not a permutation";
    seen[p] = true;
  }
  setOut(0, transpose(x, perm));
  return success();
}

/// The axes of Squeeze/Unsqueeze: the `axes` attribute before opset 13, then input 1 (a
/// constant; optional for Squeeze, where no axes means every size-1 dimension).
FailureOr<SmallVector<int64_t>> Importer::squeezeAxes(bool inputRequired) {
  if (opset < 13) {
    if (auto a = attrInts("axes"))
      return SmallVector<int64_t>(*a);
    return SmallVector<int64_t>();
  }
  if (!inputRequired && !in(1))
    return SmallVector<int64_t>();
  return requireConstInts(1, "axes");
}

LogicalResult Importer::onSqueeze() {
  TV x = in(0);
  auto axesOr = squeezeAxes(/*inputRequired=*/false);
  if (failed(axesOr))
    return failure();
  SmallVector<int64_t> axes = *axesOr;
  SmallVector<int64_t> shape;
  for (int64_t &a : axes) {
    auto n = normAxis(a, x.rank());
    if (failed(n))
      return failure();
    a = *n;
    if (x.shape()[a] != 1)
      return err() << "cannot squeeze axis " << a << " of size " << x.shape()[a];
  }
  for (int64_t d = 0; d < x.rank(); ++d) {
    bool drop = axes.empty() ? x.shape()[d] == 1 : llvm::is_contained(axes, d);
    if (!drop)
      shape.push_back(x.shape()[d]);
  }
  setOut(0, reshape(x, shape));
  return success();
}

LogicalResult Importer::onUnsqueeze() {
  TV x = in(0);
  auto axesOr = squeezeAxes(/*inputRequired=*/true);
  if (failed(axesOr))
    return failure();
  SmallVector<int64_t> axes = *axesOr;
  int64_t r = x.rank() + axes.size();
  for (int64_t &a : axes) {
    auto n = normAxis(a, r);
    if (failed(n))
      return failure();
    a = *n;
  }
  for (size_t i = 0; i < axes.size(); ++i)
    if (llvm::is_contained(ArrayRef<int64_t>(axes).drop_front(i + 1), axes[i]))
      return err() << "axis " << axes[i] << " repeated";
  SmallVector<int64_t> shape;
  int64_t src = 0;
  for (int64_t d = 0; d < r; ++d)
    shape.push_back(llvm::is_contained(axes, d) ? 1 : x.shape()[src++]);
  setOut(0, reshape(x, shape));
  return success();
}

LogicalResult Importer::onConcat() {
  SmallVector<TV> xs;
  for (const TV &t : ins)
    if (t)
      xs.push_back(t);
  if (xs.empty())
    return err() << "expects at least one input";
  auto axis = normAxis(attrI("axis", 0), xs[0].rank());
  if (failed(axis))
    return failure();
  for (const TV &t : xs) {
    if (t.rank() != xs[0].rank() || t.elem() != xs[0].elem())
      return err() << "inputs differ in rank or element type: " << xs[0].type << " vs " << t.type;
    for (int64_t d = 0; d < t.rank(); ++d)
      if (d != *axis && t.shape()[d] != xs[0].shape()[d])
        return err() << "inputs differ outside axis " << *axis << ": " << xs[0].type << " vs "
                     << t.type;
  }
  setOut(0, concat(xs, *axis));
  return success();
}

LogicalResult Importer::onSlice() {
  TV x = in(0);
  SmallVector<int64_t> starts, ends, axes, steps;
  if (opset < 10) {
    starts = attrInts("starts").value_or(SmallVector<int64_t>());
    ends = attrInts("ends").value_or(SmallVector<int64_t>());
    axes = attrInts("axes").value_or(SmallVector<int64_t>());
  } else {
    auto s = requireConstInts(1, "starts");
    auto e = requireConstInts(2, "ends");
    if (failed(s) || failed(e))
      return failure();
    starts = *s;
    ends = *e;
    if (in(3)) {
      auto a = requireConstInts(3, "axes");
      if (failed(a))
        return failure();
      axes = *a;
    }
    if (in(4)) {
      auto st = requireConstInts(4, "steps");
      if (failed(st))
        return failure();
      steps = *st;
    }
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i)
      axes.push_back(i);
  if (steps.empty())
    steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    return err() << "starts, ends, axes and steps differ in length";
  SmallVector<int64_t> offs(x.rank(), 0), sizes(x.shape()), strides(x.rank(), 1);
  for (size_t i = 0; i < starts.size(); ++i) {
    auto ax = normAxis(axes[i], x.rank());
    if (failed(ax))
      return failure();
    int64_t dim = x.shape()[*ax], st = steps[i];
    if (st == 0)
      return err() << "step 0 on axis " << *ax;
    int64_t s = starts[i], e = ends[i];
    if (s < 0)
      s += dim;
    if (e < 0)
      e += dim;
    int64_t n;
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      n = e > s ? (e - s + st - 1) / st : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      n = s > e ? (s - e - st - 1) / -st : 0;
    }
    offs[*ax] = s;
    sizes[*ax] = n;
    strides[*ax] = st;
  }
  if (llvm::any_of(strides, [](int64_t s) { return s < 0; }) &&
      !foldable({x}, numElements(sizes)))
    return err() << "negative steps are only supported on (small) constants";
  setOut(0, slice(x, offs, sizes, strides));
  return success();
}

LogicalResult Importer::onSplit() {
  TV x = in(0);
  auto axis = normAxis(attrI("axis", 0), x.rank());
  if (failed(axis))
    return failure();
  int64_t dim = x.shape()[*axis];
  SmallVector<int64_t> sizes;
  if (opset >= 13 && in(1)) {
    auto s = requireConstInts(1, "split");
    if (failed(s))
      return failure();
    sizes = *s;
  } else if (opset < 13 && attrInts("split")) {
    sizes = *attrInts("split");
  } else {
    int64_t n = attr("num_outputs") ? attrI("num_outputs", 1) : node->output_size();
    if (n <= 0)
      return err() << "num_outputs must be positive";
    int64_t chunk = (dim + n - 1) / n;
    for (int64_t i = 0; i < n; ++i)
      sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
  }
  if (llvm::any_of(sizes, [](int64_t v) { return v < 0; }))
    return err() << "negative split size";
  if (std::accumulate(sizes.begin(), sizes.end(), int64_t(0)) != dim)
    return err() << "split sizes do not add up to dimension " << dim;
  if (int64_t(sizes.size()) != node->output_size())
    return err() << "split has " << sizes.size() << " parts but the node has "
                 << node->output_size() << " outputs";
  int64_t at = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    SmallVector<int64_t> offs(x.rank(), 0), sz(x.shape()), st(x.rank(), 1);
    offs[*axis] = at;
    sz[*axis] = sizes[i];
    setOut(i, slice(x, offs, sz, st));
    at += sizes[i];
  }
  return success();
}

LogicalResult Importer::onExpand() {
  auto target = requireConstInts(1, "shape");
  if (failed(target))
    return failure();
  TV x = in(0);
  if (llvm::any_of(*target, [](int64_t d) { return d < 0; }))
    return err() << "negative dimension in shape";
  auto shape = broadcastShapes({SmallVector<int64_t>(x.shape()), *target});
  if (!shape)
    return err() << "cannot expand " << x.type << " to the requested shape";
  setOut(0, broadcastTo(x, *shape));
  return success();
}

LogicalResult Importer::onGather() {
  TV data = in(0), idx = in(1);
  auto axis = normAxis(attrI("axis", 0), data.rank());
  if (failed(axis))
    return failure();
  if (isa<FloatType>(idx.elem()))
    return err() << "indices must be integers";
  int64_t dim = data.shape()[*axis];
  SmallVector<int64_t> shape(data.shape().take_front(*axis));
  llvm::append_range(shape, idx.shape());
  llvm::append_range(shape, data.shape().drop_front(*axis + 1));
  if (idx.c) {
    Host hi = toHost(idx.c);
    for (int64_t &v : hi.i) {
      if (v < -dim || v >= dim)
        return err() << "index " << v << " out of range for dimension of size " << dim;
      if (v < 0)
        v += dim;
    }
    if (foldable({data}, numElements(shape))) {
      Host hd = toHost(data.c);
      auto st = stridesOf(hd.shape);
      auto ist = stridesOf(hi.shape);
      int64_t ir = idx.rank();
      std::vector<int64_t> src;
      forEachIndex(shape, [&](ArrayRef<int64_t> o, int64_t) {
        int64_t io = 0;
        for (int64_t d = 0; d < ir; ++d)
          io += o[*axis + d] * ist[d];
        int64_t off = 0;
        for (int64_t d = 0; d < data.rank(); ++d) {
          int64_t v = d < *axis ? o[d] : d == *axis ? hi.i[io] : o[d + ir - 1];
          off += v * st[d];
        }
        src.push_back(off);
      });
      setOut(0, mkHost(gatherHost(hd, shape, src)));
      return success();
    }
  }
  // linalg.generic over the output; indices read through a map, data through tensor.extract.
  int64_t rank = shape.size(), ir = idx.rank();
  SmallVector<AffineExpr> iex;
  for (int64_t d = 0; d < ir; ++d)
    iex.push_back(getAffineDimExpr(*axis + d, ctx));
  Value dataV = mat(data);
  Value init = empty(shape, data.elem());
  int64_t ax = *axis, dr = data.rank();
  auto op = linalg::GenericOp::create(
      b, loc, init.getType(), ValueRange{mat(idx)}, ValueRange{init},
      SmallVector<AffineMap>{AffineMap::get(rank, 0, iex, ctx),
                             AffineMap::getMultiDimIdentityMap(rank, ctx)},
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [&](OpBuilder &bb, Location l, ValueRange a) {
        Value i = arith::IndexCastOp::create(bb, l, bb.getIndexType(), a[0]);
        Value zero = arith::ConstantIndexOp::create(bb, l, 0);
        Value dimV = arith::ConstantIndexOp::create(bb, l, dim);
        Value neg = arith::CmpIOp::create(bb, l, arith::CmpIPredicate::slt, i, zero);
        i = arith::SelectOp::create(bb, l, neg, arith::AddIOp::create(bb, l, i, dimV), i);
        SmallVector<Value> coords;
        for (int64_t d = 0; d < dr; ++d) {
          if (d < ax)
            coords.push_back(linalg::IndexOp::create(bb, l, d));
          else if (d == ax)
            coords.push_back(i);
          else
            coords.push_back(linalg::IndexOp::create(bb, l, d + ir - 1));
        }
        linalg::YieldOp::create(bb, l, Value(tensor::ExtractOp::create(bb, l, dataV, coords)));
      });
  setOut(0, mk(op.getResult(0)));
  return success();
}

LogicalResult Importer::onGatherND() {
  TV data = in(0), idx = in(1);
  if (isa<FloatType>(idx.elem()))
    return err() << "indices must be integers";
  int64_t bd = attrI("batch_dims", 0), r = data.rank(), q = idx.rank();
  if (q < 1 || r < 1 || bd < 0 || bd >= std::min(q, r))
    return err() << "batch_dims " << bd << " out of range for data rank " << r
                 << " and indices rank " << q;
  int64_t k = idx.shape()[q - 1];
  if (k < 1 || k > r - bd)
    return err() << "indices' last dimension " << k << " must be in 1.." << r - bd;
  for (int64_t d = 0; d < bd; ++d)
    if (idx.shape()[d] != data.shape()[d])
      return err() << "batch dimension " << d << " differs: data " << data.shape()[d]
                   << ", indices " << idx.shape()[d];
  SmallVector<int64_t> shape(idx.shape().drop_back());
  llvm::append_range(shape, data.shape().drop_front(bd + k));
  int64_t rank = shape.size();
  if (idx.c) {
    Host hi = toHost(idx.c);
    int64_t n = hi.size() / k;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < k; ++j) {
        int64_t dim = data.shape()[bd + j];
        int64_t v = hi.i[t * k + j];
        if (v < -dim || v >= dim)
          return err() << "index " << v << " out of range for dimension " << bd + j
                       << " of size " << dim;
      }
  }
  // linalg.generic over the output; indices and data read with tensor.extract.
  Value dataV = mat(data), idxV = mat(idx);
  Value init = empty(shape, data.elem());
  ArrayRef<int64_t> dshape = data.shape();
  auto op = linalg::GenericOp::create(
      b, loc, init.getType(), ValueRange{}, ValueRange{init},
      SmallVector<AffineMap>{AffineMap::getMultiDimIdentityMap(rank, ctx)},
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [&](OpBuilder &bb, Location l, ValueRange) {
        SmallVector<Value> outIdx;
        for (int64_t d = 0; d < rank; ++d)
          outIdx.push_back(linalg::IndexOp::create(bb, l, d));
        SmallVector<Value> coords(outIdx.begin(), outIdx.begin() + bd);
        Value zero = arith::ConstantIndexOp::create(bb, l, 0);
        for (int64_t j = 0; j < k; ++j) {
          SmallVector<Value> ic(outIdx.begin(), outIdx.begin() + (q - 1));
          ic.push_back(arith::ConstantIndexOp::create(bb, l, j));
          Value i = tensor::ExtractOp::create(bb, l, idxV, ic);
          i = arith::IndexCastOp::create(bb, l, bb.getIndexType(), i);
          Value dimV = arith::ConstantIndexOp::create(bb, l, dshape[bd + j]);
          Value neg = arith::CmpIOp::create(bb, l, arith::CmpIPredicate::slt, i, zero);
          coords.push_back(
              arith::SelectOp::create(bb, l, neg, arith::AddIOp::create(bb, l, i, dimV), i));
        }
        for (int64_t d = q - 1; d < rank; ++d)
          coords.push_back(outIdx[d]);
        linalg::YieldOp::create(bb, l, Value(tensor::ExtractOp::create(bb, l, dataV, coords)));
      });
  setOut(0, mk(op.getResult(0)));
  return success();
}

LogicalResult Importer::onRotaryEmbedding() {
  // ai.onnx RotaryEmbedding (opset 23), as onnx/reference/ops/op_rotary_embedding.py:
  // X (B, H, S, D) or (B, S, H*D); cos/sin (B, S, rd/2), or (max_pos, rd/2) with position_ids
  // (B, S); rotate the first rd = rotary_embedding_dim (default D) features of every head,
  // halves (x1 = x[:rd/2], x2 = x[rd/2:]) or interleaved pairs (x[0::2], x[1::2]):
  // real = cos x1 - sin x2, imag = sin x1 + cos x2.
  TV x = in(0), cosC = in(1), sinC = in(2), pos = in(3);
  Type e = x.elem();
  if (!isa<FloatType>(e))
    return err() << "input must be a float tensor";
  if (x.rank() != 3 && x.rank() != 4)
    return err() << "input must be 3-D (B, S, H*D) or 4-D (B, H, S, D), got rank " << x.rank();
  int64_t B = x.shape()[0];
  int64_t S = x.rank() == 4 ? x.shape()[2] : x.shape()[1];
  int64_t D;
  if (x.rank() == 4) {
    D = x.shape()[3];
  } else {
    int64_t nh = attrI("num_heads", 0);
    if (nh <= 0 || x.shape()[2] % nh != 0)
      return unsupportedAttr("num_heads", "3-D input needs num_heads dividing the hidden size");
    D = x.shape()[2] / nh;
  }
  int64_t rd = attrI("rotary_embedding_dim", 0);
  if (rd == 0)
    rd = D;
  if (rd < 2 || rd > D || rd % 2 != 0)
    return unsupportedAttr("rotary_embedding_dim", "must be even and at most the head size");
  bool interleaved = attrI("interleaved", 0);
  int64_t half = rd / 2;
  if (cosC.type != sinC.type || cosC.elem() != e)
    return err() << "cos_cache and sin_cache must have the same shape and the input's type";
  if (pos) {
    if (isa<FloatType>(pos.elem()) || pos.rank() != 2 || pos.shape()[0] != B ||
        pos.shape()[1] != S)
      return err() << "position_ids must be an integer (B, S) = (" << B << ", " << S
                   << ") tensor";
    if (cosC.rank() != 2 || cosC.shape()[1] < half)
      return err() << "with position_ids, cos_cache/sin_cache must be (max_position, >= " << half
                   << ")";
  } else if (cosC.rank() != 3 || cosC.shape()[0] != B || cosC.shape()[1] != S ||
             cosC.shape()[2] < half) {
    return err() << "without position_ids, cos_cache/sin_cache must be (B, S, >= " << half
                 << ") = (" << B << ", " << S << ", " << half << ")";
  }
  setOut(0, rotary(x, cosC, sinC, pos, D, rd, interleaved));
  return success();
}

/// Rotary embedding of the first `rd` features of every head of x ((B, H, S, D) or (B, S, H*D)):
/// cos/sin (B, S, >= rd/2), or (max_pos, >= rd/2) read at pos (B, S) when `pos` is given.
TV Importer::rotary(TV x, TV cosC, TV sinC, TV pos, int64_t D, int64_t rd, bool interleaved) {
  Type e = x.elem();
  int64_t half = rd / 2;
  int64_t rank = x.rank();
  Value xV = mat(x), cosV = mat(cosC), sinV = mat(sinC), posV = pos ? mat(pos) : Value();
  int64_t maxPos = pos ? cosC.shape()[0] : 0;
  Value init = empty(x.shape(), e);
  auto op = linalg::GenericOp::create(
      b, loc, init.getType(), ValueRange{xV}, ValueRange{init},
      SmallVector<AffineMap>(2, AffineMap::getMultiDimIdentityMap(rank, ctx)),
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [&](OpBuilder &bb, Location l, ValueRange a) {
        auto c = [&](int64_t v) { return Value(arith::ConstantIndexOp::create(bb, l, v)); };
        SmallVector<Value> idx;
        for (int64_t d = 0; d < rank; ++d)
          idx.push_back(linalg::IndexOp::create(bb, l, d));
        Value bI = idx[0], sI = rank == 4 ? idx[2] : idx[1], last = idx[rank - 1];
        // Feature index within the head, and the head's first feature in the last dim.
        Value f = rank == 4 ? last : Value(arith::RemUIOp::create(bb, l, last, c(D)));
        Value base = arith::SubIOp::create(bb, l, last, f);
        Value rotated = arith::CmpIOp::create(bb, l, arith::CmpIPredicate::ult, f, c(rd));
        // Frequency index i, partner feature, and whether this is the first of the pair.
        Value i, partner, first;
        if (interleaved) {
          i = arith::DivUIOp::create(bb, l, f, c(2));
          Value odd = arith::RemUIOp::create(bb, l, f, c(2));
          first = arith::CmpIOp::create(bb, l, arith::CmpIPredicate::eq, odd, c(0));
          partner = arith::SelectOp::create(bb, l, first, arith::AddIOp::create(bb, l, f, c(1)),
                                            arith::SubIOp::create(bb, l, f, c(1)));
        } else {
          first = arith::CmpIOp::create(bb, l, arith::CmpIPredicate::ult, f, c(half));
          i = arith::SelectOp::create(bb, l, first, f, arith::SubIOp::create(bb, l, f, c(half)));
          partner = arith::SelectOp::create(bb, l, first, arith::AddIOp::create(bb, l, f, c(half)),
                                            arith::SubIOp::create(bb, l, f, c(half)));
        }
        // Outside the rotated features: read in range (the value is not used).
        i = arith::SelectOp::create(bb, l, rotated, i, c(0));
        partner = arith::SelectOp::create(bb, l, rotated, partner, f);
        SmallVector<Value> pIdx(idx);
        pIdx[rank - 1] = arith::AddIOp::create(bb, l, base, partner);
        Value xp = tensor::ExtractOp::create(bb, l, xV, pIdx);
        SmallVector<Value> cIdx;
        if (posV) {
          Value p = tensor::ExtractOp::create(bb, l, posV, ValueRange{bI, sI});
          p = arith::IndexCastOp::create(bb, l, bb.getIndexType(), p);
          // Clamp into the cache (onnxruntime rejects out-of-range ids; never read outside).
          p = arith::MaxSIOp::create(bb, l, p, c(0));
          p = arith::MinSIOp::create(bb, l, p, c(maxPos - 1));
          cIdx = {p, i};
        } else {
          cIdx = {bI, sI, i};
        }
        Value cs = tensor::ExtractOp::create(bb, l, cosV, cIdx);
        Value sn = tensor::ExtractOp::create(bb, l, sinV, cIdx);
        // first: x cos - xp sin; second: xp sin + x cos.
        Value xc = arith::MulFOp::create(bb, l, a[0], cs);
        Value ps = arith::MulFOp::create(bb, l, xp, sn);
        Value r = arith::SelectOp::create(bb, l, first, arith::SubFOp::create(bb, l, xc, ps),
                                          arith::AddFOp::create(bb, l, ps, xc));
        linalg::YieldOp::create(bb, l, Value(arith::SelectOp::create(bb, l, rotated, r, a[0])));
      });
  return mk(op.getResult(0));
}

LogicalResult Importer::onRange() {
  for (int i = 0; i < 3; ++i)
    if (!in(i) || !in(i).c)
      return err() << "input " << i << " must be a constant known at import time";
  Host s = toHost(in(0).c), l = toHost(in(1).c), d = toHost(in(2).c);
  if (s.size() != 1 || l.size() != 1 || d.size() != 1 || s.elem != l.elem || s.elem != d.elem)
    return err() << "start, limit and delta must be scalars of one type";
  Host r;
  r.elem = in(0).elem();
  if (s.isF()) {
    double st = s.f[0], li = l.f[0], de = d.f[0];
    if (de == 0)
      return err() << "delta is 0";
    double nd = std::ceil((li - st) / de);
    if (!(nd <= double(kMaxFoldElements)))
      return err() << "Range of " << nd << " elements is too large to fold";
    int64_t n = std::max<int64_t>(0, int64_t(nd));
    for (int64_t k = 0; k < n; ++k)
      r.f.push_back(st + k * de);
    r.shape = {n};
  } else {
    int64_t st = s.i[0], li = l.i[0], de = d.i[0];
    if (de == 0)
      return err() << "delta is 0";
    double nd = std::ceil((double(li) - double(st)) / double(de));
    if (!(nd <= double(kMaxFoldElements)))
      return err() << "Range of " << nd << " elements is too large to fold";
    int64_t n = std::max<int64_t>(0, int64_t(nd));
    for (int64_t k = 0; k < n; ++k)
      r.i.push_back(st + k * de);
    r.shape = {n};
  }
  setOut(0, mkHost(r));
  return success();
}

LogicalResult Importer::onPad() {
  if (attr("mode") && attr("mode")->s() != "constant")
    return unsupportedAttr("mode", "only 'constant' padding is supported");
  TV x = in(0);
  SmallVector<int64_t> pads;
  if (opset < 11) {
    pads = attrInts("pads").value_or(SmallVector<int64_t>());
  } else {
    auto p = requireConstInts(1, "pads");
    if (failed(p))
      return failure();
    pads = *p;
  }
  SmallVector<int64_t> axes;
  if (in(3)) {
    auto a = requireConstInts(3, "axes");
    if (failed(a))
      return failure();
    for (int64_t v : *a) {
      auto n = normAxis(v, x.rank());
      if (failed(n))
        return failure();
      axes.push_back(*n);
    }
  } else {
    for (int64_t d = 0; d < x.rank(); ++d)
      axes.push_back(d);
  }
  if (pads.size() != 2 * axes.size())
    return err() << "pads has " << pads.size() << " entries, expected " << 2 * axes.size();
  SmallVector<int64_t> lo(x.rank(), 0), hi(x.rank(), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    lo[axes[i]] = pads[i];
    hi[axes[i]] = pads[i + axes.size()];
    if (lo[axes[i]] < 0 || hi[axes[i]] < 0)
      return err() << "negative pads are not supported";
  }
  Value padV;
  Type e = x.elem();
  if (in(2) && in(2).c) {
    Host h = toHost(in(2).c);
    padV = isa<FloatType>(e) ? fconst(b, loc, e, h.f.empty() ? 0.0 : h.f[0])
                             : iconst(b, loc, e, h.i.empty() ? 0 : h.i[0]);
  } else if (in(2)) {
    TV cv = in(2);
    Value t = mat(cv);
    SmallVector<Value> zeros;
    padV = tensor::ExtractOp::create(b, loc, t, ValueRange(zeros));
    if (cv.rank() != 0)
      return err() << "a non-constant constant_value must be a scalar";
  } else {
    padV = isa<FloatType>(e) ? fconst(b, loc, e, 0.0) : iconst(b, loc, e, 0);
  }
  setOut(0, pad(x, lo, hi, padV));
  return success();
}

LogicalResult Importer::onTrilu() {
  TV x = in(0);
  if (x.rank() < 2)
    return err() << "input must have rank >= 2";
  int64_t k = 0;
  if (in(1)) {
    auto kv = requireConstInts(1, "k");
    if (failed(kv))
      return failure();
    if (kv->size() != 1)
      return err() << "k must hold one value";
    k = (*kv)[0];
  }
  bool upper = attrI("upper", 1);
  int64_t rank = x.rank();
  if (foldable({x}, numElements(x.shape()))) {
    Host hx = toHost(x.c);
    forEachIndex(x.shape(), [&](ArrayRef<int64_t> idx, int64_t lin) {
      int64_t i = idx[rank - 2], j = idx[rank - 1];
      bool keep = upper ? j >= i + k : j <= i + k;
      if (!keep) {
        if (hx.isF())
          hx.f[lin] = 0.0;
        else
          hx.i[lin] = 0;
      }
    });
    setOut(0, mkHost(hx));
    return success();
  }
  Value init = empty(x.shape(), x.elem());
  Type e = x.elem();
  auto op = linalg::GenericOp::create(
      b, loc, init.getType(), ValueRange{mat(x)}, ValueRange{init},
      SmallVector<AffineMap>(2, AffineMap::getMultiDimIdentityMap(rank, ctx)),
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [&](OpBuilder &bb, Location l, ValueRange a) {
        Value i = linalg::IndexOp::create(bb, l, rank - 2);
        Value j = linalg::IndexOp::create(bb, l, rank - 1);
        Value ik = arith::AddIOp::create(bb, l, i, arith::ConstantIndexOp::create(bb, l, k));
        // upper keeps j >= i + k; lower keeps j <= i + k.
        Value keep = arith::CmpIOp::create(bb, l, upper ? arith::CmpIPredicate::sge
                                                         : arith::CmpIPredicate::sle, j, ik);
        Value zero = isa<FloatType>(e) ? fconst(bb, l, e, 0.0) : iconst(bb, l, e, 0);
        linalg::YieldOp::create(bb, l, Value(arith::SelectOp::create(bb, l, keep, a[0], zero)));
      });
  setOut(0, mk(op.getResult(0)));
  return success();
}

//===----------------------------------------------------------------------===//
// Handlers: reductions, softmax, normalisation
//===----------------------------------------------------------------------===//

LogicalResult Importer::reduceOp(Red kind, bool mean, int64_t axesInputSince) {
  TV x = in(0);
  SmallVector<int64_t> axes;
  bool haveAxes = false;
  if (opset >= axesInputSince) {
    if (in(1)) {
      auto a = requireConstInts(1, "axes");
      if (failed(a))
        return failure();
      axes = *a;
      haveAxes = true;
    }
  } else if (auto a = attrInts("axes")) {
    axes = *a;
    haveAxes = true;
  }
  if (!haveAxes || axes.empty()) {
    if (opset >= axesInputSince && attrI("noop_with_empty_axes", 0)) {
      setOut(0, x);
      return success();
    }
    axes.clear();
    for (int64_t d = 0; d < x.rank(); ++d)
      axes.push_back(d);
  }
  for (int64_t &a : axes) {
    auto n = normAxis(a, x.rank());
    if (failed(n))
      return failure();
    a = *n;
  }
  bool keep = attrI("keepdims", 1);
  TV r = reduce(x, axes, keep, kind);
  if (mean) {
    int64_t cnt = 1;
    for (int64_t a : axes)
      cnt *= x.shape()[a];
    Host c{{}, x.elem(), {}, {}};
    if (c.isF())
      c.f.push_back(double(cnt));
    else
      c.i.push_back(cnt);
    r = *elementwise(EW::Div, {r, mkHost(c)}, x.elem());
  }
  setOut(0, r);
  return success();
}

LogicalResult Importer::onReduceSum() { return reduceOp(Red::Sum, false, 13); }
LogicalResult Importer::onReduceMean() { return reduceOp(Red::Sum, true, 18); }
LogicalResult Importer::onReduceMax() { return reduceOp(Red::Max, false, 18); }
LogicalResult Importer::onReduceMin() { return reduceOp(Red::Min, false, 18); }
LogicalResult Importer::onReduceProd() { return reduceOp(Red::Prod, false, 18); }

LogicalResult Importer::onSoftmax() {
  TV x = in(0);
  if (!isa<FloatType>(x.elem()))
    return err() << "expects a float input";
  auto axis = normAxis(attrI("axis", opset < 13 ? 1 : -1), x.rank());
  if (failed(axis))
    return failure();
  SmallVector<int64_t> axes{*axis};
  if (opset < 13) // softmax over the flattened [axis, rank) block
    for (int64_t d = *axis + 1; d < x.rank(); ++d)
      axes.push_back(d);
  setOut(0, softmax(x, axes));
  return success();
}

FailureOr<TV> Importer::normalize(TV x, TV scale, TV bias, int64_t axis, double eps, bool rms) {
  SmallVector<int64_t> axes;
  for (int64_t d = axis; d < x.rank(); ++d)
    axes.push_back(d);
  Type e = x.elem();
  int64_t cnt = numElements(x.shape().drop_front(axis));
  TV n = mkHost(Host{{}, e, {}, {double(cnt)}});
  TV centered = x;
  if (!rms) {
    TV mean = *elementwise(EW::Div, {reduce(x, axes, true, Red::Sum), n}, e);
    centered = *elementwise(EW::Sub, {x, mean}, e);
  }
  TV sq = *elementwise(EW::Mul, {centered, centered}, e);
  TV var = *elementwise(EW::Div, {reduce(sq, axes, true, Red::Sum), n}, e);
  TV stdv = *elementwise(EW::Sqrt, {*elementwise(EW::Add, {var, mkHost(Host{{}, e, {}, {eps}})}, e)}, e);
  TV y = *elementwise(EW::Div, {centered, stdv}, e);
  if (scale) {
    auto r = elementwise(EW::Mul, {y, castTo(scale, e)}, e);
    if (failed(r))
      return failure();
    y = *r;
  }
  if (bias) {
    auto r = elementwise(EW::Add, {y, castTo(bias, e)}, e);
    if (failed(r))
      return failure();
    y = *r;
  }
  return y;
}

LogicalResult Importer::onLayerNormalization() {
  if (hasOut(1) || hasOut(2))
    return err() << "unsupported outputs: only Y (not Mean/InvStdDev) is supported";
  TV x = in(0);
  auto axis = normAxis(attrI("axis", -1), x.rank());
  if (failed(axis))
    return failure();
  if (attr("stash_type") && attrI("stash_type", 1) != 1)
    return unsupportedAttr("stash_type", "only 1 (float) is supported");
  auto y = normalize(x, in(1), in(2), *axis, attrF("epsilon", 1e-5), false);
  if (failed(y))
    return failure();
  setOut(0, *y);
  return success();
}

LogicalResult Importer::onRMSNormalization() {
  TV x = in(0);
  auto axis = normAxis(attrI("axis", -1), x.rank());
  if (failed(axis))
    return failure();
  auto y = normalize(x, in(1), TV(), *axis, attrF("epsilon", 1e-5), true);
  if (failed(y))
    return failure();
  setOut(0, *y);
  return success();
}

LogicalResult Importer::onSimplifiedLayerNormalization() {
  if (hasOut(1))
    return err() << "unsupported outputs: only Y (not inv_std_var) is supported";
  return onRMSNormalization();
}

//===----------------------------------------------------------------------===//
// Handlers: MatMul, Gemm
//===----------------------------------------------------------------------===//

LogicalResult Importer::onMatMul() {
  TV a = in(0), c = in(1);
  if (a.elem() != c.elem())
    return err() << "operand element types differ: " << a.elem() << " vs " << c.elem();
  if (a.rank() == 0 || c.rank() == 0)
    return err() << "operands must have rank >= 1";
  bool aVec = a.rank() == 1, cVec = c.rank() == 1;
  if (aVec)
    a = reshape(a, {1, a.shape()[0]});
  if (cVec)
    c = reshape(c, {c.shape()[0], 1});
  auto r = matmul(a, c);
  if (failed(r))
    return failure();
  TV out = *r;
  if (aVec || cVec) {
    SmallVector<int64_t> shape(out.shape().drop_back(2));
    if (!aVec)
      shape.push_back(out.shape()[out.rank() - 2]);
    if (!cVec)
      shape.push_back(out.shape()[out.rank() - 1]);
    out = reshape(out, shape);
  }
  setOut(0, out);
  return success();
}

LogicalResult Importer::onGemm() {
  TV a = in(0), c = in(1);
  if (a.rank() != 2 || c.rank() != 2)
    return err() << "A and B must be 2-D";
  if (attrI("transA", 0))
    a = transpose(a, {1, 0});
  if (attrI("transB", 0))
    c = transpose(c, {1, 0});
  auto r = matmul(a, c);
  if (failed(r))
    return failure();
  TV y = *r;
  Type e = y.elem();
  double alpha = attrF("alpha", 1.0), beta = attrF("beta", 1.0);
  if (alpha != 1.0)
    y = *elementwise(EW::Mul, {y, mkHost(Host{{}, e, {}, {alpha}})}, e);
  if (in(2) && beta != 0.0) {
    TV bias = in(2);
    if (beta != 1.0)
      bias = *elementwise(EW::Mul, {bias, mkHost(Host{{}, e, {}, {beta}})}, e);
    auto s = elementwise(EW::Add, {y, bias}, e);
    if (failed(s))
      return failure();
    y = *s;
  }
  setOut(0, y);
  return success();
}

//===----------------------------------------------------------------------===//
// Attention (opsets 23, 24, 25)
//===----------------------------------------------------------------------===//

LogicalResult Importer::onAttention() {
  TV q = in(0), k = in(1), v = in(2), mask = in(3), pastK = in(4), pastV = in(5), nonpad = in(6);
  if (!q || !k || !v)
    return err() << "expects Q, K and V";
  Type e = q.elem();
  if (!isa<FloatType>(e) || k.elem() != e || v.elem() != e)
    return err() << "Q, K and V must share one float element type, got " << q.elem() << ", "
                 << k.elem() << ", " << v.elem();
  if (q.rank() != k.rank() || q.rank() != v.rank() || (q.rank() != 3 && q.rank() != 4))
    return err() << "Q, K and V must all be 3-D or all 4-D, got " << q.type << ", " << k.type
                 << ", " << v.type;
  if (bool(pastK) != bool(pastV))
    return err() << "past_key and past_value must be given together";
  if (nonpad && pastK)
    return err() << "nonpad_kv_seqlen cannot be combined with past_key/past_value";
  if (nonpad && (nonpad.rank() != 1 || isa<FloatType>(nonpad.elem())))
    return err() << "nonpad_kv_seqlen must be a 1-D integer tensor";
  int64_t mode = attrI("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3)
    return unsupportedAttr("qk_matmul_output_mode", "must be 0..3");
  bool causal = attrI("is_causal", 0);
  double softcap = attrF("softcap", 0.0);
  int64_t left = attrI("left_window_size", -1), right = attrI("right_window_size", -1);
  if (auto *sp = attr("softmax_precision")) {
    int64_t p = sp->i();
    if (p != onnx::TensorProto::FLOAT && p != onnx::TensorProto::DOUBLE &&
        p != onnx::TensorProto::FLOAT16 && p != onnx::TensorProto::BFLOAT16)
      return unsupportedAttr("softmax_precision", "must be a float type");
    // kvc.attention computes the softmax in f32 (f64 for f64 inputs) whatever is asked for.
  }
  bool is3d = q.rank() == 3;
  auto toHeads = [&](TV x, int64_t heads, StringRef what) -> FailureOr<TV> {
    int64_t hidden = x.shape()[2];
    if (heads <= 0 || hidden % heads != 0) {
      err() << what << ": hidden size " << hidden << " is not divisible by " << heads
            << " heads";
      return failure();
    }
    TV r = reshape(x, {x.shape()[0], x.shape()[1], heads, hidden / heads});
    return transpose(r, {0, 2, 1, 3});
  };
  if (is3d) {
    if (!attr("q_num_heads") || !attr("kv_num_heads"))
      return err() << "3-D inputs need the q_num_heads and kv_num_heads attributes";
    int64_t hq = attrI("q_num_heads", 0), hkv = attrI("kv_num_heads", 0);
    auto q4 = toHeads(q, hq, "Q"), k4 = toHeads(k, hkv, "K"), v4 = toHeads(v, hkv, "V");
    if (failed(q4) || failed(k4) || failed(v4))
      return failure();
    q = *q4;
    k = *k4;
    v = *v4;
  }
  int64_t B = q.shape()[0], Hq = q.shape()[1], Sq = q.shape()[2], D = q.shape()[3];
  int64_t Hkv = k.shape()[1], Dv = v.shape()[3];
  if (k.shape()[0] != B || v.shape()[0] != B || v.shape()[1] != Hkv || k.shape()[3] != D ||
      k.shape()[2] != v.shape()[2])
    return err() << "inconsistent Q/K/V shapes " << q.type << ", " << k.type << ", " << v.type;
  if (Hkv == 0 || Hq % Hkv != 0)
    return err() << "query heads (" << Hq << ") must be a multiple of key/value heads (" << Hkv
                 << ")";

  // present = concat(past, new) through the kvc cache ops.
  int64_t pastLen = 0;
  TV kAll = k, vAll = v;
  if (pastK) {
    if (pastK.rank() != 4 || pastV.rank() != 4 || pastK.shape()[0] != B ||
        pastK.shape()[1] != Hkv || pastK.shape()[3] != D || pastV.shape()[3] != Dv ||
        pastV.shape()[2] != pastK.shape()[2] || pastK.elem() != e || pastV.elem() != e)
      return err() << "past_key/past_value " << pastK.type << ", " << pastV.type
                   << " do not match K/V " << k.type << ", " << v.type;
    pastLen = pastK.shape()[2];
    auto cacheT = CacheType::get(ctx, pastK.type, pastV.type);
    Value c0 = CacheFromTensorsOp::create(b, loc, cacheT, mat(pastK), mat(pastV));
    int64_t L = pastLen + k.shape()[2];
    auto kT = RankedTensorType::get({B, Hkv, L, D}, e);
    auto vT = RankedTensorType::get({B, Hkv, L, Dv}, e);
    Value c1 = CacheAppendOp::create(b, loc, CacheType::get(ctx, kT, vT), c0, mat(k), mat(v));
    auto view = CacheViewOp::create(b, loc, kT, vT, c1);
    kAll = mk(view.getKeys());
    vAll = mk(view.getValues());
  }
  int64_t L = kAll.shape()[2];

  // The mask, padded on the last dim to L (opset 24: a shorter mask is padded with -inf/false).
  bool boolMask = mask && mask.elem().isInteger(1);
  if (mask) {
    if (!boolMask && !isa<FloatType>(mask.elem()))
      return err() << "attn_mask must be bool or float, got " << mask.elem();
    if (mask.rank() < 1 || mask.rank() > 4)
      return err() << "attn_mask rank " << mask.rank() << " is not in 1..4";
    int64_t last = mask.shape().back();
    if (last > L)
      return err() << "attn_mask last dimension " << last << " exceeds the total sequence length "
                   << L;
    if (last < L) {
      SmallVector<int64_t> lo(mask.rank(), 0), hi(mask.rank(), 0);
      hi.back() = L - last;
      Value padV = boolMask ? iconst(b, loc, mask.elem(), 0)
                            : fconst(b, loc, mask.elem(), -INFINITY);
      mask = pad(mask, lo, hi, padV);
    }
    // Must broadcast to [B, Hq, Sq, L].
    int64_t full[4] = {B, Hq, Sq, L};
    for (int64_t i = 0; i < mask.rank(); ++i) {
      int64_t d = mask.shape()[i], f = full[4 - mask.rank() + i];
      if (d != 1 && d != f)
        return err() << "attn_mask " << mask.type << " does not broadcast to [B, Hq, Sq, L] = ["
                     << B << ", " << Hq << ", " << Sq << ", " << L << "]";
    }
  }

  bool needQK = hasOut(3);
  bool windowed = left >= 0 || right >= 0;
  bool simple = !nonpad && !windowed && (!causal || pastLen == L - Sq);

  // Explicit additive bias [Bb, Hb, Sq, L] for what kvc.attention's attributes cannot say
  // (top-left causal with Sq != Skv, per-batch nonpad lengths, two-sided windows), and for the
  // qk_matmul_output.
  TV bias;
  if (!simple || needQK) {
    int64_t Bb = nonpad ? B : 1, Hb = 1;
    TV m4;
    if (mask) {
      SmallVector<int64_t> s4(4 - mask.rank(), 1);
      llvm::append_range(s4, mask.shape());
      m4 = reshape(mask, s4);
      Bb = std::max(Bb, s4[0]);
      Hb = s4[1];
    }
    SmallVector<int64_t> shape{Bb, Hb, Sq, L};
    SmallVector<Value> operands;
    SmallVector<AffineMap> maps;
    auto bmap = [&](ArrayRef<int64_t> s) {
      SmallVector<AffineExpr> ex;
      for (int64_t d = 0; d < 4; ++d)
        ex.push_back(s[d] == 1 && shape[d] != 1 ? getAffineConstantExpr(0, ctx)
                                                : getAffineDimExpr(d, ctx));
      return AffineMap::get(4, 0, ex, ctx);
    };
    if (mask) {
      operands.push_back(mat(m4));
      maps.push_back(bmap(m4.shape()));
    }
    if (nonpad) {
      if (nonpad.shape()[0] != B)
        return err() << "nonpad_kv_seqlen has " << nonpad.shape()[0] << " entries for batch " << B;
      operands.push_back(mat(nonpad));
      maps.push_back(AffineMap::get(4, 0, {getAffineDimExpr(0, ctx)}, ctx));
    }
    maps.push_back(AffineMap::getMultiDimIdentityMap(4, ctx));
    Value init = empty(shape, e);
    bool hasMask = bool(mask);
    auto op = linalg::GenericOp::create(
        b, loc, init.getType(), operands, ValueRange{init}, maps,
        SmallVector<utils::IteratorType>(4, utils::IteratorType::parallel),
        [&](OpBuilder &bb, Location l, ValueRange a) {
          Type idx = bb.getIndexType();
          Value i = linalg::IndexOp::create(bb, l, 2);
          Value j = linalg::IndexOp::create(bb, l, 3);
          Value zeroF = fconst(bb, l, e, 0.0), ninf = fconst(bb, l, e, -INFINITY);
          Value val = zeroF;
          if (hasMask)
            val = boolMask ? Value(arith::SelectOp::create(bb, l, a[0], zeroF, ninf))
                           : castScalar(bb, l, a[0], e);
          // Position of query i: i + offset (past length, or nonpad - Sq per batch).
          Value npLen;
          Value offset = arith::ConstantIndexOp::create(bb, l, pastLen);
          if (nonpad) {
            npLen = arith::IndexCastOp::create(bb, l, idx, a[hasMask ? 1 : 0]);
            offset = arith::SubIOp::create(bb, l, npLen, arith::ConstantIndexOp::create(bb, l, Sq));
          }
          Value pos = arith::AddIOp::create(bb, l, i, offset);
          Value allowed = arith::ConstantIntOp::create(bb, l, 1, 1);
          auto andWith = [&](Value c) { allowed = arith::AndIOp::create(bb, l, allowed, c); };
          if (causal)
            andWith(arith::CmpIOp::create(bb, l, arith::CmpIPredicate::sle, j, pos));
          if (left >= 0)
            andWith(arith::CmpIOp::create(bb, l, arith::CmpIPredicate::sle,
                                          arith::SubIOp::create(bb, l, pos, j),
                                          arith::ConstantIndexOp::create(bb, l, left)));
          if (right >= 0)
            andWith(arith::CmpIOp::create(bb, l, arith::CmpIPredicate::sle,
                                          arith::SubIOp::create(bb, l, j, pos),
                                          arith::ConstantIndexOp::create(bb, l, right)));
          if (nonpad)
            andWith(arith::CmpIOp::create(bb, l, arith::CmpIPredicate::slt, j, npLen));
          linalg::YieldOp::create(bb, l, Value(arith::SelectOp::create(bb, l, allowed, val, ninf)));
        });
    bias = mk(op.getResult(0));
  }

  std::optional<double> scaleAttr;
  if (attr("scale"))
    scaleAttr = attrF("scale", 0.0);
  double scale = scaleAttr ? *scaleAttr : 1.0 / std::sqrt(double(D));

  Value maskV;
  if (simple) {
    if (mask)
      maskV = mat(mask);
  } else {
    maskV = mat(bias);
  }
  auto outT = RankedTensorType::get({B, Hq, Sq, Dv}, e);
  auto attn = AttentionOp::create(
      b, loc, outT, mat(q), mat(kAll), mat(vAll), maskV, /*kv_lengths=*/Value(),
      scaleAttr ? b.getF32FloatAttr(float(*scaleAttr)) : FloatAttr(),
      /*causal=*/simple && causal, softcap > 0 ? b.getF32FloatAttr(float(softcap)) : FloatAttr(),
      /*window=*/IntegerAttr());
  TV y = mk(attn.getResult());
  if (is3d)
    y = reshape(transpose(y, {0, 2, 1, 3}), {B, Sq, Hq * Dv});
  setOut(0, y);
  setOut(1, kAll);
  setOut(2, vAll);

  if (needQK) {
    // Scores in f32 (f64 for f64): (Q*sqrt(s)) . (K*sqrt(s))^T with K heads repeated.
    Type acc = e.isF64() ? e : Type(b.getF32Type());
    TV qa = castTo(q, acc), ka = castTo(kAll, acc);
    double rs = std::sqrt(scale);
    TV rsT = mkHost(Host{{}, acc, {}, {rs}});
    qa = *elementwise(EW::Mul, {qa, rsT}, acc);
    ka = *elementwise(EW::Mul, {ka, rsT}, acc);
    int64_t g = Hq / Hkv;
    AffineExpr d0 = getAffineDimExpr(0, ctx), d1 = getAffineDimExpr(1, ctx),
               d2 = getAffineDimExpr(2, ctx), d3 = getAffineDimExpr(3, ctx),
               d4 = getAffineDimExpr(4, ctx);
    Value zero = fconst(b, loc, acc, 0.0);
    Value init = filled({B, Hq, Sq, L}, acc, zero);
    // Loops (b, h, i, j, d); d is the reduction.
    SmallVector<utils::IteratorType> qkIters(4, utils::IteratorType::parallel);
    qkIters.push_back(utils::IteratorType::reduction);
    auto op = linalg::GenericOp::create(
        b, loc, init.getType(), ValueRange{mat(qa), mat(ka)}, ValueRange{init},
        SmallVector<AffineMap>{AffineMap::get(5, 0, {d0, d1, d2, d4}, ctx),
                               AffineMap::get(5, 0, {d0, d1.floorDiv(g), d3, d4}, ctx),
                               AffineMap::get(5, 0, {d0, d1, d2, d3}, ctx)},
        qkIters,
        [&](OpBuilder &bb, Location l, ValueRange a) {
          Value p = arith::MulFOp::create(bb, l, a[0], a[1]);
          linalg::YieldOp::create(bb, l, Value(arith::AddFOp::create(bb, l, a[2], p)));
        });
    TV s = mk(op.getResult(0));
    if (softcap > 0) {
      TV cap = mkHost(Host{{}, acc, {}, {softcap}});
      s = *elementwise(EW::Mul, {*elementwise(EW::Tanh, {*elementwise(EW::Div, {s, cap}, acc)}, acc), cap}, acc);
    }
    TV withBias = *elementwise(EW::Add, {s, castTo(bias, acc)}, acc);
    TV outQK = s;
    if (mode == 2)
      outQK = withBias;
    if (mode == 3) {
      // Softmax that gives 0 (not NaN) for rows the bias masks completely.
      TV mx = reduce(withBias, {3}, true, Red::Max);
      TV ninf = mkHost(Host{{}, acc, {}, {-INFINITY}});
      TV zeroT = mkHost(Host{{}, acc, {}, {0.0}});
      TV allMasked = *elementwise(EW::Eq, {mx, ninf}, b.getI1Type());
      TV safeMax = *elementwise(EW::Where, {allMasked, zeroT, mx}, acc);
      TV ex = *elementwise(EW::Exp, {*elementwise(EW::Sub, {withBias, safeMax}, acc)}, acc);
      TV sum = reduce(ex, {3}, true, Red::Sum);
      TV one = mkHost(Host{{}, acc, {}, {1.0}});
      TV sumSafe = *elementwise(EW::Where, {*elementwise(EW::Eq, {sum, zeroT}, b.getI1Type()), one, sum}, acc);
      TV p = *elementwise(EW::Div, {ex, sumSafe}, acc);
      TV biasMax = reduce(castTo(bias, acc), {3}, true, Red::Max);
      TV rowMasked = *elementwise(EW::Eq, {biasMax, ninf}, b.getI1Type());
      outQK = *elementwise(EW::Where, {rowMasked, zeroT, p}, acc);
    }
    if (outQK.shape() != ArrayRef<int64_t>{B, Hq, Sq, L})
      outQK = broadcastTo(outQK, {B, Hq, Sq, L});
    setOut(3, castTo(outQK, e));
  }
  return success();
}


//===----------------------------------------------------------------------===//
// com.microsoft GroupQueryAttention (onnxruntime contrib op)
//===----------------------------------------------------------------------===//

LogicalResult Importer::onGroupQueryAttention() {
  // Inputs: query, key, value, past_key, past_value, seqlens_k, total_sequence_length,
  // cos_cache, sin_cache, position_ids, attention_bias, head_sink.
  if (attrI("smooth_softmax", 0))
    return unsupportedAttr("smooth_softmax", "only 0 is supported");
  if (attrI("qk_output", 0))
    return unsupportedAttr("qk_output", "only 0 is supported");
  for (int i = 10; i < int(ins.size()); ++i)
    if (in(i))
      return err() << "unsupported input " << i << " (attention_bias/head_sink)";
  if (!in(3) || !in(4) || !in(5) || !in(6))
    return err() << "needs past_key, past_value, seqlens_k and total_sequence_length";
  int64_t hq = attrI("num_heads", 0), hkv = attrI("kv_num_heads", 0);
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0)
    return err() << "num_heads (" << hq << ") must be a positive multiple of kv_num_heads (" << hkv
                 << ")";
  TV q = in(0), k = in(1), v = in(2), pastK = in(3), pastV = in(4), seqlens = in(5);
  Type e = q.elem();
  if (!isa<FloatType>(e) || q.rank() != 3)
    return err() << "query must be a 3-D float tensor, got " << q.type;
  int64_t B = q.shape()[0], S = q.shape()[1];
  if (!k) {
    // Packed QKV: (B, S, (Hq + 2 Hkv) * D).
    int64_t hidden = q.shape()[2];
    if (hidden % (hq + 2 * hkv) != 0)
      return err() << "packed QKV hidden size " << hidden << " is not divisible by num_heads + 2 * kv_num_heads";
    int64_t D = hidden / (hq + 2 * hkv);
    SmallVector<int64_t> st{1, 1, 1};
    TV qq = slice(q, {0, 0, 0}, {B, S, hq * D}, st);
    k = slice(q, {0, 0, hq * D}, {B, S, hkv * D}, st);
    v = slice(q, {0, 0, (hq + hkv) * D}, {B, S, hkv * D}, st);
    q = qq;
  }
  if (k.rank() != 3 || v.rank() != 3 || k.elem() != e || v.elem() != e || k.shape()[1] != S)
    return err() << "key/value must be (B, S, kv_num_heads * D) like query, got " << k.type << ", "
                 << v.type;
  if (q.shape()[2] % hq != 0 || k.shape()[2] % hkv != 0 || v.shape()[2] % hkv != 0)
    return err() << "hidden sizes are not divisible by the head counts";
  int64_t D = q.shape()[2] / hq, Dv = v.shape()[2] / hkv;
  if (k.shape()[2] / hkv != D)
    return err() << "query and key head sizes differ";
  if (pastK.rank() != 4 || pastV.rank() != 4 || pastK.shape()[0] != B || pastK.shape()[1] != hkv ||
      pastK.shape()[3] != D || pastV.shape()[3] != Dv || pastV.shape()[2] != pastK.shape()[2] ||
      pastK.elem() != e || pastV.elem() != e)
    return err() << "past_key/past_value must be (B, kv_num_heads, P, D), got " << pastK.type
                 << ", " << pastV.type;
  if (seqlens.rank() != 1 || seqlens.shape()[0] != B || isa<FloatType>(seqlens.elem()))
    return err() << "seqlens_k must be an integer (B,) tensor";
  auto total = constInts(in(6));
  if (!total || total->size() != 1)
    return err() << "total_sequence_length must be known at import time (a constant, or folded "
                    "from static shapes)";
  int64_t P = pastK.shape()[2];
  int64_t T = std::max(P, (*total)[0]);
  if ((*total)[0] > T || T < S)
    return err() << "total_sequence_length " << (*total)[0] << " is inconsistent with past length "
                 << P << " and sequence length " << S;
  // onnxruntime: the first prompt (total_sequence_length == S) starts every row at position 0
  // (rows are right-padded); later calls put row b's new tokens at seqlens_k[b] + 1 - S.
  bool firstPrompt = (*total)[0] == S;
  auto heads = [&](TV x, int64_t h) {
    return transpose(reshape(x, {B, S, h, x.shape()[2] / h}), {0, 2, 1, 3});
  };
  TV q4 = heads(q, hq), k4 = heads(k, hkv), v4 = heads(v, hkv);

  if (attrI("do_rotary", 0)) {
    // Rotary on Q and K (before K enters the cache) with cos/sin tables (max_pos, rd/2) read at
    // position_ids, or, as onnxruntime's default ids: s on the first prompt, else
    // seqlens_k[b] + 1 - S + s.
    TV cosC = in(7), sinC = in(8), posIds = in(9);
    if (!cosC || !sinC)
      return err() << "do_rotary=1 needs cos_cache and sin_cache (inputs 7 and 8)";
    if (cosC.type != sinC.type || cosC.elem() != e || cosC.rank() != 2)
      return err() << "cos_cache/sin_cache must be (max_sequence_length, rotary_dim / 2) of the "
                      "query's type, got "
                   << cosC.type << ", " << sinC.type;
    int64_t rd = 2 * cosC.shape()[1];
    if (rd < 2 || rd > D)
      return err() << "rotary dimension " << rd << " (2 * cos_cache.shape[1]) exceeds the head size "
                   << D;
    TV pos;
    if (posIds) {
      if (isa<FloatType>(posIds.elem()) || posIds.rank() != 2 || posIds.shape()[0] != B ||
          posIds.shape()[1] != S)
        return err() << "position_ids must be an integer (B, S) tensor, got " << posIds.type;
      pos = posIds;
    } else {
      Value init = empty({B, S}, b.getI64Type());
      auto op = linalg::GenericOp::create(
          b, loc, init.getType(), ValueRange{mat(seqlens)}, ValueRange{init},
          SmallVector<AffineMap>{AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx),
                                 AffineMap::getMultiDimIdentityMap(2, ctx)},
          SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
          [&](OpBuilder &bb, Location l, ValueRange a) {
            Type i64 = bb.getI64Type();
            Value sI = arith::IndexCastOp::create(bb, l, i64, linalg::IndexOp::create(bb, l, 1));
            Value p = sI;
            if (!firstPrompt) {
              Value len = arith::AddIOp::create(bb, l, castScalar(bb, l, a[0], i64),
                                                iconst(bb, l, i64, 1 - S));
              p = arith::AddIOp::create(bb, l, len, sI);
            }
            linalg::YieldOp::create(bb, l, p);
          });
      pos = mk(op.getResult(0));
    }
    bool interleaved = attrI("rotary_interleaved", 0);
    q4 = rotary(q4, cosC, sinC, pos, D, rd, interleaved);
    k4 = rotary(k4, cosC, sinC, pos, D, rd, interleaved);
  }

  // present[b, h, j] = new[b, h, j - past_b] for past_b <= j < past_b + S (past_b =
  // seqlens_k[b] + 1 - S, or 0 for the first prompt), else past[b, h, j] for j < P, else 0.
  auto present = [&](TV past, TV fresh, int64_t dd) -> TV {
    Value pastV = mat(past), freshV = mat(fresh);
    SmallVector<int64_t> shape{B, hkv, T, dd};
    Value init = empty(shape, e);
    auto op = linalg::GenericOp::create(
        b, loc, init.getType(), ValueRange{mat(seqlens)}, ValueRange{init},
        SmallVector<AffineMap>{AffineMap::get(4, 0, {getAffineDimExpr(0, ctx)}, ctx),
                               AffineMap::getMultiDimIdentityMap(4, ctx)},
        SmallVector<utils::IteratorType>(4, utils::IteratorType::parallel),
        [&](OpBuilder &bb, Location l, ValueRange a) {
          Type idx = bb.getIndexType();
          Value bI = linalg::IndexOp::create(bb, l, 0), hI = linalg::IndexOp::create(bb, l, 1);
          Value jI = linalg::IndexOp::create(bb, l, 2), dI = linalg::IndexOp::create(bb, l, 3);
          auto cst = [&](int64_t c) { return Value(arith::ConstantIndexOp::create(bb, l, c)); };
          Value len = arith::AddIOp::create(bb, l, arith::IndexCastOp::create(bb, l, idx, a[0]), cst(1));
          Value pastB = firstPrompt ? cst(0) : Value(arith::SubIOp::create(bb, l, len, cst(S)));
          Value rel = arith::SubIOp::create(bb, l, jI, pastB);
          Value inNew = arith::AndIOp::create(
              bb, l, arith::CmpIOp::create(bb, l, arith::CmpIPredicate::sge, rel, cst(0)),
              arith::CmpIOp::create(bb, l, arith::CmpIPredicate::slt, rel, cst(S)));
          Value inPast = arith::CmpIOp::create(bb, l, arith::CmpIPredicate::slt, jI, cst(P));
          // Clamp the indices so that both loads stay in bounds; select afterwards.
          Value relC = arith::MinSIOp::create(bb, l, arith::MaxSIOp::create(bb, l, rel, cst(0)), cst(S - 1));
          Value freshVal = tensor::ExtractOp::create(bb, l, freshV, ValueRange{bI, hI, relC, dI});
          Value zero = fconst(bb, l, e, 0.0);
          Value pastVal = zero;
          if (P > 0) {
            Value jC = arith::MinSIOp::create(bb, l, jI, cst(P - 1));
            pastVal = tensor::ExtractOp::create(bb, l, pastV, ValueRange{bI, hI, jC, dI});
            pastVal = arith::SelectOp::create(bb, l, inPast, pastVal, zero);
          }
          linalg::YieldOp::create(bb, l, Value(arith::SelectOp::create(bb, l, inNew, freshVal, pastVal)));
        });
    return mk(op.getResult(0));
  };
  TV presentK = present(pastK, k4, D), presentV = present(pastV, v4, Dv);

  // Bias [B, 1, S, T]: key j is visible to query i iff j < len_b, j <= past_b + i, and (with a
  // local window) past_b + i - j < local_window_size.
  int64_t window = attrI("local_window_size", -1);
  Value init = empty({B, 1, S, T}, e);
  auto biasOp = linalg::GenericOp::create(
      b, loc, init.getType(), ValueRange{mat(seqlens)}, ValueRange{init},
      SmallVector<AffineMap>{AffineMap::get(4, 0, {getAffineDimExpr(0, ctx)}, ctx),
                             AffineMap::getMultiDimIdentityMap(4, ctx)},
      SmallVector<utils::IteratorType>(4, utils::IteratorType::parallel),
      [&](OpBuilder &bb, Location l, ValueRange a) {
        Type idx = bb.getIndexType();
        auto cst = [&](int64_t c) { return Value(arith::ConstantIndexOp::create(bb, l, c)); };
        Value i = linalg::IndexOp::create(bb, l, 2), j = linalg::IndexOp::create(bb, l, 3);
        Value len = arith::AddIOp::create(bb, l, arith::IndexCastOp::create(bb, l, idx, a[0]), cst(1));
        Value pastB = firstPrompt ? cst(0) : Value(arith::SubIOp::create(bb, l, len, cst(S)));
        Value pos = arith::AddIOp::create(bb, l, pastB, i);
        Value ok = arith::AndIOp::create(
            bb, l, arith::CmpIOp::create(bb, l, arith::CmpIPredicate::slt, j, len),
            arith::CmpIOp::create(bb, l, arith::CmpIPredicate::sle, j, pos));
        if (window > 0)
          ok = arith::AndIOp::create(
              bb, l, ok,
              arith::CmpIOp::create(bb, l, arith::CmpIPredicate::slt,
                                    arith::SubIOp::create(bb, l, pos, j), cst(window)));
        linalg::YieldOp::create(bb, l, Value(arith::SelectOp::create(bb, l, ok, fconst(bb, l, e, 0.0),
                                                                     fconst(bb, l, e, -INFINITY))));
      });
  double softcap = attrF("softcap", 0.0);
  auto outT = RankedTensorType::get({B, hq, S, Dv}, e);
  auto attn = AttentionOp::create(
      b, loc, outT, mat(q4), mat(presentK), mat(presentV), biasOp.getResult(0),
      /*kv_lengths=*/Value(),
      attr("scale") && attrF("scale", 0.0) != 0.0 ? b.getF32FloatAttr(float(attrF("scale", 0.0)))
                                                  : FloatAttr(),
      /*causal=*/false, softcap > 0 ? b.getF32FloatAttr(float(softcap)) : FloatAttr(),
      /*window=*/IntegerAttr());
  setOut(0, reshape(transpose(mk(attn.getResult()), {0, 2, 1, 3}), {B, S, hq * Dv}));
  setOut(1, presentK);
  setOut(2, presentV);
  return success();
}

LogicalResult Importer::onMultiHeadAttention() {
  // com.microsoft MultiHeadAttention (onnxruntime contrib op), the CPU kernel's semantics:
  // inputs query, key, value, bias, key_padding_mask, attention_bias, past_key, past_value,
  // past_sequence_length, cache_indirection; outputs output, present_key, present_value, qk.
  // Supported: 3-D Q/K/V (B, S|L, N*H) (or 4-D (B, N, L, H) K/V), bias (3*N*H, added to Q/K/V),
  // key_padding_mask (B, T) int (0 -> mask_filter_value), attention_bias broadcastable to
  // (B, N, S, T), past_key/past_value (B, N, P, H) concatenated in front, unidirectional (keys after
  // the query's position + P get the lowest float, as onnxruntime), scale.
  if (!in(1) || !in(2))
    return err() << "packed QKV/KV (key or value absent) is not supported";
  for (int i = 8; i < int(ins.size()); ++i)
    if (in(i))
      return err() << "unsupported input " << i << " (past_sequence_length/cache_indirection)";
  if (hasOut(3))
    return err() << "unsupported output 3 (qk)";
  int64_t N = attrI("num_heads", 0);
  TV q = in(0), k = in(1), v = in(2), bias = in(3), kpm = in(4), ab = in(5), pastK = in(6),
     pastV = in(7);
  Type e = q.elem();
  if (!isa<FloatType>(e) || q.rank() != 3)
    return err() << "query must be a 3-D float tensor (B, S, N*H), got " << q.type;
  if (N <= 0 || q.shape()[2] % N != 0)
    return unsupportedAttr("num_heads", "must be positive and divide the query hidden size");
  int64_t B = q.shape()[0], S = q.shape()[1], H = q.shape()[2] / N;
  if (k.elem() != e || v.elem() != e || k.rank() != v.rank() || (k.rank() != 3 && k.rank() != 4))
    return err() << "key/value must be 3-D (B, L, N*H) or 4-D (B, N, L, H) of the query's type, got "
                 << k.type << ", " << v.type;
  bool bnsh = k.rank() == 4;
  int64_t L = bnsh ? k.shape()[2] : k.shape()[1];
  int64_t Hv = bnsh ? v.shape()[3] : v.shape()[2] / N;
  if (k.shape()[0] != B || v.shape()[0] != B ||
      (bnsh ? (k.shape()[1] != N || k.shape()[3] != H || v.shape()[1] != N || v.shape()[2] != L)
            : (k.shape()[2] != N * H || v.shape()[1] != L || v.shape()[2] % N != 0)))
    return err() << "key/value shapes " << k.type << ", " << v.type
                 << " do not match the query and num_heads";
  if (bias) {
    if (bnsh)
      return err() << "bias with 4-D key/value is not supported";
    if (bias.rank() != 1 || bias.shape()[0] != 2 * N * H + N * Hv || bias.elem() != e)
      return err() << "bias must be (" << 2 * N * H + N * Hv << ") of the query's type, got "
                   << bias.type;
    SmallVector<int64_t> one{1};
    q = *elementwise(EW::Add, {q, slice(bias, {0}, {N * H}, one)}, e);
    k = *elementwise(EW::Add, {k, slice(bias, {N * H}, {N * H}, one)}, e);
    v = *elementwise(EW::Add, {v, slice(bias, {2 * N * H}, {N * Hv}, one)}, e);
  }
  auto heads = [&](TV x, int64_t s, int64_t h) {
    return transpose(reshape(x, {B, s, N, h}), {0, 2, 1, 3});
  };
  TV q4 = heads(q, S, H);
  TV k4 = bnsh ? k : heads(k, L, H), v4 = bnsh ? v : heads(v, L, Hv);
  int64_t P = 0;
  if (pastK || pastV) {
    if (!pastK || !pastV)
      return err() << "past_key and past_value must be given together";
    if (pastK.rank() != 4 || pastK.shape()[0] != B || pastK.shape()[1] != N ||
        pastK.shape()[3] != H || pastV.rank() != 4 || pastV.shape()[3] != Hv ||
        pastV.shape()[2] != pastK.shape()[2] || pastK.elem() != e || pastV.elem() != e)
      return err() << "past_key/past_value must be (B, N, P, H), got " << pastK.type << ", "
                   << pastV.type;
    P = pastK.shape()[2];
    k4 = concat({pastK, k4}, 2);
    v4 = concat({pastV, v4}, 2);
  }
  int64_t T = P + L;
  double filter = attrF("mask_filter_value", -10000.0);
  TV biasT;
  auto addBias = [&](TV t) { biasT = biasT ? *elementwise(EW::Add, {biasT, t}, e) : t; };
  if (kpm) {
    if (isa<FloatType>(kpm.elem()) || kpm.rank() != 2 || kpm.shape()[0] != B || kpm.shape()[1] != T)
      return err() << "key_padding_mask must be an integer (B, total length) = (" << B << ", " << T
                   << ") tensor, got " << kpm.type;
    TV zeroI = mkHost(Host{{}, kpm.elem(), {0}, {}});
    TV keep = *elementwise(EW::Gt, {reshape(kpm, {B, 1, 1, T}), zeroI}, b.getI1Type());
    addBias(*elementwise(EW::Where, {keep, mkHost(Host{{}, e, {}, {0.0}}),
                                     mkHost(Host{{}, e, {}, {filter}})}, e));
  }
  if (attrI("unidirectional", 0)) {
    Host causal{{1, 1, S, T}, e, {}, {}};
    double lowest = -double(std::numeric_limits<float>::max());
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < T; ++j)
        causal.f.push_back(j > i + P ? lowest : 0.0);
    addBias(mkHost(causal));
  }
  if (ab) {
    if (ab.elem() != e || ab.rank() != 4 || (ab.shape()[0] != 1 && ab.shape()[0] != B) ||
        (ab.shape()[1] != 1 && ab.shape()[1] != N) || ab.shape()[2] != S || ab.shape()[3] != T)
      return err() << "attention_bias must be (B|1, N|1, S, T) = (" << B << "|1, " << N << "|1, "
                   << S << ", " << T << ") of the query's type, got " << ab.type;
    addBias(ab);
  }
  double scale = attrF("scale", 0.0);
  auto outT = RankedTensorType::get({B, N, S, Hv}, e);
  auto attn = AttentionOp::create(b, loc, outT, mat(q4), mat(k4), mat(v4),
                                  biasT ? mat(biasT) : Value(), /*kv_lengths=*/Value(),
                                  scale != 0.0 ? b.getF32FloatAttr(float(scale)) : FloatAttr(),
                                  /*causal=*/false, /*softcap=*/FloatAttr(), /*window=*/IntegerAttr());
  setOut(0, reshape(transpose(mk(attn.getResult()), {0, 2, 1, 3}), {B, S, N * Hv}));
  setOut(1, k4);
  setOut(2, v4);
  return success();
}

//===----------------------------------------------------------------------===//
// Dispatch table: (domain, op_type, since-version) -> handler
//===----------------------------------------------------------------------===//

const std::vector<OpEntry> &Importer::table() {
  static const std::vector<OpEntry> t = {
#define E(op, since) {"", #op, since, &Importer::on##op},
      E(Add, 7) E(Sub, 7) E(Mul, 7) E(Div, 7) E(Pow, 7) E(Mod, 10) E(Max, 8) E(Min, 8)
      E(Equal, 7) E(Less, 7) E(LessOrEqual, 12) E(Greater, 7) E(GreaterOrEqual, 12) E(And, 7)
      E(Or, 7) E(Xor, 7) E(Not, 1) E(Where, 9) E(Neg, 6) E(Sqrt, 6) E(Reciprocal, 6) E(Exp, 6)
      E(Log, 6) E(Tanh, 6) E(Sigmoid, 6) E(Erf, 9) E(Cos, 7) E(Sin, 7) E(Abs, 6) E(Relu, 6)
      E(IsNaN, 9) E(IsInf, 10) E(Floor, 6) E(Ceil, 6) E(Cast, 6) E(CastLike, 15) E(Identity, 1)
      E(Constant, 1) E(ConstantOfShape, 9) E(Shape, 1) E(Size, 1) E(Reshape, 5) E(Flatten, 1)
      E(Transpose, 1) E(Squeeze, 1) E(Squeeze, 13) E(Unsqueeze, 1) E(Unsqueeze, 13) E(Concat, 4)
      E(Slice, 1) E(Slice, 10) E(Split, 2) E(Split, 13) E(Split, 18) E(Expand, 8) E(Gather, 1)
      E(Range, 11) E(Pad, 2) E(Pad, 11) E(Trilu, 14) E(ReduceSum, 1) E(ReduceSum, 13)
      E(ReduceMean, 1) E(ReduceMean, 18) E(ReduceMax, 1) E(ReduceMax, 18) E(ReduceMin, 1)
      E(ReduceMin, 18) E(ReduceProd, 1) E(ReduceProd, 18) E(Softmax, 1) E(Softmax, 13)
      E(MatMul, 1) E(Gemm, 7) E(LayerNormalization, 17) E(RMSNormalization, 23)
      E(SimplifiedLayerNormalization, 1) E(Attention, 23) E(Attention, 24) E(Attention, 25)
      E(Gelu, 20) E(GatherND, 11) E(GatherND, 12) E(RotaryEmbedding, 23)
#undef E
      {"com.microsoft", "SimplifiedLayerNormalization", 1,
       &Importer::onSimplifiedLayerNormalization},
      {"com.microsoft", "GroupQueryAttention", 1, &Importer::onGroupQueryAttention},
      {"com.microsoft", "MultiHeadAttention", 1, &Importer::onMultiHeadAttention},
  };
  return t;
}

} // namespace

//===----------------------------------------------------------------------===//
// Public API
//===----------------------------------------------------------------------===//

bool mlir::kvc::onnx_import::parseShapePin(StringRef text, ImportOptions &opts,
                                           std::string &error) {
  auto [name, dims] = text.rsplit('=');
  if (name.empty() || !text.contains('=')) {
    error = "--shape expects name=<d0>x<d1>..., got '" + text.str() + "'";
    return false;
  }
  SmallVector<int64_t> shape;
  if (!dims.empty()) {
    SmallVector<StringRef> parts;
    dims.split(parts, 'x');
    for (StringRef p : parts) {
      int64_t d;
      if (p.getAsInteger(10, d) || d < 0) {
        error = "--shape " + name.str() + ": bad dimension '" + p.str() + "'";
        return false;
      }
      shape.push_back(d);
    }
  }
  opts.shapes[name.str()] = shape;
  return true;
}

void mlir::kvc::onnx_import::registerONNXImportDialects(DialectRegistry &registry) {
  registry.insert<func::FuncDialect, linalg::LinalgDialect, tensor::TensorDialect,
                  arith::ArithDialect, math::MathDialect, KVCDialect>();
}

OwningOpRef<ModuleOp> mlir::kvc::onnx_import::importONNXModel(StringRef bytes, MLIRContext *context,
                                                              const ImportOptions &options) {
  DialectRegistry registry;
  registerONNXImportDialects(registry);
  context->appendDialectRegistry(registry);
  context->loadDialect<func::FuncDialect, linalg::LinalgDialect, tensor::TensorDialect,
                       arith::ArithDialect, math::MathDialect, KVCDialect>();
  Importer importer(context, options);
  return importer.run(bytes);
}

bool mlir::kvc::onnx_import::parseTensorProto(StringRef bytes, MLIRContext *context,
                                              StringRef dataDir, DenseElementsAttr &out,
                                              std::string &name, std::string &error) {
  onnx::TensorProto t;
  if (bytes.size() > size_t(std::numeric_limits<int>::max()) ||
      !t.ParseFromArray(bytes.data(), int(bytes.size()))) {
    error = "not a valid ONNX TensorProto (truncated or malformed protobuf)";
    return false;
  }
  name = t.name();
  ImportOptions opts;
  opts.modelDir = dataDir.str();
  std::string msg;
  ScopedDiagnosticHandler handler(context, [&](Diagnostic &d) {
    msg = d.str();
    return success();
  });
  Importer importer(context, opts);
  auto a = importer.tensorAttr(t);
  if (failed(a)) {
    error = msg;
    return false;
  }
  out = *a;
  return true;
}
