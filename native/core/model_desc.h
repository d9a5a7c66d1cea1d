// The built-in AdapterPolicy model (ARCHITECTURE.md §4), backend-neutral: its configuration,
// the fixed order and sizes of its tensors, and validation. Its forward and backward are
// one driver for every backend (native/models/adapter_policy.cc over core/layers.h);
// N-API parsing in native/napi/model_call.*.
//
// Tensor order (names as in checkpoints), defined once by modelTensors() (model_desc.cc);
// src/model/layout.ts reads it through the binding (modelTensors):
//   trainable: for l in 0..L-1: blocks.l.lora_A (r×D), blocks.l.lora_B (D×r);
//              then head.fc1.weight (H×F), head.fc1.bias (H), head.fc2.weight (K·A×H), head.fc2.bias (K·A)
//   frozen:    for l in 0..L-1: blocks.l.weight (D×D), blocks.l.bias (D)
//   anchor:    for l in 0..L-1: blocks.l.lora_A, blocks.l.lora_B (the initial LoRA weights)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "layers.h"

namespace craftgrad {

enum class AnchorType : int { Concat = 0, AqOnly = 1, RawOnly = 2 };

struct ModelConfig {
  int64_t T = 0, D = 0, L = 0, r = 0;
  double alpha = 0;
  int64_t m = 0;  // bridge block: C_R = h after block m (1..L)
  Pooling pool = Pooling::Mean;
  AnchorType anchor = AnchorType::Concat;
  int64_t H = 0, K = 0, A = 0;

  int64_t F() const { return anchor == AnchorType::Concat ? 2 * D : D; }
  int64_t actionDim() const { return K * A; }
  // Blocks the features depend on: raw_only never needs the blocks after m.
  int64_t activeBlocks() const { return anchor == AnchorType::RawOnly ? m : L; }
  bool usesRaw() const { return anchor != AnchorType::AqOnly; }
  bool usesAq() const { return anchor != AnchorType::RawOnly; }
  // Column offsets of pool(C_R) and pool(C_AQ) inside f.
  int64_t rawOffset() const { return 0; }
  int64_t aqOffset() const { return anchor == AnchorType::Concat ? D : 0; }
  float loraScale() const { return static_cast<float>(alpha / static_cast<double>(r)); }
};

// One named tensor of a layout, in order.
struct TensorDesc {
  std::string name;
  std::vector<int64_t> shape;
  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

struct ModelTensors {
  std::vector<TensorDesc> trainable, frozen, anchor;
};

// The model's tensors, names and shapes, in the order above (the one definition).
ModelTensors modelTensors(const ModelConfig& c);

// Element offsets of each tensor in the flat trainable / frozen / anchor buffers (from modelTensors).
struct ModelLayout {
  std::vector<int64_t> loraA, loraB;       // into params (and, same offsets, anchor)
  int64_t fc1w = 0, fc1b = 0, fc2w = 0, fc2b = 0;
  int64_t paramCount = 0, anchorCount = 0;
  std::vector<int64_t> baseW, baseB;       // into frozen
  int64_t frozenCount = 0;
};

ModelLayout modelLayout(const ModelConfig& c);

// Empty when the configuration is usable; otherwise what is wrong, naming the field.
std::string modelConfigError(const ModelConfig& c);

enum class ModelMode : int {
  Craft = 0,     // action + retention losses, g_act and g_ret (shared forward, stacked backward)
  Baseline = 1,  // action loss and g_act only: no anchor forward, no retention stream
  Eval = 2,      // action loss only, no gradients
  EvalRet = 3,   // action and retention losses, no gradients
};

// One call's arguments. params, frozen, anchor, gAct and gRet live in the backend's
// memory (host for the CPU, device pointers for CUDA); tokens and actions are host arrays.
struct ModelStepArgs {
  const float* params = nullptr;  // trainable, layout of modelLayout()
  const float* frozen = nullptr;  // base W_l, b_l
  const float* anchor = nullptr;  // initial LoRA weights (Craft / EvalRet)
  const float* tokens = nullptr;  // (batch, T, D), host memory on every backend
  const float* actions = nullptr; // (batch, K·A), host memory on every backend
  int64_t batch = 0;
  float* gAct = nullptr;          // (paramCount) or null
  float* gRet = nullptr;          // (paramCount) or null
  bool accumulate = false;        // g += scale·grad instead of g = scale·grad
  float scale = 1.0f;
  ModelMode mode = ModelMode::Craft;
  // Every product of the call (and the attention's) in bf16 with fp32 accumulation (CUDA
  // only; the binding refuses it on the CPU), as the seed's bf16 autocast; the rest is fp32.
  GemmPrecision precision = GemmPrecision::Fp32;
};

struct ModelStepResult {
  double actionLoss = 0;     // mean |O − Y| over batch·K·A
  double retentionLoss = 0;  // mean (f − f̃)² over batch·F (0 unless Craft / EvalRet)
};

}  // namespace craftgrad
