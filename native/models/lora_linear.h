// A linear layer with an optional LoRA adapter (PEFT's: y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ, s = α/r),
// written once over core/layers.h, with the backward over stacked gradient streams: the
// action and retention gradients (M rows each) share every input-gradient product; only
// the LoRA weight gradients are per stream.
//
// Two forms, as the models compute them:
// - separate (Qwen2): the base product, the bias, then the LoRA path from the kept U = x·Aᵀ;
// - merged (the built-in model): W_eff = W + s·B·A formed once per call (with B = 0 it is W
//   bit for bit), one product with W_eff.
#pragma once
#include <cstdint>

#include "../core/layers.h"

namespace craftgrad {

struct LinearShape {
  int64_t in, out, r;
  float scale;  // α/r
};

// A linear layer's frozen weight W (out × in): fp32 at p, or bf16 bits at p16 (frozen weights
// stored in bf16, read in place by a backend with bf16 products: LayerMat::p16).
struct FrozenWeight {
  const float* p = nullptr;
  const uint16_t* p16 = nullptr;
  FrozenWeight() = default;
  FrozenWeight(const float* w) : p(w) {}  // NOLINT: an fp32 pointer is an fp32 weight
  static FrozenWeight bf16(const uint16_t* w) {
    FrozenWeight f;
    f.p16 = w;
    return f;
  }
  LayerMat mat(int64_t ld, bool trans) const { return {p, ld, trans, p16}; }
};

struct LoraFactors {
  const float* A = nullptr;  // (r × in); null: no adapter on this layer
  const float* B = nullptr;  // (out × r)
};

// Where one stream's LoRA weight gradients go: g[offA] (r × in) and g[offB] (out × r) of
// the set g (null: the stream is not written), as g = k·grad or g += k·grad (beta 1).
struct LoraGradients {
  float* g[2] = {nullptr, nullptr};
  int64_t offA = 0, offB = 0;
  float gradScale = 1.0f;  // the step's scale (the LoRA scale is applied inside)
  float beta = 0.0f;
};

// Y (M × out) = X·Wᵀ (+ bias) (+ s·U·Bᵀ, U = X·Aᵀ kept for the backward).
void loraLinearForward(Layers& L, const LinearShape& s, int64_t M, const float* X, FrozenWeight W, const float* bias,
                       const LoraFactors& lora, float* U, float* Y);

// dX (streams·M × in) = beta·dX + dY·W (+ s·(dY·B)·A), and the LoRA weight gradients of each
// written stream; V: workspace of streams·M·r floats.
void loraLinearBackward(Layers& L, const LinearShape& s, int64_t M, int streams, const float* X, FrozenWeight W,
                        const LoraFactors& lora, const float* U, const float* dY, float* dX, float beta, float* V,
                        const LoraGradients& out);

// The merged form's weight: Weff (out × in) = W + s·B·A.
void mergeLora(Layers& L, const LinearShape& s, const float* W, const LoraFactors& lora, float* Weff);

// The LoRA weight gradients of `streams` streams in one batch of products, from the layer's
// input X (M × in), U = X·Aᵀ (M × r), dY (streams·M × out) and V = dY·B (streams·M × r):
// dB = s·gradScale·dYᵀ·U, dA = s·gradScale·Vᵀ·X, per stream with a set.
void loraWeightGradients(Layers& L, const LinearShape& s, int64_t M, int streams, const float* X, const float* U,
                         const float* dY, const float* V, const LoraGradients& out);

}  // namespace craftgrad
