// Grouped-query attention on the CPU (core/layers.h), causal as transformers' eager
// attention or bidirectional as timm's ViT Attention, with the optional logit gate of
// VLA-Adapter's Pro head: scores = (q·kᵀ)·scale (·tanh(g) on the gated keys), masked above
// the diagonal when causal, softmax in fp32, times v; query head h reads KV head
// h / (heads/kvHeads). The backward recomputes the probabilities from the kept row max and
// sum (no T×Tk matrix is kept per layer) and sums the K and V gradients of a group's heads in
// head order. The (sample, head) pairs (backward: the (stream, sample, KV head) groups) are
// spread over the pool in one fork-join, each pair's small products on its own thread (no
// fork-join per 64×64 product); which thread runs a pair never changes its sums, so the bits
// do not depend on the thread count. The gate's gradient is summed per group into that
// group's own slot, and the slots are summed in order after the fork-join.
//
// The causal, ungated path is the arithmetic it was before the bidirectional and gated
// forms joined (test/fixtures/engine holds its bits): with Tk = T and no gate every loop
// below runs the same operations in the same order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gemm.h"
#include "parallel.h"
#include "layers_cpu.h"

namespace craftgrad {
namespace {

MatRef mat(const float* p, int64_t ld, bool trans = false) { return MatRef{p, ld, trans}; }

// Which keys query row i reads: [0, i] when causal, else all Tk; and the gate.
struct RowKeys {
  bool causal;
  int64_t Tk;
  int64_t g0, g1;  // gated keys [g0, g1); empty without a gate
  float t;         // tanh(g)
  int64_t end(int64_t i) const { return causal ? i + 1 : Tk; }
  // The score of key j from the product's a = (q·k)·scale.
  float score(const float* row, int64_t j) const { return j >= g0 && j < g1 ? row[j] * t : row[j]; }
};

RowKeys rowKeys(const AttentionShape& s) {
  RowKeys r{s.causal, s.keys(), 0, 0, 1.0f};
  if (s.gated()) {
    r.g0 = s.gateBegin;
    r.g1 = s.gateEnd;
    r.t = static_cast<float>(std::tanh(static_cast<double>(*s.gate)));
  }
  return r;
}

// P (T×Tk) = softmax rows of the scores of Sc (the products a, ungated), from the row max
// and sum; masked keys 0.
void probabilities(int64_t T, const RowKeys& rk, const float* Sc, const float* mx, const float* sum, float* P) {
  const int64_t Tk = rk.Tk;
  for (int64_t i = 0; i < T; ++i) {
    const float inv = 1.0f / sum[i];
    const int64_t e = rk.end(i);
    for (int64_t j = 0; j < e; ++j) P[i * Tk + j] = std::exp(rk.score(Sc + i * Tk, j) - mx[i]) * inv;
    for (int64_t j = e; j < Tk; ++j) P[i * Tk + j] = 0.0f;
  }
}

// Per-thread scratch of n floats (reused across calls: no allocation per product).
float* threadScratch(int64_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < static_cast<size_t>(n)) buf.resize(n);
  return buf.data();
}

}  // namespace

void attentionForwardCpu(const AttentionShape& s, const float* Q, const float* K, const float* V, float* Att,
                         float* rowMax, float* rowSum) {
  const AttentionShape& c = s;
  const RowKeys rk = rowKeys(s);
  const int64_t T = s.T, Tk = rk.Tk, hd = c.hd, qD = c.qDim(), kvD = c.kvDim(), group = c.heads / c.kvHeads;
  const float scale = s.scale;
  // One fork-join for all (sample, head) pairs; each pair's products run on its thread.
  parallelRanges(s.B * c.heads, 1, [&](int64_t p0, int64_t p1) {
    float* Sc = threadScratch(2 * T * Tk);
    float* P = Sc + T * Tk;
    for (int64_t pair = p0; pair < p1; ++pair) {
      const int64_t b = pair / c.heads, h = pair % c.heads;
      const float* q = Q + b * T * qD + h * hd;
      const float* k = K + b * Tk * kvD + (h / group) * hd;
      const float* v = V + b * Tk * kvD + (h / group) * hd;
      float* mx = rowMax + pair * T;
      float* sm = rowSum + pair * T;
      gemm(T, Tk, hd, scale, mat(q, qD), mat(k, kvD, true), 0.0f, Sc, Tk);
      for (int64_t i = 0; i < T; ++i) {
        const float* row = Sc + i * Tk;
        const int64_t e = rk.end(i);
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < e; ++j) {
          const float x = rk.score(row, j);
          m = x > m ? x : m;
        }
        double z = 0;
        for (int64_t j = 0; j < e; ++j) z += std::exp(rk.score(row, j) - m);
        mx[i] = m;
        sm[i] = static_cast<float>(z);
      }
      probabilities(T, rk, Sc, mx, sm, P);
      gemm(T, hd, Tk, 1.0f, mat(P, Tk), mat(v, kvD), 0.0f, Att + b * T * qD + h * hd, qD);
    }
  });
}

