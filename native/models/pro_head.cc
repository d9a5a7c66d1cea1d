#include "pro_head.h"

#include <algorithm>
#include <cmath>

namespace craftgrad {
namespace {

// nn.LayerNorm's default eps: every LayerNorm of the head (action_heads.py:96, 107, 297).
constexpr float kHeadEps = 1e-5f;

// Y (rows × out) = X·Wᵀ + b.
void linear(Layers& L, int64_t rows, int64_t in, int64_t out, const float* X, const float* W, const float* b, float* Y) {
  L.gemm({rows, out, in, 1.0f, {X, in, false}, {W, in, true}, 0.0f, Y, out});
  if (b) L.addBias(Y, b, rows, out);
}

// The weight and bias gradients of Y = X·Wᵀ + b: g[w] (=|+=) scale·dYᵀ·X, g[b] likewise Σ dY.
void linearGrads(Layers& L, int64_t rows, int64_t in, int64_t out, const float* X, const float* dY, float* g,
                 int64_t wOff, int64_t bOff, float scale, bool accumulate) {
  L.gemm({out, in, rows, scale, {dY, out, true}, {X, in, false}, accumulate ? 1.0f : 0.0f, g + wOff, in});
  L.columnSum(dY, rows, out, out, scale, accumulate, g + bOff);
}

}  // namespace

ProHeadShape::ProHeadShape(const VlaConfig& cfg, const VlaLayout& layout, int64_t batch)
    : c(cfg), lay(layout), B(batch), rows(batch * cfg.chunk), Tk(cfg.chunk + cfg.Ka() + cfg.patches()) {
  attention.B = batch;
  attention.T = cfg.chunk;
  attention.Tk = Tk;
  attention.heads = attention.kvHeads = cfg.headHeads;
  attention.hd = cfg.headHd();
  // scores / math.sqrt(head_dim) (action_heads.py:392), as the product's alpha.
  attention.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(cfg.headHd())));
  attention.causal = false;
  // The task keys' logits times tanh(gating_factor) (:391): the last key group.
  attention.gateBegin = cfg.chunk + cfg.Ka();
  attention.gateEnd = Tk;
}

int64_t proHeadRopePositions(const ProHeadShape& s) {
  return std::max({s.c.chunk, s.c.Ka(), s.c.patches()});
}

void planProHead(const ProHeadShape& s, Layers& L, bool backward, Workspace& w, ProHeadBuffers& x) {
  const VlaConfig& c = s.c;
  const int64_t R = s.rows, D = c.D, AD = c.headIn(), BKa = s.B * c.Ka(), BP = s.B * c.patches();
  const int64_t BTk = s.B * s.Tk, half = c.headHd() / 2, npos = proHeadRopePositions(s);
  x.cosT = w.take<float>(npos * half);
  x.sinT = w.take<float>(npos * half);
  x.X0 = w.take<float>(R * AD);
  x.mean1 = w.take<float>(R);
  x.rstd1 = w.take<float>(R);
  x.N1 = w.take<float>(R * AD);
  x.Z1 = w.take<float>(R * D);
  x.X1 = w.take<float>(R * D);
  x.blocks.assign(c.NB, ProBlockActs{});
  for (ProBlockActs& a : x.blocks) {
    a.Q = w.take<float>(R * D);
    a.Ks = w.take<float>(R * D);
    a.Vs = w.take<float>(R * D);
    a.Ka = w.take<float>(BKa * D);
    a.Va = w.take<float>(BKa * D);
    a.Kt = w.take<float>(BP * D);
    a.Vt = w.take<float>(BP * D);
    a.K = w.take<float>(BTk * D);
    a.V = w.take<float>(BTk * D);
    a.rowMax = w.take<float>(s.attention.rows());
    a.rowSum = w.take<float>(s.attention.rows());
    a.Att = w.take<float>(R * D);
    a.Y = w.take<float>(R * D);
    a.mean = w.take<float>(R);
    a.rstd = w.take<float>(R);
    a.Yn = w.take<float>(R * D);
    a.Z = w.take<float>(R * D);
    a.Xout = w.take<float>(R * D);
  }
  x.mean2 = w.take<float>(R);
  x.rstd2 = w.take<float>(R);
  x.N2 = w.take<float>(R * D);
  x.O = w.take<float>(R * c.A);
  x.dO = w.take<float>(R * c.A);
  x.terms = w.take<double>(R * c.A);
  x.attention = w.take<float>(L.attentionScratch(s.attention, backward ? 1 : 0));
  x.dX = x.dX2 = x.dY = x.dN = x.dAtt = x.dQ = x.dK = x.dV = x.dKs = x.dKa = x.dKt = x.dVs = x.dVa = x.dVt = nullptr;
  x.dGate = nullptr;
  if (!backward) return;
  x.dX = w.take<float>(R * D);
  x.dX2 = w.take<float>(R * D);
  x.dY = w.take<float>(R * D);
  x.dN = w.take<float>(R * std::max(D, AD));
  x.dAtt = w.take<float>(R * D);
  x.dQ = w.take<float>(R * D);
  x.dK = w.take<float>(BTk * D);
  x.dV = w.take<float>(BTk * D);
  x.dKs = w.take<float>(R * D);
  x.dVs = w.take<float>(R * D);
  x.dKa = w.take<float>(BKa * D);
  x.dVa = w.take<float>(BKa * D);
  x.dKt = w.take<float>(BP * D);
  x.dVt = w.take<float>(BP * D);
  x.dGate = w.take<float>(1);
}

