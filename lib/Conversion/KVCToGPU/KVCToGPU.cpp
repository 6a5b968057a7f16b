//===- KVCToGPU.cpp - Lower decode-form kvc.attention to GPU kernels ------===//
//
// Kernels come from DecodeKernelGen (gpu-dialect text specialised per op, parsed here and
// merged into one `gpu.module @kvc_gpu`); the op becomes host code on memrefs with two
// gpu.launch_func ops (split, merge). See the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/KVCToGPU/KVCToGPU.h"
#include "kvc/Conversion/KVCToGPU/EncodedKernelGen.h"
#include "kvc/Conversion/Passes.h"
#include "kvc/Dialect/KVC/IR/KVC.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/StringMap.h"

#include <cmath>

namespace mlir {
namespace kvc {
#define GEN_PASS_DEF_CONVERTKVCTOGPU
#include "kvc/Conversion/Passes.h.inc"
} // namespace kvc
} // namespace mlir

using namespace mlir;
using namespace mlir::kvc;

namespace {

constexpr llvm::StringLiteral kModuleName = "kvc_gpu";

/// Device memory for the kernels: gpu.alloc (host_shared: managed memory the host code may
/// read or write too, e.g. the output it returns). gpu-to-llvm lowers it to mgpuMemAlloc, which
/// libkvc_runtime implements (kvc-gpu-pipeline{host=llvm}).
Value gpuAlloc(OpBuilder &b, Location loc, MemRefType type, ValueRange dynSizes, bool hostShared) {
  if (hostShared)
    return gpu::AllocOp::create(b, loc, type, /*asyncToken=*/Type(), /*asyncDependencies=*/{},
                                dynSizes, /*symbolOperands=*/{}, /*hostShared=*/true)
        .getMemref();
  // Device memory: gpu-to-llvm lowers only the async form (a stream for mgpuMemAlloc).
  auto tokenTy = gpu::AsyncTokenType::get(b.getContext());
  Value t = gpu::WaitOp::create(b, loc, tokenTy, ValueRange{}).getAsyncToken();
  auto alloc = gpu::AllocOp::create(b, loc, type, tokenTy, ValueRange{t}, dynSizes,
                                    /*symbolOperands=*/{}, /*hostShared=*/false);
  gpu::WaitOp::create(b, loc, Type(), ValueRange{alloc.getAsyncToken()});
  return alloc.getMemref();
}

/// gpu.dealloc after the work queued so far (the lowering needs the async form).
void gpuDealloc(OpBuilder &b, Location loc, Value memref) {
  auto tokenTy = gpu::AsyncTokenType::get(b.getContext());
  Value t = gpu::WaitOp::create(b, loc, tokenTy, ValueRange{}).getAsyncToken();
  Value d = gpu::DeallocOp::create(b, loc, tokenTy, ValueRange{t}, memref).getAsyncToken();
  gpu::WaitOp::create(b, loc, Type(), ValueRange{d});
}

/// The checks every decode kernel (dense, ragged, encoded) needs: rank-4 Q/K/V, no mask,
/// softcap or window, static Hq, Sq, D and Hkv, Dv == D, causal only with Sq == 1. Returns
/// why `op` fails them, or "".
std::string decodeFormReason(AttentionOp op) {
  auto qt = dyn_cast<RankedTensorType>(op.getQuery().getType());
  auto kt = dyn_cast<RankedTensorType>(op.getKey().getType());
  auto vt = dyn_cast<RankedTensorType>(op.getValue().getType());
  if (!qt || !kt || !vt || qt.getRank() != 4 || kt.getRank() != 4 || vt.getRank() != 4)
    return "needs rank-4 Q/K/V";
  if (op.getMask())
    return "masks are not supported";
  if (op.getSoftcap())
    return "softcap is not supported";
  if (op.getWindow())
    return "sliding windows are not supported";
  for (int64_t i : {1, 2, 3})
    if (qt.isDynamicDim(i))
      return "needs static Hq, Sq and D";
  if (kt.isDynamicDim(1) || kt.isDynamicDim(3) || vt.isDynamicDim(3))
    return "needs static Hkv and D";
  if (kt.getDimSize(3) != vt.getDimSize(3) || kt.getDimSize(3) != qt.getDimSize(3))
    return "needs Dv == D";
  if (op.getCausal() && qt.getDimSize(2) != 1)
    return "causal attention needs Sq == 1";
  return "";
}

/// Why `op` (over a dense or ragged cache) cannot take the GPU path, or "" if it can.
std::string unsupportedReason(AttentionOp op) {
  auto qt = dyn_cast<RankedTensorType>(op.getQuery().getType());
  auto kt = dyn_cast<RankedTensorType>(op.getKey().getType());
  auto vt = dyn_cast<RankedTensorType>(op.getValue().getType());
  auto rt = dyn_cast<RankedTensorType>(op.getResult().getType());
  if (!qt || !kt || !vt || !rt || qt.getRank() != 4 || kt.getRank() != 4 || vt.getRank() != 4)
    return "needs rank-4 Q/K/V";
  Type et = qt.getElementType();
  if (!(et.isBF16() || et.isF16()))
    return "needs f16 or bf16 Q/K/V";
  if (kt.getElementType() != et || vt.getElementType() != et || rt.getElementType() != et)
    return "needs one element type for Q, K, V and the result";
  return decodeFormReason(op);
}

Value cIdx(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

/// bufferization.to_buffer (identity layout, read-only) of a ranked tensor.
Value flatBuffer(OpBuilder &b, Location loc, Value tensor) {
  auto tt = cast<RankedTensorType>(tensor.getType());
  auto mt = MemRefType::get(tt.getShape(), tt.getElementType());
  Value m = bufferization::ToBufferOp::create(b, loc, mt, tensor, /*read_only=*/true);
  return m;
}

/// Collapses an identity-layout memref to 1-D and casts it to memref<?xT> (the kernel ABI).
Value flatten(OpBuilder &b, Location loc, Value memref) {
  auto mt = cast<MemRefType>(memref.getType());
  Value flat = memref;
  if (mt.getRank() != 1) {
    SmallVector<ReassociationIndices> re(1);
    for (int64_t i = 0; i < mt.getRank(); ++i)
      re[0].push_back(i);
    flat = memref::CollapseShapeOp::create(b, loc, memref, re);
  }
  auto dyn = MemRefType::get({ShapedType::kDynamic}, mt.getElementType());
  if (flat.getType() != dyn)
    flat = memref::CastOp::create(b, loc, dyn, flat);
  return flat;
}

Value dimOf(OpBuilder &b, Location loc, Value memref, int64_t i) {
  auto mt = cast<MemRefType>(memref.getType());
  if (!mt.isDynamicDim(i))
    return cIdx(b, loc, mt.getDimSize(i));
  return memref::DimOp::create(b, loc, memref, i);
}

/// The kvc.cache.view of an encoded cache whose keys and values `op` reads, or null.
CacheViewOp encodedView(AttentionOp op) {
  auto view = op.getKey().getDefiningOp<CacheViewOp>();
  if (!view || !isa<EncodedCacheType>(view.getCache().getType()))
    view = op.getValue().getDefiningOp<CacheViewOp>();
  if (!view || !isa<EncodedCacheType>(view.getCache().getType()))
    return nullptr;
  return view;
}

/// Why an attention over an encoded cache cannot take the GPU path, or "".
std::string encodedUnsupportedReason(AttentionOp op, CacheViewOp view) {
  if (op.getKey() != view.getKeys() || op.getValue() != view.getValues())
    return "encoded cache: K and V must be the keys and values of one kvc.cache.view";
  if (std::string why = decodeFormReason(op); !why.empty())
    return why;
  Type et = cast<RankedTensorType>(op.getQuery().getType()).getElementType();
  if (!(et.isBF16() || et.isF16() || et.isF32()))
    return "encoded cache: needs an f16, bf16 or f32 query";
  CodecAttr codec = cast<EncodedCacheType>(view.getCache().getType()).getCodec();
  if (codec.getBits() != 0)
    return "encoded cache: fixed-width (KIVI, bits > 0) codecs have no GPU kernel; only the "
           "error-bounded codec (bits = 0)";
  if (codec.getEntropy() != EntropyCode::Huffman)
    return "encoded cache: needs entropy = huffman (the GPU layout is the Huffman-coded one; "
           "run kvc-entropy-encode)";
  if (codec.getKeyGroup() != QuantGroup::Block)
    return "encoded cache: needs key_group = block (per-channel key groups have no GPU kernel)";
  if (codec.getValueGroup() != QuantGroup::Token)
    return "encoded cache: needs value_group = token";
  return "";
}

/// What the split kernels write and the merge reads, for every (query row, split): an
/// unnormalised D-vector (`opart`) and its running (max, sum) (`mlpart`), in device memory;
/// plus the attention output, in managed memory because the host code returns it.
struct DecodeBuffers {
  Value opart, mlpart, out;
};
DecodeBuffers allocDecodeBuffers(OpBuilder &b, Location loc, AttentionOp op, Value queryBuffer,
                                 Value partials, int64_t D) {
  auto dynF32 = MemRefType::get({ShapedType::kDynamic}, b.getF32Type());
  DecodeBuffers r;
  r.opart = gpuAlloc(b, loc, dynF32,
                     ValueRange{arith::MulIOp::create(b, loc, partials, cIdx(b, loc, D))},
                     /*hostShared=*/false);
  r.mlpart = gpuAlloc(b, loc, dynF32,
                      ValueRange{arith::MulIOp::create(b, loc, partials, cIdx(b, loc, 2))},
                      /*hostShared=*/false);
  auto rt = cast<RankedTensorType>(op.getResult().getType());
  SmallVector<Value> outDyn;
  for (int64_t i = 0; i < rt.getRank(); ++i)
    if (rt.isDynamicDim(i))
      outDyn.push_back(dimOf(b, loc, queryBuffer, i));
  r.out = gpuAlloc(b, loc, MemRefType::get(rt.getShape(), rt.getElementType()), outDyn,
                   /*hostShared=*/true);
  return r;
}

/// After the split launch: the merge kernel (grid: one CTA of D threads per query row) unless
/// the split kernel merged itself (`merge` null), the workspace freed, and op's result replaced
/// by the output.
void finishDecode(OpBuilder &b, Location loc, AttentionOp op, const DecodeBuffers &buf,
                  gpu::GPUFuncOp merge, Value nqRows, Value splits, int64_t D) {
  if (merge) {
    Value one = cIdx(b, loc, 1);
    gpu::LaunchFuncOp::create(b, loc, merge, gpu::KernelDim3{nqRows, one, one},
                              gpu::KernelDim3{cIdx(b, loc, D), one, one}, Value(),
                              ValueRange{buf.opart, buf.mlpart, flatten(b, loc, buf.out), splits});
  }
  gpuDealloc(b, loc, buf.opart);
  gpuDealloc(b, loc, buf.mlpart);
  Value res = bufferization::ToTensorOp::create(b, loc, op.getResult().getType(), buf.out,
                                                /*restrict=*/true, /*writable=*/true);
  op.getResult().replaceAllUsesWith(res);
}

struct ConvertKVCToGPUPass : public mlir::kvc::impl::ConvertKVCToGPUBase<ConvertKVCToGPUPass> {
  using ConvertKVCToGPUBase::ConvertKVCToGPUBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<AttentionOp> ops;
    module.walk([&](AttentionOp op) { ops.push_back(op); });
    if (ops.empty())
      return;
    for (AttentionOp op : ops) {
      CacheViewOp view = encodedView(op);
      std::string why = view ? encodedUnsupportedReason(op, view) : unsupportedReason(op);
      if (!why.empty()) {
        op.emitError("convert-kvc-to-gpu: ") << why;
        return signalPassFailure();
      }
    }
    if (blockSize % 32 != 0 || blockSize < 32 || blockSize > 1024 || unroll < 1) {
      module.emitError("convert-kvc-to-gpu: block-size must be a multiple of 32 in [32, 1024] "
                       "and unroll >= 1");
      return signalPassFailure();
    }

    MLIRContext *ctx = &getContext();
    OpBuilder mb(ctx);
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(), UnitAttr::get(ctx));
    auto gpuModule = module.lookupSymbol<gpu::GPUModuleOp>(kModuleName);
    if (!gpuModule) {
      mb.setInsertionPointToEnd(module.getBody());
      gpuModule = gpu::GPUModuleOp::create(mb, module.getLoc(), kModuleName);
    }
    llvm::StringMap<std::string> prefixOf; // config key -> kernel prefix
    // Kernel tags continue after any kernels already in @kvc_gpu (a second run on a module).
    unsigned counter = std::distance(gpuModule.getBody()->begin(), gpuModule.getBody()->end());
    // The kernel prefix of specialisation `tag` with the scale folded in: generated by
    // `generate(prefix, error)` and merged into @kvc_gpu the first time, shared after that.
    auto kernelPrefix = [&](AttentionOp op, const std::string &tag, double scaleLog2,
                            llvm::function_ref<std::string(const std::string &, std::string &)>
                                generate) -> FailureOr<std::string> {
      char scaleKey[32];
      snprintf(scaleKey, sizeof scaleKey, "%a", scaleLog2);
      std::string key = tag + "@" + scaleKey;
      auto it = prefixOf.find(key);
      if (it != prefixOf.end())
        return it->second;
      std::string prefix = "kvc_attn" + std::to_string(counter++) + tag, err;
      std::string text = generate(prefix, err);
      if (text.empty())
        return op.emitError("convert-kvc-to-gpu: ") << err;
      if (failed(mergeKernels(op, text, gpuModule)))
        return failure();
      prefixOf.try_emplace(key, prefix);
      return prefix;
    };

    for (AttentionOp op : ops) {
      auto qt = cast<RankedTensorType>(op.getQuery().getType());
      auto kt = cast<RankedTensorType>(op.getKey().getType());
      if (CacheViewOp view = encodedView(op)) {
        CodecAttr codec = cast<EncodedCacheType>(view.getCache().getType()).getCodec();
        EncodedKernelConfig ec;
        ec.headDim = qt.getDimSize(3);
        ec.groupSize = qt.getDimSize(1) / kt.getDimSize(1);
        ec.querySeq = qt.getDimSize(2);
        Type et = qt.getElementType();
        ec.queryType = et.isBF16() ? "bf16" : et.isF16() ? "f16" : "f32";
        ec.keyBlock = codec.getKeyBlock();
        ec.valueBlock = codec.getValueBlock();
        ec.unroll = encodedUnroll;
        ec.minCtasPerSM = encodedMinCtas;
        ec.scaleLog2 = op.getEffectiveScale() * M_LOG2E;
        ec.moduleName = kModuleName.str();
        FailureOr<std::string> prefix = kernelPrefix(
            op, encodedKernelTag(ec), ec.scaleLog2,
            [&](const std::string &pre, std::string &err) {
              ec.prefix = pre;
              return generateEncodedKernels(ec, err);
            });
        if (failed(prefix))
          return signalPassFailure();
        ec.prefix = *prefix;
        lowerEncodedHost(op, view, ec, gpuModule);
        continue;
      }
      DecodeKernelConfig cfg;
      cfg.headDim = qt.getDimSize(3);
      cfg.groupSize = qt.getDimSize(1) / kt.getDimSize(1);
      cfg.querySeq = qt.getDimSize(2);
      cfg.elemType = qt.getElementType().isBF16() ? "bf16" : "f16";
      cfg.blockSize = blockSize;
      cfg.unroll = unroll;
      cfg.scaleLog2 = op.getEffectiveScale() * M_LOG2E;
      cfg.ragged = static_cast<bool>(op.getKvLengths());
      cfg.fuseMerge = fuseMerge;
      cfg.moduleName = kModuleName.str();
      std::string tag = "_d" + std::to_string(cfg.headDim) + "_g" +
                        std::to_string(cfg.groupSize) + "_q" + std::to_string(cfg.querySeq) +
                        "_" + cfg.elemType + "_b" + std::to_string(cfg.blockSize) + "_u" +
                        std::to_string(cfg.unroll) + (cfg.ragged ? "_ragged" : "") +
                        (cfg.fuseMerge ? "_fm" : "");
      FailureOr<std::string> prefix =
          kernelPrefix(op, tag, cfg.scaleLog2, [&](const std::string &pre, std::string &err) {
            cfg.prefix = pre;
            return generateDecodeKernels(cfg, err);
          });
      if (failed(prefix))
        return signalPassFailure();
      cfg.prefix = *prefix;
      lowerHost(op, cfg, gpuModule);
    }
  }

