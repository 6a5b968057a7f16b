//===- KVCToGPU.cpp - Lower decode-form kvc.attention to GPU kernels ------===//
//
// Kernels come from DecodeKernelGen (gpu-dialect text specialised per op, parsed here and
// merged into one `gpu.module @kvc_gpu`); the op becomes host code on memrefs with two
// gpu.launch_func ops (split, merge). See the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//
#include "kvc/Conversion/KVCToGPU/KVCToGPU.h"

#include "kvc/Conversion/KVCToGPU/EncodedKernelGen.h"
#include "kvc/Conversion/KVCToGPU/FixedWidthKernelGen.h"
#include "kvc/Conversion/KVCToGPU/StoreKernelGen.h"
#include "kvc/Conversion/Passes.h"
#include "kvc/Conversion/RuntimeFunc.h"
#include "kvc/Dialect/KVC/IR/EncodedCacheUse.h"
#include "kvc/Dialect/KVC/IR/KVC.h"
#include "kvc/Runtime/CUDAEncoded.h" // KVC_ENC_* buffer indices (header-only use, no link)
#include "kvc/Runtime/CUDAFixedWidth.h" // KVC_FW_* buffer indices and limits (header only)

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringMap.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>

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
// The split kernel of the small-rows specialisation: the fastest variant at batch 1 on the H100
// (run 10, docs/gpu.md §5.0), slower than the default at batch 8.
constexpr int64_t kSmallRowsBlockSize = 256, kSmallRowsUnroll = 2;

/// The name tag of a dense/ragged specialisation (kvc-bench and the runtime parse it back).
std::string decodeKernelTag(const DecodeKernelConfig &cfg) {
  return "_d" + std::to_string(cfg.headDim) + "_g" + std::to_string(cfg.groupSize) + "_q" +
         std::to_string(cfg.querySeq) + "_" + cfg.elemType + "_b" +
         std::to_string(cfg.blockSize) + "_u" + std::to_string(cfg.unroll) +
         (cfg.ragged ? "_ragged" : "") + (cfg.fuseMerge ? "_fm" : "") +
         (cfg.prefetch ? "_pf" : "") +
         (cfg.minCtasPerSM > 0 ? "_m" + std::to_string(cfg.minCtasPerSM) : "") +
         (cfg.l2PrefetchTiles > 0 ? "_l2p" + std::to_string(cfg.l2PrefetchTiles) : "");
}

/// The attention output the host code returns: managed memory (gpu.alloc host_shared), which
/// the caller may read on the host, or device memory (the async gpu.alloc form, which is what
/// gpu-to-llvm lowers; mgpuMemAlloc ignores its stream). libkvc_runtime implements
/// mgpuMemAlloc (kvc-gpu-pipeline{host=llvm}); the caller frees the result either way.
Value gpuAllocOutput(OpBuilder &b, Location loc, MemRefType type, ValueRange dynSizes,
                     bool device) {
  if (!device)
    return gpu::AllocOp::create(b, loc, type, /*asyncToken=*/Type(), /*asyncDependencies=*/{},
                                dynSizes, /*symbolOperands=*/{}, /*hostShared=*/true)
        .getMemref();
  auto tokenTy = gpu::AsyncTokenType::get(b.getContext());
  Value t = gpu::WaitOp::create(b, loc, tokenTy, ValueRange{}).getAsyncToken();
  auto alloc = gpu::AllocOp::create(b, loc, type, tokenTy, ValueRange{t}, dynSizes,
                                    /*symbolOperands=*/{}, /*hostShared=*/false);
  gpu::WaitOp::create(b, loc, Type(), ValueRange{alloc.getAsyncToken()});
  return alloc.getMemref();
}

/// `name` as a NUL-terminated memref<?xi8> (a private constant global per name), for runtime
/// calls that look kernels up by name.
Value kernelNameRef(OpBuilder &b, Location loc, ModuleOp module, StringRef name) {
  std::string sym = ("__kvc_name_" + name).str();
  auto ty = MemRefType::get({int64_t(name.size() + 1)}, b.getI8Type());
  if (!module.lookupSymbol(sym)) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(module.getBody());
    SmallVector<int8_t> bytes(name.begin(), name.end());
    bytes.push_back(0);
    auto init = DenseElementsAttr::get(RankedTensorType::get(ty.getShape(), b.getI8Type()),
                                       ArrayRef<int8_t>(bytes));
    memref::GlobalOp::create(b, loc, sym, b.getStringAttr("private"), ty, init,
                             /*constant=*/true, /*alignment=*/IntegerAttr());
  }
  Value g = memref::GetGlobalOp::create(b, loc, ty, sym);
  return memref::CastOp::create(b, loc, MemRefType::get({ShapedType::kDynamic}, b.getI8Type()),
                                g);
}

/// Scratch device memory of a decode op from the runtime's per-thread cache
/// (kvc_rt_gpu_workspace_<f32|i32>, CompilerABI.h): grown on demand and kept, so a warm decode
/// step allocates and frees nothing. Ops share the slots: each finishes its (blocking) launches
/// before the next op runs. An i32 workspace is zero when handed out and must be left zero.
Value gpuWorkspace(OpBuilder &b, Location loc, Type elem, int64_t slot, Value elems) {
  auto module = b.getInsertionBlock()->getParentOp()->getParentOfType<ModuleOp>();
  Type i64 = b.getI64Type();
  auto ty = MemRefType::get({ShapedType::kDynamic}, elem);
  auto fn = declareRuntimeFunc(b, module,
                               elem.isF32() ? "kvc_rt_gpu_workspace_f32" : "kvc_rt_gpu_workspace_i32",
                               {i64, i64}, {ty});
  return func::CallOp::create(b, loc, fn,
                              ValueRange{arith::ConstantIntOp::create(b, loc, slot, 64),
                                         arith::IndexCastOp::create(b, loc, i64, elems)})
      .getResult(0);
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

std::string encodedCodecReason(CodecAttr codec);

/// The codec's largest symbol for error bound `eps`, as the runtime codec sets it
/// (maxSymbolFor in lib/Runtime/Codec/Quantizer.h): round(1 / eps).
int64_t codecMaxSymbol(double eps) {
  return static_cast<int64_t>(std::floor((1.0 / eps) * (1.0 + 0x1p-20) + 0.5));
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
  return encodedCodecReason(cast<EncodedCacheType>(view.getCache().getType()).getCodec());
}

/// Why the GPU kernels cannot hold a cache of this codec, or "".
std::string encodedCodecReason(CodecAttr codec) {
  if (codec.getBits() != 0)
    return "encoded cache: KIVI-style codecs (bits > 0) have no GPU kernel; only the "
           "error-bounded codec (bits = 0)";
  if (codec.getKeyGroup() != QuantGroup::Block)
    return "encoded cache: needs key_group = block (per-channel key groups have no GPU kernel)";
  if (codec.getValueGroup() != QuantGroup::Token)
    return "encoded cache: needs value_group = token";
  if (codec.getEntropy() == EntropyCode::None) {
    // The fixed-width form stores key symbols in 5 bits and value symbols in 4.
    const double ke = codec.getKeyError().getValueAsDouble(),
                 ve = codec.getValueError().getValueAsDouble();
    // The codec verifies error bounds in [1e-4, 1], so codecMaxSymbol is in range.
    auto tooSmall = [](const char *stream, int bits, double eps, int64_t limit) {
      char buf[320];
      snprintf(buf, sizeof buf,
               "encoded cache: entropy = none keeps %s symbols in %d bits, but %s_error = %g "
               "gives symbols up to %lld (> %lld): raise %s_error above 1/%g = %.4g or run "
               "kvc-entropy-encode",
               stream, bits, stream, eps, (long long)codecMaxSymbol(eps), (long long)limit,
               stream, double(limit) + 0.5, 1.0 / (double(limit) + 0.5));
      return std::string(buf);
    };
    if (codecMaxSymbol(ke) > KVC_FW_KEY_MAX_SYMBOL)
      return tooSmall("key", 5, ke, KVC_FW_KEY_MAX_SYMBOL);
    if (codecMaxSymbol(ve) > KVC_FW_VALUE_MAX_SYMBOL)
      return tooSmall("value", 4, ve, KVC_FW_VALUE_MAX_SYMBOL);
  }
  return "";
}

/// The split count of a decode op whose kernels are `prefix`_split/_merge: `numSplits` if > 0,
/// else at run time libkvc_runtime's `planFn`(kernel name, args...) (kvc_rt_gpu_decode_splits,
/// kvc_rt_gpu_encoded_splits): the runtime's plan at the split kernel's measured occupancy, as
/// on the AOT runtime path. Index arguments are passed as i64.
Value splitCount(OpBuilder &b, Location loc, Operation *op, int64_t numSplits, StringRef planFn,
                 StringRef prefix, ValueRange args) {
  if (numSplits > 0)
    return cIdx(b, loc, numSplits);
  auto module = op->getParentOfType<ModuleOp>();
  Type i64 = b.getI64Type();
  Value name = kernelNameRef(b, loc, module, prefix);
  SmallVector<Value> callArgs = {name};
  for (Value v : args)
    callArgs.push_back(v.getType().isIndex() ? arith::IndexCastOp::create(b, loc, i64, v) : v);
  auto fn = declareRuntimeFunc(b, module, planFn, ValueRange(callArgs).getTypes(), {i64});
  Value s64 = func::CallOp::create(b, loc, fn, callArgs).getResult(0);
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), s64);
}