void proHeadForward(Layers& L, const ProHeadShape& s, const float* P, const float* noise,
                    const std::vector<const float*>& Had, const std::vector<const float*>& Ht, const float* actions,
                    ProHeadBuffers& x, double* loss) {
  const VlaConfig& c = s.c;
  const VlaLayout& lay = s.lay;
  const int64_t R = s.rows, D = c.D, AD = c.headIn(), Ka = c.Ka(), Pt = c.patches(), hd = c.headHd();
  // x0 = zeros (B, chunk, A·D) + the perturbation (the same for every sample; action_heads.py:63-72).
  if (noise) L.broadcastRows(x.X0, noise, s.B, c.chunk, AD, 0, c.chunk);
  else L.zero(x.X0, R * AD);
  L.layerNorm(R, AD, kHeadEps, x.X0, P + lay.ln1W, P + lay.ln1B, x.N1, x.mean1, x.rstd1);
  linear(L, R, AD, D, x.N1, P + lay.fc1W, nullptr, x.Z1);
  L.biasRelu(x.Z1, P + lay.fc1B, x.X1, R, D);
  const float* xin = x.X1;
  for (int64_t i = 0; i < c.NB; ++i) {
    const HeadBlockLayout& o = lay.blocks[i];
    ProBlockActs& a = x.blocks[i];
    linear(L, R, D, D, xin, P + o.qW, P + o.qB, a.Q);
    linear(L, R, D, D, xin, P + o.kSelfW, P + o.kSelfB, a.Ks);
    linear(L, R, D, D, xin, P + o.vSelfW, P + o.vSelfB, a.Vs);
    linear(L, s.B * Ka, D, D, Had[i], P + o.kAdW, P + o.kAdB, a.Ka);
    linear(L, s.B * Ka, D, D, Had[i], P + o.vAdW, P + o.vAdB, a.Va);
    linear(L, s.B * Pt, D, D, Ht[i], P + o.kTaskW, P + o.kTaskB, a.Kt);
    linear(L, s.B * Pt, D, D, Ht[i], P + o.vTaskW, P + o.vTaskB, a.Vt);
    // RoPE, each key group from position 0 (action_heads.py:380-386); v unroped.
    L.ropeProHead(a.Q, R, D, hd, c.chunk, x.cosT, x.sinT, false);
    L.ropeProHead(a.Ks, R, D, hd, c.chunk, x.cosT, x.sinT, false);
    L.ropeProHead(a.Ka, s.B * Ka, D, hd, Ka, x.cosT, x.sinT, false);
    L.ropeProHead(a.Kt, s.B * Pt, D, hd, Pt, x.cosT, x.sinT, false);
    // Keys and values per sample: [self; adapter; task].
    L.gatherRows(a.K, a.Ks, s.B, s.Tk, D, 0, c.chunk, false);
    L.gatherRows(a.K, a.Ka, s.B, s.Tk, D, c.chunk, Ka, false);
    L.gatherRows(a.K, a.Kt, s.B, s.Tk, D, c.chunk + Ka, Pt, false);
    L.gatherRows(a.V, a.Vs, s.B, s.Tk, D, 0, c.chunk, false);
    L.gatherRows(a.V, a.Va, s.B, s.Tk, D, c.chunk, Ka, false);
    L.gatherRows(a.V, a.Vt, s.B, s.Tk, D, c.chunk + Ka, Pt, false);
    AttentionShape at = s.attention;
    at.gate = P + o.gate;
    L.attentionForward(at, a.Q, a.K, a.V, a.Att, a.rowMax, a.rowSum, x.attention);
    linear(L, R, D, D, a.Att, P + o.oW, P + o.oB, a.Y);
    L.add(a.Y, xin, R * D);  // output + x
    L.layerNorm(R, D, kHeadEps, a.Y, P + o.lnW, P + o.lnB, a.Yn, a.mean, a.rstd);
    linear(L, R, D, D, a.Yn, P + o.ffW, nullptr, a.Z);
    L.biasRelu(a.Z, P + o.ffB, a.Xout, R, D);  // ffn = LayerNorm, Linear, ReLU; no residual after it
    xin = a.Xout;
  }
  L.layerNorm(R, D, kHeadEps, xin, P + lay.ln2W, P + lay.ln2B, x.N2, x.mean2, x.rstd2);
  linear(L, R, D, c.A, x.N2, P + lay.fc2W, nullptr, x.O);
  L.l1Loss(x.O, P + lay.fc2B, actions, x.dO, R, c.A, x.terms, loss);
}

