#include "vit_tower.h"

#include <cmath>

namespace craftgrad {

VitShape::VitShape(const VitConfig& cfg, int64_t n, int64_t rank, float loraScale)
    : t(cfg), images(n), M(n * cfg.T()), r(rank), scale(loraScale) {
  attention.B = n;
  attention.T = cfg.T();
  attention.heads = attention.kvHeads = cfg.heads;
  attention.hd = cfg.hd();
  // timm Attention: scale = head_dim ** -0.5 (vision_transformer.py:70), unmasked SDPA.
  attention.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(cfg.hd())));
  attention.causal = false;
}

LinearShape VitShape::linear(int i) const {
  switch (static_cast<VitLinear>(i)) {
    case VitLinear::Qkv: return {t.D, 3 * t.D, r, scale};
    case VitLinear::Proj: return {t.D, t.D, r, scale};
    case VitLinear::Fc1: return {t.D, t.mlp, r, scale};
    default: return {t.mlp, t.D, r, scale};
  }
}

void planVit(const VitShape& s, Layers& L, bool backward, int streams, Workspace& w, VitBuffers& x) {
  const VitConfig& t = s.t;
  const int64_t r = s.r;
  const int64_t M = s.M, D = t.D, nTok = s.images * t.N(), rows = s.attention.rows();
  x.Pk = w.take<float>(nTok * t.pixels());
  x.Up = w.take<float>(nTok * r);
  x.Y0 = w.take<float>(nTok * D);
  x.Xs = w.take<float>((backward ? t.run() + 1 : 2) * M * D);
  x.acts.assign(backward ? t.run() : 1, VitBlockActs{});
  for (VitBlockActs& a : x.acts) {
    a.Y1 = w.take<float>(M * D);
    a.mean1 = w.take<float>(M);
    a.rstd1 = w.take<float>(M);
    a.QKV = w.take<float>(M * 3 * D);
    a.Q = w.take<float>(M * D);
    a.K = w.take<float>(M * D);
    a.V = w.take<float>(M * D);
    a.rowMax = w.take<float>(rows);
    a.rowSum = w.take<float>(rows);
    a.Att = w.take<float>(M * D);
    a.Ao = w.take<float>(M * D);
    a.X1 = w.take<float>(M * D);
    a.Y2 = w.take<float>(M * D);
    a.mean2 = w.take<float>(M);
    a.rstd2 = w.take<float>(M);
    a.Z1 = w.take<float>(M * t.mlp);
    a.Hact = w.take<float>(M * t.mlp);
    a.Mo = w.take<float>(M * D);
    for (int i = 0; i < kVitLinears; ++i) a.U[i] = w.take<float>(M * r);
  }
  x.attention = w.take<float>(L.attentionScratch(s.attention, backward ? streams : 0));
  x.G = x.dA = x.dB = x.dAtt = x.dQKV = x.dQ = x.dK = x.dV = x.Vs = x.dY0 = nullptr;
  if (!backward) return;
  const int64_t SM = streams * M;
  x.G = w.take<float>(SM * D);
  x.dA = w.take<float>(SM * t.mlp);
  x.dB = w.take<float>(SM * D);
  x.dAtt = w.take<float>(SM * D);
  x.dQKV = w.take<float>(SM * 3 * D);
  x.dQ = w.take<float>(SM * D);
  x.dK = w.take<float>(SM * D);
  x.dV = w.take<float>(SM * D);
  x.Vs = w.take<float>(SM * r);
  x.dY0 = w.take<float>(streams * nTok * D);
}

VitLora vitLoraOf(const VitLoraLayout& lay, const float* base, int64_t blocks) {
  VitLora x;
  x.patch = {base + lay.patchA, base + lay.patchB};
  x.f.resize(blocks * kVitLinears);
  for (int64_t b = 0; b < blocks; ++b)
    for (int i = 0; i < kVitLinears; ++i) x.f[b * kVitLinears + i] = {base + lay.A[b][i], base + lay.B[b][i]};
  return x;
}

// Block b of bf16 blocks widened into the scratch (queued on the stream after the previous
// block's kernels, which read the scratch before).
static const float* widenBlock(Layers& L, const VitBf16Blocks& w, int64_t b, int64_t floats) {
  L.widenBf16(w.scratch, (*w.blocks)[static_cast<size_t>(b)], floats);
  return w.scratch;
}

