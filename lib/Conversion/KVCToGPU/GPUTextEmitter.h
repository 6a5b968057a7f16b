//===- GPUTextEmitter.h - writing gpu-dialect kernels as MLIR text ---------*- C++ -*-===//
//
// The kernel generators of convert-kvc-to-gpu (DecodeKernelGen, EncodedKernelGen,
// StoreKernelGen) are plain C++ without an MLIR dependency: they write a `gpu.module` as text,
// which the pass parses. This is their shared writer: fresh SSA names, one op per line at the
// current indentation, and the arith/math/memref/gpu ops they all use. Each generator derives
// its own emitter for the ops only it needs.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_CONVERSION_KVCTOGPU_GPUTEXTEMITTER_H
#define KVC_LIB_CONVERSION_KVCTOGPU_GPUTEXTEMITTER_H

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace mlir {
namespace kvc {

struct GPUTextEmitter {
  std::ostringstream os;
  int n = 0;
  std::string ind = "    ";

  /// A new SSA name `%<prefix><n>`.
  std::string fresh(const char *p = "v") { return "%" + std::string(p) + std::to_string(n++); }
  /// `%r = <rhs>` on its own line; returns %r.
  std::string L(const std::string &rhs, const char *p = "v") {
    std::string r = fresh(p);
    os << ind << r << " = " << rhs << "\n";
    return r;
  }
  /// A statement without results.
  void S(const std::string &s) { os << ind << s << "\n"; }
  void push() { ind += "  "; }
  void pop() { ind.resize(ind.size() - 2); }

  std::string ci(int64_t v) { return L("arith.constant " + std::to_string(v) + " : index", "c"); }
  std::string ci32(int64_t v) { return L("arith.constant " + std::to_string(v) + " : i32", "c"); }
  std::string ci64(int64_t v) { return L("arith.constant " + std::to_string(v) + " : i64", "c"); }
  /// An f32 constant from its bit pattern (exact, also for -0, inf and NaN).
  std::string cfBits(uint32_t bits) {
    char buf[32];
    snprintf(buf, sizeof buf, "0x%08X", bits);
    return L(std::string("arith.constant ") + buf + " : f32", "f");
  }
  std::string cf(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    return cfBits(bits);
  }
  std::string bin(const std::string &op, const std::string &a, const std::string &b,
                  const std::string &ty) {
    return L(op + " " + a + ", " + b + " : " + ty);
  }
  std::string add(const std::string &a, const std::string &b) { return bin("arith.addi", a, b, "index"); }
  std::string sub(const std::string &a, const std::string &b) { return bin("arith.subi", a, b, "index"); }
  std::string mul(const std::string &a, const std::string &b) { return bin("arith.muli", a, b, "index"); }
  std::string minu(const std::string &a, const std::string &b) { return bin("arith.minui", a, b, "index"); }
  std::string fadd(const std::string &a, const std::string &b, const std::string &ty = "f32") {
    return bin("arith.addf", a, b, ty);
  }
  std::string fmul(const std::string &a, const std::string &b, const std::string &ty = "f32") {
    return bin("arith.mulf", a, b, ty);
  }
  std::string fsub(const std::string &a, const std::string &b) { return bin("arith.subf", a, b, "f32"); }
  std::string fmax(const std::string &a, const std::string &b) { return bin("arith.maxnumf", a, b, "f32"); }
  std::string exp2(const std::string &a) { return L("math.exp2 " + a + " : f32"); }
  std::string cmp(const std::string &pred, const std::string &a, const std::string &b,
                  const std::string &ty) {
    return L("arith.cmpi " + pred + ", " + a + ", " + b + " : " + ty);
  }
  std::string cmpf(const std::string &pred, const std::string &a, const std::string &b,
                   const std::string &ty = "f32") {
    return L("arith.cmpf " + pred + ", " + a + ", " + b + " : " + ty);
  }
  std::string sel(const std::string &c, const std::string &a, const std::string &b,
                  const std::string &ty) {
    return L("arith.select " + c + ", " + a + ", " + b + " : " + ty);
  }
  std::string ld(const std::string &mem, const std::string &idx, const std::string &ty) {
    return L("memref.load " + mem + "[" + idx + "] : " + ty);
  }
  void st(const std::string &v, const std::string &mem, const std::string &idx,
          const std::string &ty) {
    S("memref.store " + v + ", " + mem + "[" + idx + "] : " + ty);
  }
  std::string toIdx(const std::string &i32) { return L("arith.index_castui " + i32 + " : i32 to index"); }
  std::string toI32(const std::string &idx) { return L("arith.index_castui " + idx + " : index to i32"); }
  /// xor-butterfly shuffle of an f32 over `w` lanes (full-warp shfl.sync: every lane must run it).
  std::string shfl(const std::string &a, const std::string &off, const std::string &w) {
    std::string r = fresh("sh");
    os << ind << r << ", " << fresh("ok") << " = gpu.shuffle xor " << a << ", " << off << ", " << w
       << " : f32\n";
    return r;
  }
  /// Online-softmax weight 2^(m - M), or 0 when m is -inf (an empty partial; also avoids
  /// -inf - -inf).
  std::string weight(const std::string &m, const std::string &M, const std::string &ninf,
                     const std::string &zero) {
    std::string isEmpty = cmpf("oeq", m, ninf);
    std::string e = exp2(fsub(m, M));
    return sel(isEmpty, zero, e, "f32");
  }
  /// The result names r#0..r#n-1 of `%r:n = ...` (just r when n == 1).
  std::vector<std::string> results(const std::string &r, size_t n) {
    std::vector<std::string> v;
    for (size_t i = 0; i < n; ++i)
      v.push_back(n == 1 ? r : r + "#" + std::to_string(i));
    return v;
  }
};

} // namespace kvc
} // namespace mlir

#endif