/// What the split kernels write and the merge reads, for every (query row, split): an
/// unnormalised D-vector (`opart`) and its running (max, sum) (`mlpart`), in the runtime's
/// cached device workspaces; plus the attention output the host code returns (managed or
/// device memory, option output-memory).
struct DecodeBuffers {
  Value opart, mlpart, out;
};
/// The attention output the host code returns (managed or device memory, gpuAllocOutput).
Value allocOutput(OpBuilder &b, Location loc, AttentionOp op, Value queryBuffer,
                  bool deviceOutput) {
  auto rt = cast<RankedTensorType>(op.getResult().getType());
  SmallVector<Value> outDyn;
  for (int64_t i = 0; i < rt.getRank(); ++i)
    if (rt.isDynamicDim(i))
      outDyn.push_back(dimOf(b, loc, queryBuffer, i));
  return gpuAllocOutput(b, loc, MemRefType::get(rt.getShape(), rt.getElementType()), outDyn,
                        deviceOutput);
}
/// The split kernels' partials for `partials` (query row, split) pairs, writing into `out`.
DecodeBuffers decodeWorkspaces(OpBuilder &b, Location loc, Value partials, int64_t D,
                               Value out) {
  DecodeBuffers r;
  r.opart = gpuWorkspace(b, loc, b.getF32Type(), /*slot=*/0,
                         arith::MulIOp::create(b, loc, partials, cIdx(b, loc, D)));
  r.mlpart = gpuWorkspace(b, loc, b.getF32Type(), /*slot=*/1,
                          arith::MulIOp::create(b, loc, partials, cIdx(b, loc, 2)));
  r.out = out;
  return r;
}

/// The merge kernel (grid: one CTA of decodeMergeThreads(D) threads per query row).
void launchMerge(OpBuilder &b, Location loc, const DecodeBuffers &buf, gpu::GPUFuncOp merge,
                 Value nqRows, Value splits, int64_t D) {
  Value one = cIdx(b, loc, 1);
  gpu::LaunchFuncOp::create(b, loc, merge, gpu::KernelDim3{nqRows, one, one},
                            gpu::KernelDim3{cIdx(b, loc, decodeMergeThreads(D)), one, one},
                            Value(),
                            ValueRange{buf.opart, buf.mlpart, flatten(b, loc, buf.out), splits});
}

/// Buffer indices of kvc_rt_gpu_encoded_buffer_*: the device form's (KVC_ENC_*, CUDAEncoded.h),
/// then per stream the store buffers of the open append.
enum EncodedStoreBuffer : int64_t {
  kEncStoreJobs = KVC_ENC_NUM_BUFFERS, kEncStoreRes, kEncStoreEnc, kEncStoreTop,
  kEncPerStoreStream = 4
};
/// The decode buffer of stream st (0 keys, 1 values) that corresponds to key buffer `keyIdx`.
int64_t encStreamBuffer(int64_t keyIdx, int st) {
  return keyIdx + int64_t(KVC_ENC_VW - KVC_ENC_KW) * st;
}

/// A run-time check that the op's batch and KV heads are the encoded cache's (the kernels index
/// the cache's row table by them) and that the handle holds the device form the kernels read:
/// Huffman-coded (`fixedWidth` false) or fixed-width.
void checkEncodedRows(OpBuilder &b, Location loc, Value h, Value batch, int64_t hkv,
                      bool fixedWidth) {
  auto module = b.getInsertionBlock()->getParentOp()->getParentOfType<ModuleOp>();
  Type i64 = b.getI64Type();
  auto fn = declareRuntimeFunc(b, module, "kvc_rt_gpu_encoded_check_rows", {i64, i64, i64, i64},
                               {});
  func::CallOp::create(b, loc, fn,
                       ValueRange{h, arith::IndexCastOp::create(b, loc, i64, batch),
                                  arith::ConstantIntOp::create(b, loc, hkv, 64),
                                  arith::ConstantIntOp::create(b, loc, fixedWidth ? 1 : 0, 64)});
}

/// Device buffer `index` of encoded-cache handle `h`, as memref<?x`elem`>.
Value encodedBuffer(OpBuilder &b, Location loc, Value h, int64_t index, Type elem) {
  auto module = b.getInsertionBlock()->getParentOp()->getParentOfType<ModuleOp>();
  std::string name = "kvc_rt_gpu_encoded_buffer_";
  name += elem.isF16() ? "f16" : elem.isF32() ? "f32" : "i32";
  auto ty = MemRefType::get({ShapedType::kDynamic}, elem);
  auto fn = declareRuntimeFunc(b, module, name, {b.getI64Type(), b.getI64Type()}, {ty});
  Value idx = arith::ConstantIntOp::create(b, loc, index, 64);
  return func::CallOp::create(b, loc, fn, ValueRange{h, idx}).getResult(0);
}

struct ConvertKVCToGPUPass : public mlir::kvc::impl::ConvertKVCToGPUBase<ConvertKVCToGPUPass> {
  using ConvertKVCToGPUBase::ConvertKVCToGPUBase;
  SmallVector<Value> createdHandles; // results of the kvc_rt_gpu_encode calls

