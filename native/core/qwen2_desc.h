// A Qwen2 backbone with LoRA, learnable action queries and a per-query action head
// (ARCHITECTURE.md §4b), backend-neutral: its configuration, the one definition of the
// trainable tensors' order, names and shapes, validation, and one call's arguments.
// Its forward and backward are one driver for every backend (native/models/qwen2_policy.cc
// and qwen2_decoder.cc over core/layers.h); N-API parsing in native/napi/qwen2_call.cc.
//
// Trainable tensors (GradSet order; names as PEFT and policy.safetensors write them):
//   for l in 0..L-1, for each targeted linear in q,k,v,o,gate,up,down order:
//     base_model.model.model.layers.l.{self_attn|mlp}.X.lora_A.weight (r, in)
//     base_model.model.model.layers.l.{self_attn|mlp}.X.lora_B.weight (out, r)
//   action_queries (Q, D), head.fc1.weight (Hh, D), head.fc1.bias (Hh),
//   head.fc2.weight (A, Hh), head.fc2.bias (A)
// Anchor: the first of those (every LoRA factor, then action_queries), same offsets.
// Frozen weights stay in the host arrays loadHfModel fills (src/model/qwen2/weights.ts):
// per layer one buffer of input_layernorm, q.w, q.b, k.w, k.b, v.w, v.b, o.w,
// post_attention_layernorm, gate, up, down; the embedding table; the final norm. On a device
// they are one set of those tensors, fp32 or (precision bf16) bf16 (Qwen2StepArgs).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model_desc.h"

namespace craftgrad {

enum class Qwen2Linear : int { Q = 0, K = 1, V = 2, O = 3, Gate = 4, Up = 5, Down = 6 };
constexpr int kQwen2Linears = 7;
const char* qwen2LinearName(int linear);  // "q_proj", ...

enum class BridgeSpan : int { Prefix = 0, PrefixPrompt = 1 };

struct Qwen2Config {
  // The backbone (config.json).
  int64_t D = 0, L = 0, heads = 0, kvHeads = 0, I = 0, V = 0;
  double eps = 1e-6, theta = 10000;
  // The sequence: P prefix vectors, S prompt tokens, Q action queries.
  int64_t P = 0, S = 0, Q = 0;
  // The policy.
  int64_t r = 0;
  double alpha = 0;
  unsigned targets = 0;  // bit i: linear i has LoRA
  int64_t A = 0, Hh = 0;  // action dims, head width
  int64_t m = 0;          // bridge layer: C_R = hidden_states[m], 0..L (L: after the final norm)
  BridgeSpan span = BridgeSpan::Prefix;
  Pooling pool = Pooling::Mean;
  AnchorType anchor = AnchorType::Concat;

  int64_t hd() const { return D / heads; }
  int64_t T() const { return P + S + Q; }
  int64_t qDim() const { return heads * hd(); }
  int64_t kvDim() const { return kvHeads * hd(); }
  int64_t spanTokens() const { return span == BridgeSpan::Prefix ? P : P + S; }
  int64_t F() const { return anchor == AnchorType::Concat ? 2 * D : D; }
  bool usesRaw() const { return anchor != AnchorType::AqOnly; }
  bool usesAq() const { return anchor != AnchorType::RawOnly; }
  int64_t rawOffset() const { return 0; }
  int64_t aqOffset() const { return anchor == AnchorType::Concat ? D : 0; }
  bool targeted(int linear) const { return (targets >> linear) & 1u; }
  float loraScale() const { return static_cast<float>(alpha / static_cast<double>(r)); }
  // (out, in) of a linear layer.
  int64_t linearOut(int linear) const;
  int64_t linearIn(int linear) const;
};

// Offsets of a layer's frozen tensors inside its buffer (floats), and the buffer's length.
struct Qwen2LayerOffsets {
  int64_t inNorm, qW, qB, kW, kB, vW, vB, oW, postNorm, gate, up, down, floats;
};
Qwen2LayerOffsets qwen2LayerOffsets(const Qwen2Config& c);

// The trainable tensors in order (the one definition), and their offsets.
std::vector<TensorDesc> qwen2Trainable(const Qwen2Config& c);
struct Qwen2Layout {
  // loraA[l][linear] / loraB[l][linear]: offsets into params (-1 when not targeted).
  std::vector<std::vector<int64_t>> loraA, loraB;
  int64_t queries = 0, fc1w = 0, fc1b = 0, fc2w = 0, fc2b = 0;
  int64_t paramCount = 0, anchorCount = 0;  // anchor: everything before the head
};
Qwen2Layout qwen2Layout(const Qwen2Config& c);

// The rotary tables cos, sin (T × hd/2, fp32) as transformers computes them: every backend's.
void qwen2RopeTables(const Qwen2Config& c, std::vector<float>& cosT, std::vector<float>& sinT);

// Empty when usable; otherwise what is wrong, naming the field.
std::string qwen2ConfigError(const Qwen2Config& c);

// One call. params, anchor, gAct, gRet: the backend's memory (layout of qwen2Layout).
// The frozen weights: see frozenInBackend. Every other pointer is host memory on every backend.
struct Qwen2StepArgs {
  const float* params = nullptr;
  const float* anchor = nullptr;               // Craft / EvalRet
  const float* embed = nullptr;                // (V, D)
  std::vector<const float*> layers;            // L buffers of qwen2LayerOffsets().floats
  const float* finalNorm = nullptr;            // (D)
  const float* prefix = nullptr;               // (batch, P, D) or null when P = 0
  const int32_t* inputIds = nullptr;           // (batch, S), each in [0, V); null when S = 0
  const float* actions = nullptr;              // (batch, Q·A)
  int64_t batch = 0;
  float* gAct = nullptr;
  float* gRet = nullptr;
  // embed, layers and finalNorm are in this backend's memory (one set uploaded once, as
  // Qwen2Policy does on a device) rather than host arrays; a device backend requires it.
  bool frozenInBackend = false;
  // The frozen set is bf16 (a device's, with precision Bf16 only; the binding checks both):
  // embed16, layers16 and finalNorm16 hold its bf16 bits (same offsets, in elements) and embed,
  // layers and finalNorm are null. The products read the matrices in place; the vectors are
  // widened to fp32 once per call (ARCHITECTURE.md §8 "Precision").
  bool frozenBf16 = false;
  const uint16_t* embed16 = nullptr;
  std::vector<const uint16_t*> layers16;
  const uint16_t* finalNorm16 = nullptr;
  bool accumulate = false;  // g += scale·grad instead of g = scale·grad
  float scale = 1.0f;
  ModelMode mode = ModelMode::Craft;
  // Every product of the call (and the attention's) in bf16 with fp32 accumulation (CUDA
  // only; the binding refuses it on the CPU), as the seed's bf16 autocast; the rest is fp32.
  GemmPrecision precision = GemmPrecision::Fp32;
};

}  // namespace craftgrad
