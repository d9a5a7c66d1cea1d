#include "lora_linear.h"

namespace craftgrad {

void loraLinearForward(Layers& L, const LinearShape& s, int64_t M, const float* X, FrozenWeight W, const float* bias,
                       const LoraFactors& lora, float* U, float* Y) {
  L.gemm({M, s.out, s.in, 1.0f, {X, s.in, false}, W.mat(s.in, true), 0.0f, Y, s.out});
  if (bias) L.addBias(Y, bias, M, s.out);
  if (!lora.A) return;
  L.gemm({M, s.r, s.in, 1.0f, {X, s.in, false}, {lora.A, s.in, true}, 0.0f, U, s.r});
  L.gemm({M, s.out, s.r, s.scale, {U, s.r, false}, {lora.B, s.r, true}, 1.0f, Y, s.out});
}

void loraWeightGradients(Layers& L, const LinearShape& s, int64_t M, int streams, const float* X, const float* U,
                         const float* dY, const float* V, const LoraGradients& out) {
  const float k = s.scale * out.gradScale;
  LayerProduct p[4];
  int n = 0;
  for (int st = 0; st < streams; ++st) {
    float* g = out.g[st];
    if (!g) continue;
    p[n++] = {s.out, s.r, M, k, {dY + st * M * s.out, s.out, true}, {U, s.r, false}, out.beta, g + out.offB, s.r};
    p[n++] = {s.r, s.in, M, k, {V + st * M * s.r, s.r, true}, {X, s.in, false}, out.beta, g + out.offA, s.in};
  }
  if (n) L.gemmBatch(p, n);
}

void loraLinearBackward(Layers& L, const LinearShape& s, int64_t M, int streams, const float* X, FrozenWeight W,
                        const LoraFactors& lora, const float* U, const float* dY, float* dX, float beta, float* V,
                        const LoraGradients& out) {
  const int64_t SM = streams * M;
  L.gemm({SM, s.in, s.out, 1.0f, {dY, s.out, false}, W.mat(s.in, false), beta, dX, s.in});
  if (!lora.A) return;
  L.gemm({SM, s.r, s.out, 1.0f, {dY, s.out, false}, {lora.B, s.r, false}, 0.0f, V, s.r});  // V = dY·B
  L.gemm({SM, s.in, s.r, s.scale, {V, s.r, false}, {lora.A, s.in, false}, 1.0f, dX, s.in});  // dX += s·V·A
  loraWeightGradients(L, s, M, streams, X, U, dY, V, out);
}

void mergeLora(Layers& L, const LinearShape& s, const float* W, const LoraFactors& lora, float* Weff) {
  L.copy(Weff, W, s.out * s.in);
  L.gemm({s.out, s.in, s.r, s.scale, {lora.B, s.r, false}, {lora.A, s.in, false}, 1.0f, Weff, s.in});
}

}  // namespace craftgrad
