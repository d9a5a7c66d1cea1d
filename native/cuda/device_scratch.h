// Internal to native/cuda: a device's workspace for the models' calls (CudaLayers::lease),
// grown when a call needs more. The models carve it with native/models/workspace.h.
#pragma once
#include <cstddef>
#include <mutex>

#include "cuda_internal.h"

namespace craftgrad {
namespace cuda {

struct Scratch {
  std::mutex m;  // held by a lease for the whole call: one call per device at a time
  char* p = nullptr;
  size_t bytes = 0;

  // At least `need` bytes, 256-byte aligned (cudaMalloc's), the old block freed first so the
  // peak is the new size; under m. Kept for the process, like the device's context.
  char* reserve(int device, size_t need, const char* what) {
    if (bytes < need) {
      if (p) freeDevice(p);
      p = nullptr;
      bytes = 0;
      p = static_cast<char*>(mallocDevice(device, need, what));
      bytes = need;
    }
    return p;
  }
};

}  // namespace cuda
}  // namespace craftgrad
