// The CPU backend of the surgery primitive: pass 1 and pass 2 for every tensor, each
// tensor's write following its reduction while its data is still in cache. Pass 1 alone
// (reduceAllCpu) serves the fused surgery+AdamW step (adamw_cpu.h).
#pragma once
#include <cstdint>

#include "../core/numerics.h"
#include "../core/tensor_span.h"
#include "kernels.h"

namespace craftgrad {

// Fills stats[i] for every tensor and writes every out. Thread-safe; uses the process
// thread pool when the work is large enough and the pool is free.
void surgeryCpu(const HostTensor* tensors, int64_t count, const SurgeryParams& params,
                TensorStats* stats);

// Pass 1 of one tensor on the calling thread: <a,r>, <r,r>, <a,a>, non-finite flag.
ReduceSums reduceTensorWhole(const KernelTable& k, const HostTensor& t);
// Pass 1 of one tensor with every thread; the same bits as reduceTensorWhole.
ReduceSums reduceTensorCooperative(const KernelTable& k, const HostTensor& t);
// Pass 1 for every tensor (reads a and r only; `out` is ignored). Deterministic for any
// thread count.
void reduceAllCpu(const HostTensor* tensors, int64_t count, ReduceSums* sums);

}  // namespace craftgrad
