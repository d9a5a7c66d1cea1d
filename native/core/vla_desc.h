// VLA-Adapter (docs/VLA-ADAPTER.md; ARCHITECTURE.md §4d), backend-neutral: its configuration,
// the one definition of its trainable tensors (order, names, shapes) and of its frozen weight
// groups, validation, and one call's arguments. The forward and backward are one driver for
// every backend (native/models/vla_policy.cc over core/layers.h); N-API in native/napi/vla_call.cc.
//
// Trainable tensors, in GradSet order (names as PEFT's adapter and upstream's files hold them):
//   for each tower t (featurizer = DINOv2, fused_featurizer = SigLIP):
//     base_model.model.vision_backbone.<t>.patch_embed.proj.lora_{A,B}.weight  (r × 3p², D × r:
//       PEFT 0.11.1's Conv2d LoRA (r,3,p,p) and (D,r,1,1) read as matrices)
//     for block b in 0..depth−2 (the blocks the output depends on):
//       ….<t>.blocks.b.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2}.lora_{A,B}.weight
//   base_model.model.projector.{fc1,fc2,fc3}.lora_{A,B}.weight
//   for l in 0..L−1: base_model.model.language_model.model.layers.l.{self_attn.{q,k,v,o}_proj,
//     mlp.{gate,up,down}_proj}.lora_{A,B}.weight
//   action_queries.weight (Q × D)                         ← the anchor is everything up to here
//   proprio_projector.{fc1.weight (D × 8), fc1.bias, fc2.weight (D × D), fc2.bias}  (with proprio)
//   action_head.model.{layer_norm1.{weight,bias} (A·D), fc1.{weight (D × A·D), bias}},
//   for block i < NB: action_head.model.mlp_resnet_blocks.i.{ffn.0 (LayerNorm), ffn.1 (Linear), q_proj,
//     k_self, v_self, k_adapter, v_adapter, k_task, v_task, o_proj}.{weight,bias}, ….gating_factor (1),
//   action_head.model.{layer_norm2.{weight,bias}, fc2.{weight (A × D), bias (A)}}
// LoRA modules PEFT creates off the loss path (each tower's last block, SigLIP's attn_pool,
// lm_head) and the head's unused film_gen are not trainable here: the TypeScript side keeps
// and writes them back unchanged (src/model/vla/).
//
// Frozen weights: one buffer per group, in this order (vlaFrozenGroups): per tower its stem
// (VitStemOffsets) then each computed block (VitBlockOffsets); the projector
// (ProjectorOffsets); embed_tokens (V × D); each decoder layer (qwen2LayerOffsets); the final norm (D).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model_desc.h"
#include "qwen2_desc.h"

namespace craftgrad {

// One timm VisionTransformer tower as VLA-Adapter runs it (to block depth−2, patch tokens only).
struct VitConfig {
  int64_t D = 0, depth = 0, heads = 0, mlp = 0, patch = 0, image = 0;
  int64_t cls = 0, reg = 0;  // prefix tokens: class token (0/1) and registers
  bool layerScale = false;
  double eps = 1e-6;

  int64_t grid() const { return image / patch; }
  int64_t N() const { return grid() * grid(); }
  int64_t prefix() const { return cls + reg; }
  int64_t T() const { return prefix() + N(); }
  int64_t run() const { return depth - 1; }  // blocks 0..depth−2
  int64_t hd() const { return D / heads; }
  int64_t pixels() const { return 3 * patch * patch; }  // one patch's inputs
};

struct VitStemOffsets {
  int64_t patchW, patchB, pos, cls, reg, floats;  // cls/reg −1 when absent
};
struct VitBlockOffsets {
  int64_t norm1W, norm1B, qkvW, qkvB, projW, projB, ls1, norm2W, norm2B, fc1W, fc1B, fc2W, fc2B, ls2, floats;
};
VitStemOffsets vitStemOffsets(const VitConfig& t);
VitBlockOffsets vitBlockOffsets(const VitConfig& t);

struct ProjectorOffsets {
  int64_t fc1W, fc1B, fc2W, fc2B, fc3W, fc3B, floats;
};

// The tower's LoRA linears in a block, in layout order.
enum class VitLinear : int { Qkv = 0, Proj = 1, Fc1 = 2, Fc2 = 3 };
constexpr int kVitLinears = 4;

struct VlaConfig {
  VitConfig tower[2];
  int64_t views = 0;
  int64_t projHidden = 0;  // the fused projector's fc1 width (4 × vision width upstream)
  // The Qwen2 backbone (config.json's text_config).
  int64_t D = 0, L = 0, heads = 0, kvHeads = 0, I = 0, V = 0;
  double eps = 1e-6, theta = 10000;
  // The sequence: S input ids per sample (BOS first, the Q action placeholders last).
  int64_t S = 0, Q = 0;
  // LoRA.
  int64_t r = 0;
  double alpha = 0;
  // The Pro head: NB blocks, chunk C of A action dims, 8 heads; proprio (P8 dims) or none.
  int64_t NB = 0, chunk = 0, A = 0, headHeads = 8;
  bool proprio = true;
  int64_t proprioDim = 0;
  // CRaFT's bridge features.
  int64_t m = 0;  // C_R = hidden_states[m], 0..L
  BridgeSpan span = BridgeSpan::Prefix;  // Prefix: the vision tokens; PrefixPrompt: + the prompt tokens
  Pooling pool = Pooling::Mean;
  AnchorType anchor = AnchorType::Concat;

