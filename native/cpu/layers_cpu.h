// The CPU backend's layers (core/layers.h): host memory, the shared thread pool, the
// per-instruction-set products and element loops (gemm.h). Element loops split rows or
// elements between threads and every sum runs in a fixed order, so the bits depend neither
// on the thread count nor on the instruction set.
#pragma once
#include "../core/layers.h"

namespace craftgrad {

// The process's one CPU layers object (stateless but for each thread's workspace).
Layers& cpuLayers();

// Grouped-query attention on the CPU (attention_cpu.cc), core/layers.h's contract.
void attentionForwardCpu(const AttentionShape& s, const float* Q, const float* K, const float* V, float* Att,
                         float* rowMax, float* rowSum);
void attentionBackwardCpu(const AttentionShape& s, int streams, const float* Q, const float* K, const float* V,
                          const float* rowMax, const float* rowSum, const float* dAtt, float* dQ, float* dK, float* dV,
                          float* dGate);

}  // namespace craftgrad
