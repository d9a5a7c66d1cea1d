#include "qwen2_decoder.h"

#include <cmath>

namespace craftgrad {

Qwen2Shape::Qwen2Shape(const Qwen2Config& cfg, int64_t batch)
    : c(cfg), off(qwen2LayerOffsets(cfg)), B(batch), T(cfg.T()), M(batch * cfg.T()) {
  attention.B = batch;
  attention.T = T;
  attention.heads = c.heads;
  attention.kvHeads = c.kvHeads;
  attention.hd = c.hd();
  attention.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.hd())));
}

void planLayerActs(const Qwen2Shape& s, Workspace& w, Qwen2LayerActs& x) {
  const Qwen2Config& c = s.c;
  const int64_t M = s.M, D = c.D, rows = s.attention.rows();
  x.Y1 = w.take<float>(M * D);
  x.r1 = w.take<float>(M);
  x.Q = w.take<float>(M * c.qDim());
  x.K = w.take<float>(M * c.kvDim());
  x.V = w.take<float>(M * c.kvDim());
  x.rowMax = w.take<float>(rows);
  x.rowSum = w.take<float>(rows);
  x.Att = w.take<float>(M * c.qDim());
  x.X1 = w.take<float>(M * D);
  x.Y2 = w.take<float>(M * D);
  x.r2 = w.take<float>(M);
  x.Gt = w.take<float>(M * c.I);
  x.Up = w.take<float>(M * c.I);
  x.Act = w.take<float>(M * c.I);
  for (int i = 0; i < kQwen2Linears; ++i) x.U[i] = c.targeted(i) ? w.take<float>(M * c.r) : nullptr;
}

void planLayerScratch(const Qwen2Shape& s, Layers& L, int streams, bool backward, Workspace& w, Qwen2LayerScratch& x) {
  const Qwen2Config& c = s.c;
  const int64_t SM = streams * s.M;
  x = Qwen2LayerScratch{};
  x.attention = w.take<float>(L.attentionScratch(s.attention, backward ? streams : 0));
  if (!backward) return;
  x.dAct = w.take<float>(SM * c.I);
  x.dUp = w.take<float>(SM * c.I);
  x.dY = w.take<float>(SM * c.D);
  x.dAtt = w.take<float>(SM * c.qDim());
  x.dQ = w.take<float>(SM * c.qDim());
  x.dK = w.take<float>(SM * c.kvDim());
  x.dV = w.take<float>(SM * c.kvDim());
  x.V = w.take<float>(SM * c.r);
}

Qwen2LayerWeights qwen2LayerWeights(const float* W, const Qwen2LayerOffsets& o) {
  return {{W + o.qW, W + o.kW, W + o.vW, W + o.oW, W + o.gate, W + o.up, W + o.down},
          W + o.inNorm, W + o.qB, W + o.kB, W + o.vB, W + o.postNorm};
}

int64_t qwen2LayerVectorFloats(const Qwen2Config& c) { return 2 * c.D + c.qDim() + 2 * c.kvDim(); }

Qwen2LayerWeights qwen2LayerWeightsBf16(const uint16_t* W16, const Qwen2Config& c, const Qwen2LayerOffsets& o,
                                        const float* vec) {
  auto m = [&](int64_t off) { return FrozenWeight::bf16(W16 + off); };
  const float* qB = vec + c.D;
  const float* kB = qB + c.qDim();
  const float* vB = kB + c.kvDim();
  return {{m(o.qW), m(o.kW), m(o.vW), m(o.oW), m(o.gate), m(o.up), m(o.down)}, vec, qB, kB, vB, vB + c.kvDim()};
}

void widenQwen2LayerVectors(Layers& L, const uint16_t* W16, const Qwen2Config& c, const Qwen2LayerOffsets& o, float* vec) {
  const Qwen2LayerWeights w = qwen2LayerWeightsBf16(W16, c, o, vec);
  L.widenBf16(const_cast<float*>(w.inNorm), W16 + o.inNorm, c.D);
  L.widenBf16(const_cast<float*>(w.qB), W16 + o.qB, c.qDim());
  L.widenBf16(const_cast<float*>(w.kB), W16 + o.kB, c.kvDim());
  L.widenBf16(const_cast<float*>(w.vB), W16 + o.vB, c.kvDim());
  L.widenBf16(const_cast<float*>(w.postNorm), W16 + o.postNorm, c.D);
}

