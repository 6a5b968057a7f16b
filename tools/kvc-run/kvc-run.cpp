//===- kvc-run.cpp - compile and run an ONNX or MLIR model on CPU -----------===//
//
//   kvc-run model.onnx --input input_ids=ids.npy --input past_0=k.pb --output-dir out/
//           [--shape name=1x12] [--raise-attention=0] [--print-ir-after-all]
//
// Imports the model (ONNX via the kvc importer, or a .mlir file whose @main takes and returns
// static-shaped tensors), lowers it with the kvc CPU pipeline, JIT-compiles it with MLIR's
// ExecutionEngine and calls @main. Inputs are matched by name (ONNX input names, kept as
// `kvc.onnx.name` argument attributes; `argN` for .mlir functions without them) and read from
// .npy or ONNX TensorProto .pb files; every result is written as `<output name>.npy`.
// bfloat16 results are written as float32 .npy (numpy has no bfloat16).
//
//===----------------------------------------------------------------------===//

#include "kvc/InitAll.h"
#include "kvc/Pipelines/Passes.h"
#ifdef KVC_HAVE_ONNX_IMPORT
#include "kvc/Target/ONNX/ImportONNX.h"
#endif

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <cstring>
#include <map>

using namespace mlir;

// kvc-run's own options; --help shows only these (not the hundreds LLVM's backends register).
static llvm::cl::OptionCategory clCat("kvc-run options");
static llvm::cl::opt<std::string> clModel(llvm::cl::Positional, llvm::cl::Required,
                                          llvm::cl::desc("<model.onnx | model.mlir>"),
                                          llvm::cl::cat(clCat));
static llvm::cl::list<std::string>
    clInputs("input", llvm::cl::desc("name=file.npy|file.pb (a .pb may omit name=: its "
                                     "TensorProto name is used)"), llvm::cl::cat(clCat));
static llvm::cl::opt<std::string> clOutDir("output-dir", llvm::cl::desc("where <output>.npy go"),
                                           llvm::cl::init("."), llvm::cl::cat(clCat));
static llvm::cl::list<std::string> clShapes("shape",
                                            llvm::cl::desc("pin an ONNX input's shape: name=d0xd1..."),
                                            llvm::cl::cat(clCat));
static llvm::cl::opt<bool> clRaise("raise-attention",
                                   llvm::cl::desc("run kvc-raise-attention first (default on)"),
                                   llvm::cl::init(true), llvm::cl::cat(clCat));
static llvm::cl::opt<bool> clPrintIR("print-ir-after-all",
                                     llvm::cl::desc("print the IR after every pass"),
                                     llvm::cl::init(false), llvm::cl::cat(clCat));
static llvm::cl::opt<bool> clPrintImported("print-imported",
                                           llvm::cl::desc("print the imported module to stderr"),
                                           llvm::cl::init(false), llvm::cl::cat(clCat));