  int64_t visionDim() const { return tower[0].D + tower[1].D; }
  int64_t patches() const { return views * tower[0].N(); }  // P: vision tokens in the sequence
  int64_t T() const { return S + patches(); }
  int64_t promptTokens() const { return S - Q - 1; }  // between BOS and the queries
  int64_t Ka() const { return Q + (proprio ? 1 : 0); }
  int64_t headIn() const { return A * D; }
  int64_t headHd() const { return D / headHeads; }
  int64_t spanBegin() const { return 1; }
  int64_t spanTokens() const { return span == BridgeSpan::Prefix ? patches() : patches() + promptTokens(); }
  int64_t F() const { return anchor == AnchorType::Concat ? 2 * D : D; }
  bool usesRaw() const { return anchor != AnchorType::AqOnly; }
  bool usesAq() const { return anchor != AnchorType::RawOnly; }
  int64_t aqOffset() const { return anchor == AnchorType::Concat ? D : 0; }
  float loraScale() const { return static_cast<float>(alpha / static_cast<double>(r)); }
  // The decoder as core/qwen2_desc.h describes it: prefix = BOS + vision, every linear targeted.
  Qwen2Config decoder() const;
};

struct VitLoraLayout {
  int64_t patchA = 0, patchB = 0;
  std::vector<std::vector<int64_t>> A, B;  // [block][VitLinear]
};
struct HeadBlockLayout {
  int64_t lnW, lnB, ffW, ffB, qW, qB, kSelfW, kSelfB, vSelfW, vSelfB, kAdW, kAdB, vAdW, vAdB, kTaskW, kTaskB, vTaskW,
      vTaskB, oW, oB, gate;
};
struct VlaLayout {
  VitLoraLayout tower[2];
  int64_t projA[3] = {0, 0, 0}, projB[3] = {0, 0, 0};
  Qwen2Layout llm;  // loraA/loraB per layer and linear; its head fields unused
  int64_t queries = 0;
  int64_t pFc1W = -1, pFc1B = -1, pFc2W = -1, pFc2B = -1;
  int64_t ln1W = 0, ln1B = 0, fc1W = 0, fc1B = 0, ln2W = 0, ln2B = 0, fc2W = 0, fc2B = 0;
  std::vector<HeadBlockLayout> blocks;
  int64_t headBegin = 0;  // first tensor after the anchor (proprio projector or head)
  int64_t paramCount = 0, anchorCount = 0;
};

std::vector<TensorDesc> vlaTrainable(const VlaConfig& c);
VlaLayout vlaLayout(const VlaConfig& c);
// The frozen groups in order (names for errors: "featurizer.stem", "featurizer.blocks.0", …).
std::vector<TensorDesc> vlaFrozenGroups(const VlaConfig& c);
ProjectorOffsets projectorOffsets(const VlaConfig& c);
// The Pro head's rotary tables (n positions × hd/2; action_heads.py:150-164 in fp32).
void proHeadRopeTables(int64_t hd, int64_t n, std::vector<float>& cosT, std::vector<float>& sinT);

// Empty when usable; otherwise what is wrong, naming the field.
std::string vlaConfigError(const VlaConfig& c);

struct VlaStepArgs {
  const float* params = nullptr;
  const float* anchor = nullptr;  // Craft / EvalRet
  std::vector<const float*> frozen;  // vlaFrozenGroups order
  bool frozenInBackend = false;
  // The frozen set is bf16 (a device's, precision Bf16 only; the binding checks both): frozen16
  // holds each group's bf16 bits (same order) and `frozen` is empty. The decoder's matrices are
  // read in place; the towers' blocks are widened one at a time as they are used; the stems,
  // the projector and every vector are widened once per call (ARCHITECTURE.md §8 "Precision").
  bool frozenBf16 = false;
  std::vector<const uint16_t*> frozen16;
  // Host inputs: pixels (B, views, 6, H, W) normalised as upstream's processor, ids (B, S),
  // proprio (B, proprioDim) when configured, actions (B, chunk·A), noise (chunk × A·D) or null.
  const float* pixels = nullptr;
  const int32_t* inputIds = nullptr;
  const float* proprio = nullptr;
  const float* actions = nullptr;
  const float* noise = nullptr;
  int64_t batch = 0;
  float* gAct = nullptr;
  float* gRet = nullptr;
  bool accumulate = false;
  float scale = 1.0f;
  ModelMode mode = ModelMode::Craft;
  // Every product of the call (and the attention's) in bf16 with fp32 accumulation (CUDA
  // only; the binding refuses it on the CPU), as the seed's bf16 autocast; the rest is fp32.
  GemmPrecision precision = GemmPrecision::Fp32;
};

}  // namespace craftgrad