void qwen2LayerForward(Layers& L, const Qwen2Shape& s, const Qwen2LayerWeights& W, const Qwen2Lora& lora,
                       const float* Xin, Qwen2LayerActs& x, float* Xout, const Qwen2LayerScratch& scratch) {
  const Qwen2Config& c = s.c;
  const int64_t M = s.M, D = c.D;
  const float eps = static_cast<float>(c.eps);
  L.rmsNorm(M, D, eps, Xin, W.inNorm, x.Y1, x.r1);
  loraLinearForward(L, s.linear(0), M, x.Y1, W.m[0], W.qB, lora.f[0], x.U[0], x.Q);
  loraLinearForward(L, s.linear(1), M, x.Y1, W.m[1], W.kB, lora.f[1], x.U[1], x.K);
  loraLinearForward(L, s.linear(2), M, x.Y1, W.m[2], W.vB, lora.f[2], x.U[2], x.V);
  L.rope(x.Q, M, c.qDim(), c.hd(), s.T, s.cosT, s.sinT, false);
  L.rope(x.K, M, c.kvDim(), c.hd(), s.T, s.cosT, s.sinT, false);
  L.attentionForward(s.attention, x.Q, x.K, x.V, x.Att, x.rowMax, x.rowSum, scratch.attention);
  loraLinearForward(L, s.linear(3), M, x.Att, W.m[3], nullptr, lora.f[3], x.U[3], x.X1);
  L.add(x.X1, Xin, M * D);
  L.rmsNorm(M, D, eps, x.X1, W.postNorm, x.Y2, x.r2);
  loraLinearForward(L, s.linear(4), M, x.Y2, W.m[4], nullptr, lora.f[4], x.U[4], x.Gt);
  loraLinearForward(L, s.linear(5), M, x.Y2, W.m[5], nullptr, lora.f[5], x.U[5], x.Up);
  L.swiglu(x.Gt, x.Up, x.Act, M * c.I);
  loraLinearForward(L, s.linear(6), M, x.Act, W.m[6], nullptr, lora.f[6], x.U[6], Xout);
  L.add(Xout, x.X1, M * D);
}

void qwen2LayerBackward(Layers& L, const Qwen2Shape& s, const Qwen2Layout& lay, int64_t layer, int streams,
                        const Qwen2LayerWeights& W, const Qwen2Lora& lora, const float* Xin, const Qwen2LayerActs& x,
                        float* G, LoraGradients out, const Qwen2LayerScratch& k) {
  const Qwen2Config& c = s.c;
  const int64_t M = s.M, D = c.D, SM = streams * M;
  auto back = [&](int i, const float* X, FrozenWeight Wi, const float* dY, float* dX, float beta) {
    if (c.targeted(i)) {
      out.offA = lay.loraA[layer][i];
      out.offB = lay.loraB[layer][i];
    }
    loraLinearBackward(L, s.linear(i), M, streams, X, Wi, lora.f[i], x.U[i], dY, dX, beta, k.V, out);
  };
  // MLP: G = d out (and the residual's d x1).
  back(6, x.Act, W.m[6], G, k.dAct, 0.0f);
  L.swigluBackward(x.Gt, x.Up, k.dAct, k.dUp, SM * c.I, M * c.I);
  back(4, x.Y2, W.m[4], k.dAct, k.dY, 0.0f);
  back(5, x.Y2, W.m[5], k.dUp, k.dY, 1.0f);
  L.rmsNormBackward(SM, M, D, k.dY, x.X1, x.r2, W.postNorm, G);  // G = d x1
  // Attention.
  back(3, x.Att, W.m[3], G, k.dAtt, 0.0f);
  L.attentionBackward(s.attention, streams, x.Q, x.K, x.V, x.rowMax, x.rowSum, k.dAtt, k.dQ, k.dK, k.dV, nullptr,
                      k.attention);
  // RoPE backward: the inverse rotation (row mod T is the position in every stream block).
  L.rope(k.dQ, SM, c.qDim(), c.hd(), s.T, s.cosT, s.sinT, true);
  L.rope(k.dK, SM, c.kvDim(), c.hd(), s.T, s.cosT, s.sinT, true);
  back(0, x.Y1, W.m[0], k.dQ, k.dY, 0.0f);
  back(1, x.Y1, W.m[1], k.dK, k.dY, 1.0f);
  back(2, x.Y1, W.m[2], k.dV, k.dY, 1.0f);
  L.rmsNormBackward(SM, M, D, k.dY, Xin, x.r1, W.inNorm, G);  // G = d x
}

}  // namespace craftgrad