namespace {

int fail(const llvm::Twine &msg) {
  llvm::errs() << "kvc-run: error: " << msg << "\n";
  return 1;
}

/// Host tensor: element type + shape + raw little-endian bytes (bool = 1 byte).
struct Buffer {
  Type elem;
  SmallVector<int64_t> shape;
  std::vector<char> bytes;
};

int64_t product(ArrayRef<int64_t> s) {
  int64_t n = 1;
  for (int64_t d : s)
    n *= d;
  return n;
}

unsigned elemBytes(Type t) {
  return t.isInteger(1) ? 1 : (t.getIntOrFloatBitWidth() + 7) / 8;
}

std::string typeStr(Type elem, ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "[";
  llvm::interleave(shape, os, "x");
  os << "] " << elem;
  return s;
}

/// numpy descr of an MLIR element type ("" if none).
std::string npyDescr(Type t) {
  if (t.isF32()) return "<f4";
  if (t.isF64()) return "<f8";
  if (t.isF16()) return "<f2";
  if (t.isInteger(64)) return "<i8";
  if (t.isInteger(32)) return "<i4";
  if (t.isInteger(16)) return "<i2";
  if (t.isInteger(8)) return "|i1";
  if (t.isInteger(1)) return "|b1";
  return "";
}

Type typeOfDescr(MLIRContext *ctx, StringRef d, Type expected) {
  Builder b(ctx);
  if (d == "<f4") return b.getF32Type();
  if (d == "<f8") return b.getF64Type();
  if (d == "<f2") return b.getF16Type();
  if (d == "<i8") return b.getI64Type();
  if (d == "<i4") return b.getI32Type();
  if (d == "<i2") return b.getI16Type();
  if (d == "|i1" || d == "|u1") return b.getI8Type();
  if (d == "|b1") return b.getI1Type();
  if ((d == "<V2" || d == "|V2") && expected.isBF16()) return b.getBF16Type(); // ml_dtypes bf16
  return {};
}

bool readNpy(StringRef data, MLIRContext *ctx, Type expected, Buffer &out, std::string &err) {
  if (data.size() < 10 || !data.starts_with("\x93NUMPY")) {
    err = "not a .npy file";
    return false;
  }
  unsigned major = uint8_t(data[6]);
  size_t hlen, hstart;
  if (major == 1) {
    hlen = uint8_t(data[8]) | (uint8_t(data[9]) << 8);
    hstart = 10;
  } else {
    if (data.size() < 12) {
      err = "truncated .npy header";
      return false;
    }
    hlen = uint32_t(uint8_t(data[8])) | (uint32_t(uint8_t(data[9])) << 8) |
           (uint32_t(uint8_t(data[10])) << 16) | (uint32_t(uint8_t(data[11])) << 24);
    hstart = 12;
  }
  if (hstart + hlen > data.size()) {
    err = "truncated .npy header";
    return false;
  }
  StringRef h = data.substr(hstart, hlen);
  auto field = [&](StringRef key) -> StringRef {
    size_t p = h.find("'" + key.str() + "'");
    if (p == StringRef::npos)
      return "";
    StringRef rest = h.substr(p + key.size() + 2).ltrim(" :");
    return rest;
  };
  StringRef descr = field("descr");
  if (!descr.consume_front("'")) {
    err = "bad .npy header (descr)";
    return false;
  }
  descr = descr.take_until([](char c) { return c == '\''; });
  if (field("fortran_order").starts_with("True")) {
    err = "Fortran-order .npy arrays are not supported";
    return false;
  }
  StringRef shp = field("shape");
  if (!shp.consume_front("(")) {
    err = "bad .npy header (shape)";
    return false;
  }
  shp = shp.take_until([](char c) { return c == ')'; });
  SmallVector<StringRef> parts;
  shp.split(parts, ',', -1, /*KeepEmpty=*/false);
  for (StringRef p : parts) {
    p = p.trim();
    if (p.empty())
      continue;
    int64_t d;
    if (p.getAsInteger(10, d)) {
      err = "bad .npy shape";
      return false;
    }
    out.shape.push_back(d);
  }
  out.elem = typeOfDescr(ctx, descr, expected);
  if (!out.elem) {
    err = ("unsupported .npy dtype '" + descr + "'").str();
    return false;
  }
  size_t n = product(out.shape) * elemBytes(out.elem);
  StringRef body = data.substr(hstart + hlen);
  if (body.size() < n) {
    err = "truncated .npy data";
    return false;
  }
  out.bytes.assign(body.begin(), body.begin() + n);
  return true;
}

bool writeNpy(StringRef path, const Buffer &b, std::string &err) {
  Buffer conv = b;
  std::string descr = npyDescr(b.elem);
  if (b.elem.isBF16()) { // widen to f32
    descr = "<f4";
    size_t n = product(b.shape);
    conv.bytes.resize(n * 4);
    for (size_t i = 0; i < n; ++i) {
      uint32_t bits = uint32_t(uint8_t(b.bytes[2 * i]) | (uint8_t(b.bytes[2 * i + 1]) << 8)) << 16;
      std::memcpy(&conv.bytes[4 * i], &bits, 4);
    }
  }
  if (descr.empty()) {
    err = "cannot write element type to .npy";
    return false;
  }
  std::string shape = "(";
  for (int64_t d : b.shape)
    shape += std::to_string(d) + ", ";
  if (b.shape.size() > 1)
    shape.resize(shape.size() - 2);
  else if (b.shape.size() == 1)
    shape.resize(shape.size() - 1);
  shape += ")";
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec) {
    err = ec.message();
    return false;
  }
  os << "\x93NUMPY" << char(1) << char(0) << char(header.size() & 0xff)
     << char((header.size() >> 8) & 0xff) << header;
  os.write(conv.bytes.data(), conv.bytes.size());
  return true;
}

