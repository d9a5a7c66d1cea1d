// The AdapterPolicy forward and backward on a CUDA device (model_step.cc: CudaLayers
// operations, layers_cuda.h), behind a plain C++ interface (no CUDA headers). Compiled only
// with CRAFTGRAD_HAVE_CUDA. Temporary: native/models/adapter_policy.cc replaces it.
//
// Same math, same operation order and same rounding as the CPU backend (model_cpu.cc):
// products accumulate each output element over k = 0..K-1 with one fused multiply-add per
// step, element-wise code uses explicitly rounded intrinsics (no contraction), and the
// per-column sums run in float64 in sample order, so the gradients are meant to match the
// CPU's bit for bit; the two loss values are reduced in a fixed tree (run-to-run
// deterministic, equal to the CPU's to rounding).
#pragma once
#include "../core/layers.h"
#include "../core/model_desc.h"

namespace craftgrad {
namespace cuda {

// a.params, a.frozen, a.anchor, a.gAct, a.gRet: device pointers on the layers' device;
// a.tokens, a.actions: host arrays (uploaded into the device's workspace). One stream sync.
ModelStepResult modelStep(Layers& layers, const ModelConfig& c, const ModelStepArgs& a);

}  // namespace cuda
}  // namespace craftgrad
