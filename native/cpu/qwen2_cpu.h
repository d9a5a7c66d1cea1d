// The Qwen2 policy's forward and backward on the CPU: one call per micro-batch
// (arguments in core/qwen2_desc.h, shared with the other backends).
#pragma once
#include "../core/qwen2_desc.h"

namespace craftgrad {

ModelStepResult qwen2StepCpu(const Qwen2Config& c, const Qwen2StepArgs& a);

}  // namespace craftgrad
