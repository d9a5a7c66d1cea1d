// The fused (flash-attention style) bf16 attention of CudaLayers (attention_fused.cu): what
// layer_kernels.cu's attention methods call when AttentionShape::precision is Bf16. Internal
// to native/cuda. Every function throws CudaError (a configuration it cannot run: hd not
// from 1 to 128, a device below sm_80, a launch error); nothing aborts.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "../core/layers.h"

namespace craftgrad {
namespace cuda {

// Scratch floats of the fused path: 0 for the forward (streams <= 0); for a backward of
// `streams` streams, D = Σ dO·O per softmax row (streams·rows floats), then the gate's row
// partials (streams·rows doubles at an even float offset). O(rows), never O(rows·Tk).
int64_t fusedAttentionScratch(const AttentionShape& s, int streams);

// Att and each row's max and sum (rowMax, rowSum: core/layers.h's contract) on `stream`.
void fusedAttentionForward(int device, cudaStream_t stream, const AttentionShape& s, const float* Q, const float* K,
                           const float* V, float* Att, float* rowMax, float* rowSum);

// dQ, dK, dV of `streams` streams; with a gate, each row's Σ dS·a over its gated keys into the
// returned array (streams·rows doubles in scratch, the order of layer_kernels.cu's
// attnGateGradKernel, which the caller launches to reduce them into dGate).
double* fusedAttentionBackward(int device, cudaStream_t stream, const AttentionShape& s, int streams, const float* Q,
                               const float* K, const float* V, const float* rowMax, const float* rowSum,
                               const float* dAtt, float* dQ, float* dK, float* dV, float* scratch);

}  // namespace cuda
}  // namespace craftgrad