  /// Parses generated kernel text and moves its functions into `gm`.
  LogicalResult mergeKernels(AttentionOp op, const std::string &text, gpu::GPUModuleOp gm) {
    ParserConfig pc(&getContext());
    OwningOpRef<ModuleOp> parsed = parseSourceString<ModuleOp>(text, pc, "kvc-generated-kernels");
    if (!parsed)
      return op.emitError("convert-kvc-to-gpu: internal error: generated kernels do not parse");
    auto src = cast<gpu::GPUModuleOp>(parsed->getBody()->front());
    for (Operation &f : llvm::make_early_inc_range(src.getBody()->getOperations()))
      f.moveBefore(gm.getBody(), gm.getBody()->end());
    return success();
  }

  /// Replaces an attention over an encoded cache by host code launching the encoded split and
  /// merge kernels. The encoded cache's device form (the 16 buffers of the kernel ABI in
  /// EncodedKernelGen.h) has no IR producer yet, so it is taken from the cache value through a
  /// `builtin.unrealized_conversion_cast` (libkvc_runtime's CUDAEncoded.h builds it at run time).
  void lowerEncodedHost(AttentionOp op, CacheViewOp view, const EncodedKernelConfig &cfg,
                        gpu::GPUModuleOp gm) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    auto kt = cast<RankedTensorType>(op.getKey().getType());
    Value qm = flatBuffer(b, loc, op.getQuery());
    Value batch = dimOf(b, loc, qm, 0);
    Value hkv = cIdx(b, loc, kt.getDimSize(1));
    const int64_t D = cfg.headDim, nqPerRow = cfg.groupSize * cfg.querySeq;
    Type i32 = b.getI32Type(), f32 = b.getF32Type(), f16 = b.getF16Type();
    auto dyn = [&](Type t) { return MemRefType::get({ShapedType::kDynamic}, t); };
    SmallVector<Type> abi = {dyn(i32), dyn(i32), dyn(i32), dyn(i32),                 // rows aux syms lut
                             dyn(i32), dyn(i32), dyn(i32), dyn(f32), dyn(f32), dyn(f16), // keys
                             dyn(i32), dyn(i32), dyn(i32), dyn(f32), dyn(f32), dyn(f16)};
    auto dev = UnrealizedConversionCastOp::create(b, loc, abi, ValueRange{view.getCache()});
    dev->setAttr("kvc.encoded_device_form", b.getUnitAttr());