void vitForward(Layers& L, const VitShape& s, const float* stem, const std::vector<const float*>& blocks,
                const VitLora& lora, const float* P6, int group, bool keep, VitBuffers& x, float* out, int64_t ld,
                int64_t col, VitBf16Blocks bf16) {
  const VitConfig& t = s.t;
  const VitStemOffsets so = vitStemOffsets(t);
  const VitBlockOffsets o = vitBlockOffsets(t);
  const int64_t M = s.M, D = t.D, N = t.N(), nTok = s.images * N, T = t.T(), pre = t.prefix();
  const float eps = static_cast<float>(t.eps);
  // Patch embedding: this tower's 3 channels of the shared 6-channel patch matrix, a product
  // with the Conv2d weight, its bias, PEFT's LoRA Conv2d as a LoRA linear (layers.h: patchify).
  L.copyColumns(x.Pk, t.pixels(), P6 + group * t.pixels(), 2 * t.pixels(), nTok, t.pixels(), false);
  loraLinearForward(L, s.patchLinear(), nTok, x.Pk, stem + so.patchW,
                    stem + so.patchB, lora.patch, x.Up, x.Y0);
  // _pos_embed (vision_transformer.py:579-604): no_embed_class (or no prefix): x + pos over
  // the patches, then [cls; reg; x].
  L.addBias(x.Y0, stem + so.pos, s.images, N * D);
  float* X = x.Xs;
  if (so.cls >= 0) L.broadcastRows(X, stem + so.cls, s.images, T, D, 0, 1);
  if (so.reg >= 0) L.broadcastRows(X, stem + so.reg, s.images, T, D, t.cls, t.reg);
  L.gatherRows(X, x.Y0, s.images, T, D, pre, N, false);
  for (int64_t b = 0; b < t.run(); ++b) {
    const float* W = bf16.blocks ? widenBlock(L, bf16, b, o.floats) : blocks[b];
    VitBlockActs& a = x.acts[keep ? b : 0];
    const float* Xin = keep ? x.Xs + b * M * D : x.Xs + (b % 2) * M * D;
    float* Xout = keep ? x.Xs + (b + 1) * M * D : x.Xs + ((b + 1) % 2) * M * D;
    const LoraFactors* f = &lora.f[b * kVitLinears];
    L.layerNorm(M, D, eps, Xin, W + o.norm1W, W + o.norm1B, a.Y1, a.mean1, a.rstd1);
    loraLinearForward(L, s.linear(0), M, a.Y1, W + o.qkvW, W + o.qkvB, f[0], a.U[0], a.QKV);
    // qkv.reshape(B, N, 3, heads, hd): q, k, v are column blocks [0, D), [D, 2D), [2D, 3D).
    L.copyColumns(a.Q, D, a.QKV, 3 * D, M, D, false);
    L.copyColumns(a.K, D, a.QKV + D, 3 * D, M, D, false);
    L.copyColumns(a.V, D, a.QKV + 2 * D, 3 * D, M, D, false);
    L.attentionForward(s.attention, a.Q, a.K, a.V, a.Att, a.rowMax, a.rowSum, x.attention);
    loraLinearForward(L, s.linear(1), M, a.Att, W + o.projW, W + o.projB, f[1], a.U[1], a.Ao);
    L.copy(a.X1, Xin, M * D);
    if (o.ls1 >= 0) L.layerScaleAdd(a.X1, a.Ao, W + o.ls1, M, D);
    else L.add(a.X1, a.Ao, M * D);
    L.layerNorm(M, D, eps, a.X1, W + o.norm2W, W + o.norm2B, a.Y2, a.mean2, a.rstd2);
    loraLinearForward(L, s.linear(2), M, a.Y2, W + o.fc1W, nullptr, f[2], a.U[2], a.Z1);
    L.biasGeluErf(a.Z1, W + o.fc1B, nullptr, a.Hact, M, t.mlp);
    loraLinearForward(L, s.linear(3), M, a.Hact, W + o.fc2W, W + o.fc2B, f[3], a.U[3], a.Mo);
    L.copy(Xout, a.X1, M * D);
    if (o.ls2 >= 0) L.layerScaleAdd(Xout, a.Mo, W + o.ls2, M, D);
    else L.add(Xout, a.Mo, M * D);
  }
  // get_intermediate_layers: the last computed block's output, prefix tokens dropped, no norm.
  const float* last = keep ? x.Xs + t.run() * M * D : x.Xs + (t.run() % 2) * M * D;
  L.gatherRows(x.Y0, last, s.images, T, D, pre, N, true);
  L.copyColumns(out + col, ld, x.Y0, D, nTok, D, false);
}

