// The Qwen2 policy step on a CUDA device (native/cuda/qwen2_kernels.cu), behind a plain C++
// interface (no CUDA headers). Compiled only with CRAFTGRAD_HAVE_CUDA.
//
// The CPU backend's algorithm (native/cpu/qwen2_*.cc) step for step: fp32 throughout, every
// product the model's matrix product (gemm_cuda.h: one fmaf chain per output in k order),
// row reductions (RMSNorm, softmax, pooling, bias and query gradients) in double in a fixed
// order or a fixed tree, no atomics: bit-identical run to run on one device, and equal to
// the CPU's within rounding (not bit for bit: expf and the trees differ from the CPU's).
#pragma once
#include "../core/model_desc.h"
#include "../core/qwen2_desc.h"

namespace craftgrad {
namespace cuda {

// a.params, a.anchor, a.gAct, a.gRet and the frozen weights (a.frozenInBackend required):
// device pointers on `device`; a.prefix, a.inputIds, a.actions: host arrays, uploaded into
// per-device scratch. One stream sync.
ModelStepResult qwen2Step(int device, const Qwen2Config& c, const Qwen2StepArgs& a);

}  // namespace cuda
}  // namespace craftgrad
