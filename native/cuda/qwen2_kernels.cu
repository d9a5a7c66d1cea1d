// The Qwen2 policy on a CUDA device (ARCHITECTURE.md §4b): the CPU backend's algorithm
// (native/cpu/qwen2_cpu.cc, qwen2_layer.cc, qwen2_attention.cc) step for step. See
// qwen2_cuda.h for the numeric contract. Kernels are simple first: one CTA per row for
// RMSNorm and softmax rows (double sums in a fixed tree), one thread per element
// elsewhere, and the model's matrix product (gemm_cuda.h) for every product but the
// attention's per-row dot products. Attention keeps one (T × T) probability matrix per
// (sample, head) of the layer being computed (and, in the backward, one dS matrix per
// stream) in scratch; the forward keeps only each row's max and sum per layer, as the CPU.
#include <cuda_runtime.h>

#pragma nv_diag_suppress 20014

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include "cuda_internal.h"
#include "dev_math.cuh"
#include "device_scratch.h"
#include "gemm_cuda.h"
#include "qwen2_cuda.h"

namespace craftgrad {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRowThreads = 128;  // CTA size of the per-row kernels (a power of two)
inline unsigned blocksFor(long long n) {
  return static_cast<unsigned>(std::max<long long>(1, (n + kThreads - 1) / kThreads));
}
#define CG_GRID_LOOP(i, n) \
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<long long>(gridDim.x) * blockDim.x)

__device__ inline float dsigmoid(float x) { return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x))); }

