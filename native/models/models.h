// The models, each a driver written once over the backend's layers (core/layers.h): one
// call per micro-batch gives the losses and, by mode, the action and retention gradients
// (ARCHITECTURE.md §4). Arguments as core/model_desc.h and core/qwen2_desc.h state them;
// the binding has checked them (lengths, devices, overlaps) before the call.
#pragma once
#include "../core/layers.h"
#include "../core/model_desc.h"
#include "../core/qwen2_desc.h"
#include "../core/vla_desc.h"

namespace craftgrad {

// The built-in AdapterPolicy (§4a).
ModelStepResult adapterPolicyStep(Layers& layers, const ModelConfig& c, const ModelStepArgs& a);

// The Qwen2 policy (§4b).
ModelStepResult qwen2PolicyStep(Layers& layers, const Qwen2Config& c, const Qwen2StepArgs& a);

// VLA-Adapter (§4d).
ModelStepResult vlaPolicyStep(Layers& layers, const VlaConfig& c, const VlaStepArgs& a);

}  // namespace craftgrad