/// Bytes of a DenseElementsAttr (from a TensorProto), one element after another.
Buffer bufferOf(DenseElementsAttr a) {
  Buffer b;
  auto t = cast<ShapedType>(a.getType());
  b.elem = t.getElementType();
  b.shape.assign(t.getShape().begin(), t.getShape().end());
  unsigned eb = elemBytes(b.elem);
  auto put = [&](const APInt &v) {
    uint64_t x = v.getZExtValue();
    for (unsigned i = 0; i < eb; ++i)
      b.bytes.push_back(char((x >> (8 * i)) & 0xff));
  };
  if (isa<FloatType>(b.elem))
    for (const APFloat &v : a.getValues<APFloat>())
      put(v.bitcastToAPInt());
  else
    for (const APInt &v : a.getValues<APInt>())
      put(v);
  return b;
}

struct Signature {
  std::string name;
  RankedTensorType type;
};

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  registerAllPasses();
  kvc::registerAllKVCPasses();
  llvm::cl::HideUnrelatedOptions(clCat);
  llvm::cl::ParseCommandLineOptions(
      argc, argv,
      "kvc-run: compile and run a model on CPU\n\n"
      "  Imports the model (ONNX through kvc's importer, or a .mlir file whose @main takes and\n"
      "  returns static-shaped tensors), lowers it with kvc-cpu-pipeline, JIT-compiles it and\n"
      "  calls @main. Inputs are matched by name (ONNX input names; argN for .mlir) and read\n"
      "  from .npy or TensorProto .pb files; every result is written to --output-dir as\n"
      "  <output name>.npy (bfloat16 results as float32).\n\n"
      "  example: kvc-run model.onnx --input input_ids=ids.npy --output-dir out/\n");

  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  kvc::registerAllKVCDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();

  // 1. Load the module.
  auto file = llvm::MemoryBuffer::getFile(clModel, /*IsText=*/false,
                                          /*RequiresNullTerminator=*/false);
  if (!file)
    return fail("cannot open '" + clModel + "': " + file.getError().message());
  OwningOpRef<ModuleOp> module;
  if (StringRef(clModel).ends_with(".mlir")) {
    if (!clShapes.empty())
      return fail("--shape applies to ONNX models only");
    llvm::SourceMgr sm;
    sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy((*file)->getBuffer(), clModel),
                          llvm::SMLoc());
    SourceMgrDiagnosticHandler handler(sm, &ctx);
    module = parseSourceFile<ModuleOp>(sm, &ctx);
    if (!module)
      return fail("cannot parse '" + clModel + "'");
  } else {
#ifdef KVC_HAVE_ONNX_IMPORT
    kvc::onnx_import::ImportOptions opts;
    opts.modelName = clModel;
    opts.modelDir = llvm::sys::path::parent_path(clModel).str();
    if (opts.modelDir.empty())
      opts.modelDir = ".";
    opts.emitCInterface = true;
    for (const std::string &s : clShapes) {
      std::string err;
      if (!kvc::onnx_import::parseShapePin(s, opts, err))
        return fail(err);
    }
    module = kvc::onnx_import::importONNXModel((*file)->getBuffer(), &ctx, opts);
    if (!module)
      return fail("cannot import '" + clModel + "'");
#else
    return fail("kvc-run was built without the ONNX importer (libonnx-dev); pass a .mlir file");
#endif
  }
  auto mainFn = module->lookupSymbol<func::FuncOp>("main");
  if (!mainFn)
    return fail("the module has no func.func @main");
  mainFn->setAttr("llvm.emit_c_interface", UnitAttr::get(&ctx));
  if (clPrintImported)
    module->print(llvm::errs());

  // 2. Signature.
  std::vector<Signature> ins, outs;
  auto fnType = mainFn.getFunctionType();
  for (unsigned i = 0; i < fnType.getNumInputs(); ++i) {
    auto t = dyn_cast<RankedTensorType>(fnType.getInput(i));
    if (!t || !t.hasStaticShape())
      return fail("@main argument " + std::to_string(i) + " is not a static-shaped tensor");
    auto nameAttr = mainFn.getArgAttrOfType<StringAttr>(i, "kvc.onnx.name");
    ins.push_back({nameAttr ? nameAttr.str() : "arg" + std::to_string(i), t});
  }
  for (unsigned i = 0; i < fnType.getNumResults(); ++i) {
    auto t = dyn_cast<RankedTensorType>(fnType.getResult(i));
    if (!t || !t.hasStaticShape())
      return fail("@main result " + std::to_string(i) + " is not a static-shaped tensor");
    auto nameAttr = mainFn.getResultAttrOfType<StringAttr>(i, "kvc.onnx.name");
    outs.push_back({nameAttr ? nameAttr.str() : "result" + std::to_string(i), t});
  }
  if (outs.empty())
    return fail("@main has no results");

  // 3. Inputs.
  std::map<std::string, Buffer> given;
  for (const std::string &spec : clInputs) {
    StringRef s(spec), name, path;
    if (s.contains('=')) {
      std::tie(name, path) = s.split('=');
    } else {
      path = s;
    }
    auto data = llvm::MemoryBuffer::getFile(path, false, false);
    if (!data)
      return fail("cannot open input file '" + path + "': " + data.getError().message());
    Buffer buf;
    std::string err;
    if (path.ends_with(".npy")) {
      if (name.empty())
        return fail("--input " + spec + ": .npy inputs need name=");
      Type expected;
      for (auto &in : ins)
        if (in.name == name)
          expected = in.type.getElementType();
      if (!readNpy((*data)->getBuffer(), &ctx, expected ? expected : Type(), buf, err))
        return fail("input '" + name + "' (" + path + "): " + err);
    } else {
#ifdef KVC_HAVE_ONNX_IMPORT
      DenseElementsAttr attr;
      std::string tname;
      StringRef dir = llvm::sys::path::parent_path(path);
      if (!kvc::onnx_import::parseTensorProto((*data)->getBuffer(), &ctx, dir.empty() ? "." : dir,
                                              attr, tname, err))
        return fail("input file '" + path + "': " + err);
      if (name.empty())
        name = tname;
      if (name.empty())
        return fail("input file '" + path + "' has an unnamed TensorProto; use name=" + path);
      buf = bufferOf(attr);
#else
      return fail("input '" + path + "': .pb inputs need the ONNX importer; use .npy");
#endif
    }
    if (!llvm::any_of(ins, [&](const Signature &in) { return in.name == name; })) {
      std::string names;
      for (auto &in : ins)
        names += (names.empty() ? "" : ", ") + in.name;
      return fail("unknown input '" + name + "' (the model's inputs: " + names + ")");
    }
    given[name.str()] = std::move(buf);
  }
  for (auto &in : ins) {
    auto it = given.find(in.name);
    if (it == given.end())
      return fail("missing input '" + in.name + "' (expected " +
                  typeStr(in.type.getElementType(), in.type.getShape()) + ")");
    Buffer &b = it->second;
    if (b.elem != in.type.getElementType() || ArrayRef<int64_t>(b.shape) != in.type.getShape())
      return fail("input '" + in.name + "': expected " +
                  typeStr(in.type.getElementType(), in.type.getShape()) + ", got " +
                  typeStr(b.elem, b.shape));
  }

  // 4. Lower.
  PassManager pm(&ctx);
  if (clPrintIR) {
    ctx.disableMultithreading();
    pm.enableIRPrinting();
  }
  kvc::buildKVCCPUPipeline(pm, clRaise);
  if (failed(pm.run(*module)))
    return fail("lowering failed");

  // 5. JIT and call _mlir_ciface_main(results*, args*...).
  ExecutionEngineOptions eo;
  auto transformer = makeOptimizingTransformer(/*optLevel=*/2, /*sizeLevel=*/0, nullptr);
  eo.transformer = transformer;
  // memrefCopy etc. (copies the bufferized code makes) live in MLIR's C runner utils.
  SmallVector<StringRef> libs;
  std::string runnerUtils;
  if (const char *env = std::getenv("KVC_C_RUNNER_UTILS"))
    runnerUtils = env;
