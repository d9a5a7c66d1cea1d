// One timm ViT tower as VLA-Adapter runs it (docs/VLA-ADAPTER.md §2), written once over
// core/layers.h: the patch embedding as a product on the patch matrix (with PEFT 0.11.1's
// LoRA on it), the position embedding, the prefix tokens, then blocks 0..depth−2 of
//   x = x + ls1(proj(attn(qkv(LN1(x)))));  x = x + ls2(fc2(GELU(fc1(LN2(x)))))
// (timm v0.9.10 vision_transformer.py:53-161; ls only in DINOv2), every linear with LoRA.
// The output is the patch tokens of the last computed block. The backward runs `streams`
// stacked gradient blocks (action, retention) and writes only LoRA gradients (the towers'
// base weights and the images take none).
#pragma once
#include <cstdint>
#include <vector>

#include "../core/layers.h"
#include "../core/vla_desc.h"
#include "lora_linear.h"
#include "workspace.h"

namespace craftgrad {

struct VitShape {
  const VitConfig& t;
  int64_t images;  // B·views
  int64_t M;       // images·T rows of the token matrix
  int64_t r;       // LoRA rank
  float scale;     // LoRA α/r
  AttentionShape attention;
  VitShape(const VitConfig& cfg, int64_t images, int64_t rank, float loraScale);
  LinearShape linear(int i) const;
  LinearShape patchLinear() const { return {t.pixels(), t.D, r, scale}; }
};

// What one block's forward keeps (or, without a backward, one reused slot).
struct VitBlockActs {
  float *Y1, *mean1, *rstd1, *QKV, *Q, *K, *V, *rowMax, *rowSum, *Att, *Ao, *X1, *Y2, *mean2, *rstd2, *Z1, *Hact, *Mo;
  float* U[kVitLinears];
};

// The tower's buffers for one call.
struct VitBuffers {
  float* Pk;   // images·N × 3p²: this tower's patch matrix
  float* Up;   // images·N × r: Pk·Aᵀ of the patch LoRA
  float* Y0;   // images·N × D: the patch embedding (+ pos)
  float* Xs;   // (run + 1) × M × D with a backward (every block's input and the output), else 2 × M × D
  std::vector<VitBlockActs> acts;
  // Backward scratch (streams·M rows).
  float *G, *dA, *dB, *dAtt, *dQKV, *dQ, *dK, *dV, *Vs, *attention, *dY0;
};
void planVit(const VitShape& s, Layers& L, bool backward, int streams, Workspace& w, VitBuffers& x);

// LoRA factors of the tower inside a parameter set (params or anchor, same offsets).
struct VitLora {
  LoraFactors patch;
  std::vector<LoraFactors> f;  // [block·kVitLinears + linear]
};
VitLora vitLoraOf(const VitLoraLayout& lay, const float* base, int64_t blocks);

// A tower's blocks stored in bf16 (frozen weights in bf16, ARCHITECTURE.md §8): each block's
// buffer is widened into `scratch` (vitBlockOffsets().floats floats) just before it is used,
// forward and backward, so one fp32 block exists at a time. Unused when `blocks` is null.
struct VitBf16Blocks {
  const std::vector<const uint16_t*>* blocks = nullptr;
  float* scratch = nullptr;
};

// pixels6: images × 6 × H × W; channel group `group` (0: channels 0-2, 1: 3-5) is this tower's.
// P6: the 6-channel patch matrix (images·N × 6p², from Layers::patchify) shared by both towers.
// out (images·N × ld, columns [col, col + D)): the patch tokens of the last block.
void vitForward(Layers& L, const VitShape& s, const float* stem, const std::vector<const float*>& blocks,
                const VitLora& lora, const float* P6, int group, bool keep, VitBuffers& x, float* out, int64_t ld,
                int64_t col, VitBf16Blocks bf16 = {});

// dOut (streams·images·N × ld, columns [col, col + D)): the gradient at the output; the LoRA
// gradients into out's sets (offsets from lay).
void vitBackward(Layers& L, const VitShape& s, const std::vector<const float*>& blocks, const VitLora& lora,
                 const VitLoraLayout& lay, int streams, const float* dOut, int64_t ld, int64_t col, VitBuffers& x,
                 LoraGradients out, VitBf16Blocks bf16 = {});

}  // namespace craftgrad
