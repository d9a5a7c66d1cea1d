// The fused bf16 attention (attention_fused.h; ARCHITECTURE.md §8 "Precision"): scaled
// dot-product attention in the flash-attention manner, an online softmax over key tiles with
// no T×Tk matrix in memory, its products on tensor cores through WMMA (nvcuda::wmma,
// 16×16×16 bf16 fragments with fp32 accumulators, sm_80+). Every form of core/layers.h's
// AttentionShape: causal or bidirectional, grouped-query, Tk keys per sample, the logit gate,
// stacked backward streams.
//
// Numerics: Q, K, V (and the backward's dO) are rounded to bf16 (round to nearest even) as
// they enter shared memory; the scores are fp32 accumulations of exact bf16 products; the
// softmax runs in fp32 on the score tile in shared memory (max, exp, the row sum in double);
// P (unnormalised in the forward, normalised in the backward) and dS are rounded to bf16
// before their products; the accumulators (O, dQ, dK, dV) and every output are fp32. Only
// load_matrix_sync / store_matrix_sync / mma_sync / fill_fragment touch fragments (their
// per-element layout is unspecified): every element-wise step works on fp32 tiles in shared
// memory, and O (dQ, dK, dV) lives there between the key (query) tiles.
//
// Kernels, 128 threads (4 warps) each; a product's 16×16 output fragments are dealt to the
// warps in turn, each one's k loop in order. Any hd ≤ 128: the tiles' rows in shared memory
// are 128 long whatever hd is (so every fragment pointer is 32-byte aligned), the columns
// from hd to the next multiple of 16 zeros; partial query and key tiles are zero-filled and
// masked.
// - fusedAttnForwardKernel: one CTA per (sample, head, 32 queries), over 32-key tiles.
// - fusedAttnBackQKernel: one CTA per (stream, sample, head, 16 queries): a first pass over
//   the key tiles for D = Σ_j P·dP (= dO·O), a second for dS and dQ; writes D and the gate's
//   row partials for the next kernels.
// - fusedAttnBackKVKernel: one CTA per (stream, sample, KV head, 16 keys): dK and dV over the
//   group's query heads in head order and their 32-query tiles in order.
// Deterministic: no atomics; every sum has a fixed order (the per-row sums by one thread in
// key order, the gate's partials reduced by layer_kernels.cu's attnGateGradKernel).
//
// The WMMA bodies need sm_80: on sm_75 the kernels compile empty and the host refuses the
// device before any launch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "attention_fused.h"
#include "cuda_internal.h"

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
#define CG_FUSED_ATTENTION 1
#endif

