// Causal grouped-query attention on the CPU, as transformers' eager Qwen2 attention:
// scores = (q·kᵀ)·(1/√hd), masked above the diagonal, softmax in fp32, times v; query head
// h reads KV head h / (heads/kvHeads). The backward recomputes the probabilities from the
// kept row max and sum (no T×T matrix is kept per layer) and sums the K and V gradients of
// a group's heads in head order. The (sample, head) pairs run one after another, each
// product on the shared pool, so the order of every sum is fixed.
#include <cmath>
#include <limits>

#include "gemm.h"
#include "parallel.h"
#include "qwen2_parts.h"

namespace craftgrad {
namespace {

MatRef mat(const float* p, int64_t ld, bool trans = false) { return MatRef{p, ld, trans}; }

// P (T×T) = softmax rows of the masked scores Sc, from the row max and sum.
void probabilities(int64_t T, const float* Sc, const float* mx, const float* sum, float* P) {
  parallelRanges(T, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float inv = 1.0f / sum[i];
      for (int64_t j = 0; j <= i; ++j) P[i * T + j] = std::exp(Sc[i * T + j] - mx[i]) * inv;
      for (int64_t j = i + 1; j < T; ++j) P[i * T + j] = 0.0f;
    }
  });
}

}  // namespace

void attentionForward(const Qwen2Shape& s, const float* Q, const float* K, const float* V, float* Att, float* rowMax,
                      float* rowSum, Qwen2Arena& a) {
  const Qwen2Config& c = s.c;
  const int64_t T = s.T, hd = c.hd(), qD = c.qDim(), kvD = c.kvDim(), group = c.heads / c.kvHeads;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const size_t mark = a.used;
  float* Sc = a.take(T * T);
  float* P = a.take(T * T);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < c.heads; ++h) {
      const float* q = Q + b * T * qD + h * hd;
      const float* k = K + b * T * kvD + (h / group) * hd;
      const float* v = V + b * T * kvD + (h / group) * hd;
      float* mx = rowMax + (b * c.heads + h) * T;
      float* sm = rowSum + (b * c.heads + h) * T;
      gemm(T, T, hd, scale, mat(q, qD), mat(k, kvD, true), 0.0f, Sc, T);
      parallelRanges(T, 16, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const float* row = Sc + i * T;
          float m = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j <= i; ++j) m = row[j] > m ? row[j] : m;
          double z = 0;
          for (int64_t j = 0; j <= i; ++j) z += std::exp(row[j] - m);
          mx[i] = m;
          sm[i] = static_cast<float>(z);
        }
      });
      probabilities(T, Sc, mx, sm, P);
      gemm(T, hd, T, 1.0f, mat(P, T), mat(v, kvD), 0.0f, Att + b * T * qD + h * hd, qD);
    }
  a.used = mark;
}

void attentionBackward(const Qwen2Shape& s, int streams, const float* Q, const float* K, const float* V,
                       const float* rowMax, const float* rowSum, const float* dAtt, float* dQ, float* dK, float* dV,
                       Qwen2Arena& a) {
  const Qwen2Config& c = s.c;
  const int64_t T = s.T, M = s.M, hd = c.hd(), qD = c.qDim(), kvD = c.kvDim(), group = c.heads / c.kvHeads;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const size_t mark = a.used;
  float* Sc = a.take(T * T);
  float* P = a.take(T * T);
  float* dP = a.take(T * T);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < c.heads; ++h) {
      const float* q = Q + b * T * qD + h * hd;
      const float* k = K + b * T * kvD + (h / group) * hd;
      const float* v = V + b * T * kvD + (h / group) * hd;
      const float beta = h % group == 0 ? 0.0f : 1.0f;  // a group's first head starts its dK, dV
      gemm(T, T, hd, scale, mat(q, qD), mat(k, kvD, true), 0.0f, Sc, T);
      probabilities(T, Sc, rowMax + (b * c.heads + h) * T, rowSum + (b * c.heads + h) * T, P);
      for (int st = 0; st < streams; ++st) {
        const int64_t so = st * M;
        const float* dO = dAtt + (so + b * T) * qD + h * hd;
        float* dk = dK + (so + b * T) * kvD + (h / group) * hd;
        float* dv = dV + (so + b * T) * kvD + (h / group) * hd;
        gemm(T, hd, T, 1.0f, mat(P, T, true), mat(dO, qD), beta, dv, kvD);  // dV += Pᵀ·dO
        gemm(T, T, hd, 1.0f, mat(dO, qD), mat(v, kvD, true), 0.0f, dP, T);   // dP = dO·Vᵀ
        parallelRanges(T, 16, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) {
            double d = 0;
            for (int64_t j = 0; j <= i; ++j) d += static_cast<double>(P[i * T + j]) * dP[i * T + j];
            const float df = static_cast<float>(d);
            for (int64_t j = 0; j < T; ++j) dP[i * T + j] = P[i * T + j] * (dP[i * T + j] - df);  // dS
          }
        });
        gemm(T, hd, T, scale, mat(dP, T), mat(k, kvD), 0.0f, dQ + (so + b * T) * qD + h * hd, qD);  // dQ = s·dS·K
        gemm(T, hd, T, scale, mat(dP, T, true), mat(q, qD), beta, dk, kvD);                        // dK += s·dSᵀ·Q
      }
    }
  a.used = mark;
}

}  // namespace craftgrad
