// The pieces of the Qwen2 step on the CPU (qwen2_cpu.cc drives them): the decoder layer's
// forward with its kept activations and its backward over stacked gradient streams
// (qwen2_layer.cc), and attention (qwen2_attention.cc). Every product is gemm() (gemm.h);
// element loops split rows between threads and sum in a fixed order, so results do not
// depend on the thread count or the instruction set.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "../core/qwen2_desc.h"

namespace craftgrad {

// Per-call scratch: one buffer, handed out in order. A first pass with `counting` set only
// adds up the sizes, so the buffer is sized once per call shape and reused across calls.
struct Qwen2Arena {
  std::vector<float> buf;
  size_t used = 0;
  bool counting = false;
  float* take(int64_t n) {
    float* p = counting ? nullptr : buf.data() + used;
    used += static_cast<size_t>((n + 15) & ~int64_t{15});
    if (!counting && used > buf.size()) throw std::logic_error("qwen2 scratch arena too small (a sizing bug)");
    return p;
  }
};

// What one forward of one layer keeps (or, without a backward, the one reused slot).
struct Qwen2LayerActs {
  float *Y1, *r1, *Q, *K, *V, *rowMax, *rowSum, *Att, *X1, *Y2, *r2, *Gt, *Up, *Act;
  float* U[kQwen2Linears];  // X·Aᵀ of each targeted linear (M×r)
};

// The shapes and tables of one call.
struct Qwen2Shape {
  const Qwen2Config& c;
  Qwen2LayerOffsets off;
  int64_t B, T, M;
  std::vector<float> cosT, sinT;  // (T, hd/2) rotary tables
  Qwen2Shape(const Qwen2Config& cfg, int64_t batch);
};

void allocLayerActs(const Qwen2Shape& s, Qwen2Arena& a, Qwen2LayerActs& acts);

// LoRA factors of one layer: A[i], B[i] null when linear i is not targeted.
struct Qwen2Lora {
  const float* A[kQwen2Linears];
  const float* B[kQwen2Linears];
};

// One layer: Xout = layer(Xin), activations into `acts`.
void layerForward(const Qwen2Shape& s, const float* W, const Qwen2Lora& lora, const float* Xin, Qwen2LayerActs& acts,
                  float* Xout, Qwen2Arena& a);

// y = w ⊙ x·rstd per row; rstd kept.
void rmsNormForward(int64_t rows, int64_t D, double eps, const float* X, const float* w, float* Y, float* rstd);
// dX += RMSNorm backward of dY for `rows` rows (row i uses X and rstd of row i mod M).
void rmsNormBackward(int64_t rows, int64_t M, int64_t D, const float* dY, const float* X, const float* rstd,
                     const float* w, float* dX);

// Gradient outputs of one layer's backward: per stream the flat gradient set (null: skip)
// and how to write (g = beta·g + alpha·grad).
struct Qwen2GradOut {
  float* g[2];
  float alpha;  // scale of the step (the LoRA scale is applied inside)
  float beta;
  const std::vector<std::vector<int64_t>>* loraA;
  const std::vector<std::vector<int64_t>>* loraB;
};

// G (streams·M × D) = d Xout on entry, d Xin on return. Scratch from `a` (its mark restored).
void layerBackward(const Qwen2Shape& s, int64_t layer, int streams, const float* W, const Qwen2Lora& lora,
                   const float* Xin, const Qwen2LayerActs& acts, float* G, const Qwen2GradOut& out, Qwen2Arena& a);

// Causal attention over roped Q (M×qDim), K, V (M×kvDim) into Att (M×qDim), keeping the
// softmax rows' max and sum (B·heads·T each) for the backward.
void attentionForward(const Qwen2Shape& s, const float* Q, const float* K, const float* V, float* Att, float* rowMax,
                      float* rowSum, Qwen2Arena& a);
// dQ, dK, dV (streams·M rows) from dAtt (streams·M rows).
void attentionBackward(const Qwen2Shape& s, int streams, const float* Q, const float* K, const float* V,
                       const float* rowMax, const float* rowSum, const float* dAtt, float* dQ, float* dK, float* dV,
                       Qwen2Arena& a);

}  // namespace craftgrad
