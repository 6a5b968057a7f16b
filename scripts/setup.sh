#!/usr/bin/env bash
# Sets up kvc on Debian 12 and builds it. Idempotent: installs only what is missing, reuses the
# virtual environment and the build directory.
#
#   scripts/setup.sh            # apt packages (as root), .venv with the Python deps, build/
#   KVC_BUILD_DIR=out scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${KVC_BUILD_DIR:-$ROOT/build}
VENV=${KVC_VENV:-$ROOT/.venv}

log() { printf '\033[1m[kvc setup]\033[0m %s\n' "$*"; }

APT_PACKAGES=(
  build-essential cmake ninja-build ccache python3 python3-venv python3-pip
  clang-22 lld-22 llvm-22 llvm-22-dev llvm-22-tools llvm-22-linker-tools
  libmlir-22 libmlir-22-dev mlir-22-tools libclang-rt-22-dev
  zlib1g-dev libzstd-dev libedit-dev libxml2-dev libffi-dev libncurses-dev libz3-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  libeigen3-dev liblbfgspp-dev libopenblas-dev libgtest-dev
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${#missing[@]} Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages: all present"
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating Python environment $VENV"
  /usr/bin/python3 -m venv "$VENV"
fi
REQ=python/requirements.txt
STAMP="$VENV/.kvc-requirements"
if [ ! -f "$STAMP" ] || ! cmp -s "$REQ" "$STAMP"; then
  log "installing Python packages from $REQ"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e python
  cp "$REQ" "$STAMP"
else
  log "Python packages: up to date"
fi

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  log "configuring $BUILD_DIR"
  cmake -G Ninja -S "$ROOT" -B "$BUILD_DIR" \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 -DLLVM_USE_LINKER=lld \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DPython3_EXECUTABLE="$VENV/bin/python" -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
    ${KVC_CMAKE_ARGS:-} >/dev/null
fi
log "building (ninja -C $BUILD_DIR)"
ninja -C "$BUILD_DIR" all
log "done: tools in $BUILD_DIR/bin, runtime in $BUILD_DIR/lib"
