// The CPU backend of the surgery primitive: pass 1 and pass 2 for every tensor, each
// tensor's write following its reduction while its data is still in cache.
#pragma once
#include <cstdint>

#include "../core/numerics.h"
#include "../core/tensor_span.h"

namespace craftgrad {

// Fills stats[i] for every tensor and writes every out. Thread-safe; uses the process
// thread pool when the work is large enough and the pool is free.
void surgeryCpu(const HostTensor* tensors, int64_t count, const SurgeryParams& params,
                TensorStats* stats);

}  // namespace craftgrad
