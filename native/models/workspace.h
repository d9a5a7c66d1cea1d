// The one arena of every model's call: a plan (a function carving named buffers) runs
// twice, first over a counting Workspace (base null: it only adds up the sizes), then over
// the backend's lease of that size (Layers::lease), so a call allocates nothing else.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace craftgrad {

struct Workspace {
  char* base = nullptr;  // null: counting
  size_t used = 0;

  // n elements of T, 256-byte aligned (a vector load or a CUDA product's 16-byte loads never
  // straddle two buffers); nullptr while counting.
  template <typename T>
  T* take(int64_t n) {
    T* p = base ? reinterpret_cast<T*>(base + used) : nullptr;
    used += (static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T) + 255) & ~size_t{255};
    return p;
  }
};

}  // namespace craftgrad