#ifdef KVC_C_RUNNER_UTILS
  if (runnerUtils.empty())
    runnerUtils = KVC_C_RUNNER_UTILS;
#endif
  if (!runnerUtils.empty())
    libs.push_back(runnerUtils);
  // kvc's runtime (kvc.compress, kvc.vote, encoded caches lower to kvc_rt_* calls).
  std::string runtimeLib;
  if (const char *env = std::getenv("KVC_RUNTIME_LIB"))
    runtimeLib = env;
#ifdef KVC_RUNTIME_LIBRARY
  if (runtimeLib.empty())
    runtimeLib = KVC_RUNTIME_LIBRARY;
#endif
  // A program that calls the runtime but cannot find it would otherwise die in the JIT with
  // "Symbols not found: _mlir_ciface_kvc_rt_...": say what is missing instead.
  bool callsRuntime = false;
  module->walk([&](Operation *op) {
    if (auto sym = op->getAttrOfType<StringAttr>(SymbolTable::getSymbolAttrName()))
      callsRuntime |= sym.getValue().contains("kvc_rt_");
  });
  if (!runtimeLib.empty() && llvm::sys::fs::exists(runtimeLib))
    libs.push_back(runtimeLib);
  else if (callsRuntime)
    return fail("the program calls kvc's runtime (kvc.compress, kvc.vote or an encoded cache) "
                "but libkvc_runtime.so was not found" +
                (runtimeLib.empty() ? std::string() : " at '" + runtimeLib + "'") +
                "; set KVC_RUNTIME_LIB to its path");
  eo.sharedLibPaths = libs;
  auto engine = ExecutionEngine::create(*module, eo);
  if (!engine) {
    std::string msg = llvm::toString(engine.takeError());
    return fail("JIT compilation failed: " + msg);
  }
  // Memref descriptors as int64 words: alloc, aligned, offset, sizes..., strides...
  std::vector<std::vector<int64_t>> argDescs;
  for (auto &in : ins) {
    Buffer &b = given[in.name];
    std::vector<int64_t> d;
    void *data = b.bytes.empty() ? static_cast<void *>(&b) : b.bytes.data();
    d.push_back(reinterpret_cast<int64_t>(data));
    d.push_back(reinterpret_cast<int64_t>(data));
    d.push_back(0);
    auto shape = in.type.getShape();
    for (int64_t s : shape)
      d.push_back(s);
    int64_t stride = 1;
    std::vector<int64_t> strides(shape.size());
    for (int64_t i = int64_t(shape.size()) - 1; i >= 0; --i) {
      strides[i] = stride;
      stride *= shape[i];
    }
    d.insert(d.end(), strides.begin(), strides.end());
    argDescs.push_back(std::move(d));
  }
  size_t resWords = 0;
  for (auto &o : outs)
    resWords += 3 + 2 * o.type.getRank();
  std::vector<int64_t> results(resWords, 0);
  void *resPtr = results.data();
  std::vector<void *> argPtrs;
  for (auto &d : argDescs)
    argPtrs.push_back(d.data());
  std::vector<void *> packed;
  packed.push_back(&resPtr);
  for (void *&p : argPtrs)
    packed.push_back(&p);
  if (llvm::Error e = (*engine)->invokePacked("_mlir_ciface_main", packed))
    return fail("invocation failed: " + llvm::toString(std::move(e)));

  // 6. Outputs.
  if (std::error_code ec = llvm::sys::fs::create_directories(clOutDir))
    return fail("cannot create '" + clOutDir + "': " + ec.message());
  size_t at = 0;
  for (auto &o : outs) {
    int64_t r = o.type.getRank();
    char *aligned = reinterpret_cast<char *>(results[at + 1]);
    int64_t offset = results[at + 2];
    std::vector<int64_t> sizes(results.begin() + at + 3, results.begin() + at + 3 + r);
    std::vector<int64_t> strides(results.begin() + at + 3 + r, results.begin() + at + 3 + 2 * r);
    at += 3 + 2 * r;
    Buffer b;
    b.elem = o.type.getElementType();
    b.shape.assign(sizes.begin(), sizes.end());
    unsigned eb = elemBytes(b.elem);
    int64_t n = product(sizes);
    b.bytes.resize(n * eb);
    std::vector<int64_t> idx(r, 0);
    for (int64_t lin = 0; lin < n; ++lin) {
      int64_t off = offset;
      for (int64_t d = 0; d < r; ++d)
        off += idx[d] * strides[d];
      std::memcpy(&b.bytes[lin * eb], aligned + off * eb, eb);
      for (int64_t d = r - 1; d >= 0; --d) {
        if (++idx[d] < sizes[d])
          break;
        idx[d] = 0;
      }
    }
    // File names: the output name with path separators replaced.
    std::string fname = o.name;
    for (char &c : fname)
      if (c == '/' || c == '\\' || c == ':')
        c = '_';
    SmallString<256> path(clOutDir);
    llvm::sys::path::append(path, fname + ".npy");
    std::string err;
    if (!writeNpy(path, b, err))
      return fail("cannot write '" + path + "': " + err);
  }
  return 0;
}