void attentionBackwardCpu(const AttentionShape& s, int streams, const float* Q, const float* K, const float* V,
                          const float* rowMax, const float* rowSum, const float* dAtt, float* dQ, float* dK, float* dV,
                          float* dGate) {
  const AttentionShape& c = s;
  const RowKeys rk = rowKeys(s);
  const bool gated = s.gated();
  const int64_t T = s.T, Tk = rk.Tk, M = s.B * s.T, Mk = s.B * Tk, hd = c.hd, qD = c.qDim(), kvD = c.kvDim(),
                group = c.heads / c.kvHeads;
  const float scale = s.scale;
  const int64_t items = streams * s.B * c.kvHeads;
  // The gate's partial sums, one per item (the calling thread's, reused across calls).
  thread_local std::vector<double> gateParts;
  if (gated) gateParts.assign(static_cast<size_t>(items), 0.0);
  double* parts = gateParts.data();
  // One fork-join for all (stream, sample, KV head) items; an item runs its group's query
  // heads in head order (the order dK and dV are summed in), recomputing each head's P.
  parallelRanges(items, 1, [&](int64_t i0, int64_t i1) {
    float* Sc = threadScratch(3 * T * Tk);
    float* P = Sc + T * Tk;
    float* dP = P + T * Tk;
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t st = item / (s.B * c.kvHeads), b = (item / c.kvHeads) % s.B, g = item % c.kvHeads;
      const int64_t so = st * M, sk = st * Mk;
      const float* k = K + b * Tk * kvD + g * hd;
      const float* v = V + b * Tk * kvD + g * hd;
      float* dk = dK + (sk + b * Tk) * kvD + g * hd;
      float* dv = dV + (sk + b * Tk) * kvD + g * hd;
      double gatePart = 0;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        const float* q = Q + b * T * qD + h * hd;
        const float beta = h % group == 0 ? 0.0f : 1.0f;  // a group's first head starts its dK, dV
        gemm(T, Tk, hd, scale, mat(q, qD), mat(k, kvD, true), 0.0f, Sc, Tk);
        probabilities(T, rk, Sc, rowMax + (b * c.heads + h) * T, rowSum + (b * c.heads + h) * T, P);
        const float* dO = dAtt + (so + b * T) * qD + h * hd;
        gemm(Tk, hd, T, 1.0f, mat(P, Tk, true), mat(dO, qD), beta, dv, kvD);  // dV += Pᵀ·dO
        gemm(T, Tk, hd, 1.0f, mat(dO, qD), mat(v, kvD, true), 0.0f, dP, Tk);   // dP = dO·Vᵀ
        for (int64_t i = 0; i < T; ++i) {
          const int64_t e = rk.end(i);
          double d = 0;
          for (int64_t j = 0; j < e; ++j) d += static_cast<double>(P[i * Tk + j]) * dP[i * Tk + j];
          const float df = static_cast<float>(d);
          for (int64_t j = 0; j < Tk; ++j) dP[i * Tk + j] = P[i * Tk + j] * (dP[i * Tk + j] - df);  // dS
          if (gated) {
            // dS·a summed for the gate; then the gated keys' dS times t (d a = dS·t).
            const int64_t j1 = std::min(rk.g1, e);
            for (int64_t j = rk.g0; j < j1; ++j) gatePart += static_cast<double>(dP[i * Tk + j]) * Sc[i * Tk + j];
            for (int64_t j = rk.g0; j < rk.g1; ++j) dP[i * Tk + j] = dP[i * Tk + j] * rk.t;
          }
        }
        gemm(T, hd, Tk, scale, mat(dP, Tk), mat(k, kvD), 0.0f, dQ + (so + b * T) * qD + h * hd, qD);  // dQ = s·dS·K
        gemm(Tk, hd, T, scale, mat(dP, Tk, true), mat(q, qD), beta, dk, kvD);                        // dK += s·dSᵀ·Q
      }
      if (gated) parts[item] = gatePart;
    }
  });
  if (!gated) return;
  const double dt = 1.0 - static_cast<double>(rk.t) * rk.t;  // d tanh(g) / dg
  const int64_t perStream = s.B * c.kvHeads;
  for (int st = 0; st < streams; ++st) {
    double sum = 0;
    for (int64_t i = 0; i < perStream; ++i) sum += parts[st * perStream + i];
    dGate[st] = static_cast<float>(sum * dt);
  }
}

}  // namespace craftgrad