void vitBackward(Layers& L, const VitShape& s, const std::vector<const float*>& blocks, const VitLora& lora,
                 const VitLoraLayout& lay, int streams, const float* dOut, int64_t ld, int64_t col, VitBuffers& x,
                 LoraGradients out, VitBf16Blocks bf16) {
  const VitConfig& t = s.t;
  const VitBlockOffsets o = vitBlockOffsets(t);
  const int64_t M = s.M, D = t.D, N = t.N(), nTok = s.images * N, T = t.T(), pre = t.prefix(), SM = streams * M;
  // G = d(last block's output): the output's gradient at the patch tokens, 0 at the prefix.
  L.copyColumns(x.dY0, D, dOut + col, ld, streams * nTok, D, false);
  L.zero(x.G, SM * D);
  L.gatherRows(x.G, x.dY0, streams * s.images, T, D, pre, N, false);
  for (int64_t b = t.run() - 1; b >= 0; --b) {
    const float* W = bf16.blocks ? widenBlock(L, bf16, b, o.floats) : blocks[b];
    const VitBlockActs& a = x.acts[b];
    const LoraFactors* f = &lora.f[b * kVitLinears];
    auto back = [&](int i, const float* X, const float* Wi, const float* dY, float* dX, float beta) {
      out.offA = lay.A[b][i];
      out.offB = lay.B[b][i];
      loraLinearBackward(L, s.linear(i), M, streams, X, Wi, f[i], a.U[i], dY, dX, beta, x.Vs, out);
    };
    // MLP: x_out = x1 + ls2·mo.
    if (o.ls2 >= 0) L.layerScaleBackward(x.G, W + o.ls2, x.dB, SM, D);
    else L.copy(x.dB, x.G, SM * D);
    back(3, a.Hact, W + o.fc2W, x.dB, x.dA, 0.0f);
    L.geluErfBackward(a.Z1, x.dA, x.dA, M * t.mlp, streams);
    back(2, a.Y2, W + o.fc1W, x.dA, x.dB, 0.0f);
    L.layerNormBackward(SM, M, D, x.dB, a.X1, a.mean2, a.rstd2, W + o.norm2W, x.G);  // G = d x1
    // Attention: x1 = x + ls1·ao.
    if (o.ls1 >= 0) L.layerScaleBackward(x.G, W + o.ls1, x.dB, SM, D);
    else L.copy(x.dB, x.G, SM * D);
    back(1, a.Att, W + o.projW, x.dB, x.dAtt, 0.0f);
    L.attentionBackward(s.attention, streams, a.Q, a.K, a.V, a.rowMax, a.rowSum, x.dAtt, x.dQ, x.dK, x.dV, nullptr,
                        x.attention);
    // dQKV = [dq, dk, dv] by columns, the qkv product's output layout.
    L.copyColumns(x.dQKV, 3 * D, x.dQ, D, SM, D, false);
    L.copyColumns(x.dQKV + D, 3 * D, x.dK, D, SM, D, false);
    L.copyColumns(x.dQKV + 2 * D, 3 * D, x.dV, D, SM, D, false);
    back(0, a.Y1, W + o.qkvW, x.dQKV, x.dB, 0.0f);
    const float* Xin = x.Xs + b * M * D;
    L.layerNormBackward(SM, M, D, x.dB, Xin, a.mean1, a.rstd1, W + o.norm1W, x.G);  // G = d x
  }
  // The patch embedding's LoRA: only its weight gradients (the pixels take none).
  if (!lora.patch.A) return;
  const LinearShape ps = s.patchLinear();
  L.gatherRows(x.dY0, x.G, streams * s.images, T, D, pre, N, true);
  L.gemm({streams * nTok, ps.r, D, 1.0f, {x.dY0, D, false}, {lora.patch.B, ps.r, false}, 0.0f, x.Vs, ps.r});
  out.offA = lay.patchA;
  out.offB = lay.patchB;
  loraWeightGradients(L, ps, nTok, streams, x.Pk, x.Up, x.dY0, x.Vs, out);
}

}  // namespace craftgrad
