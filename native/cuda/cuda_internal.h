// Internal to native/cuda: the runtime API, error checking and the per-device context.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "cuda_backend.h"

namespace craftgrad {
namespace cuda {

// Throws CudaError naming the call and the device; clears the runtime's last-error state
// first so a non-sticky error does not leak into the next call. Allocations go through
// mallocDevice and mallocPinned, whose out-of-memory error (CudaOutOfMemory) says how much
// was asked for.
[[noreturn]] void throwCuda(cudaError_t err, const char* call, int device);

#define CG_CUDA(device, call)                                                     \
  do {                                                                            \
    const cudaError_t cgErr_ = (call);                                            \
    if (cgErr_ != cudaSuccess) ::craftgrad::cuda::throwCuda(cgErr_, #call, (device)); \
  } while (0)

// cudaMalloc with an out-of-memory error that says how much and where.
void* mallocDevice(int device, size_t bytes, const char* what);
void freeDevice(void* p) noexcept;
// Queues p for cudaFree / cudaFreeHost on the release thread (cuda_device.cc): for
// destructors, which may run on the JS main thread, so that it never waits for the device.
void releaseDevice(int device, void* p) noexcept;
void releasePinned(int device, void* p) noexcept;
// Returns when every queued release is done (mallocDevice and mallocPinned call it before
// retrying an allocation that ran out of memory).
void waitForReleases();
// cudaMallocHost (page-locked host memory for asynchronous copies), the same way.
void* mallocPinned(int device, size_t bytes, const char* what);

// Makes `device` current on the calling thread (checked).
void useDevice(int device);

// One per device, made on first use and kept for the life of the process (never
// destroyed: the CUDA runtime may already be unloading when static destructors run).
struct DeviceContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  int l2Bytes = 0;
  int multiprocessors = 0;
  // Host-array surgery: staging for act, ret and out, grown when needed, and the layout
  // of the last host call (rebuilt only when the sizes change).
  std::mutex stagingMutex;
  float* staging = nullptr;      // 3 * stagingCapacity floats
  int64_t stagingCapacity = 0;
  float* pinnedStaging = nullptr;  // the host side: 3 * pinnedCapacity floats of pinned memory
  int64_t pinnedCapacity = 0;
  std::shared_ptr<Layout> hostLayout;
};

DeviceContext& deviceContext(int device);  // also makes the device current

// Launches the fill kernel on the context stream (defined in surgery_kernels.cu).
void launchFill(DeviceContext& ctx, float* p, int64_t n, float value);

}  // namespace cuda
}  // namespace craftgrad
