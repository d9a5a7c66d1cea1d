// A host tensor as the CPU kernels see it: two inputs and one output of n floats.
// `out` may equal `a` or `r` exactly (elementwise in place); partial overlap is rejected
// at the N-API boundary before a span is ever built.
#pragma once
#include <cstdint>

namespace craftgrad {

struct HostTensor {
  const float* a = nullptr;
  const float* r = nullptr;
  float* out = nullptr;
  int64_t n = 0;
};

}  // namespace craftgrad
