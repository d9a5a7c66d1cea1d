// One Qwen2 decoder layer, as transformers' Qwen2DecoderLayer with PEFT LoRA, written once
// over core/layers.h (ARCHITECTURE.md §4b):
//   y1 = RMSNorm(x)·w_in;  q, k, v = y1·Wᵀ + b (+ s·(y1·Aᵀ)·Bᵀ); RoPE on q, k (rotate-half)
//   x1 = x + attention(q, k, v)·W_oᵀ (+ LoRA);  y2 = RMSNorm(x1)·w_post
//   out = x1 + (silu(y2·W_gᵀ) ⊙ y2·W_uᵀ)·W_dᵀ (each + LoRA)
// The backward runs over `streams` gradient row blocks at once (the action and the
// retention gradients stacked, M rows each).
#pragma once
#include <cstdint>
#include <vector>

#include "../core/layers.h"
#include "../core/qwen2_desc.h"
#include "lora_linear.h"
#include "workspace.h"

namespace craftgrad {

// The shapes and tables of one call.
struct Qwen2Shape {
  const Qwen2Config& c;
  Qwen2LayerOffsets off;
  int64_t B, T, M;
  AttentionShape attention;
  const float *cosT = nullptr, *sinT = nullptr;  // (T × hd/2) rotary tables in backend memory
  Qwen2Shape(const Qwen2Config& cfg, int64_t batch);
  LinearShape linear(int i) const { return {c.linearIn(i), c.linearOut(i), c.r, c.loraScale()}; }
};

// What one layer's forward keeps (or, without a backward, the one reused slot).
struct Qwen2LayerActs {
  float *Y1, *r1, *Q, *K, *V, *rowMax, *rowSum, *Att, *X1, *Y2, *r2, *Gt, *Up, *Act;
  float* U[kQwen2Linears];  // X·Aᵀ of each targeted linear (M × r)
};
void planLayerActs(const Qwen2Shape& s, Workspace& w, Qwen2LayerActs& x);

// The scratch of a layer's backward (streams·M rows), and the attention's.
struct Qwen2LayerScratch {
  float *dAct, *dUp, *dY, *dAtt, *dQ, *dK, *dV, *V;
  float* attention;  // Layers::attentionScratch floats
};
void planLayerScratch(const Qwen2Shape& s, Layers& L, int streams, bool backward, Workspace& w, Qwen2LayerScratch& x);

// LoRA factors of one layer (null where a linear is not targeted).
struct Qwen2Lora {
  LoraFactors f[kQwen2Linears];
};

// One layer's frozen weights: the seven matrices (fp32, or bf16 read in place by the products)
// and the norm weights and biases (fp32: the layer's buffer's own, or widened from bf16 once
// per call into the workspace).
struct Qwen2LayerWeights {
  FrozenWeight m[kQwen2Linears];  // q, k, v, o, gate, up, down
  const float *inNorm, *qB, *kB, *vB, *postNorm;
};
// Of an fp32 layer buffer (qwen2LayerOffsets).
Qwen2LayerWeights qwen2LayerWeights(const float* W, const Qwen2LayerOffsets& o);
// The vectors of a bf16 layer buffer: inNorm (D), qB (qDim), kB, vB (kvDim), postNorm (D), in
// that order, qwen2LayerVectorFloats() in all.
int64_t qwen2LayerVectorFloats(const Qwen2Config& c);
// Of a bf16 layer buffer W16 (same offsets, in elements), `vec` holding its vectors widened
// (widenQwen2LayerVectors).
Qwen2LayerWeights qwen2LayerWeightsBf16(const uint16_t* W16, const Qwen2Config& c, const Qwen2LayerOffsets& o,
                                        const float* vec);
void widenQwen2LayerVectors(Layers& L, const uint16_t* W16, const Qwen2Config& c, const Qwen2LayerOffsets& o, float* vec);

// Xout = layer(Xin); activations into x. W: the layer's frozen weights.
void qwen2LayerForward(Layers& L, const Qwen2Shape& s, const Qwen2LayerWeights& W, const Qwen2Lora& lora,
                       const float* Xin, Qwen2LayerActs& x, float* Xout, const Qwen2LayerScratch& scratch);

// G (streams·M × D) = d Xout on entry, d Xin on return. out: the LoRA gradients' sets and
// write mode; its offsets are set per linear from loraA/loraB of `layer`.
void qwen2LayerBackward(Layers& L, const Qwen2Shape& s, const Qwen2Layout& lay, int64_t layer, int streams,
                        const Qwen2LayerWeights& W, const Qwen2Lora& lora, const float* Xin, const Qwen2LayerActs& x, float* G,
                        LoraGradients out, const Qwen2LayerScratch& scratch);

}  // namespace craftgrad