void proHeadBackward(Layers& L, const ProHeadShape& s, const float* P, const std::vector<const float*>& Had,
                     const std::vector<const float*>& Ht, ProHeadBuffers& x, float* g, float scale, bool accumulate,
                     const std::vector<float*>& dHad, const std::vector<float*>& dHt) {
  const VlaConfig& c = s.c;
  const VlaLayout& lay = s.lay;
  const int64_t R = s.rows, D = c.D, AD = c.headIn(), Ka = c.Ka(), Pt = c.patches(), hd = c.headHd();
  const int64_t BKa = s.B * Ka, BP = s.B * Pt;
  const float* xlast = c.NB > 0 ? x.blocks[c.NB - 1].Xout : x.X1;
  // fc2 and LayerNorm2.
  linearGrads(L, R, D, c.A, x.N2, x.dO, g, lay.fc2W, lay.fc2B, scale, accumulate);
  L.gemm({R, D, c.A, 1.0f, {x.dO, c.A, false}, {P + lay.fc2W, D, false}, 0.0f, x.dN, D});
  L.layerNormParamGrad(R, D, x.dN, xlast, x.mean2, x.rstd2, scale, accumulate, g + lay.ln2W, g + lay.ln2B);
  L.zero(x.dX, R * D);
  L.layerNormBackward(R, R, D, x.dN, xlast, x.mean2, x.rstd2, P + lay.ln2W, x.dX);
  for (int64_t i = c.NB - 1; i >= 0; --i) {
    const HeadBlockLayout& o = lay.blocks[i];
    const ProBlockActs& a = x.blocks[i];
    const float* xin = i > 0 ? x.blocks[i - 1].Xout : x.X1;
    // ffn: Xout = ReLU(Yn·Wffᵀ + b), Yn = LN(Y), Y = o + xin.
    L.reluBackward(a.Z, x.dX, x.dX2, R * D, 1);
    linearGrads(L, R, D, D, a.Yn, x.dX2, g, o.ffW, o.ffB, scale, accumulate);
    L.gemm({R, D, D, 1.0f, {x.dX2, D, false}, {P + o.ffW, D, false}, 0.0f, x.dN, D});
    L.layerNormParamGrad(R, D, x.dN, a.Y, a.mean, a.rstd, scale, accumulate, g + o.lnW, g + o.lnB);
    L.zero(x.dY, R * D);
    L.layerNormBackward(R, R, D, x.dN, a.Y, a.mean, a.rstd, P + o.lnW, x.dY);
    // o_proj.
    linearGrads(L, R, D, D, a.Att, x.dY, g, o.oW, o.oB, scale, accumulate);
    L.gemm({R, D, D, 1.0f, {x.dY, D, false}, {P + o.oW, D, false}, 0.0f, x.dAtt, D});
    AttentionShape at = s.attention;
    at.gate = P + o.gate;
    L.attentionBackward(at, 1, a.Q, a.K, a.V, a.rowMax, a.rowSum, x.dAtt, x.dQ, x.dK, x.dV, x.dGate, x.attention);
    L.columnSum(x.dGate, 1, 1, 1, scale, accumulate, g + o.gate);
    L.gatherRows(x.dKs, x.dK, s.B, s.Tk, D, 0, c.chunk, true);
    L.gatherRows(x.dKa, x.dK, s.B, s.Tk, D, c.chunk, Ka, true);
    L.gatherRows(x.dKt, x.dK, s.B, s.Tk, D, c.chunk + Ka, Pt, true);
    L.gatherRows(x.dVs, x.dV, s.B, s.Tk, D, 0, c.chunk, true);
    L.gatherRows(x.dVa, x.dV, s.B, s.Tk, D, c.chunk, Ka, true);
    L.gatherRows(x.dVt, x.dV, s.B, s.Tk, D, c.chunk + Ka, Pt, true);
    L.ropeProHead(x.dQ, R, D, hd, c.chunk, x.cosT, x.sinT, true);
    L.ropeProHead(x.dKs, R, D, hd, c.chunk, x.cosT, x.sinT, true);
    L.ropeProHead(x.dKa, BKa, D, hd, Ka, x.cosT, x.sinT, true);
    L.ropeProHead(x.dKt, BP, D, hd, Pt, x.cosT, x.sinT, true);
    // The projections' weights, and the gradients at their inputs.
    linearGrads(L, R, D, D, xin, x.dQ, g, o.qW, o.qB, scale, accumulate);
    linearGrads(L, R, D, D, xin, x.dKs, g, o.kSelfW, o.kSelfB, scale, accumulate);
    linearGrads(L, R, D, D, xin, x.dVs, g, o.vSelfW, o.vSelfB, scale, accumulate);
    linearGrads(L, BKa, D, D, Had[i], x.dKa, g, o.kAdW, o.kAdB, scale, accumulate);
    linearGrads(L, BKa, D, D, Had[i], x.dVa, g, o.vAdW, o.vAdB, scale, accumulate);
    linearGrads(L, BP, D, D, Ht[i], x.dKt, g, o.kTaskW, o.kTaskB, scale, accumulate);
    linearGrads(L, BP, D, D, Ht[i], x.dVt, g, o.vTaskW, o.vTaskB, scale, accumulate);
    L.gemm({BKa, D, D, 1.0f, {x.dKa, D, false}, {P + o.kAdW, D, false}, 0.0f, dHad[i], D});
    L.gemm({BKa, D, D, 1.0f, {x.dVa, D, false}, {P + o.vAdW, D, false}, 1.0f, dHad[i], D});
    L.gemm({BP, D, D, 1.0f, {x.dKt, D, false}, {P + o.kTaskW, D, false}, 0.0f, dHt[i], D});
    L.gemm({BP, D, D, 1.0f, {x.dVt, D, false}, {P + o.vTaskW, D, false}, 1.0f, dHt[i], D});
    // d xin = the residual's dY + the three self projections'.
    L.copy(x.dX, x.dY, R * D);
    L.gemm({R, D, D, 1.0f, {x.dQ, D, false}, {P + o.qW, D, false}, 1.0f, x.dX, D});
    L.gemm({R, D, D, 1.0f, {x.dKs, D, false}, {P + o.kSelfW, D, false}, 1.0f, x.dX, D});
    L.gemm({R, D, D, 1.0f, {x.dVs, D, false}, {P + o.vSelfW, D, false}, 1.0f, x.dX, D});
  }
  // fc1 and LayerNorm1 (x0 takes no gradient).
  L.reluBackward(x.Z1, x.dX, x.dX2, R * D, 1);
  linearGrads(L, R, AD, D, x.N1, x.dX2, g, lay.fc1W, lay.fc1B, scale, accumulate);
  L.gemm({R, AD, D, 1.0f, {x.dX2, D, false}, {P + lay.fc1W, AD, false}, 0.0f, x.dN, AD});
  L.layerNormParamGrad(R, AD, x.dN, x.X0, x.mean1, x.rstd1, scale, accumulate, g + lay.ln1W, g + lay.ln1B);
}

}  // namespace craftgrad
