// The AdapterPolicy forward and backward on the CPU: one call per micro-batch
// (arguments and result types in core/model_desc.h, shared with the CUDA backend).
#pragma once
#include <cstdint>

#include "../core/model_desc.h"

namespace craftgrad {

ModelStepResult modelStepCpu(const ModelConfig& c, const ModelStepArgs& a);

}  // namespace craftgrad
