# -*- Python -*-
# lit configuration for kvc: IR tests (kvc-opt | FileCheck), execution tests (kvc-opt |
# mlir-runner, compared with a numpy reference) and, as a nested suite, the GoogleTest unit tests.
import os
import shutil
import subprocess

import lit.formats
import lit.util
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "kvc"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".py", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Unit"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kvc_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%kvc_src_root", config.kvc_src_root))
config.substitutions.append(("%kvc_lib_dir", config.kvc_lib_dir))
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(
    ("%mlir_runner_utils", os.path.join(config.llvm_lib_dir, "libmlir_runner_utils.so")))
config.substitutions.append(
    ("%mlir_c_runner_utils", os.path.join(config.llvm_lib_dir, "libmlir_c_runner_utils.so")))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP", "CUDA_HOME"])
llvm_config.use_default_substitutions()

config.environment["PYTHONPATH"] = os.path.join(config.kvc_src_root, "python")
config.environment["KVC_BUILD_DIR"] = config.kvc_obj_root
config.environment["FILECHECK_OPTS"] = "--enable-var-scope"

tool_dirs = [config.kvc_tools_dir, config.llvm_tools_dir]
tools = ["kvc-opt", "kvc-translate", "mlir-opt", "mlir-runner", "mlir-translate"]
for extra in ["kvc-run", "kvc-codec-fuzz", "kvc-onnx-import-fuzz"]:
    if os.path.exists(os.path.join(config.kvc_tools_dir, extra)):
        tools.append(extra)
llvm_config.add_tool_substitutions(tools, tool_dirs)
llvm_config.with_environment("PATH", config.kvc_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# Optional capabilities become lit features so tests can say REQUIRES: ...
def _python_has(module):
    try:
        subprocess.check_call([config.python_executable, "-c", "import " + module],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return True
    except Exception:
        return False

if _python_has("numpy"):
    config.available_features.add("numpy")
if _python_has("onnx"):
    config.available_features.add("onnx-python")
if os.path.exists(os.path.join(config.kvc_tools_dir, "kvc-run")):
    config.available_features.add("kvc-run")
for fuzzer in ["kvc-codec-fuzz", "kvc-onnx-import-fuzz"]:
    if os.path.exists(os.path.join(config.kvc_tools_dir, fuzzer)):
        config.available_features.add(fuzzer)
if shutil.which("ptxas") or os.path.exists("/usr/local/cuda/bin/ptxas"):
    config.available_features.add("ptxas")
# nvcc (CUDA >= 12, for sm_90a) builds the hand-written CUDA design probe (bench/gpu/probe).
_nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
try:
    _ver = subprocess.run([_nvcc, "--version"], capture_output=True, text=True).stdout
    _major = int(_ver.split("release ")[1].split(".")[0])
except Exception:
    _major = 0
if _major >= 12:
    config.available_features.add("nvcc")
    config.substitutions.append(("%nvcc", _nvcc))
# An NVIDIA driver (libcuda.so.1) on this machine: GPU execution tests run, and the
# "no driver" error-path tests do not.
try:
    import ctypes
    ctypes.CDLL("libcuda.so.1")
    config.available_features.add("cuda-driver")
except OSError:
    pass
for example in ["kvc-decode-example", "kvc-decode-ir-example", "kvc-encoded-ir-example",
                "kvc-fixed-width-ir-example"]:
    if os.path.exists(os.path.join(config.kvc_tools_dir, example)):
        config.available_features.add(example)