  void runOnOperation() override {
    ModuleOp module = getOperation();
    createdHandles.clear();
    SmallVector<AttentionOp> ops;
    module.walk([&](AttentionOp op) { ops.push_back(op); });
    bool hasEncoded = false;
    module.walk([&](Operation *op) {
      for (Region &r : op->getRegions())
        for (Block &b : r)
          for (BlockArgument a : b.getArguments())
            hasEncoded |= isa<EncodedCacheType>(a.getType());
      for (Value v : op->getResults())
        hasEncoded |= isa<EncodedCacheType>(v.getType());
    });
    if (ops.empty() && !hasEncoded)
      return;
    for (AttentionOp op : ops) {
      CacheViewOp view = encodedView(op);
      std::string why = view ? encodedUnsupportedReason(op, view) : unsupportedReason(op);
      if (!why.empty()) {
        op.emitError("convert-kvc-to-gpu: ") << why;
        return signalPassFailure();
      }
    }
    if (hasEncoded && failed(checkEncodedValues(module)))
      return signalPassFailure();
    if (smallRows < 0) {
      module.emitError("convert-kvc-to-gpu: small-rows must be >= 0 (0: off), got ")
          << static_cast<int64_t>(smallRows);
      return signalPassFailure();
    }
    if (outputMemory != "managed" && outputMemory != "device") {
      module.emitError("convert-kvc-to-gpu: output-memory must be 'managed' or 'device', got '")
          << outputMemory << "'";
      return signalPassFailure();
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

    // Encoded caches become runtime handles; encodes and appends are lowered in program order.
    llvm::DenseMap<Value, Value> handleOf;
    if (hasEncoded && failed(lowerEncodedProducers(module, gpuModule, handleOf)))
      return signalPassFailure();

    for (AttentionOp op : ops) {
      auto qt = cast<RankedTensorType>(op.getQuery().getType());
      auto kt = cast<RankedTensorType>(op.getKey().getType());
      if (CacheViewOp view = encodedView(op)) {
        CodecAttr codec = cast<EncodedCacheType>(view.getCache().getType()).getCodec();
        if (codec.getEntropy() == EntropyCode::None) {
          FixedWidthKernelConfig fc = fixedWidthConfig(op, codec);
          FailureOr<std::string> prefix = kernelPrefix(
              op, fixedWidthKernelTag(fc), fc.scaleLog2,
              [&](const std::string &pre, std::string &err) {
                fc.prefix = pre;
                return generateFixedWidthKernels(fc, err);
              });
          if (failed(prefix))
            return signalPassFailure();
          fc.prefix = *prefix;
          lowerFixedWidthHost(op, view, fc, gpuModule, handleOf.lookup(view.getCache()));
          continue;
        }
        EncodedKernelConfig ec;
        ec.headDim = qt.getDimSize(3);
        ec.groupSize = qt.getDimSize(1) / kt.getDimSize(1);
        ec.querySeq = qt.getDimSize(2);
        Type et = qt.getElementType();
        ec.queryType = et.isBF16() ? "bf16" : et.isF16() ? "f16" : "f32";
        ec.keyBlock = codec.getKeyBlock();
        ec.valueBlock = codec.getValueBlock();
        ec.unroll = encodedUnroll;
        ec.refillGroup = encodedRefillGroup;
        ec.minCtasPerSM = encodedMinCtas;
        ec.multiSymbol = encodedMultiSymbol;
        ec.mma = encodedMma;
        ec.overlap = encodedOverlap;
        ec.lutL1 = encodedLutL1;
        ec.maxSymbol = std::max(codecMaxSymbol(codec.getKeyError().getValueAsDouble()),
                                codecMaxSymbol(codec.getValueError().getValueAsDouble()));
        ec.multiSymbolBits = encodedMSBits;
        ec.multiSymbolSlots = encodedMSSlots;
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
        lowerEncodedHost(op, view, ec, gpuModule, handleOf.lookup(view.getCache()));
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
      cfg.prefetch = prefetch;
      cfg.minCtasPerSM = minCtas;
      cfg.l2PrefetchTiles = l2Prefetch;
      cfg.moduleName = kModuleName.str();
      // The small-batch specialisation (small-rows): block 256, unroll 2, no register cap.
      DecodeKernelConfig smallCfg = cfg;
      smallCfg.blockSize = kSmallRowsBlockSize;
      smallCfg.unroll = kSmallRowsUnroll;
      smallCfg.minCtasPerSM = 0;
      // Only for the shapes it was measured faster on (D = 128 with g*Sq <= 4: 256 threads
      // keep 2 CTAs/SM there; at D = 64 g = 8 or Sq = 2 they fall to 1), only where the
      // requested kernel is not already block 256 / unroll 2, and only if it can be built.
      const bool distinct = smallRows > 0 && cfg.headDim == 128 &&
                            cfg.groupSize * cfg.querySeq <= 4 &&
                            (cfg.blockSize != smallCfg.blockSize ||
                             cfg.unroll != smallCfg.unroll) &&
                            validateDecodeKernelConfig(smallCfg).empty();
      // With a static batch (of Q or K) the choice is made here; otherwise both are built and
      // the host code picks at run time.
      bool useMain = true, useSmall = false;
      if (distinct) {
        int64_t staticBatch = !qt.isDynamicDim(0)   ? qt.getDimSize(0)
                              : !kt.isDynamicDim(0) ? kt.getDimSize(0)
                                                    : ShapedType::kDynamic;
        if (ShapedType::isDynamic(staticBatch)) {
          useSmall = true;
        } else {
          useSmall = staticBatch * kt.getDimSize(1) <= smallRows;
          useMain = !useSmall;
        }
      }
      auto build = [&](DecodeKernelConfig &c) -> LogicalResult {
        FailureOr<std::string> prefix = kernelPrefix(
            op, decodeKernelTag(c), c.scaleLog2, [&](const std::string &pre, std::string &err) {
              c.prefix = pre;
              return generateDecodeKernels(c, err);
            });
        if (failed(prefix))
          return failure();
        c.prefix = *prefix;
        return success();
      };
      if ((useMain && failed(build(cfg))) || (useSmall && failed(build(smallCfg))))
        return signalPassFailure();
      lowerHost(op, useMain ? &cfg : nullptr, useSmall ? &smallCfg : nullptr, gpuModule);
    }
    if (hasEncoded && failed(finishEncodedHandles(module, handleOf)))
      return signalPassFailure();
  }

  /// Parses generated kernel text and moves its functions into `gm`.
  LogicalResult mergeKernels(Operation *op, const std::string &text, gpu::GPUModuleOp gm) {
    ParserConfig pc(&getContext());
    OwningOpRef<ModuleOp> parsed = parseSourceString<ModuleOp>(text, pc, "kvc-generated-kernels");
    if (!parsed) {
      // For kvc developers: the text the line:column of the parse error points into.
      if (const char *dump = std::getenv("KVC_DUMP_GENERATED_KERNELS"))
        if (FILE *f = std::fopen(dump, "w")) {
          std::fwrite(text.data(), 1, text.size(), f);
          std::fclose(f);
        }
      return op->emitError("convert-kvc-to-gpu: internal error: generated kernels do not parse "
                           "(set KVC_DUMP_GENERATED_KERNELS=FILE to write them out)");
    }
    auto src = cast<gpu::GPUModuleOp>(parsed->getBody()->front());
    for (Operation &f : llvm::make_early_inc_range(src.getBody()->getOperations()))
      f.moveBefore(gm.getBody(), gm.getBody()->end());
    return success();
  }

  //===--------------------------------------------------------------------===//
  // Encoded caches as runtime handles
  //===--------------------------------------------------------------------===//

  /// Checks that every !kvc.encoded_cache value is something the handle lowering covers: a
  /// function argument, or the result of kvc.encode (of kvc.cache.from_tensors) or
  /// kvc.cache.append; read only by kvc.cache.view (for kvc.attention), kvc.cache.append,
  /// kvc.cache.lengths and func.return; and never read after it was appended to (the handle
  /// is updated in place).
  LogicalResult checkEncodedValues(ModuleOp module) {
    auto checkValue = [&](Value v, Operation *where) -> LogicalResult {
      auto type = dyn_cast<EncodedCacheType>(v.getType());
      if (!type)
        return success();
      if (auto arg = dyn_cast<BlockArgument>(v)) {
        auto fn = dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp());
        if (!fn || arg.getOwner() != &fn.getBody().front())
          return where->emitError("convert-kvc-to-gpu: an encoded cache may be a block argument "
                                  "only of a func.func entry block (loop-carried caches are not "
                                  "supported on the GPU path)");
      } else if (auto enc = v.getDefiningOp<EncodeOp>()) {
        if (!enc.getCache().getDefiningOp<CacheFromTensorsOp>())
          return enc.emitError("convert-kvc-to-gpu: kvc.encode on the GPU path needs the dense "
                               "keys and values of a kvc.cache.from_tensors");
      } else if (!v.getDefiningOp<CacheAppendOp>()) {
        return v.getDefiningOp()->emitError("convert-kvc-to-gpu: encoded caches on the GPU path "
                                            "come from function arguments, kvc.encode or "
                                            "kvc.cache.append, not from this op");
      }
      if (std::string why = encodedCodecReason(type.getCodec()); !why.empty())
        return where->emitError("convert-kvc-to-gpu: ") << why;
      Type et = type.getKeyType().getElementType();
      if (!(et.isF16() || et.isBF16() || et.isF32()))
        return where->emitError("convert-kvc-to-gpu: encoded cache: needs f16, bf16 or f32 "
                                "keys and values, got ")
               << et;
      for (OpOperand &use : v.getUses()) {
        Operation *user = use.getOwner();
        if (auto view = dyn_cast<CacheViewOp>(user)) {
          for (Value r : view->getResults())
            for (Operation *reader : r.getUsers()) {
              auto attn = dyn_cast<AttentionOp>(reader);
              if (!attn || encodedView(attn) != view)
                return reader->emitError(
                    "convert-kvc-to-gpu: on the GPU path only kvc.attention may read an encoded "
                    "cache's kvc.cache.view (decoding to tensors is the CPU path's)");
            }
          continue;
        }
        if (isa<CacheAppendOp>(user)) {
          if (Operation *other = findReadAfterInPlaceAppend(v, /*viewReadersRead=*/true))
            return other->emitError("convert-kvc-to-gpu: reads an encoded cache after (or "
                                    "apart from) the kvc.cache.append that updates it in place");
          if (Operation *app = findAppendOutsideDefiningBlock(v))
            return app->emitError("convert-kvc-to-gpu: appends to an encoded cache defined "
                                  "outside its block (e.g. in a loop body): the runtime updates "
                                  "the cache in place, so it must be appended to once, where it "
                                  "is defined");
          continue;
        }
        if (isa<CacheLengthsOp, func::ReturnOp>(user))
          continue;
        return user->emitError("convert-kvc-to-gpu: encoded caches on the GPU path may only be "
                               "read by kvc.cache.view, kvc.cache.append, kvc.cache.lengths and "
                               "func.return");
      }
      return success();
    };
    WalkResult res = module.walk([&](Operation *op) -> WalkResult {
      if (isa<gpu::GPUModuleOp>(op))
        return WalkResult::skip();
      if (auto fn = dyn_cast<func::FuncOp>(op))
        if (!fn.isExternal())
          for (BlockArgument a : fn.getArguments())
            if (failed(checkValue(a, op)))
              return WalkResult::interrupt();
      for (Value r : op->getResults())
        if (failed(checkValue(r, op)))
          return WalkResult::interrupt();
      return WalkResult::advance();
    });
    return failure(res.wasInterrupted());
  }

  /// Generates the kernels of specialisation `name` once (text by `generate`) into @kvc_gpu.
  LogicalResult ensureKernels(Operation *op, gpu::GPUModuleOp gm, StringRef probe,
                              llvm::function_ref<std::string(std::string &)> generate) {
    if (gm.lookupSymbol(probe))
      return success();
    std::string err, text = generate(err);
    if (text.empty())
      return op->emitError("convert-kvc-to-gpu: ") << err;
    return mergeKernels(op, "gpu.module @" + kModuleName.str() + " {\n" + text + "}\n", gm);
  }

  /// Handles for encoded-cache function arguments (a cast, resolved by finishEncodedHandles),
  /// and the lowering of kvc.encode and of kvc.cache.append on encoded caches.
  LogicalResult lowerEncodedProducers(ModuleOp module, gpu::GPUModuleOp gm,
                                      llvm::DenseMap<Value, Value> &handleOf) {
    OpBuilder b(module.getContext());
    Type i64 = b.getI64Type();
    for (auto fn : module.getOps<func::FuncOp>()) {
      if (fn.isExternal())
        continue;
      b.setInsertionPointToStart(&fn.getBody().front());
      for (BlockArgument a : fn.getArguments())
        if (isa<EncodedCacheType>(a.getType()))
          handleOf[a] = UnrealizedConversionCastOp::create(b, a.getLoc(), TypeRange{i64},
                                                           ValueRange{a})
                            .getResult(0);
    }
    SmallVector<Operation *> producers;
    module.walk([&](Operation *op) {
      if (isa<EncodeOp>(op) ||
          (isa<CacheAppendOp>(op) && isa<EncodedCacheType>(op->getResult(0).getType())))
        producers.push_back(op);
    });
    for (Operation *op : producers) {
      if (auto enc = dyn_cast<EncodeOp>(op)) {
        Value h = lowerEncode(enc);
        handleOf[enc.getResult()] = h;
        createdHandles.push_back(h);
        continue;
      }
      auto app = cast<CacheAppendOp>(op);
      Value h = handleOf.lookup(app.getCache());
      if (!h)
        return app.emitError("convert-kvc-to-gpu: internal error: no handle for the cache");
      if (failed(lowerEncodedAppend(app, gm, h)))
        return failure();
      handleOf[app.getResult()] = h;
    }
    return success();
  }

  /// kvc.encode -> kvc_rt_gpu_encode_<t>(codec..., reserve, K, V, lengths) -> handle.
  Value lowerEncode(EncodeOp op) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    auto from = op.getCache().getDefiningOp<CacheFromTensorsOp>();
    auto type = cast<EncodedCacheType>(op.getType());
    CodecAttr c = type.getCodec();
    Type et = type.getKeyType().getElementType();
    Type i64 = b.getI64Type(), f64 = b.getF64Type();
    auto dyn4 = MemRefType::get(SmallVector<int64_t>(4, ShapedType::kDynamic), et);
    auto dyn2 = MemRefType::get({ShapedType::kDynamic, ShapedType::kDynamic}, i64);
    std::string name = std::string("kvc_rt_gpu_encode_") + (et.isF16() ? "f16" : et.isBF16() ? "bf16" : "f32");
    auto fn = declareRuntimeFunc(b, op->getParentOfType<ModuleOp>(), name,
                          {i64, i64, i64, f64, i64, f64, i64, i64, i64, i64, dyn4, dyn4, dyn2},
                          {i64});
    auto buf4 = [&](Value t) {
      return memref::CastOp::create(b, loc, dyn4, flatBuffer(b, loc, t)).getResult();
    };
    Value noLengths = memref::CastOp::create(
        b, loc, dyn2, memref::AllocaOp::create(b, loc, MemRefType::get({0, 0}, i64)));
    auto ci = [&](int64_t v) -> Value { return arith::ConstantIntOp::create(b, loc, v, 64); };
    auto cf = [&](FloatAttr a) -> Value {
      return arith::ConstantOp::create(b, loc, b.getF64FloatAttr(a.getValueAsDouble()));
    };
    return func::CallOp::create(
               b, loc, fn,
               ValueRange{ci(c.getBits()), ci(int64_t(c.getKeyGroup())), ci(c.getKeyBlock()),
                          cf(c.getKeyError()), ci(c.getValueBlock()), cf(c.getValueError()),
                          ci(int64_t(c.getEntropy())), ci(c.getRecentKeys()),
                          ci(c.getRecentValues()), ci(encodedReserve),
                          buf4(from.getKeys()), buf4(from.getValues()), noLengths})
        .getResult(0);
  }

