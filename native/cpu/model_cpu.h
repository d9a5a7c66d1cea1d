// The AdapterPolicy forward and backward on the CPU: one call per micro-batch.
#pragma once
#include <cstdint>

#include "../core/model_desc.h"

namespace craftgrad {

enum class ModelMode : int {
  Craft = 0,     // action + retention losses, g_act and g_ret (shared forward, stacked backward)
  Baseline = 1,  // action loss and g_act only: no anchor forward, no retention stream
  Eval = 2,      // action loss only, no gradients
  EvalRet = 3,   // action and retention losses, no gradients
};

struct ModelStepArgs {
  const float* params = nullptr;  // trainable, layout of modelLayout()
  const float* frozen = nullptr;  // base W_l, b_l
  const float* anchor = nullptr;  // initial LoRA weights (Craft / EvalRet)
  const float* tokens = nullptr;  // (batch, T, D)
  const float* actions = nullptr; // (batch, K·A)
  int64_t batch = 0;
  float* gAct = nullptr;          // (paramCount) or null
  float* gRet = nullptr;          // (paramCount) or null
  bool accumulate = false;        // g += scale·grad instead of g = scale·grad
  float scale = 1.0f;
  ModelMode mode = ModelMode::Craft;
};

struct ModelStepResult {
  double actionLoss = 0;     // mean |O − Y| over batch·K·A
  double retentionLoss = 0;  // mean (f − f̃)² over batch·F (0 unless Craft / EvalRet)
};

ModelStepResult modelStepCpu(const ModelConfig& c, const ModelStepArgs& a);

}  // namespace craftgrad
