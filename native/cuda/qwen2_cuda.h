// The Qwen2 policy step on a CUDA device (qwen2_step.cc: CudaLayers operations,
// layers_cuda.h), behind a plain C++ interface (no CUDA headers). Compiled only with
// CRAFTGRAD_HAVE_CUDA. Temporary: native/models/qwen2_policy.cc replaces it.
//
// The CPU backend's algorithm (native/cpu/qwen2_*.cc) step for step: fp32 throughout, every
// product the model's matrix product (gemm_cuda.h: one fmaf chain per output in k order),
// row reductions (RMSNorm, softmax, pooling, bias and query gradients) in double in a fixed
// order or a fixed tree, no atomics: bit-identical run to run on one device, and equal to
// the CPU's within rounding (not bit for bit: expf and the trees differ from the CPU's).
#pragma once
#include "../core/layers.h"
#include "../core/model_desc.h"
#include "../core/qwen2_desc.h"

namespace craftgrad {
namespace cuda {

// a.params, a.anchor, a.gAct, a.gRet and the frozen weights (a.frozenInBackend required):
// device pointers on the layers' device; a.prefix, a.inputIds, a.actions: host arrays,
// uploaded into the device's workspace. One stream sync.
ModelStepResult qwen2Step(Layers& layers, const Qwen2Config& c, const Qwen2StepArgs& a);

}  // namespace cuda
}  // namespace craftgrad
