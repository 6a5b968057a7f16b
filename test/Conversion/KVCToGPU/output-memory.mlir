// RUN: kvc-opt %s -convert-kvc-to-gpu | FileCheck %s --check-prefix=MANAGED
// RUN: kvc-opt %s -convert-kvc-to-gpu="output-memory=device" | FileCheck %s --check-prefix=DEVICE
// RUN: kvc-opt %s --kvc-gpu-pipeline="host=llvm output-memory=device" | FileCheck %s --check-prefix=LLVM
// RUN: not kvc-opt %s -convert-kvc-to-gpu="output-memory=host" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not kvc-opt %s --kvc-gpu-pipeline="output-memory=pinned" 2>&1 | FileCheck %s --check-prefix=BADPIPE

// The output the host code returns: managed memory by default (the caller may read it on the
// host), device memory with output-memory=device (the async gpu.alloc form that gpu-to-llvm
// lowers to mgpuMemAlloc with isHostShared = 0). The workspaces come from the runtime either way.
// MANAGED-LABEL: func.func @decode
// MANAGED: %[[OUT:.*]] = gpu.alloc host_shared (%{{.*}}) : memref<?x32x1x128xbf16>
// MANAGED: gpu.launch_func
// MANAGED-SAME: %{{.*}} : memref<?xbf16>, %{{.*}} : index, %{{.*}} : index)
// MANAGED: bufferization.to_tensor %[[OUT]]

// DEVICE-LABEL: func.func @decode
// DEVICE-NOT: host_shared
// DEVICE: %[[T:.*]] = gpu.wait async
// DEVICE: %[[OUT:.*]], %[[A:.*]] = gpu.alloc async [%[[T]]] (%{{.*}}) : memref<?x32x1x128xbf16>
// DEVICE: gpu.wait [%[[A]]]
// DEVICE: gpu.launch_func
// DEVICE: bufferization.to_tensor %[[OUT]]

// LLVM-LABEL: llvm.func @decode(
// LLVM: %[[NOTSHARED:.*]] = llvm.mlir.constant(0 : i8) : i8
// LLVM: llvm.call @mgpuMemAlloc(%{{.*}}, %{{.*}}, %[[NOTSHARED]]) : (i64, !llvm.ptr, i8) -> !llvm.ptr

// BAD: error: convert-kvc-to-gpu: output-memory must be 'managed' or 'device', got 'host'
// BADPIPE: error: kvc-gpu-pipeline: output-memory must be 'managed' or 'device', got 'pinned'
func.func @decode(%q: tensor<?x32x1x128xbf16>, %k: tensor<?x8x?x128xbf16>,
                  %v: tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16> {
  %o = kvc.attention %q, %k, %v : (tensor<?x32x1x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x1x128xbf16>
  return %o : tensor<?x32x1x128xbf16>
}