namespace craftgrad {
namespace cuda {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kThreads = 128;  // 4 warps
constexpr int kFrag = 16;      // the WMMA shape: 16×16×16
constexpr int kLd = 128;       // row length of the head-dimension tiles (hd ≤ 128)
constexpr int kFwdQ = 32;  // forward: queries per CTA
constexpr int kDqQ = 16;   // dQ: queries per CTA
constexpr int kKvK = 16;   // dK, dV: keys per CTA
#ifdef CG_FUSED_ATTENTION
constexpr int kWarps = kThreads / 32;
constexpr int kFwdK = 32;  // forward: keys per tile
constexpr int kDqK = 32;   // dQ: keys per tile
constexpr int kKvQ = 32;   // dK, dV: queries per tile
#endif

struct FusedDims {
  long long B, T, Tk, M, Mk, heads, kvHeads, hd, hdp, qD, kvD;
  long long g0, g1;  // the gated keys [g0, g1); g0 == g1 without a gate
  const float* gate;
  float scale;
  bool causal;
};

#ifdef CG_FUSED_ATTENTION
namespace wmma = nvcuda::wmma;

__device__ inline bool keyValid(const FusedDims& s, long long i, long long j) {
  return i < s.T && j < s.Tk && (!s.causal || j <= i);
}
__device__ inline bool gatedKey(const FusedDims& s, long long j) { return j >= s.g0 && j < s.g1; }
// t = float(tanh(double(g))), as layer_kernels.cu's; 1 without a gate.
__device__ inline float gateFactor(const float* gate) {
  return gate ? static_cast<float>(tanh(static_cast<double>(*gate))) : 1.0f;
}
// The probability of a score s in a row of max m and 1/sum inv (the fp32 path's operations).
__device__ inline float probability(float s, float m, float inv) { return __fmul_rn(expf(__fsub_rn(s, m)), inv); }

// dst (rows × kLd bf16) = bf16(src rows [0, valid) × columns [0, hd)), zero to rows × hdp.
__device__ void loadTile(bf16* dst, const float* src, long long ld, int rows, long long valid, int hd, int hdp) {
  for (int e = threadIdx.x; e < rows * hdp; e += kThreads) {
    const int r = e / hdp, c = e % hdp;
    dst[r * kLd + c] = __float2bfloat16_rn(r < valid && c < hd ? src[r * ld + c] : 0.0f);
  }
}

__device__ void zeroTile(float* dst, int rows, int hdp) {
  for (int e = threadIdx.x; e < rows * hdp; e += kThreads) dst[(e / hdp) * kLd + e % hdp] = 0.0f;
}

template <class Layout>
__device__ inline const bf16* aTile(const bf16* A, int lda, int mi, int ki);
template <>
__device__ inline const bf16* aTile<wmma::row_major>(const bf16* A, int lda, int mi, int ki) {
  return A + mi * kFrag * lda + ki * kFrag;
}
template <>
__device__ inline const bf16* aTile<wmma::col_major>(const bf16* A, int lda, int mi, int ki) {
  return A + ki * kFrag * lda + mi * kFrag;
}
template <class Layout>
__device__ inline const bf16* bTile(const bf16* B, int ldb, int ki, int ni);
template <>
__device__ inline const bf16* bTile<wmma::row_major>(const bf16* B, int ldb, int ki, int ni) {
  return B + ki * kFrag * ldb + ni * kFrag;
}
template <>
__device__ inline const bf16* bTile<wmma::col_major>(const bf16* B, int ldb, int ki, int ni) {
  return B + ni * kFrag * ldb + ki * kFrag;
}

// C (mT·16 × nT·16 fp32, row-major, ldc) = (accumulate ? C : 0) + A·B with A (mT·16 × kT·16)
// and B (kT·16 × nT·16) bf16 in shared memory, each in the layout given (row_major: element
// (r, c) at p[r·ld + c]; col_major: at p[c·ld + r]). Output fragment f goes to warp f mod 4;
// its k tiles in order. Called by every thread of the CTA (warp-uniform loops).
template <class LayoutA, class LayoutB>
__device__ void tileProduct(float* C, int ldc, const bf16* A, int lda, const bf16* B, int ldb, int mT, int nT, int kT,
                            bool accumulate) {
  const int warp = static_cast<int>(threadIdx.x) / 32;
  for (int f = warp; f < mT * nT; f += kWarps) {
    const int mi = f / nT, ni = f % nT;
    float* cp = C + mi * kFrag * ldc + ni * kFrag;
    wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float> acc;
    if (accumulate) wmma::load_matrix_sync(acc, cp, ldc, wmma::mem_row_major);
    else wmma::fill_fragment(acc, 0.0f);
    for (int ki = 0; ki < kT; ++ki) {
      wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, bf16, LayoutA> a;
      wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, bf16, LayoutB> b;
      wmma::load_matrix_sync(a, aTile<LayoutA>(A, lda, mi, ki), lda);
      wmma::load_matrix_sync(b, bTile<LayoutB>(B, ldb, ki, ni), ldb);
      wmma::mma_sync(acc, a, b, acc);
    }
    wmma::store_matrix_sync(cp, acc, ldc, wmma::mem_row_major);
  }
}
#endif  // CG_FUSED_ATTENTION

// Forward: one CTA per (sample b, head h, query tile of kFwdQ rows), CTA index
// (b·heads + h)·qTiles + tile. Per key tile: S = Q·Kᵀ (fp32), then thread r (one per query
// row) takes the row's scores s = scale·S (·t on gated keys), the new running max m', the
// factor α = exp(m − m'), the unnormalised P̃ = exp(s − m') (to bf16 for the product) and
// l = α·l + Σ P̃ (double); then O = α·O + P̃·V. At the end Att = O / l, rowMax = m, rowSum = l.
__global__ void __launch_bounds__(kThreads) fusedAttnForwardKernel(const float* Q, const float* K, const float* V,
                                                                   float* Att, float* rowMax, float* rowSum,
                                                                   FusedDims s) {
#ifdef CG_FUSED_ATTENTION
  __shared__ __align__(32) bf16 Qs[kFwdQ * kLd];
  __shared__ __align__(32) bf16 Ks[kFwdK * kLd];
  __shared__ __align__(32) bf16 Vs[kFwdK * kLd];
  __shared__ __align__(32) bf16 Ps[kFwdQ * kFwdK];
  __shared__ __align__(32) float Ss[kFwdQ * kFwdK];
  __shared__ __align__(32) float Os[kFwdQ * kLd];
  __shared__ float alphaS[kFwdQ], lS[kFwdQ];
  const long long qTiles = (s.T + kFwdQ - 1) / kFwdQ, cta = blockIdx.x;
  const long long q0 = (cta % qTiles) * kFwdQ, h = (cta / qTiles) % s.heads, b = cta / (qTiles * s.heads);
  const long long g = h / (s.heads / s.kvHeads);
  const int hd = static_cast<int>(s.hd), hdp = static_cast<int>(s.hdp), kT = hdp / kFrag;
  const float t = gateFactor(s.gate);
  loadTile(Qs, Q + (b * s.T + q0) * s.qD + h * s.hd, s.qD, kFwdQ, s.T - q0, hd, hdp);
  zeroTile(Os, kFwdQ, hdp);
  const int r = static_cast<int>(threadIdx.x);
  const long long i = q0 + r;
  float m = -INFINITY;  // row r's running max and sum (thread r < kFwdQ)
  double l = 0;
  const long long kEnd = s.causal ? (q0 + kFwdQ < s.T ? q0 + kFwdQ : s.T) : s.Tk;
  for (long long k0 = 0; k0 < kEnd; k0 += kFwdK) {
    __syncthreads();  // the previous tile's K, V and P are read
    loadTile(Ks, K + (b * s.Tk + k0) * s.kvD + g * s.hd, s.kvD, kFwdK, s.Tk - k0, hd, hdp);
    loadTile(Vs, V + (b * s.Tk + k0) * s.kvD + g * s.hd, s.kvD, kFwdK, s.Tk - k0, hd, hdp);
    __syncthreads();
    tileProduct<wmma::row_major, wmma::col_major>(Ss, kFwdK, Qs, kLd, Ks, kLd, kFwdQ / kFrag, kFwdK / kFrag, kT, false);
    __syncthreads();
    if (r < kFwdQ) {
      float* row = Ss + r * kFwdK;
      float tileMax = -INFINITY;
      for (int c = 0; c < kFwdK; ++c) {
        const long long j = k0 + c;
        if (!keyValid(s, i, j)) continue;
        float v = __fmul_rn(s.scale, row[c]);
        if (gatedKey(s, j)) v = __fmul_rn(v, t);
        row[c] = v;
        tileMax = v > tileMax ? v : tileMax;
      }
      const float mNew = tileMax > m ? tileMax : m;
      const float alpha = m == -INFINITY ? 0.0f : expf(__fsub_rn(m, mNew));
      double sum = 0;
      for (int c = 0; c < kFwdK; ++c) {
        const float p = keyValid(s, i, k0 + c) ? expf(__fsub_rn(row[c], mNew)) : 0.0f;
        Ps[r * kFwdK + c] = __float2bfloat16_rn(p);
        sum += static_cast<double>(p);
      }
      l = l * static_cast<double>(alpha) + sum;
      m = mNew;
      alphaS[r] = alpha;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < kFwdQ * hdp; e += kThreads) {
      float& o = Os[(e / hdp) * kLd + e % hdp];
      o = __fmul_rn(o, alphaS[e / hdp]);
    }
    __syncthreads();
    tileProduct<wmma::row_major, wmma::row_major>(Os, kLd, Ps, kFwdK, Vs, kLd, kFwdQ / kFrag, kT, kFwdK / kFrag, true);
  }
  if (r < kFwdQ) {
    lS[r] = static_cast<float>(l);
    if (i < s.T) {
      rowMax[(b * s.heads + h) * s.T + i] = m;
      rowSum[(b * s.heads + h) * s.T + i] = static_cast<float>(l);
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < kFwdQ * hd; e += kThreads) {
    const int rr = e / hd, c = e % hd;
    if (q0 + rr < s.T) Att[(b * s.T + q0 + rr) * s.qD + h * s.hd + c] = __fdiv_rn(Os[rr * kLd + c], lS[rr]);
  }
#endif
}

// dQ: one CTA per (stream st, sample b, head h, query tile of kDqQ rows), CTA index
// ((st·B + b)·heads + h)·qTiles + tile. P = exp(s − rowMax)·(1/rowSum) from the kept
// statistics, dP = dO·Vᵀ; pass 1: D = Σ_j P·dP (double, key order, by the row's thread);
// pass 2: dS = P·(dP − D), the gate's row partial Σ dS·a over the gated keys (double, key
// order), dS·t on the gated keys to bf16, dQ += dS·K; at the end dQ = scale·dQ. Writes D and
// the partials at ((st·B + b)·heads + h)·T + i.
__global__ void __launch_bounds__(kThreads) fusedAttnBackQKernel(const float* Q, const float* K, const float* V,
                                                                 const float* rowMax, const float* rowSum,
                                                                 const float* dAtt, float* dQ, float* Dout,
                                                                 double* rowGate, FusedDims s) {
#ifdef CG_FUSED_ATTENTION
  __shared__ __align__(32) bf16 Qs[kDqQ * kLd];
  __shared__ __align__(32) bf16 dOs[kDqQ * kLd];
  __shared__ __align__(32) bf16 Ks[kDqK * kLd];
  __shared__ __align__(32) bf16 Vs[kDqK * kLd];
  __shared__ __align__(32) bf16 dSs[kDqQ * kDqK];
  __shared__ __align__(32) float Ss[kDqQ * kDqK];
  __shared__ __align__(32) float dPs[kDqQ * kDqK];
  __shared__ __align__(32) float dQs[kDqQ * kLd];
  __shared__ float mS[kDqQ], invS[kDqQ], DS[kDqQ];
  const long long qTiles = (s.T + kDqQ - 1) / kDqQ, cta = blockIdx.x;
  const long long q0 = (cta % qTiles) * kDqQ, h = (cta / qTiles) % s.heads;
  const long long sb = cta / (qTiles * s.heads), b = sb % s.B, st = sb / s.B;
  const long long g = h / (s.heads / s.kvHeads);
  const int hd = static_cast<int>(s.hd), hdp = static_cast<int>(s.hdp), kT = hdp / kFrag;
  const bool gated = s.g1 > s.g0;
  const float t = gateFactor(s.gate);
  loadTile(Qs, Q + (b * s.T + q0) * s.qD + h * s.hd, s.qD, kDqQ, s.T - q0, hd, hdp);
  loadTile(dOs, dAtt + (st * s.M + b * s.T + q0) * s.qD + h * s.hd, s.qD, kDqQ, s.T - q0, hd, hdp);
  zeroTile(dQs, kDqQ, hdp);
  const int r = static_cast<int>(threadIdx.x);
  if (r < kDqQ) {
    const bool valid = q0 + r < s.T;
    mS[r] = valid ? rowMax[(b * s.heads + h) * s.T + q0 + r] : 0.0f;
    invS[r] = valid ? __fdiv_rn(1.0f, rowSum[(b * s.heads + h) * s.T + q0 + r]) : 0.0f;
  }
  const long long kEnd = s.causal ? (q0 + kDqQ < s.T ? q0 + kDqQ : s.T) : s.Tk;
  double D = 0, gp = 0;  // row r's (thread r < kDqQ)
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1 && r < kDqQ) DS[r] = static_cast<float>(D);
    for (long long k0 = 0; k0 < kEnd; k0 += kDqK) {
      __syncthreads();  // the previous tile's K, V, dS and (pass 1) D are done with / written
      loadTile(Ks, K + (b * s.Tk + k0) * s.kvD + g * s.hd, s.kvD, kDqK, s.Tk - k0, hd, hdp);
      loadTile(Vs, V + (b * s.Tk + k0) * s.kvD + g * s.hd, s.kvD, kDqK, s.Tk - k0, hd, hdp);
      __syncthreads();
      tileProduct<wmma::row_major, wmma::col_major>(Ss, kDqK, Qs, kLd, Ks, kLd, kDqQ / kFrag, kDqK / kFrag, kT, false);
      tileProduct<wmma::row_major, wmma::col_major>(dPs, kDqK, dOs, kLd, Vs, kLd, kDqQ / kFrag, kDqK / kFrag, kT, false);
      __syncthreads();
      for (int e = threadIdx.x; e < kDqQ * kDqK; e += kThreads) {
        const int rr = e / kDqK;
        const long long i = q0 + rr, j = k0 + e % kDqK;
        const bool valid = keyValid(s, i, j), gk = gatedKey(s, j);
        const float a = valid ? __fmul_rn(s.scale, Ss[e]) : 0.0f;
        const float p = valid ? probability(gk ? __fmul_rn(a, t) : a, mS[rr], invS[rr]) : 0.0f;
        if (pass == 0) {
          Ss[e] = p;
        } else {
          const float x = valid ? __fmul_rn(p, __fsub_rn(dPs[e], DS[rr])) : 0.0f;
          Ss[e] = a;
          dPs[e] = x;
          dSs[e] = __float2bfloat16_rn(gk ? __fmul_rn(x, t) : x);
        }
      }
      __syncthreads();
      if (pass == 0) {
        if (r < kDqQ)
          for (int c = 0; c < kDqK; ++c) D += static_cast<double>(Ss[r * kDqK + c]) * static_cast<double>(dPs[r * kDqK + c]);
      } else {
        if (gated && r < kDqQ)
          for (int c = 0; c < kDqK; ++c)
            if (gatedKey(s, k0 + c)) gp += static_cast<double>(dPs[r * kDqK + c]) * static_cast<double>(Ss[r * kDqK + c]);
        tileProduct<wmma::row_major, wmma::row_major>(dQs, kLd, dSs, kDqK, Ks, kLd, kDqQ / kFrag, kT, kDqK / kFrag, true);
      }
    }
  }
  __syncthreads();
  const long long rowBase = ((st * s.B + b) * s.heads + h) * s.T + q0;
  if (r < kDqQ && q0 + r < s.T) {
    Dout[rowBase + r] = DS[r];
    if (gated) rowGate[rowBase + r] = gp;
  }
  for (int e = threadIdx.x; e < kDqQ * hd; e += kThreads) {
    const int rr = e / hd, c = e % hd;
    if (q0 + rr < s.T) dQ[(st * s.M + b * s.T + q0 + rr) * s.qD + h * s.hd + c] = __fmul_rn(s.scale, dQs[rr * kLd + c]);
  }
#endif
}

// dK, dV: one CTA per (stream st, sample b, KV head g, key tile of kKvK rows), CTA index
// ((st·B + b)·kvHeads + g)·kTiles + tile. Over the group's query heads in head order and,
// for each, the query tiles that can read the keys (from the tile holding key k0 when causal)
// in order: P and dS as the dQ kernel's (D from it), dV += Pᵀ·dO, dK += dSᵀ·Q (bf16 inputs,
// fp32 accumulators in shared memory); at the end dK = scale·dK.
__global__ void __launch_bounds__(kThreads) fusedAttnBackKVKernel(const float* Q, const float* K, const float* V,
                                                                  const float* rowMax, const float* rowSum,
                                                                  const float* dAtt, const float* Din, float* dK,
                                                                  float* dV, FusedDims s) {
#ifdef CG_FUSED_ATTENTION
  __shared__ __align__(32) bf16 Ks[kKvK * kLd];
  __shared__ __align__(32) bf16 Vs[kKvK * kLd];
  __shared__ __align__(32) bf16 Qs[kKvQ * kLd];
  __shared__ __align__(32) bf16 dOs[kKvQ * kLd];
  __shared__ __align__(32) bf16 Ps[kKvQ * kKvK];
  __shared__ __align__(32) bf16 dSs[kKvQ * kKvK];
  __shared__ __align__(32) float Ss[kKvQ * kKvK];
  __shared__ __align__(32) float dPs[kKvQ * kKvK];
  __shared__ __align__(32) float dKs[kKvK * kLd];
  __shared__ __align__(32) float dVs[kKvK * kLd];
  __shared__ float mS[kKvQ], invS[kKvQ], DS[kKvQ];
  const long long kTiles = (s.Tk + kKvK - 1) / kKvK, cta = blockIdx.x;
  const long long k0 = (cta % kTiles) * kKvK, g = (cta / kTiles) % s.kvHeads;
  const long long sb = cta / (kTiles * s.kvHeads), b = sb % s.B, st = sb / s.B;
  const long long group = s.heads / s.kvHeads;
  const int hd = static_cast<int>(s.hd), hdp = static_cast<int>(s.hdp), kT = hdp / kFrag;
  const float t = gateFactor(s.gate);
  loadTile(Ks, K + (b * s.Tk + k0) * s.kvD + g * s.hd, s.kvD, kKvK, s.Tk - k0, hd, hdp);
  loadTile(Vs, V + (b * s.Tk + k0) * s.kvD + g * s.hd, s.kvD, kKvK, s.Tk - k0, hd, hdp);
  zeroTile(dKs, kKvK, hdp);
  zeroTile(dVs, kKvK, hdp);
  const int r = static_cast<int>(threadIdx.x);
  const long long qStart = s.causal ? (k0 / kKvQ) * kKvQ : 0;
  for (long long h = g * group; h < (g + 1) * group; ++h) {
    for (long long q0 = qStart; q0 < s.T; q0 += kKvQ) {
      __syncthreads();  // the previous tile's Q, dO, P, dS are read
      loadTile(Qs, Q + (b * s.T + q0) * s.qD + h * s.hd, s.qD, kKvQ, s.T - q0, hd, hdp);
      loadTile(dOs, dAtt + (st * s.M + b * s.T + q0) * s.qD + h * s.hd, s.qD, kKvQ, s.T - q0, hd, hdp);
      if (r < kKvQ) {
        const bool valid = q0 + r < s.T;
        const long long row = (b * s.heads + h) * s.T + q0 + r;
        mS[r] = valid ? rowMax[row] : 0.0f;
        invS[r] = valid ? __fdiv_rn(1.0f, rowSum[row]) : 0.0f;
        DS[r] = valid ? Din[((st * s.B + b) * s.heads + h) * s.T + q0 + r] : 0.0f;
      }
      __syncthreads();
      tileProduct<wmma::row_major, wmma::col_major>(Ss, kKvK, Qs, kLd, Ks, kLd, kKvQ / kFrag, kKvK / kFrag, kT, false);
      tileProduct<wmma::row_major, wmma::col_major>(dPs, kKvK, dOs, kLd, Vs, kLd, kKvQ / kFrag, kKvK / kFrag, kT, false);
      __syncthreads();
      for (int e = threadIdx.x; e < kKvQ * kKvK; e += kThreads) {
        const int rr = e / kKvK;
        const long long i = q0 + rr, j = k0 + e % kKvK;
        const bool valid = keyValid(s, i, j), gk = gatedKey(s, j);
        const float a = valid ? __fmul_rn(s.scale, Ss[e]) : 0.0f;
        const float p = valid ? probability(gk ? __fmul_rn(a, t) : a, mS[rr], invS[rr]) : 0.0f;
        const float x = valid ? __fmul_rn(p, __fsub_rn(dPs[e], DS[rr])) : 0.0f;
        Ps[e] = __float2bfloat16_rn(p);
        dSs[e] = __float2bfloat16_rn(gk ? __fmul_rn(x, t) : x);
      }
      __syncthreads();
      // Pᵀ and dSᵀ: the kKvQ × kKvK tiles read column-major (element (j, i) at [i·kKvK + j]).
      tileProduct<wmma::col_major, wmma::row_major>(dVs, kLd, Ps, kKvK, dOs, kLd, kKvK / kFrag, kT, kKvQ / kFrag, true);
      tileProduct<wmma::col_major, wmma::row_major>(dKs, kLd, dSs, kKvK, Qs, kLd, kKvK / kFrag, kT, kKvQ / kFrag, true);
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < kKvK * hd; e += kThreads) {
    const int rr = e / hd, c = e % hd;
    if (k0 + rr >= s.Tk) continue;
    const long long at = (st * s.Mk + b * s.Tk + k0 + rr) * s.kvD + g * s.hd + c;
    dV[at] = dVs[rr * kLd + c];
    dK[at] = __fmul_rn(s.scale, dKs[rr * kLd + c]);
  }
#endif
}

// ---- host ----

FusedDims fusedDims(const AttentionShape& s) {
  const long long Tk = s.keys();
  const bool gated = s.gated();
  return FusedDims{s.B, s.T, Tk, s.B * s.T, s.B * Tk, s.heads, s.kvHeads, s.hd, (s.hd + kFrag - 1) / kFrag * kFrag,
                   s.qDim(), s.kvDim(), gated ? s.gateBegin : 0, gated ? s.gateEnd : 0, gated ? s.gate : nullptr,
                   s.scale, s.causal};
}

// What the fused path can run, else CudaError: hd, the device's compute capability.
void checkFused(int device, const AttentionShape& s) {
  if (s.hd < 1 || s.hd > kLd)
    throw CudaError("craftgrad: the bf16 attention needs a head dimension from 1 to 128, got " + std::to_string(s.hd));
  int major = 0;
  CG_CUDA(device, cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  if (major < 8)
    throw CudaError("craftgrad: the bf16 attention needs a GPU of compute capability 8.0 or newer (device " +
                    std::to_string(device) + " is " + std::to_string(major) + ".x); use precision 'fp32'");
}

unsigned ctaGrid(long long ctas) {
  if (ctas > 2147483647LL) throw CudaError("craftgrad: internal error: a fused attention launch of over 2^31 - 1 CTAs");
  return static_cast<unsigned>(ctas);
}

int64_t rowGateOffset(const AttentionShape& s, int streams) { return (streams * s.rows() + 1) & ~int64_t{1}; }

}  // namespace

int64_t fusedAttentionScratch(const AttentionShape& s, int streams) {
  if (streams <= 0) return 0;
  return rowGateOffset(s, streams) + 2 * static_cast<int64_t>(streams) * s.rows();
}

void fusedAttentionForward(int device, cudaStream_t stream, const AttentionShape& s, const float* Q, const float* K,
                           const float* V, float* Att, float* rowMax, float* rowSum) {
  if (s.rows() == 0) return;
  checkFused(device, s);
  const FusedDims d = fusedDims(s);
  const unsigned ctas = ctaGrid(s.B * s.heads * ((s.T + kFwdQ - 1) / kFwdQ));
  fusedAttnForwardKernel<<<ctas, kThreads, 0, stream>>>(Q, K, V, Att, rowMax, rowSum, d);
  CG_CUDA(device, cudaGetLastError());
}

double* fusedAttentionBackward(int device, cudaStream_t stream, const AttentionShape& s, int streams, const float* Q,
                               const float* K, const float* V, const float* rowMax, const float* rowSum,
                               const float* dAtt, float* dQ, float* dK, float* dV, float* scratch) {
  if (s.rows() == 0 || streams <= 0) return nullptr;
  checkFused(device, s);
  if (reinterpret_cast<uintptr_t>(scratch) % alignof(double) != 0)
    throw CudaError("craftgrad: internal error: the attention's scratch is not 8-byte aligned");
  const FusedDims d = fusedDims(s);
  float* D = scratch;  // streams·rows
  double* rowGate = reinterpret_cast<double*>(scratch + rowGateOffset(s, streams));  // streams·rows
  const unsigned qCtas = ctaGrid(streams * s.B * s.heads * ((s.T + kDqQ - 1) / kDqQ));
  fusedAttnBackQKernel<<<qCtas, kThreads, 0, stream>>>(Q, K, V, rowMax, rowSum, dAtt, dQ, D, rowGate, d);
  CG_CUDA(device, cudaGetLastError());
  const unsigned kvCtas = ctaGrid(streams * s.B * s.kvHeads * ((d.Tk + kKvK - 1) / kKvK));
  fusedAttnBackKVKernel<<<kvCtas, kThreads, 0, stream>>>(Q, K, V, rowMax, rowSum, dAtt, D, dK, dV, d);
  CG_CUDA(device, cudaGetLastError());
  return rowGate;
}

}  // namespace cuda
}  // namespace craftgrad
