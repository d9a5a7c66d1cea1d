// Causal grouped-query attention on the CPU (core/layers.h), as transformers' eager attention:
// scores = (q·kᵀ)·(1/√hd), masked above the diagonal, softmax in fp32, times v; query head
// h reads KV head h / (heads/kvHeads). The backward recomputes the probabilities from the
// kept row max and sum (no T×T matrix is kept per layer) and sums the K and V gradients of
// a group's heads in head order. The (sample, head) pairs (backward: the (stream, sample,
// KV head) groups) are spread over the pool in one fork-join, each pair's small products
// on its own thread (no fork-join per 64×64 product); which thread runs a pair never
// changes its sums, so the bits do not depend on the thread count.
#include <cmath>
#include <limits>
#include <vector>

#include "gemm.h"
#include "parallel.h"
#include "layers_cpu.h"

namespace craftgrad {
namespace {

MatRef mat(const float* p, int64_t ld, bool trans = false) { return MatRef{p, ld, trans}; }

// P (T×T) = softmax rows of the masked scores Sc, from the row max and sum.
void probabilities(int64_t T, const float* Sc, const float* mx, const float* sum, float* P) {
  for (int64_t i = 0; i < T; ++i) {
    const float inv = 1.0f / sum[i];
    for (int64_t j = 0; j <= i; ++j) P[i * T + j] = std::exp(Sc[i * T + j] - mx[i]) * inv;
    for (int64_t j = i + 1; j < T; ++j) P[i * T + j] = 0.0f;
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
  const int64_t T = s.T, hd = c.hd, qD = c.qDim(), kvD = c.kvDim(), group = c.heads / c.kvHeads;
  const float scale = s.scale;
  // One fork-join for all (sample, head) pairs; each pair's products run on its thread.
  parallelRanges(s.B * c.heads, 1, [&](int64_t p0, int64_t p1) {
    float* Sc = threadScratch(2 * T * T);
    float* P = Sc + T * T;
    for (int64_t pair = p0; pair < p1; ++pair) {
      const int64_t b = pair / c.heads, h = pair % c.heads;
      const float* q = Q + b * T * qD + h * hd;
      const float* k = K + b * T * kvD + (h / group) * hd;
      const float* v = V + b * T * kvD + (h / group) * hd;
      float* mx = rowMax + pair * T;
      float* sm = rowSum + pair * T;
      gemm(T, T, hd, scale, mat(q, qD), mat(k, kvD, true), 0.0f, Sc, T);
      for (int64_t i = 0; i < T; ++i) {
        const float* row = Sc + i * T;
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j <= i; ++j) m = row[j] > m ? row[j] : m;
        double z = 0;
        for (int64_t j = 0; j <= i; ++j) z += std::exp(row[j] - m);
        mx[i] = m;
        sm[i] = static_cast<float>(z);
      }
      probabilities(T, Sc, mx, sm, P);
      gemm(T, hd, T, 1.0f, mat(P, T), mat(v, kvD), 0.0f, Att + b * T * qD + h * hd, qD);
    }
  });
}

void attentionBackwardCpu(const AttentionShape& s, int streams, const float* Q, const float* K, const float* V,
                          const float* rowMax, const float* rowSum, const float* dAtt, float* dQ, float* dK,
                          float* dV) {
  const AttentionShape& c = s;
  const int64_t T = s.T, M = s.B * s.T, hd = c.hd, qD = c.qDim(), kvD = c.kvDim(), group = c.heads / c.kvHeads;
  const float scale = s.scale;
  // One fork-join for all (stream, sample, KV head) items; an item runs its group's query
  // heads in head order (the order dK and dV are summed in), recomputing each head's P.
  parallelRanges(streams * s.B * c.kvHeads, 1, [&](int64_t i0, int64_t i1) {
    float* Sc = threadScratch(3 * T * T);
    float* P = Sc + T * T;
    float* dP = P + T * T;
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t st = item / (s.B * c.kvHeads), b = (item / c.kvHeads) % s.B, g = item % c.kvHeads;
      const int64_t so = st * M;
      const float* k = K + b * T * kvD + g * hd;
      const float* v = V + b * T * kvD + g * hd;
      float* dk = dK + (so + b * T) * kvD + g * hd;
      float* dv = dV + (so + b * T) * kvD + g * hd;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        const float* q = Q + b * T * qD + h * hd;
        const float beta = h % group == 0 ? 0.0f : 1.0f;  // a group's first head starts its dK, dV
        gemm(T, T, hd, scale, mat(q, qD), mat(k, kvD, true), 0.0f, Sc, T);
        probabilities(T, Sc, rowMax + (b * c.heads + h) * T, rowSum + (b * c.heads + h) * T, P);
        const float* dO = dAtt + (so + b * T) * qD + h * hd;
        gemm(T, hd, T, 1.0f, mat(P, T, true), mat(dO, qD), beta, dv, kvD);  // dV += Pᵀ·dO
        gemm(T, T, hd, 1.0f, mat(dO, qD), mat(v, kvD, true), 0.0f, dP, T);   // dP = dO·Vᵀ
        for (int64_t i = 0; i < T; ++i) {
          double d = 0;
          for (int64_t j = 0; j <= i; ++j) d += static_cast<double>(P[i * T + j]) * dP[i * T + j];
          const float df = static_cast<float>(d);
          for (int64_t j = 0; j < T; ++j) dP[i * T + j] = P[i * T + j] * (dP[i * T + j] - df);  // dS
        }
        gemm(T, hd, T, scale, mat(dP, T), mat(k, kvD), 0.0f, dQ + (so + b * T) * qD + h * hd, qD);  // dQ = s·dS·K
        gemm(T, hd, T, scale, mat(dP, T, true), mat(q, qD), beta, dk, kvD);                        // dK += s·dSᵀ·Q
      }
    }
  });
}

}  // namespace craftgrad