    Value rows = arith::MulIOp::create(b, loc, batch, hkv);
    Value splits;
    if (numSplits > 0) {
      splits = cIdx(b, loc, numSplits);
    } else {
      // One wave of 4 CTAs per SM, at most one split per tile (value block) when S is static.
      Value want = arith::DivUIOp::create(b, loc, cIdx(b, loc, 4 * smCount), rows);
      if (!kt.isDynamicDim(2))
        want = arith::MinUIOp::create(
            b, loc, want,
            cIdx(b, loc, std::max<int64_t>(1, (kt.getDimSize(2) + cfg.valueBlock - 1) /
                                                  cfg.valueBlock)));
      splits = arith::MaxUIOp::create(b, loc, want, cIdx(b, loc, 1));
    }
    Value nqRows = arith::MulIOp::create(b, loc, rows, cIdx(b, loc, nqPerRow));
    Value partials = arith::MulIOp::create(b, loc, nqRows, splits);
    DecodeBuffers buf = allocDecodeBuffers(b, loc, op, qm, partials, D);
    SmallVector<Value> args = {flatten(b, loc, qm)};
    args.append(dev.getResults().begin(), dev.getResults().end());
    args.append({buf.opart, buf.mlpart});
    auto split = gm.lookupSymbol<gpu::GPUFuncOp>(cfg.prefix + "_split");
    Value one = cIdx(b, loc, 1);
    gpu::LaunchFuncOp::create(b, loc, split, gpu::KernelDim3{splits, hkv, batch},
                              gpu::KernelDim3{cIdx(b, loc, D), one, one}, Value(), args);
    finishDecode(b, loc, op, buf, gm.lookupSymbol<gpu::GPUFuncOp>(cfg.prefix + "_merge"), nqRows,
                 splits, D);
    Value lengths = op.getKvLengths();
    op.erase();
    if (view->use_empty())
      view.erase();
    if (lengths)
      if (Operation *def = lengths.getDefiningOp())
        if (isa<CacheLengthsOp>(def) && def->use_empty())
          def->erase();
  }

  /// Replaces `op` by host code that launches the split and merge kernels.
  void lowerHost(AttentionOp op, const DecodeKernelConfig &cfg, gpu::GPUModuleOp gm) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    Value qm = flatBuffer(b, loc, op.getQuery());
    Value km = flatBuffer(b, loc, op.getKey());
    Value vm = flatBuffer(b, loc, op.getValue());
    Value batch = dimOf(b, loc, km, 0);
    Value hkv = dimOf(b, loc, km, 1);
    Value skv = dimOf(b, loc, km, 2);
    const int64_t D = cfg.headDim, nqPerRow = cfg.groupSize * cfg.querySeq;
    const int64_t kpi = decodeKeysPerIteration(cfg);

    // Splits: the option, or at most one wave of 4 CTAs per SM (floor, so no half-empty last
    // wave) with >= 256 keys per split. libkvc_runtime's plan refines this with the kernel's
    // measured occupancy.
    Value rows = arith::MulIOp::create(b, loc, batch, hkv);
    Value splits;
    if (numSplits > 0) {
      splits = cIdx(b, loc, numSplits);
    } else {
      Value want = arith::DivUIOp::create(b, loc, cIdx(b, loc, 4 * smCount), rows);
      Value bySize = arith::MaxUIOp::create(
          b, loc, arith::DivUIOp::create(b, loc, skv, cIdx(b, loc, 256)), cIdx(b, loc, 1));
      splits = arith::MaxUIOp::create(b, loc, arith::MinUIOp::create(b, loc, want, bySize),
                                      cIdx(b, loc, 1));
    }
    Value cKpi = cIdx(b, loc, kpi);
    Value chunk = arith::CeilDivUIOp::create(b, loc, skv, splits);
    chunk = arith::MulIOp::create(b, loc, arith::CeilDivUIOp::create(b, loc, chunk, cKpi), cKpi);
    chunk = arith::MaxUIOp::create(b, loc, chunk, cKpi);

    Value nqRows = arith::MulIOp::create(b, loc, rows, cIdx(b, loc, nqPerRow));
    Value partials = arith::MulIOp::create(b, loc, nqRows, splits);
    DecodeBuffers buf = allocDecodeBuffers(b, loc, op, qm, partials, D);

    SmallVector<Value> splitArgs = {flatten(b, loc, qm), flatten(b, loc, km), flatten(b, loc, vm)};
    if (cfg.ragged)
      splitArgs.push_back(flatten(b, loc, flatBuffer(b, loc, op.getKvLengths())));
    splitArgs.append({buf.opart, buf.mlpart});
    Value counters;
    if (cfg.fuseMerge) {
      // Arrival counters of the fused merge: zero before the launch (the kernel leaves them 0).
      counters = gpuAlloc(b, loc, MemRefType::get({ShapedType::kDynamic}, b.getI32Type()),
                          ValueRange{rows}, /*hostShared=*/true);
      linalg::FillOp::create(b, loc, ValueRange{arith::ConstantIntOp::create(b, loc, 0, 32)},
                             ValueRange{counters});
      splitArgs.append({counters, flatten(b, loc, buf.out)});
    }
    splitArgs.append({skv, chunk});

    auto split = gm.lookupSymbol<gpu::GPUFuncOp>(cfg.prefix + "_split");
    Value one = cIdx(b, loc, 1);
    gpu::LaunchFuncOp::create(b, loc, split, gpu::KernelDim3{splits, hkv, batch},
                              gpu::KernelDim3{cIdx(b, loc, cfg.blockSize), one, one},
                              /*dynamicSharedMemorySize=*/Value(), splitArgs);
    if (cfg.fuseMerge)
      gpuDealloc(b, loc, counters);
    finishDecode(b, loc, op, buf,
                 cfg.fuseMerge ? gpu::GPUFuncOp()
                               : gm.lookupSymbol<gpu::GPUFuncOp>(cfg.prefix + "_merge"),
                 nqRows, splits, D);
    op.erase();
  }
};
} // namespace