  /// The window kernel per stream (keys kn, values vn: [rows, n, D] flat): grid (n, rows), D
  /// threads, nothing launched when n = 0. `dst(st)` gives stream st's window buffer, the
  /// offset of the first new token and the row stride (elements).
  void emitWindowCopies(OpBuilder &b, Location loc, gpu::GPUFuncOp window, Value kn, Value vn,
                        Value n, Value rows, int64_t D,
                        llvm::function_ref<std::array<Value, 3>(int)> dst) {
    Value one = cIdx(b, loc, 1), zero = cIdx(b, loc, 0);
    Value hasTokens = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, n, zero);
    auto ifTokens = scf::IfOp::create(b, loc, hasTokens, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(ifTokens.thenBlock());
    for (int st = 0; st < 2; ++st) {
      std::array<Value, 3> d = dst(st);
      gpu::LaunchFuncOp::create(b, loc, window, gpu::KernelDim3{n, rows, one},
                                gpu::KernelDim3{cIdx(b, loc, D), one, one}, Value(),
                                ValueRange{flatten(b, loc, st ? vn : kn), d[0], n, d[1], d[2]});
    }
  }

  /// kvc.cache.append on a fixed-width (entropy = none) cache. Value blocks of a multiple of 16
  /// tokens append on the GPU (CUDAFixedWidth.h, kvc_cuda_fw_gpu_append): append_begin, the
  /// window kernel per stream (rounding to fp16), the fixed-width store kernels on the blocks
  /// that fall due, append_end. Other value blocks: one runtime call through the host-assisted
  /// appender (the CPU codec quantizes the blocks it cuts, what changed is copied over).
  LogicalResult lowerFixedWidthAppend(CacheAppendOp op, gpu::GPUModuleOp gm, Value h,
                                      const std::string &etName) {
    auto type = cast<EncodedCacheType>(op.getCache().getType());
    auto kt = type.getKeyType();
    const int64_t D = kt.getDimSize(3), KB = type.getCodec().getKeyBlock();
    OpBuilder b(op);
    Location loc = op.getLoc();
    auto module = op->getParentOfType<ModuleOp>();
    Type i64 = b.getI64Type(), i32 = b.getI32Type(), f32 = b.getF32Type(), f16 = b.getF16Type();
    if (type.getCodec().getValueBlock() % 16) {
      auto dyn4 =
          MemRefType::get(SmallVector<int64_t>(4, ShapedType::kDynamic), kt.getElementType());
      auto buf4 = [&](Value t) {
        return memref::CastOp::create(b, loc, dyn4, flatBuffer(b, loc, t)).getResult();
      };
      Value k = buf4(op.getKeys()), v = buf4(op.getValues());
      checkEncodedRows(b, loc, h, dimOf(b, loc, k, 0), kt.getDimSize(1), /*fixedWidth=*/true);
      auto fn = declareRuntimeFunc(b, module, "kvc_rt_gpu_fixed_width_append_" + etName,
                                   {i64, dyn4, dyn4}, {});
      func::CallOp::create(b, loc, fn, ValueRange{h, k, v});
      return success();
    }
    const std::string storeBase = "kvc_store" + fixedWidthStoreKernelTag(D, KB);
    const std::string windowName = "kvc_window_d" + std::to_string(D) + "_" + etName;
    if (failed(ensureKernels(op, gm, storeBase + "_kstore",
                             [&](std::string &err) {
                               return generateFixedWidthStoreKernelFuncs(D, KB, "kvc_store", err);
                             })) ||
        failed(ensureKernels(op, gm, windowName, [&](std::string &err) {
          return generateWindowAppendKernelFunc(D, etName, windowName, err);
        })))
      return failure();
    auto dynI64 = MemRefType::get({ShapedType::kDynamic}, i64);
    Value kn = flatBuffer(b, loc, op.getKeys()), vn = flatBuffer(b, loc, op.getValues());
    Value batch = dimOf(b, loc, kn, 0), n = dimOf(b, loc, kn, 2);
    Value rows = arith::MulIOp::create(b, loc, batch, cIdx(b, loc, kt.getDimSize(1)));
    Value n64 = arith::IndexCastOp::create(b, loc, i64, n);
    checkEncodedRows(b, loc, h, batch, kt.getDimSize(1), /*fixedWidth=*/true);
    Value state = memref::CastOp::create(
        b, loc, dynI64, memref::AllocaOp::create(b, loc, MemRefType::get({4}, i64)));
    auto begin = declareRuntimeFunc(b, module, "kvc_rt_gpu_fixed_width_append_begin",
                                    {i64, i64, i64, i64, dynI64}, {});
    auto end = declareRuntimeFunc(b, module, "kvc_rt_gpu_fixed_width_append_end", {i64, i64}, {});
    auto c64 = [&](int64_t v) -> Value { return arith::ConstantIntOp::create(b, loc, v, 64); };
    func::CallOp::create(b, loc, begin, ValueRange{h, n64, c64(D), c64(KB), state});
    auto stateAt = [&](int64_t i) -> Value {
      return arith::IndexCastOp::create(
          b, loc, b.getIndexType(),
          memref::LoadOp::create(b, loc, state, ValueRange{cIdx(b, loc, i)}));
    };
    Value one = cIdx(b, loc, 1), zero = cIdx(b, loc, 0);
    // 1. The new tokens into the windows.
    emitWindowCopies(b, loc, gm.lookupSymbol<gpu::GPUFuncOp>(windowName), kn, vn, n, rows, D,
                     [&](int st) {
                       return std::array<Value, 3>{
                           encodedBuffer(b, loc, h, st ? KVC_FW_VREC : KVC_FW_KREC, f16),
                           stateAt(0), stateAt(1)};
                     });
    // 2. The store kernels on the blocks that fall due (grid (jobs)).
    for (int st = 0; st < 2; ++st) {
      Value jobs = stateAt(2 + st);
      Value any = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, jobs, zero);
      auto ifJobs = scf::IfOp::create(b, loc, any, /*withElseRegion=*/false);
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(ifJobs.thenBlock());
      auto buf = [&](int64_t index, Type t) { return encodedBuffer(b, loc, h, index, t); };
      auto store = gm.lookupSymbol<gpu::GPUFuncOp>(storeBase + (st ? "_vstore" : "_kstore"));
      gpu::LaunchFuncOp::create(
          b, loc, store, gpu::KernelDim3{jobs, one, one},
          gpu::KernelDim3{cIdx(b, loc, KVC_FW_STORE_THREADS), one, one}, Value(),
          ValueRange{buf(st ? KVC_FW_VREC : KVC_FW_KREC, f16),
                     buf(KVC_FW_NUM_BUFFERS + 2 * st, i32), buf(st ? KVC_FW_VW : KVC_FW_KW, i32),
                     buf(st ? KVC_FW_VMIN : KVC_FW_KMIN, f32),
                     buf(st ? KVC_FW_VSTEP : KVC_FW_KSTEP, f32),
                     buf(KVC_FW_NUM_BUFFERS + 2 * st + 1, i32)});
    }
    // 3. Statuses and the row table.
    func::CallOp::create(b, loc, end, ValueRange{h, n64});
    return success();
  }

  /// kvc.cache.append on an encoded cache (handle h): append_begin, the window-append kernel
  /// per stream, the store kernels on the due blocks, append_end.
  LogicalResult lowerEncodedAppend(CacheAppendOp op, gpu::GPUModuleOp gm, Value h) {
    auto type = cast<EncodedCacheType>(op.getCache().getType());
    auto kt = type.getKeyType();
    Type et = kt.getElementType();
    const int64_t D = kt.getDimSize(3);
    std::string etName = et.isF16() ? "f16" : et.isBF16() ? "bf16" : "f32";
    if (kt.isDynamicDim(1) || ShapedType::isDynamic(D))
      return op.emitError("convert-kvc-to-gpu: appending to an encoded cache needs static Hkv "
                          "and D");
    CodecAttr codec = type.getCodec();
    if (codec.getEntropy() == EntropyCode::None)
      return lowerFixedWidthAppend(op, gm, h, etName);
    StoreKernelConfig sc;
    sc.headDim = D;
    sc.keyBlock = codec.getKeyBlock();
    sc.valueBlock = codec.getValueBlock();
    sc.elemType = "f16"; // the store kernels read the fp16 windows
    sc.prefix = "kvc_store";
    sc.moduleName = kModuleName.str();
    const std::string storeBase = sc.prefix + storeKernelTag(sc);
    const std::string windowName = "kvc_window_d" + std::to_string(D) + "_" + etName;
    if (failed(ensureKernels(op, gm, storeBase + "_kstore",
                             [&](std::string &err) { return generateStoreKernelFuncs(sc, err); })) ||
        failed(ensureKernels(op, gm, windowName, [&](std::string &err) {
          return generateWindowAppendKernelFunc(D, etName, windowName, err);
        })))
      return failure();

    OpBuilder b(op);
    Location loc = op.getLoc();
    auto module = op->getParentOfType<ModuleOp>();
    Type i64 = b.getI64Type(), i32 = b.getI32Type(), f32 = b.getF32Type(), f16 = b.getF16Type();
    auto dynI64 = MemRefType::get({ShapedType::kDynamic}, i64);
    Value kn = flatBuffer(b, loc, op.getKeys()), vn = flatBuffer(b, loc, op.getValues());
    Value batch = dimOf(b, loc, kn, 0), n = dimOf(b, loc, kn, 2);
    Value rows = arith::MulIOp::create(b, loc, batch, cIdx(b, loc, kt.getDimSize(1)));
    Value n64 = arith::IndexCastOp::create(b, loc, i64, n);
    checkEncodedRows(b, loc, h, batch, kt.getDimSize(1), /*fixedWidth=*/false);
    Value state = memref::CastOp::create(
        b, loc, dynI64, memref::AllocaOp::create(b, loc, MemRefType::get({12}, i64)));
    auto begin = declareRuntimeFunc(b, module, "kvc_rt_gpu_encoded_append_begin", {i64, i64, dynI64}, {});
    auto end = declareRuntimeFunc(b, module, "kvc_rt_gpu_encoded_append_end", {i64, i64}, {});
    func::CallOp::create(b, loc, begin, ValueRange{h, n64, state});
    auto stateAt = [&](int64_t i) -> Value {
      return memref::LoadOp::create(b, loc, state, ValueRange{cIdx(b, loc, i)});
    };
    auto toIndex = [&](Value v) -> Value {
      return arith::IndexCastOp::create(b, loc, b.getIndexType(), v);
    };
    auto toI32 = [&](Value v) -> Value { return arith::TruncIOp::create(b, loc, i32, v); };
    Value one = cIdx(b, loc, 1), zero = cIdx(b, loc, 0);
    // 1. The new tokens into the windows.
    emitWindowCopies(b, loc, gm.lookupSymbol<gpu::GPUFuncOp>(windowName), kn, vn, n, rows, D,
                     [&](int st) {
                       return std::array<Value, 3>{
                           encodedBuffer(b, loc, h, encStreamBuffer(KVC_ENC_KREC, st), f16),
                           toIndex(stateAt(st)), toIndex(stateAt(2 + st))};
                     });
    // 2. The store kernels on the blocks that fall due (grid (jobs)).
    for (int st = 0; st < 2; ++st) {
      Value jobs = toIndex(stateAt(4 + st));
      Value any = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, jobs, zero);
      auto ifJobs = scf::IfOp::create(b, loc, any, /*withElseRegion=*/false);
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(ifJobs.thenBlock());
      auto buf = [&](int64_t keyIdx, Type t) {
        return encodedBuffer(b, loc, h, encStreamBuffer(keyIdx, st), t);
      };
      auto storeBuf = [&](int64_t idx) {
        return encodedBuffer(b, loc, h, idx + kEncPerStoreStream * st, i32);
      };
      Value eps = arith::BitcastOp::create(b, loc, f32, toI32(stateAt(10 + st)));
      auto store = gm.lookupSymbol<gpu::GPUFuncOp>(storeBase + (st ? "_vstore" : "_kstore"));
      const int64_t threads = storeKernelThreads(sc, st == 1);
      gpu::LaunchFuncOp::create(
          b, loc, store, gpu::KernelDim3{jobs, one, one},
          gpu::KernelDim3{cIdx(b, loc, threads), one, one}, Value(),
          ValueRange{buf(KVC_ENC_KREC, f16), storeBuf(kEncStoreJobs), storeBuf(kEncStoreEnc),
                     buf(KVC_ENC_KW, i32), storeBuf(kEncStoreTop), buf(KVC_ENC_KBO, i32),
                     buf(KVC_ENC_KVO, i32), buf(KVC_ENC_KMIN, f32), buf(KVC_ENC_KSTEP, f32),
                     storeBuf(kEncStoreRes), eps, toI32(stateAt(8 + st)),
                     toI32(stateAt(6 + st))});
    }
    // 3. Statuses and the row table.
    func::CallOp::create(b, loc, end, ValueRange{h, n64});
    return success();
  }

  /// After the lowering: encoded-cache function arguments and results become i64 handles,
  /// remaining kvc.cache.lengths of encoded caches read the runtime's row lengths, and the
  /// kvc ops on encoded caches are erased.
  LogicalResult finishEncodedHandles(ModuleOp module, llvm::DenseMap<Value, Value> &handleOf) {
    Type i64 = IntegerType::get(module.getContext(), 64);
    SmallVector<Operation *> dead;
    llvm::SetVector<Operation *> sources; // the kvc.cache.from_tensors that kvc.encode read
    WalkResult res = module.walk([&](Operation *op) -> WalkResult {
      if (isa<gpu::GPUModuleOp>(op))
        return WalkResult::skip();
      if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        for (OpOperand &o : ret->getOpOperands())
          if (isa<EncodedCacheType>(o.get().getType()))
            o.set(handleOf.lookup(o.get()));
        return WalkResult::advance();
      }
      if (auto len = dyn_cast<CacheLengthsOp>(op)) {
        if (!isa<EncodedCacheType>(len.getCache().getType()))
          return WalkResult::advance();
        if (!len->use_empty()) {
          auto lt = cast<RankedTensorType>(len.getType());
          if (!lt.hasStaticShape()) {
            len.emitError("convert-kvc-to-gpu: kvc.cache.lengths of an encoded cache needs a "
                          "static batch");
            return WalkResult::interrupt();
          }
          OpBuilder b(len);
          auto mt = MemRefType::get(lt.getShape(), i64);
          Value m = memref::AllocOp::create(b, len.getLoc(), mt);
          auto fn = declareRuntimeFunc(b, module, "kvc_rt_gpu_encoded_lengths",
                                {i64, MemRefType::get({ShapedType::kDynamic, ShapedType::kDynamic}, i64)},
                                {});
          func::CallOp::create(
              b, len.getLoc(), fn,
              ValueRange{handleOf.lookup(len.getCache()),
                         memref::CastOp::create(b, len.getLoc(), fn.getArgumentTypes()[1], m)});
          len.getResult().replaceAllUsesWith(bufferization::ToTensorOp::create(
              b, len.getLoc(), lt, m, /*restrict=*/true, /*writable=*/true));
        }
        dead.push_back(op);
        return WalkResult::advance();
      }
      if (auto view = dyn_cast<CacheViewOp>(op)) {
        if (isa<EncodedCacheType>(view.getCache().getType()))
          dead.push_back(op);
      } else if (auto app = dyn_cast<CacheAppendOp>(op)) {
        if (isa<EncodedCacheType>(app.getType()))
          dead.push_back(op);
      } else if (auto enc = dyn_cast<EncodeOp>(op)) {
        dead.push_back(op);
        if (Operation *from = enc.getCache().getDefiningOp())
          sources.insert(from);
      }
      return WalkResult::advance();
    });
    if (res.wasInterrupted())
      return failure();
    for (Operation *op : llvm::reverse(dead)) {
      for (Value r : op->getResults())
        if (isa<EncodedCacheType>(r.getType()))
          if (Value h = handleOf.lookup(r))
            r.replaceAllUsesWith(h);
      if (op->use_empty())
        op->erase();
    }
    for (Operation *op : sources)
      if (op->use_empty())
        op->erase();
    // A handle kvc.encode made and the function does not return dies with the function: free
    // its device form before every return (the runtime would otherwise keep it to exit).
    for (Value h : createdHandles) {
      auto fn = h.getParentRegion()->getParentOfType<func::FuncOp>();
      if (!fn)
        continue;
      bool returned = false;
      fn.walk([&](func::ReturnOp ret) {
        returned |= llvm::is_contained(ret.getOperands(), h);
      });
      if (returned)
        continue;
      fn.walk([&](func::ReturnOp ret) {
        OpBuilder b(ret);
        auto rel = declareRuntimeFunc(b, module, "kvc_rt_gpu_encoded_release", {i64}, {});
        func::CallOp::create(b, ret.getLoc(), rel, ValueRange{h});
      });
    }
    for (auto fn : module.getOps<func::FuncOp>()) {
      if (fn.isExternal())
        continue;
      Block &entry = fn.getBody().front();
      for (BlockArgument a : entry.getArguments()) {
        if (!isa<EncodedCacheType>(a.getType()))
          continue;
        Value cast = handleOf.lookup(a);
        for (OpOperand &use : llvm::make_early_inc_range(a.getUses()))
          if (use.getOwner() != cast.getDefiningOp())
            return use.getOwner()->emitError("convert-kvc-to-gpu: internal error: encoded "
                                             "cache argument still in use");
        Operation *castOp = cast.getDefiningOp();
        a.setType(i64);
        cast.replaceAllUsesWith(a);
        castOp->erase();
      }
      SmallVector<Type> results(fn.getResultTypes());
      fn.walk([&](func::ReturnOp ret) {
        results.assign(ret.getOperandTypes().begin(), ret.getOperandTypes().end());
      });
      fn.setFunctionType(FunctionType::get(module.getContext(), entry.getArgumentTypes(), results));
    }
    return success();
  }

  /// Replaces an attention over an encoded cache by host code launching the encoded split and
  /// merge kernels on the 16 device buffers (the kernel ABI in EncodedKernelGen.h) that the
  /// runtime hands out for the cache's handle `h`.
  void lowerEncodedHost(AttentionOp op, CacheViewOp view, const EncodedKernelConfig &cfg,
                        gpu::GPUModuleOp gm, Value h) {
    OpBuilder b(op);
    Type i32 = b.getI32Type(), f32 = b.getF32Type(), f16 = b.getF16Type();
    // rows aux syms lut, then per stream: words, block offsets, vector offsets, min, step, window
    const Type abi[KVC_ENC_NUM_BUFFERS] = {i32, i32, i32, i32, i32, i32, i32, f32,
                                            f32, f16, i32, i32, i32, f32, f32, f16};
    lowerHandleDecode(op, view, gm, h, cfg.prefix, abi, /*fixedWidth=*/false,
                      /*threads=*/cfg.headDim, cfg.headDim, cfg.groupSize * cfg.querySeq);
  }

  /// The host code of a decode op over an encoded-cache handle `h` (Huffman-coded or
  /// fixed-width, `fixedWidth`): the row/form check, the kernels' device buffers (element types
  /// `abi`) from the handle, the runtime's split count, the workspaces, the split launch (grid
  /// (splits, Hkv, B), `threads` per CTA) and the merge; the op's result becomes the output.
  void lowerHandleDecode(AttentionOp op, CacheViewOp view, gpu::GPUModuleOp gm, Value h,
                         const std::string &prefix, ArrayRef<Type> abi, bool fixedWidth,
                         int64_t threads, int64_t D, int64_t nqPerRow, bool fuseMerge = false) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    auto kt = cast<RankedTensorType>(op.getKey().getType());
    Value qm = flatBuffer(b, loc, op.getQuery());
    Value batch = dimOf(b, loc, qm, 0);
    Value hkv = cIdx(b, loc, kt.getDimSize(1));
    checkEncodedRows(b, loc, h, batch, kt.getDimSize(1), fixedWidth);
    SmallVector<Value> dev;
    for (auto [i, t] : llvm::enumerate(abi))
      dev.push_back(encodedBuffer(b, loc, h, int64_t(i), t));

    Value rows = arith::MulIOp::create(b, loc, batch, hkv);
    // The runtime driver's plan for this cache (its longest row now).
    Value splits = splitCount(b, loc, op, numSplits, "kvc_rt_gpu_encoded_splits", prefix,
                              ValueRange{h});
    Value nqRows = arith::MulIOp::create(b, loc, rows, cIdx(b, loc, nqPerRow));
    Value partials = arith::MulIOp::create(b, loc, nqRows, splits);
    Value out = allocOutput(b, loc, op, qm, outputMemory == "device");
    DecodeBuffers buf = decodeWorkspaces(b, loc, partials, D, out);
    SmallVector<Value> args = {flatten(b, loc, qm)};
    args.append(dev.begin(), dev.end());
    args.append({buf.opart, buf.mlpart});
    if (fuseMerge) // arrival counters, as the dense fused merge's (zeroed once, reset by use)
      args.append({gpuWorkspace(b, loc, b.getI32Type(), /*slot=*/0, rows),
                   flatten(b, loc, buf.out)});
    auto split = gm.lookupSymbol<gpu::GPUFuncOp>(prefix + "_split");
    Value one = cIdx(b, loc, 1);
    gpu::LaunchFuncOp::create(b, loc, split, gpu::KernelDim3{splits, hkv, batch},
                              gpu::KernelDim3{cIdx(b, loc, threads), one, one}, Value(), args);
    if (!fuseMerge)
      launchMerge(b, loc, buf, gm.lookupSymbol<gpu::GPUFuncOp>(prefix + "_merge"), nqRows,
                  splits, D);
    Value res = bufferization::ToTensorOp::create(b, loc, op.getResult().getType(), out,
                                                  /*restrict=*/true, /*writable=*/true);
    op.getResult().replaceAllUsesWith(res);
    Value lengths = op.getKvLengths();
    op.erase();
    if (view->use_empty())
      view.erase();
    if (lengths)
      if (Operation *def = lengths.getDefiningOp())
        if (isa<CacheLengthsOp>(def) && def->use_empty())
          def->erase();
  }

  /// kvc.attention over a fixed-width (entropy = none) encoded cache: the kernel
  /// configuration (FixedWidthKernelGen), then the host code, which reads the handle's
  /// fixed-width device form (CUDAFixedWidth.h) through the same buffer accessors as the
  /// Huffman-coded form.
  FixedWidthKernelConfig fixedWidthConfig(AttentionOp op, CodecAttr codec) {
    auto qt = cast<RankedTensorType>(op.getQuery().getType());
    auto kt = cast<RankedTensorType>(op.getKey().getType());
    FixedWidthKernelConfig fc;
    fc.headDim = qt.getDimSize(3);
    fc.groupSize = qt.getDimSize(1) / kt.getDimSize(1);
    fc.querySeq = qt.getDimSize(2);
    Type et = qt.getElementType();
    fc.queryType = et.isBF16() ? "bf16" : et.isF16() ? "f16" : "f32";
    fc.keyBlock = codec.getKeyBlock();
    fc.minCtasPerSM = fixedWidthMinCtas;
    fc.ringStages = fixedWidthRing;
    fc.scaleLog2 = op.getEffectiveScale() * M_LOG2E;
    fc.fuseMerge = fixedWidthFuseMerge;
    fc.moduleName = kModuleName.str();
    return fc;
  }

  void lowerFixedWidthHost(AttentionOp op, CacheViewOp view, const FixedWidthKernelConfig &fc,
                           gpu::GPUModuleOp gm, Value h) {
    OpBuilder b(op);
    Type i32 = b.getI32Type(), f32 = b.getF32Type(), f16 = b.getF16Type();
    // rows, key words, value words, kmin, kstep, vmin, vstep, key window, value window
    const Type abi[KVC_FW_NUM_BUFFERS] = {i32, i32, i32, f32, f32, f32, f32, f16, f16};
    lowerHandleDecode(op, view, gm, h, fc.prefix, abi, /*fixedWidth=*/true, KVC_FW_THREADS,
                      fc.headDim, fc.groupSize * fc.querySeq, fc.fuseMerge);
  }

  /// Replaces `op` by host code that launches the split (and merge) kernels of `main`, or, with
  /// `small` too, of `small` when B*Hkv <= small-rows at run time and of `main` otherwise.
  void lowerHost(AttentionOp op, const DecodeKernelConfig *main, const DecodeKernelConfig *small,
                 gpu::GPUModuleOp gm) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    const DecodeKernelConfig &any = main ? *main : *small;
    Value qm = flatBuffer(b, loc, op.getQuery());
    Value km = flatBuffer(b, loc, op.getKey());
    Value vm = flatBuffer(b, loc, op.getValue());
    Value batch = dimOf(b, loc, km, 0);
    Value hkv = dimOf(b, loc, km, 1);
    Value skv = dimOf(b, loc, km, 2);
    const int64_t D = any.headDim, nqPerRow = any.groupSize * any.querySeq;
    Value rows = arith::MulIOp::create(b, loc, batch, hkv);
    Value nqRows = arith::MulIOp::create(b, loc, rows, cIdx(b, loc, nqPerRow));
    Value out = allocOutput(b, loc, op, qm, outputMemory == "device");

    // One specialisation's launches.
    auto emit = [&](const DecodeKernelConfig &cfg) {
      const int64_t kpi = decodeKeysPerIteration(cfg);
      // Whole waves at the split kernel's measured occupancy, >= 256 keys or 4 tiles per split.
      // A fixed CTAs-per-SM guess put part of the grid in a second wave.
      Value splits = splitCount(b, loc, op, numSplits, "kvc_rt_gpu_decode_splits", cfg.prefix,
                                ValueRange{batch, hkv, skv});
      Value cKpi = cIdx(b, loc, kpi);
      Value chunk = arith::CeilDivUIOp::create(b, loc, skv, splits);
      chunk =
          arith::MulIOp::create(b, loc, arith::CeilDivUIOp::create(b, loc, chunk, cKpi), cKpi);
      chunk = arith::MaxUIOp::create(b, loc, chunk, cKpi);

      Value partials = arith::MulIOp::create(b, loc, nqRows, splits);
      DecodeBuffers buf = decodeWorkspaces(b, loc, partials, D, out);
      SmallVector<Value> splitArgs = {flatten(b, loc, qm), flatten(b, loc, km),
                                      flatten(b, loc, vm)};
      if (cfg.ragged)
        splitArgs.push_back(flatten(b, loc, flatBuffer(b, loc, op.getKvLengths())));
      splitArgs.append({buf.opart, buf.mlpart});
      if (cfg.fuseMerge) {
        // Arrival counters of the fused merge: an i32 workspace, zeroed when the runtime
        // allocates it; the last CTA of each row resets its counter, so it stays zero.
        Value counters = gpuWorkspace(b, loc, b.getI32Type(), /*slot=*/0, rows);
        splitArgs.append({counters, flatten(b, loc, buf.out)});
      }
      splitArgs.append({skv, chunk});

      auto split = gm.lookupSymbol<gpu::GPUFuncOp>(cfg.prefix + "_split");
      Value one = cIdx(b, loc, 1);
      gpu::LaunchFuncOp::create(b, loc, split, gpu::KernelDim3{splits, hkv, batch},
                                gpu::KernelDim3{cIdx(b, loc, cfg.blockSize), one, one},
                                /*dynamicSharedMemorySize=*/Value(), splitArgs);
      if (!cfg.fuseMerge)
        launchMerge(b, loc, buf, gm.lookupSymbol<gpu::GPUFuncOp>(cfg.prefix + "_merge"), nqRows,
                    splits, D);
    };

    if (main && small) {
      // Dispatch on the run-time B*Hkv (batch is dynamic here): few rows -> the small-batch
      // specialisation (docs/gpu.md: faster at batch 1 on the H100, slower at batch 8).
      Value few = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, rows,
                                        cIdx(b, loc, smallRows));
      auto ifOp = scf::IfOp::create(b, loc, few, /*withElseRegion=*/true);
      {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPointToStart(&ifOp.getThenRegion().front());
        emit(*small);
        b.setInsertionPointToStart(&ifOp.getElseRegion().front());
        emit(*main);
      }
    } else {
      emit(any);
    }
    Value res = bufferization::ToTensorOp::create(b, loc, op.getResult().getType(), out,
                                                  /*restrict=*/true, /*writable=*/true);
    op.getResult().replaceAllUsesWith(res);
    op.erase();
  }
};
} // namespace