// Σ over the CTA of v (kRowThreads threads), a fixed tree; every thread gets the sum.
__device__ double blockSum(double v, double* part) {
  part[threadIdx.x] = v;
  __syncthreads();
  for (int w = kRowThreads / 2; w >= 1; w /= 2) {
    if (static_cast<int>(threadIdx.x) < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  const double s = part[0];
  __syncthreads();
  return s;
}

// max over the CTA (NaN-free rows: the CPU's `x > m ? x : m`).
__device__ float blockMax(float v, float* part) {
  part[threadIdx.x] = v;
  __syncthreads();
  for (int w = kRowThreads / 2; w >= 1; w /= 2) {
    if (static_cast<int>(threadIdx.x) < w) {
      const float o = part[threadIdx.x + w];
      part[threadIdx.x] = o > part[threadIdx.x] ? o : part[threadIdx.x];
    }
    __syncthreads();
  }
  const float m = part[0];
  __syncthreads();
  return m;
}

// ---- the sequence and the element-wise kernels ----
// H (B, T, D) = [prefix; embed(ids); queries].
__global__ void __launch_bounds__(kThreads) embedKernel(float* H, const float* prefix, const int* ids, const float* embed,
                                                        const float* queries, long long B, long long T, long long P,
                                                        long long S, long long D) {
  CG_GRID_LOOP(idx, B * T * D) {
    const long long d = idx % D, t = (idx / D) % T, b = idx / (T * D);
    float v;
    if (t < P) v = prefix[(b * P + t) * D + d];
    else if (t < P + S) v = embed[static_cast<long long>(ids[b * S + (t - P)]) * D + d];
    else v = queries[(t - P - S) * D + d];
    H[idx] = v;
  }
}

// Y[i, j] += b[j].
__global__ void __launch_bounds__(kThreads) addBiasKernel(float* Y, const float* b, long long rows, long long cols) {
  CG_GRID_LOOP(i, rows * cols) Y[i] = __fadd_rn(Y[i], b[i % cols]);
}

// Y += X.
__global__ void __launch_bounds__(kThreads) addKernel(float* Y, const float* X, long long n) {
  CG_GRID_LOOP(i, n) Y[i] = __fadd_rn(Y[i], X[i]);
}

// Act = silu(Gt) ⊙ Up.
__global__ void __launch_bounds__(kThreads) swigluKernel(const float* Gt, const float* Up, float* Act, long long n) {
  CG_GRID_LOOP(i, n) Act[i] = __fmul_rn(__fmul_rn(Gt[i], dsigmoid(Gt[i])), Up[i]);
}

// SwiGLU backward over `rows` (streams·M) rows of I: dAct in (d Act), out d gate; dUp out.
__global__ void __launch_bounds__(kThreads) swigluBackKernel(const float* Gt, const float* Up, float* dAct, float* dUp,
                                                             long long n, long long MI) {
  CG_GRID_LOOP(i, n) {
    const long long k = i % MI;
    const float g = Gt[k], sg = dsigmoid(g), da = dAct[i];
    dUp[i] = __fmul_rn(da, __fmul_rn(g, sg));
    dAct[i] = __fmul_rn(__fmul_rn(da, Up[k]), __fmul_rn(sg, __fadd_rn(1.0f, __fmul_rn(g, __fsub_rn(1.0f, sg)))));
  }
}

// Rotary embedding in place on `width` columns (heads of hd) of `rows` rows, position row mod T;
// inverse: the transpose.
__global__ void __launch_bounds__(kThreads) ropeKernel(float* X, const float* cosT, const float* sinT, long long rows,
                                                       long long width, long long hd, long long T, bool inverse) {
  const long long half = hd / 2, heads = width / hd;
  CG_GRID_LOOP(idx, rows * heads * half) {
    const long long j = idx % half, h = (idx / half) % heads, i = idx / (half * heads);
    const float cs = cosT[(i % T) * half + j], sn = sinT[(i % T) * half + j];
    const float sj = inverse ? -sn : sn;
    float* x = X + i * width + h * hd;
    const float a = x[j], b = x[j + half];
    x[j] = __fsub_rn(__fmul_rn(a, cs), __fmul_rn(b, sj));
    x[j + half] = __fadd_rn(__fmul_rn(b, cs), __fmul_rn(a, sj));
  }
}

// ---- RMSNorm: one CTA per row ----
__global__ void __launch_bounds__(kRowThreads) rmsNormKernel(const float* X, const float* w, float* Y, float* rstd,
                                                             long long D, float eps) {
  __shared__ double part[kRowThreads];
  const long long i = blockIdx.x;
  const float* x = X + i * D;
  double ss = 0;
  for (long long j = threadIdx.x; j < D; j += kRowThreads) ss += static_cast<double>(x[j]) * x[j];
  ss = blockSum(ss, part);
  const float var = static_cast<float>(ss / static_cast<double>(D));
  const float r = static_cast<float>(1.0 / sqrt(static_cast<double>(__fadd_rn(var, eps))));
  if (threadIdx.x == 0) rstd[i] = r;
  for (long long j = threadIdx.x; j < D; j += kRowThreads) Y[i * D + j] = __fmul_rn(w[j], __fmul_rn(x[j], r));
}

// dX += RMSNorm backward of dY, one CTA per row i of `rows`; row i uses X and rstd of row i mod M.
__global__ void __launch_bounds__(kRowThreads) rmsNormBackKernel(const float* dY, const float* X, const float* rstd,
                                                                 const float* w, float* dX, long long M, long long D) {
  __shared__ double part[kRowThreads];
  const long long i = blockIdx.x;
  const float* x = X + (i % M) * D;
  const float* dy = dY + i * D;
  const double r = rstd[i % M];
  double dot = 0;
  for (long long j = threadIdx.x; j < D; j += kRowThreads) dot += static_cast<double>(w[j]) * dy[j] * x[j];
  dot = blockSum(dot, part);
  const double k = dot * r * r * r / static_cast<double>(D);
  for (long long j = threadIdx.x; j < D; j += kRowThreads)
    dX[i * D + j] = __fadd_rn(dX[i * D + j], static_cast<float>(r * w[j] * dy[j] - k * x[j]));
}

// ---- attention ----
struct AttnDims {
  long long B, T, M, heads, kvHeads, hd, qD, kvD;
  float scale;
};

// One CTA per (sample, head, query row i): the probabilities P[(b·heads + h)·T + i][0..T)
// (zero above the diagonal). !recompute: from the scores, keeping the row's max and sum;
// recompute: from the kept max and sum.
__global__ void __launch_bounds__(kRowThreads) attnProbsKernel(const float* Q, const float* K, float* rowMax,
                                                               float* rowSum, float* P, AttnDims s, bool recompute) {
  __shared__ double part[kRowThreads];
  __shared__ float fpart[kRowThreads];
  const long long row = blockIdx.x, i = row % s.T, h = (row / s.T) % s.heads, b = row / (s.T * s.heads);
  const long long group = s.heads / s.kvHeads;
  const float* q = Q + (b * s.T + i) * s.qD + h * s.hd;
  const float* k = K + b * s.T * s.kvD + (h / group) * s.hd;
  float* p = P + row * s.T;
  float lmax = -INFINITY;
  for (long long j = threadIdx.x; j <= i; j += kRowThreads) {
    float acc = 0.0f;
    for (long long d = 0; d < s.hd; ++d) acc = __fmaf_rn(q[d], k[j * s.kvD + d], acc);
    const float v = __fmul_rn(s.scale, acc);
    p[j] = v;
    lmax = v > lmax ? v : lmax;
  }
  float m, sum;
  if (recompute) {
    m = rowMax[row];
    sum = rowSum[row];
  } else {
    m = blockMax(lmax, fpart);
    double z = 0;
    for (long long j = threadIdx.x; j <= i; j += kRowThreads) z += static_cast<double>(expf(__fsub_rn(p[j], m)));
    sum = static_cast<float>(blockSum(z, part));
    if (threadIdx.x == 0) {
      rowMax[row] = m;
      rowSum[row] = sum;
    }
  }
  const float inv = __fdiv_rn(1.0f, sum);
  for (long long j = threadIdx.x; j < s.T; j += kRowThreads) p[j] = j <= i ? __fmul_rn(expf(__fsub_rn(p[j], m)), inv) : 0.0f;
}

// Att[b, i, h·hd + d] = Σ_{j ≤ i} P[i, j]·V[b, j, g·hd + d] in j order; one CTA per (b, h, i).
__global__ void __launch_bounds__(kRowThreads) attnOutKernel(const float* P, const float* V, float* Att, AttnDims s) {
  const long long row = blockIdx.x, i = row % s.T, h = (row / s.T) % s.heads, b = row / (s.T * s.heads);
  const long long g = h / (s.heads / s.kvHeads);
  const float* p = P + row * s.T;
  const float* v = V + b * s.T * s.kvD + g * s.hd;
  for (long long d = threadIdx.x; d < s.hd; d += kRowThreads) {
    float acc = 0.0f;
    for (long long j = 0; j <= i; ++j) acc = __fmaf_rn(p[j], v[j * s.kvD + d], acc);
    Att[(b * s.T + i) * s.qD + h * s.hd + d] = acc;
  }
}

// One CTA per (stream, sample, head, query row i): dP = dO·Vᵀ, dS = P ⊙ (dP − Σ P·dP) into
// dS[((st·B + b)·heads + h)·T + i][0..T), then dQ_i = scale·Σ_j dS_ij·K_j.
__global__ void __launch_bounds__(kRowThreads) attnBackRowKernel(const float* P, const float* dAtt, const float* K,
                                                                 const float* V, float* dS, float* dQ, AttnDims s) {
  __shared__ double part[kRowThreads];
  const long long row = blockIdx.x, i = row % s.T, h = (row / s.T) % s.heads;
  const long long sb = row / (s.T * s.heads), b = sb % s.B, st = sb / s.B;
  const long long g = h / (s.heads / s.kvHeads);
  const float* p = P + ((b * s.heads + h) * s.T + i) * s.T;
  const float* dO = dAtt + (st * s.M + b * s.T + i) * s.qD + h * s.hd;
  const float* v = V + b * s.T * s.kvD + g * s.hd;
  const float* k = K + b * s.T * s.kvD + g * s.hd;
  float* ds = dS + row * s.T;
  double dot = 0;
  for (long long j = threadIdx.x; j <= i; j += kRowThreads) {
    float acc = 0.0f;
    for (long long d = 0; d < s.hd; ++d) acc = __fmaf_rn(dO[d], v[j * s.kvD + d], acc);
    ds[j] = acc;
    dot += static_cast<double>(p[j]) * acc;
  }
  const float df = static_cast<float>(blockSum(dot, part));
  for (long long j = threadIdx.x; j < s.T; j += kRowThreads) ds[j] = j <= i ? __fmul_rn(p[j], __fsub_rn(ds[j], df)) : 0.0f;
  __syncthreads();  // the row of dS is read by every thread below
  for (long long d = threadIdx.x; d < s.hd; d += kRowThreads) {
    float acc = 0.0f;
    for (long long j = 0; j <= i; ++j) acc = __fmaf_rn(ds[j], k[j * s.kvD + d], acc);
    dQ[(st * s.M + b * s.T + i) * s.qD + h * s.hd + d] = __fmul_rn(s.scale, acc);
  }
}

// One CTA per (stream, sample, KV head, key row j): over the group's query heads in head
// order, dV_j = Σ_h Σ_{i ≥ j} P_ij·dO_i and dK_j = Σ_h scale·Σ_{i ≥ j} dS_ij·Q_i.
__global__ void __launch_bounds__(kRowThreads) attnBackKVKernel(const float* P, const float* dS, const float* dAtt,
                                                                const float* Q, float* dK, float* dV, AttnDims s) {
  const long long row = blockIdx.x, j = row % s.T, g = (row / s.T) % s.kvHeads;
  const long long sb = row / (s.T * s.kvHeads), b = sb % s.B, st = sb / s.B;
  const long long group = s.heads / s.kvHeads;
  for (long long d = threadIdx.x; d < s.hd; d += kRowThreads) {
    float dv = 0.0f, dk = 0.0f;
    for (long long h = g * group; h < (g + 1) * group; ++h) {
      const float* p = P + (b * s.heads + h) * s.T * s.T;
      const float* ds = dS + ((st * s.B + b) * s.heads + h) * s.T * s.T;
      float av = 0.0f, ak = 0.0f;
      for (long long i = j; i < s.T; ++i) {
        av = __fmaf_rn(p[i * s.T + j], dAtt[(st * s.M + b * s.T + i) * s.qD + h * s.hd + d], av);
        ak = __fmaf_rn(ds[i * s.T + j], Q[(b * s.T + i) * s.qD + h * s.hd + d], ak);
      }
      const float tk = __fmul_rn(s.scale, ak);
      if (h == g * group) dv = av, dk = tk;
      else dv = __fadd_rn(dv, av), dk = __fadd_rn(dk, tk);
    }
    dV[(st * s.M + b * s.T + j) * s.kvD + g * s.hd + d] = dv;
    dK[(st * s.M + b * s.T + j) * s.kvD + g * s.hd + d] = dk;
  }
}

// ---- pooling, the head, the losses, the gradient writes ----
// f[b, off + d] = pool of H[b, t0 .. t0+n, d]; one thread per (b, d), t in order (the CPU's).
__global__ void __launch_bounds__(kThreads) poolKernel(const float* H, float* f, long long off, int* argmax, long long B,
                                                       long long T, long long D, long long F, long long t0, long long n,
                                                       bool maxPool) {
  CG_GRID_LOOP(idx, B * D) {
    const long long b = idx / D, d = idx % D;
    const float* h = H + (b * T + t0) * D;
    if (!maxPool) {
      double sum = 0;
      for (long long t = 0; t < n; ++t) sum += h[t * D + d];
      f[b * F + off + d] = static_cast<float>(sum / static_cast<double>(n));
    } else {
      float best = h[d];
      int arg = 0;
      for (long long t = 1; t < n; ++t) {
        const float v = h[t * D + d];
        if (v > best || (isnan(v) && !isnan(best))) {
          best = v;
          arg = static_cast<int>(t);
        }
      }
      f[b * F + off + d] = best;
      argmax[idx] = arg;
    }
  }
}

// G (B, T, D) at tokens [t0, t0+n) += the pooling backward of dF[:, off .. off+D).
__global__ void __launch_bounds__(kThreads) poolBackKernel(const float* dF, long long off, const int* argmax, float* G,
                                                           long long B, long long T, long long D, long long F,
                                                           long long t0, long long n, bool maxPool) {
  if (!maxPool) {
    const float inv = __fdiv_rn(1.0f, static_cast<float>(n));
    CG_GRID_LOOP(idx, B * n * D) {
      const long long d = idx % D, t = (idx / D) % n, b = idx / (n * D);
      float* g = G + (b * T + t0 + t) * D + d;
      *g = __fadd_rn(*g, __fmul_rn(dF[b * F + off + d], inv));
    }
  } else {
    CG_GRID_LOOP(idx, B * D) {
      const long long b = idx / D, d = idx % D;
      float* g = G + (b * T + t0 + argmax[idx]) * D + d;
      *g = __fadd_rn(*g, dF[b * F + off + d]);
    }
  }
}

// dst[b, 0..QD) = src[(b·T + qTok)·D + 0..QD) (the query rows of each sample), or the reverse.
__global__ void __launch_bounds__(kThreads) queryRowsKernel(float* dst, const float* src, long long B, long long T,
                                                            long long D, long long qTok, long long QD, bool gather) {
  CG_GRID_LOOP(idx, B * QD) {
    const long long b = idx / QD, i = idx % QD, at = (b * T + qTok) * D + i;
    if (gather) dst[idx] = src[at];
    else dst[at] = src[idx];
  }
}

// Z[i, j] += b[j]; Gl = gelu(Z).
__global__ void __launch_bounds__(kThreads) biasGeluKernel(float* Z, const float* b, float* Gl, long long rows, long long cols) {
  CG_GRID_LOOP(i, rows * cols) {
    const float v = __fadd_rn(Z[i], b[i % cols]);
    Z[i] = v;
    Gl[i] = dgelu(v);
  }
}

// dZ *= gelu'(Z).
__global__ void __launch_bounds__(kThreads) geluScaleKernel(const float* Z, float* dZ, long long n) {
  CG_GRID_LOOP(i, n) dZ[i] = __fmul_rn(dZ[i], dgeluGrad(Z[i]));
}

// e = (O + b2) − y; absErr = |e| (double); dO = sign(e)/n.
__global__ void __launch_bounds__(kThreads) actionLossKernel(const float* O, const float* b2, const float* Y, float* dO,
                                                             double* absErr, long long rows, long long A) {
  const float inv = __fdiv_rn(1.0f, static_cast<float>(rows * A));
  CG_GRID_LOOP(i, rows * A) {
    const float e = __fsub_rn(__fadd_rn(O[i], b2[i % A]), Y[i]);
    absErr[i] = fabs(static_cast<double>(e));
    dO[i] = e > 0 ? inv : (e < 0 ? -inv : 0.0f);
  }
}

// sq = (f − f̃)² (double); dF = 2/n·(f − f̃) when dF is given.
__global__ void __launch_bounds__(kThreads) retentionKernel(const float* f, const float* fa, double* sq, float* dF, long long n) {
  const float k = __fdiv_rn(2.0f, static_cast<float>(n));
  CG_GRID_LOOP(i, n) {
    const double d = static_cast<double>(f[i]) - static_cast<double>(fa[i]);
    sq[i] = d * d;
    if (dF) dF[i] = __fmul_rn(k, __fsub_rn(f[i], fa[i]));
  }
}

// out[0] = Σ v / n: one CTA, strided per-thread sums, then a fixed tree.
__global__ void __launch_bounds__(kRowThreads) meanKernel(const double* v, long long n, double* out) {
  __shared__ double part[kRowThreads];
  double s = 0;
  for (long long i = threadIdx.x; i < n; i += kRowThreads) s += v[i];
  s = blockSum(s, part);
  if (threadIdx.x == 0) out[0] = s / static_cast<double>(n);
}

// g[j] = (accumulate ? g[j] : 0) + scale·float(Σ_i X[i·ld + j]) (double, i in order); a
// null X sums nothing (g = scale·0).
__global__ void __launch_bounds__(kThreads) colSumKernel(const float* X, long long rows, long long cols, long long ld,
                                                         float scale, bool accumulate, float* g) {
  CG_GRID_LOOP(j, cols) {
    double s = 0;
    if (X)
      for (long long i = 0; i < rows; ++i) s += X[i * ld + j];
    const float t = __fmul_rn(scale, static_cast<float>(s));
    g[j] = accumulate ? __fadd_rn(g[j], t) : t;
  }
}

// ---- the step ----
struct Qwen2Scratch;  // this step's scratch pool (device_scratch.h)

struct LayerActs {
  float *Y1, *r1, *Q, *K, *V, *rowMax, *rowSum, *Att, *X1, *Y2, *r2, *Gt, *Up, *Act;
  float* U[kQwen2Linears];
};

struct Lora {
  const float* A[kQwen2Linears];
  const float* B[kQwen2Linears];
};

class Step {
 public:
  Step(int device, const Qwen2Config& c, const Qwen2StepArgs& a)
      : device_(device), ctx_(deviceContext(device)), st_(ctx_.stream), c_(c), a_(a), lay_(qwen2Layout(c)),
        off_(qwen2LayerOffsets(c)), B_(a.batch), T_(c.T()), M_(a.batch * c.T()), MD_(M_ * c.D) {}

  ModelStepResult run();

 private:
  struct Bufs {
    float *cosT, *sinT, *prefix, *actions;
    int* ids;
    float *Hs, *HN, *rN, *Hping, *HN0, *rN0, *f, *fA, *Z0, *Z1, *G1, *O, *dO, *dZ1, *dZ0, *dHN, *G, *dF;
    int *argR, *argAq, *argR0, *argAq0;
    float *Pm, *dS;                                     // attention: (B·heads·T·T), (streams·B·heads·T·T)
    float *dAct, *dUp, *dY, *dAtt, *dQ, *dK, *dV, *Vt;  // a layer's backward
    double *terms, *losses;
    std::vector<LayerActs> acts;
    LayerActs anchorActs;
  };

  void plan(Carver& cv, Bufs& x) const;
  void allocActs(Carver& cv, LayerActs& l) const;
  Lora loraOf(const float* base, long long l) const;
  const float* layerW(long long l) const { return a_.layers[l]; }
  AttnDims dims() const {
    return AttnDims{B_, T_, M_, c_.heads, c_.kvHeads, c_.hd(), c_.qDim(), c_.kvDim(),
                    static_cast<float>(1.0 / std::sqrt(static_cast<double>(c_.hd())))};
  }
  void linearForward(int linear, const float* X, const float* W, const float* bias, const Lora& lora, float* U, float* Y);
  void layerForward(const float* W, const Lora& lora, const float* Xin, LayerActs& x, float* Xout);
  void forward(const float* w, long long layers, bool keep, float* Hs, std::vector<LayerActs>& acts, float* HN,
               float* rN, float* f, int* argR, int* argAq);
  void linearBackward(long long layer, int linear, int streams, const float* X, const float* W, const Lora& lora,
                      const float* U, const float* dY, float* dX, float beta, float* const g[2]);
  void layerBackward(long long layer, int streams, const float* W, const Lora& lora, const float* Xin, const LayerActs& x,
                     float* const g[2]);
  void pool(const float* H, long long t0, long long n, float* f, long long off, int* argmax) {
    poolKernel<<<blocksFor(B_ * c_.D), kThreads, 0, st_>>>(H, f, off, argmax, B_, T_, c_.D, c_.F(), t0, n,
                                                            c_.pool == Pooling::Max);
  }
  void poolBack(const float* dF, long long t0, long long n, long long off, const int* argmax, float* G) {
    const bool mx = c_.pool == Pooling::Max;
    poolBackKernel<<<blocksFor(mx ? B_ * c_.D : B_ * n * c_.D), kThreads, 0, st_>>>(dF, off, argmax, G, B_, T_, c_.D,
                                                                                     c_.F(), t0, n, mx);
  }
  void rmsNorm(long long rows, const float* X, const float* w, float* Y, float* rstd) {
    rmsNormKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, st_>>>(X, w, Y, rstd, c_.D, static_cast<float>(c_.eps));
  }
  void rmsNormBack(long long rows, const float* dY, const float* X, const float* rstd, const float* w, float* dX) {
    rmsNormBackKernel<<<static_cast<unsigned>(rows), kRowThreads, 0, st_>>>(dY, X, rstd, w, dX, M_, c_.D);
  }
  void rope(float* X, long long rows, long long width, bool inverse) {
    const long long n = rows * (width / c_.hd()) * (c_.hd() / 2);
    ropeKernel<<<blocksFor(n), kThreads, 0, st_>>>(X, x_.cosT, x_.sinT, rows, width, c_.hd(), T_, inverse);
  }
  void zero(float* p, long long n) { CG_CUDA(device_, cudaMemsetAsync(p, 0, sizeof(float) * n, st_)); }

  int device_;
  DeviceContext& ctx_;
  cudaStream_t st_;
  const Qwen2Config& c_;
  const Qwen2StepArgs& a_;
  Qwen2Layout lay_;
  Qwen2LayerOffsets off_;
  long long B_, T_, M_, MD_;
  bool keep_ = false, withRet_ = false;
  int streams_ = 1;
  Bufs x_{};
};

void Step::allocActs(Carver& cv, LayerActs& x) const {
  const long long M = M_, D = c_.D, rows = B_ * c_.heads * T_;
  x.Y1 = cv.take<float>(M * D);
  x.r1 = cv.take<float>(M);
  x.Q = cv.take<float>(M * c_.qDim());
  x.K = cv.take<float>(M * c_.kvDim());
  x.V = cv.take<float>(M * c_.kvDim());
  x.rowMax = cv.take<float>(rows);
  x.rowSum = cv.take<float>(rows);
  x.Att = cv.take<float>(M * c_.qDim());
  x.X1 = cv.take<float>(M * D);
  x.Y2 = cv.take<float>(M * D);
  x.r2 = cv.take<float>(M);
  x.Gt = cv.take<float>(M * c_.I);
  x.Up = cv.take<float>(M * c_.I);
  x.Act = cv.take<float>(M * c_.I);
  for (int i = 0; i < kQwen2Linears; ++i) x.U[i] = c_.targeted(i) ? cv.take<float>(M * c_.r) : nullptr;
}

void Step::plan(Carver& cv, Bufs& x) const {
  const long long D = c_.D, BQ = B_ * c_.Q, BF = B_ * c_.F(), SM = streams_ * M_, half = c_.hd() / 2;
  x.cosT = cv.take<float>(T_ * half);
  x.sinT = cv.take<float>(T_ * half);
  x.prefix = cv.take<float>(B_ * c_.P * D);
  x.ids = cv.take<int>(B_ * c_.S);
  x.actions = cv.take<float>(BQ * c_.A);
  x.Hs = cv.take<float>(keep_ ? (c_.L + 1) * MD_ : 2 * MD_);
  x.HN = cv.take<float>(MD_);
  x.rN = cv.take<float>(M_);
  x.f = cv.take<float>(BF);
  x.fA = cv.take<float>(BF);
  x.argR = cv.take<int>(B_ * D);
  x.argAq = cv.take<int>(B_ * D);
  x.argR0 = cv.take<int>(B_ * D);
  x.argAq0 = cv.take<int>(B_ * D);
  x.Z0 = cv.take<float>(BQ * D);
  x.Z1 = cv.take<float>(BQ * c_.Hh);
  x.G1 = cv.take<float>(BQ * c_.Hh);
  x.O = cv.take<float>(BQ * c_.A);
  x.dO = cv.take<float>(BQ * c_.A);
  x.acts.assign(keep_ ? c_.L : 1, LayerActs{});
  for (LayerActs& l : x.acts) allocActs(cv, l);
  x.Hping = x.HN0 = x.rN0 = nullptr;
  if (withRet_) {
    x.Hping = cv.take<float>(2 * MD_);
    x.HN0 = cv.take<float>(MD_);
    x.rN0 = cv.take<float>(M_);
    if (keep_) allocActs(cv, x.anchorActs);
    else x.anchorActs = x.acts[0];
  }
  x.Pm = cv.take<float>(B_ * c_.heads * T_ * T_);
  x.terms = cv.take<double>(std::max(BQ * c_.A, BF));
  x.losses = cv.take<double>(2);
  if (keep_) {
    x.dZ1 = cv.take<float>(BQ * c_.Hh);
    x.dZ0 = cv.take<float>(BQ * D);
    x.dHN = cv.take<float>(SM * D);
    x.G = cv.take<float>(SM * D);
    x.dF = cv.take<float>(BF);
    x.dS = cv.take<float>(streams_ * B_ * c_.heads * T_ * T_);
    x.dAct = cv.take<float>(SM * c_.I);
    x.dUp = cv.take<float>(SM * c_.I);
    x.dY = cv.take<float>(SM * D);
    x.dAtt = cv.take<float>(SM * c_.qDim());
    x.dQ = cv.take<float>(SM * c_.qDim());
    x.dK = cv.take<float>(SM * c_.kvDim());
    x.dV = cv.take<float>(SM * c_.kvDim());
    x.Vt = cv.take<float>(SM * c_.r);
  }
}

Lora Step::loraOf(const float* base, long long l) const {
  Lora x{};
  for (int i = 0; i < kQwen2Linears; ++i)
    if (c_.targeted(i)) {
      x.A[i] = base + lay_.loraA[l][i];
      x.B[i] = base + lay_.loraB[l][i];
    }
  return x;
}

// Y (M×out) = X·Wᵀ (+ bias) (+ s·U·Bᵀ with U = X·Aᵀ kept), PEFT's order: base, then LoRA.
void Step::linearForward(int linear, const float* X, const float* W, const float* bias, const Lora& lora, float* U,
                         float* Y) {
  const long long in = c_.linearIn(linear), out = c_.linearOut(linear), r = c_.r;
  gemm(ctx_, M_, out, in, 1.0f, Mat{X, in, false}, Mat{W, in, true}, 0.0f, Y, out);
  if (bias) addBiasKernel<<<blocksFor(M_ * out), kThreads, 0, st_>>>(Y, bias, M_, out);
  if (lora.A[linear]) {
    gemm(ctx_, M_, r, in, 1.0f, Mat{X, in, false}, Mat{lora.A[linear], in, true}, 0.0f, U, r);
    gemm(ctx_, M_, out, r, c_.loraScale(), Mat{U, r, false}, Mat{lora.B[linear], r, true}, 1.0f, Y, out);
  }
}

void Step::layerForward(const float* W, const Lora& lora, const float* Xin, LayerActs& x, float* Xout) {
  const Qwen2LayerOffsets& o = off_;
  const AttnDims s = dims();
  const unsigned rows = static_cast<unsigned>(B_ * c_.heads * T_);
  rmsNorm(M_, Xin, W + o.inNorm, x.Y1, x.r1);
  linearForward(0, x.Y1, W + o.qW, W + o.qB, lora, x.U[0], x.Q);
  linearForward(1, x.Y1, W + o.kW, W + o.kB, lora, x.U[1], x.K);
  linearForward(2, x.Y1, W + o.vW, W + o.vB, lora, x.U[2], x.V);
  rope(x.Q, M_, c_.qDim(), false);
  rope(x.K, M_, c_.kvDim(), false);
  attnProbsKernel<<<rows, kRowThreads, 0, st_>>>(x.Q, x.K, x.rowMax, x.rowSum, x_.Pm, s, false);
  attnOutKernel<<<rows, kRowThreads, 0, st_>>>(x_.Pm, x.V, x.Att, s);
  linearForward(3, x.Att, W + o.oW, nullptr, lora, x.U[3], x.X1);
  addKernel<<<blocksFor(MD_), kThreads, 0, st_>>>(x.X1, Xin, MD_);
  rmsNorm(M_, x.X1, W + o.postNorm, x.Y2, x.r2);
  linearForward(4, x.Y2, W + o.gate, nullptr, lora, x.U[4], x.Gt);
  linearForward(5, x.Y2, W + o.up, nullptr, lora, x.U[5], x.Up);
  swigluKernel<<<blocksFor(M_ * c_.I), kThreads, 0, st_>>>(x.Gt, x.Up, x.Act, M_ * c_.I);
  linearForward(6, x.Act, W + o.down, nullptr, lora, x.U[6], Xout);
  addKernel<<<blocksFor(MD_), kThreads, 0, st_>>>(Xout, x.X1, MD_);
}

void Step::forward(const float* w, long long layers, bool keep, float* Hs, std::vector<LayerActs>& acts, float* HN,
                   float* rN, float* f, int* argR, int* argAq) {
  const long long D = c_.D;
  embedKernel<<<blocksFor(MD_), kThreads, 0, st_>>>(Hs, x_.prefix, x_.ids, a_.embed, w + lay_.queries, B_, T_, c_.P,
                                                    c_.S, D);
  const bool raw = c_.usesRaw();
  if (raw && c_.m == 0) pool(Hs, 0, c_.spanTokens(), f, c_.rawOffset(), argR);
  const float* last = Hs;
  for (long long l = 0; l < layers; ++l) {
    const float* Xin = keep ? Hs + l * MD_ : Hs + (l % 2) * MD_;
    float* Xout = keep ? Hs + (l + 1) * MD_ : Hs + ((l + 1) % 2) * MD_;
    layerForward(layerW(l), loraOf(w, l), Xin, acts[keep ? l : 0], Xout);
    if (raw && l + 1 == c_.m && c_.m < c_.L) pool(Xout, 0, c_.spanTokens(), f, c_.rawOffset(), argR);
    last = Xout;
  }
  if (layers < c_.L) return;
  rmsNorm(M_, last, a_.finalNorm, HN, rN);
  if (raw && c_.m == c_.L) pool(HN, 0, c_.spanTokens(), f, c_.rawOffset(), argR);
  if (c_.usesAq()) pool(HN, T_ - c_.Q, c_.Q, f, c_.aqOffset(), argAq);
}

// dX (streams·M × in) = beta·dX + dY·W (+ s·(dY·B)·A); per stream with a set g[st]:
// dB = s·dYᵀ·U, dA = s·(dY·B)ᵀ·X (one launch for every stream's two products).
void Step::linearBackward(long long layer, int linear, int streams, const float* X, const float* W, const Lora& lora,
                          const float* U, const float* dY, float* dX, float beta, float* const g[2]) {
  const long long in = c_.linearIn(linear), n = c_.linearOut(linear), r = c_.r, SM = streams * M_;
  gemm(ctx_, SM, in, n, 1.0f, Mat{dY, n, false}, Mat{W, in, false}, beta, dX, in);
  if (!lora.A[linear]) return;
  const float sl = c_.loraScale();
  const float wbeta = a_.accumulate ? 1.0f : 0.0f;
  gemm(ctx_, SM, r, n, 1.0f, Mat{dY, n, false}, Mat{lora.B[linear], r, false}, 0.0f, x_.Vt, r);
  gemm(ctx_, SM, in, r, sl, Mat{x_.Vt, r, false}, Mat{lora.A[linear], in, false}, 1.0f, dX, in);
  Product grads[4];
  int ng = 0;
  for (int st = 0; st < streams; ++st) {
    if (!g[st]) continue;
    grads[ng++] = Product{n, r, M_, sl * a_.scale, Mat{dY + st * M_ * n, n, true}, Mat{U, r, false}, wbeta,
                          g[st] + lay_.loraB[layer][linear], r};
    grads[ng++] = Product{r, in, M_, sl * a_.scale, Mat{x_.Vt + st * M_ * r, r, true}, Mat{X, in, false}, wbeta,
                          g[st] + lay_.loraA[layer][linear], in};
  }
  gemmBatch(ctx_, grads, ng);
}

// x_.G (streams·M × D) = d Xout on entry, d Xin on return.
void Step::layerBackward(long long layer, int streams, const float* W, const Lora& lora, const float* Xin,
                         const LayerActs& x, float* const g[2]) {
  const Qwen2LayerOffsets& o = off_;
  const long long SM = streams * M_;
  float* G = x_.G;
  AttnDims s = dims();
  linearBackward(layer, 6, streams, x.Act, W + o.down, lora, x.U[6], G, x_.dAct, 0.0f, g);
  swigluBackKernel<<<blocksFor(SM * c_.I), kThreads, 0, st_>>>(x.Gt, x.Up, x_.dAct, x_.dUp, SM * c_.I, M_ * c_.I);
  linearBackward(layer, 4, streams, x.Y2, W + o.gate, lora, x.U[4], x_.dAct, x_.dY, 0.0f, g);
  linearBackward(layer, 5, streams, x.Y2, W + o.up, lora, x.U[5], x_.dUp, x_.dY, 1.0f, g);
  rmsNormBack(SM, x_.dY, x.X1, x.r2, W + o.postNorm, G);  // G = d x1
  linearBackward(layer, 3, streams, x.Att, W + o.oW, lora, x.U[3], G, x_.dAtt, 0.0f, g);
  // Attention: the probabilities again (shared by the streams), then per stream dS and dQ, dK, dV.
  const unsigned rows = static_cast<unsigned>(B_ * c_.heads * T_);
  attnProbsKernel<<<rows, kRowThreads, 0, st_>>>(x.Q, x.K, x.rowMax, x.rowSum, x_.Pm, s, true);
  attnBackRowKernel<<<static_cast<unsigned>(streams * rows), kRowThreads, 0, st_>>>(x_.Pm, x_.dAtt, x.K, x.V, x_.dS,
                                                                                   x_.dQ, s);
  attnBackKVKernel<<<static_cast<unsigned>(streams * B_ * c_.kvHeads * T_), kRowThreads, 0, st_>>>(
      x_.Pm, x_.dS, x_.dAtt, x.Q, x_.dK, x_.dV, s);
  rope(x_.dQ, SM, c_.qDim(), true);
  rope(x_.dK, SM, c_.kvDim(), true);
  linearBackward(layer, 0, streams, x.Y1, W + o.qW, lora, x.U[0], x_.dQ, x_.dY, 0.0f, g);
  linearBackward(layer, 1, streams, x.Y1, W + o.kW, lora, x.U[1], x_.dK, x_.dY, 1.0f, g);
  linearBackward(layer, 2, streams, x.Y1, W + o.vW, lora, x.U[2], x_.dV, x_.dY, 1.0f, g);
  rmsNormBack(SM, x_.dY, Xin, x.r1, W + o.inNorm, G);  // G = d x
}

ModelStepResult Step::run() {
  const Qwen2Config& c = c_;
  const long long B = B_, T = T_, M = M_, MD = MD_, D = c.D, Q = c.Q, Ad = c.A, Hh = c.Hh, F = c.F();
  const long long BQ = B * Q, qTok = T - Q;
  withRet_ = a_.mode == ModelMode::Craft || a_.mode == ModelMode::EvalRet;
  keep_ = a_.mode == ModelMode::Craft || a_.mode == ModelMode::Baseline;
  streams_ = a_.mode == ModelMode::Craft ? 2 : 1;
  const float* P = a_.params;
  // The kernels and products index with int dimensions (grid sizes too).
  const long long kIntMax = 2147483647LL;
  if (streams_ * MD > kIntMax || streams_ * M * std::max(c.I, c.qDim()) > kIntMax ||
      streams_ * B * c.heads * T * T > kIntMax || streams_ * B * c.heads * T > kIntMax)
    throw CudaError("craftgrad: batch too large for the CUDA Qwen2 step (batch×tokens×width must stay below 2^31)");

  Carver sizing{nullptr};
  {
    Bufs tmp{};
    plan(sizing, tmp);
  }
  Scratch& sc = scratchFor<Qwen2Scratch>(device_);
  std::lock_guard<std::mutex> lock(sc.m);  // one Qwen2 call per device at a time
  Carver cv{sc.reserve(device_, sizing.used, "Qwen2 scratch")};
  plan(cv, x_);

  // Host inputs and the rotary tables into scratch. Pageable host memory: each copy has
  // left the host array when it returns.
  std::vector<float> cosT, sinT;
  qwen2RopeTables(c, cosT, sinT);
  CG_CUDA(device_, cudaMemcpyAsync(x_.cosT, cosT.data(), sizeof(float) * cosT.size(), cudaMemcpyHostToDevice, st_));
  CG_CUDA(device_, cudaMemcpyAsync(x_.sinT, sinT.data(), sizeof(float) * sinT.size(), cudaMemcpyHostToDevice, st_));
  if (c.P)
    CG_CUDA(device_, cudaMemcpyAsync(x_.prefix, a_.prefix, sizeof(float) * B * c.P * D, cudaMemcpyHostToDevice, st_));
  if (c.S)
    CG_CUDA(device_, cudaMemcpyAsync(x_.ids, a_.inputIds, sizeof(int32_t) * B * c.S, cudaMemcpyHostToDevice, st_));
  CG_CUDA(device_, cudaMemcpyAsync(x_.actions, a_.actions, sizeof(float) * BQ * Ad, cudaMemcpyHostToDevice, st_));

  // ---- forward (current weights) and the action head ----
  forward(P, c.L, keep_, x_.Hs, x_.acts, x_.HN, x_.rN, x_.f, x_.argR, x_.argAq);
  queryRowsKernel<<<blocksFor(BQ * D), kThreads, 0, st_>>>(x_.Z0, x_.HN, B, T, D, qTok, Q * D, true);
  gemm(ctx_, BQ, Hh, D, 1.0f, Mat{x_.Z0, D, false}, Mat{P + lay_.fc1w, D, true}, 0.0f, x_.Z1, Hh);
  biasGeluKernel<<<blocksFor(BQ * Hh), kThreads, 0, st_>>>(x_.Z1, P + lay_.fc1b, x_.G1, BQ, Hh);
  gemm(ctx_, BQ, Ad, Hh, 1.0f, Mat{x_.G1, Hh, false}, Mat{P + lay_.fc2w, Hh, true}, 0.0f, x_.O, Ad);
  actionLossKernel<<<blocksFor(BQ * Ad), kThreads, 0, st_>>>(x_.O, P + lay_.fc2b, x_.actions, x_.dO, x_.terms, BQ, Ad);
  meanKernel<<<1, kRowThreads, 0, st_>>>(x_.terms, BQ * Ad, x_.losses);

  // ---- anchor forward: no gradient, anchor LoRA factors and queries in place ----
  if (withRet_) {
    const long long layers = c.usesAq() ? c.L : c.m;
    std::vector<LayerActs> one{x_.anchorActs};
    forward(a_.anchor, layers, false, x_.Hping, one, x_.HN0, x_.rN0, x_.fA, x_.argR0, x_.argAq0);
    retentionKernel<<<blocksFor(B * F), kThreads, 0, st_>>>(x_.f, x_.fA, x_.terms, streams_ == 2 ? x_.dF : nullptr, B * F);
    meanKernel<<<1, kRowThreads, 0, st_>>>(x_.terms, B * F, x_.losses + 1);
  }

  if (keep_) {
    // ---- head backward (the action stream only) ----
    const float sc2 = a_.scale, beta = a_.accumulate ? 1.0f : 0.0f;
    float* gA = a_.gAct;
    gemm(ctx_, Ad, Hh, BQ, sc2, Mat{x_.dO, Ad, true}, Mat{x_.G1, Hh, false}, beta, gA + lay_.fc2w, Hh);
    colSumKernel<<<blocksFor(Ad), kThreads, 0, st_>>>(x_.dO, BQ, Ad, Ad, sc2, a_.accumulate, gA + lay_.fc2b);
    gemm(ctx_, BQ, Hh, Ad, 1.0f, Mat{x_.dO, Ad, false}, Mat{P + lay_.fc2w, Hh, false}, 0.0f, x_.dZ1, Hh);
    geluScaleKernel<<<blocksFor(BQ * Hh), kThreads, 0, st_>>>(x_.Z1, x_.dZ1, BQ * Hh);
    gemm(ctx_, Hh, D, BQ, sc2, Mat{x_.dZ1, Hh, true}, Mat{x_.Z0, D, false}, beta, gA + lay_.fc1w, D);
    colSumKernel<<<blocksFor(Hh), kThreads, 0, st_>>>(x_.dZ1, BQ, Hh, Hh, sc2, a_.accumulate, gA + lay_.fc1b);
    gemm(ctx_, BQ, D, Hh, 1.0f, Mat{x_.dZ1, Hh, false}, Mat{P + lay_.fc1w, D, false}, 0.0f, x_.dZ0, D);
    if (streams_ == 2 && !a_.accumulate) zero(a_.gRet + lay_.fc1w, lay_.paramCount - lay_.fc1w);

    // ---- d(final hidden states): the head's at the queries; the retention features' ----
    zero(x_.dHN, streams_ * MD);
    queryRowsKernel<<<blocksFor(BQ * D), kThreads, 0, st_>>>(x_.dHN, x_.dZ0, B, T, D, qTok, Q * D, false);
    if (streams_ == 2) {
      float* dRet = x_.dHN + MD;
      if (c.usesAq()) poolBack(x_.dF, qTok, Q, c.aqOffset(), x_.argAq, dRet);
      if (c.usesRaw() && c.m == c.L) poolBack(x_.dF, 0, c.spanTokens(), c.rawOffset(), x_.argR, dRet);
    }
    zero(x_.G, streams_ * MD);
    rmsNormBack(streams_ * M, x_.dHN, x_.Hs + c.L * MD, x_.rN, a_.finalNorm, x_.G);

    // ---- layers, last to first ----
    bool retLive = false;
    for (long long l = c.L - 1; l >= 0; --l) {
      if (streams_ == 2 && c.usesRaw() && l + 1 == c.m && c.m < c.L)
        poolBack(x_.dF, 0, c.spanTokens(), c.rawOffset(), x_.argR, x_.G + MD);
      retLive = streams_ == 2 && (c.usesAq() || l + 1 <= c.m);
      float* g[2] = {a_.gAct, retLive ? a_.gRet : nullptr};
      if (streams_ == 2 && !retLive && !a_.accumulate)
        for (int i = 0; i < kQwen2Linears; ++i)
          if (c.targeted(i)) {
            zero(a_.gRet + lay_.loraA[l][i], c.r * c.linearIn(i));
            zero(a_.gRet + lay_.loraB[l][i], c.linearOut(i) * c.r);
          }
      layerBackward(l, retLive ? 2 : 1, layerW(l), loraOf(P, l), x_.Hs + l * MD, x_.acts[l], g);
    }

    // ---- action_queries: d(input sequence) at the query tokens, summed over the batch ----
    for (int s = 0; s < streams_; ++s) {
      float* g = s == 0 ? a_.gAct : a_.gRet;
      const bool live = s == 0 || retLive;
      colSumKernel<<<blocksFor(Q * D), kThreads, 0, st_>>>(live ? x_.G + s * MD + qTok * D : nullptr, B, Q * D, T * D,
                                                           sc2, a_.accumulate, g + lay_.queries);
    }
  }
  CG_CUDA(device_, cudaGetLastError());
  double losses[2] = {0, 0};
  CG_CUDA(device_, cudaMemcpyAsync(losses, x_.losses, sizeof(double) * (withRet_ ? 2 : 1), cudaMemcpyDeviceToHost, st_));
  CG_CUDA(device_, cudaStreamSynchronize(st_));
  ModelStepResult res;
  res.actionLoss = losses[0];
  res.retentionLoss = withRet_ ? losses[1] : 0.0;
  return res;
}

}  // namespace

ModelStepResult qwen2Step(int device, const Qwen2Config& c, const Qwen2StepArgs& a) {
  if (!a.frozenInBackend)
    throw CudaError("craftgrad: qwen2Step on CUDA needs the frozen weights in device memory (a TensorSet)");
  Step s(device, c, a);
  return s.run();
}

}  // namespace cuda
}  // namespace craftgrad
