// Internal to native/cuda: the per-device scratch a step carves its buffers from (the
// built-in model's step and the Qwen2 step each keep their own pool), grown when a call
// needs more, and the carver that sizes and cuts it into 256-byte aligned pieces.
#pragma once
#include <algorithm>
#include <cstddef>
#include <mutex>
#include <vector>

#include "cuda_internal.h"

namespace craftgrad {
namespace cuda {

struct Scratch {
  std::mutex m;  // held by the step for the whole call: one call per device and pool at a time
  char* p = nullptr;
  size_t bytes = 0;

  // At least `need` bytes (the old block freed first, so the peak is the new size); under m.
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

// One pool's scratch per device, made on first use and never freed (see DeviceContext).
// `Pool` tells the pools apart: a distinct tag type per step.
template <typename Pool>
Scratch& scratchFor(int device) {
  static std::mutex mu;
  static std::vector<Scratch*> all;
  std::lock_guard<std::mutex> lock(mu);
  if (static_cast<int>(all.size()) <= device) all.resize(device + 1, nullptr);
  if (!all[device]) all[device] = new Scratch();
  return *all[device];
}

// Carves 256-byte aligned pieces out of the scratch; with base == nullptr it only sizes.
struct Carver {
  char* base;
  size_t used = 0;
  template <typename T>
  T* take(long long n) {
    T* p = base ? reinterpret_cast<T*>(base + used) : nullptr;
    used += (static_cast<size_t>(std::max<long long>(n, 1)) * sizeof(T) + 255) & ~size_t{255};
    return p;
  }
};

}  // namespace cuda
}  // namespace craftgrad
