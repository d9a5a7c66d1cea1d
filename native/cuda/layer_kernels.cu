// CudaLayers' kernels and their launches (layers_cuda.h): every operation of core/layers.h
// but memory and the products. Simple first: one thread per element (grid-stride loops),
// one CTA per row for RMSNorm, LayerNorm and the attention's rows (double sums in a fixed
// tree), one thread per output column for pooling, column sums and LayerNorm's weight and
// bias gradients (rows in order, in double). Element-wise arithmetic is explicitly rounded
// (__f*_rn: nvcc may not contract it), in the order core/layers.h writes it; GELU is
// gelu_math.h's (dev_math.cuh), its erf form gelu_erf.h's (double, rounded once). Double
// arithmetic is written with operators: --fmad=false (cuda.cmake) keeps nvcc from
// contracting it, as -ffp-contract=off does on the CPU. The attention here is the fp32 one;
// a Bf16 AttentionShape goes to the fused kernels of attention_fused.cu.
#include <cuda_runtime.h>

// gelu_math.h's templates are __host__ __device__; their host-only instantiation on
// ScalarF (never called from device code here) would warn 20014 at every line.
#pragma nv_diag_suppress 20014

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../core/gelu_erf.h"
#include "attention_fused.h"
#include "cuda_internal.h"
#include "dev_math.cuh"
#include "layers_cuda.h"

namespace craftgrad {
namespace cuda {
namespace {

constexpr int kThreads = 256;     // CTA size of the element-wise and per-column kernels
constexpr int kRowThreads = 128;  // CTA size of the per-row kernels and the loss mean (a power of two)
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

// Two sums over the CTA at once, each the tree of blockSum (so each equals blockSum of its
// values); every thread gets both.
__device__ void blockSum2(double& a, double& b, double* partA, double* partB) {
  partA[threadIdx.x] = a;
  partB[threadIdx.x] = b;
  __syncthreads();
  for (int w = kRowThreads / 2; w >= 1; w /= 2) {
    if (static_cast<int>(threadIdx.x) < w) {
      partA[threadIdx.x] += partA[threadIdx.x + w];
      partB[threadIdx.x] += partB[threadIdx.x + w];
    }
    __syncthreads();
  }
  a = partA[0];
  b = partB[0];
  __syncthreads();
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

// ---- element-wise ----
// Z[i, j] += b[j]; out[i, j] = (H ? H[i, j] : 0) + gelu(Z[i, j]).
__global__ void __launch_bounds__(kThreads) biasGeluKernel(float* Z, const float* b, const float* H, float* out,
                                                           long long rows, long long cols) {
  CG_GRID_LOOP(i, rows * cols) {
    const float v = __fadd_rn(Z[i], b[i % cols]);
    Z[i] = v;
    out[i] = H ? __fadd_rn(H[i], dgelu(v)) : dgelu(v);
  }
}

// dZ[s][i] = G[s][i] · gelu'(Z[i]) for S streams of n values (G may be dZ).
__global__ void __launch_bounds__(kThreads) geluBackKernel(const float* Z, const float* G, float* dZ, long long n, int S) {
  CG_GRID_LOOP(i, n) {
    const float g = dgeluGrad(Z[i]);
    for (int s = 0; s < S; ++s) dZ[s * n + i] = __fmul_rn(G[s * n + i], g);
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

// GELU's erf form (gelu_erf.h: in double, rounded once): as biasGeluKernel.
__global__ void __launch_bounds__(kThreads) biasGeluErfKernel(float* Z, const float* b, const float* H, float* out,
                                                              long long rows, long long cols) {
  CG_GRID_LOOP(i, rows * cols) {
    const float v = __fadd_rn(Z[i], b[i % cols]);
    Z[i] = v;
    out[i] = H ? __fadd_rn(H[i], geluErf(v)) : geluErf(v);
  }
}

// dZ[s][i] = G[s][i] · geluErfGrad(Z[i]) for S streams of n values (G may be dZ).
__global__ void __launch_bounds__(kThreads) geluErfBackKernel(const float* Z, const float* G, float* dZ, long long n,
                                                              int S) {
  CG_GRID_LOOP(i, n) {
    const float g = geluErfGrad(Z[i]);
    for (int s = 0; s < S; ++s) dZ[s * n + i] = __fmul_rn(G[s * n + i], g);
  }
}

// ReLU after a bias: Z[i, j] += b[j] (no bias when b is null); out = Z > 0 or NaN ? Z : 0 (torch.relu).
__global__ void __launch_bounds__(kThreads) biasReluKernel(float* Z, const float* b, float* out, long long rows,
                                                           long long cols) {
  CG_GRID_LOOP(i, rows * cols) {
    const float v = b ? __fadd_rn(Z[i], b[i % cols]) : Z[i];
    Z[i] = v;
    out[i] = v > 0.0f || isnan(v) ? v : 0.0f;
  }
}

// dZ[s][i] = Z[i] <= 0 ? 0 : G[s][i] for S streams of n values (threshold_backward: a NaN Z passes G; G may be dZ).
__global__ void __launch_bounds__(kThreads) reluBackKernel(const float* Z, const float* G, float* dZ, long long n, int S) {
  CG_GRID_LOOP(i, n) {
    const bool off = Z[i] <= 0.0f;
    for (int s = 0; s < S; ++s) dZ[s * n + i] = off ? 0.0f : G[s * n + i];
  }
}

// LayerScale: Y[i, j] += X[i, j]·gamma[j] (the product rounded, then the sum).
__global__ void __launch_bounds__(kThreads) layerScaleAddKernel(float* Y, const float* X, const float* gamma,
                                                                long long rows, long long cols) {
  CG_GRID_LOOP(i, rows * cols) Y[i] = __fadd_rn(Y[i], __fmul_rn(X[i], gamma[i % cols]));
}

// dX[i, j] = dY[i, j]·gamma[j] (dX may be dY: each element is read, then written, by one thread).
__global__ void __launch_bounds__(kThreads) layerScaleBackKernel(const float* dY, const float* gamma, float* dX,
                                                                 long long rows, long long cols) {
  CG_GRID_LOOP(i, rows * cols) dX[i] = __fmul_rn(dY[i], gamma[i % cols]);
}

// Act = silu(Gt) ⊙ Up.
__global__ void __launch_bounds__(kThreads) swigluKernel(const float* Gt, const float* Up, float* Act, long long n) {
  CG_GRID_LOOP(i, n) Act[i] = __fmul_rn(__fmul_rn(Gt[i], dsigmoid(Gt[i])), Up[i]);
}

// SwiGLU backward over n = streams·m values: dAct in (d Act), out d gate; dUp out.
__global__ void __launch_bounds__(kThreads) swigluBackKernel(const float* Gt, const float* Up, float* dAct, float* dUp,
                                                             long long n, long long m) {
  CG_GRID_LOOP(i, n) {
    const long long k = i % m;
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

// VLA-Adapter's Pro-head rotary variant in place, one thread per pair (2p, 2p + 1) of a head:
// columns 2p and 2p + 1 use the frequencies 2p mod hd/2 and (2p + 1) mod hd/2 (cos/sin of
// cat(freqs, freqs)); y = x·c + rotate_half(x)·s with the interleaved rotate_half, each product
// rounded, then the sum; inverse: the transpose.
__global__ void __launch_bounds__(kThreads) ropeProHeadKernel(float* X, const float* cosT, const float* sinT,
                                                              long long rows, long long width, long long hd, long long T,
                                                              bool inverse) {
  const long long half = hd / 2, heads = width / hd;
  CG_GRID_LOOP(idx, rows * heads * half) {
    const long long p = idx % half, h = (idx / half) % heads, i = idx / (half * heads);
    const float* cs = cosT + (i % T) * half;
    const float* sn = sinT + (i % T) * half;
    const long long f0 = (2 * p) % half, f1 = (2 * p + 1) % half;
    float* x = X + i * width + h * hd + 2 * p;
    const float a = x[0], b = x[1];
    if (!inverse) {
      x[0] = __fadd_rn(__fmul_rn(a, cs[f0]), __fmul_rn(-b, sn[f0]));
      x[1] = __fadd_rn(__fmul_rn(b, cs[f1]), __fmul_rn(a, sn[f1]));
    } else {
      x[0] = __fadd_rn(__fmul_rn(a, cs[f0]), __fmul_rn(b, sn[f1]));
      x[1] = __fsub_rn(__fmul_rn(b, cs[f1]), __fmul_rn(a, sn[f0]));
    }
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

// ---- LayerNorm: one CTA per row (sums as RMSNorm's: strided per thread, then the tree) ----
// Y = ((x − mean)·rstd)·w + b, each operation rounded in that order; mean = float(Σx/D) and
// rstd = float(1/√(Σ(x − Σx/D)²/D + eps)) in double, kept per row.
__global__ void __launch_bounds__(kRowThreads) layerNormKernel(const float* X, const float* w, const float* b, float* Y,
                                                               float* mean, float* rstd, long long D, float eps) {
  __shared__ double part[kRowThreads];
  const long long i = blockIdx.x;
  const float* x = X + i * D;
  double sum = 0;
  for (long long j = threadIdx.x; j < D; j += kRowThreads) sum += x[j];
  const double mu = blockSum(sum, part) / static_cast<double>(D);
  double ss = 0;
  for (long long j = threadIdx.x; j < D; j += kRowThreads) {
    const double d = static_cast<double>(x[j]) - mu;
    ss += d * d;
  }
  ss = blockSum(ss, part);
  const float m = static_cast<float>(mu);
  const float r = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(D) + static_cast<double>(eps)));
  if (threadIdx.x == 0) {
    mean[i] = m;
    rstd[i] = r;
  }
  for (long long j = threadIdx.x; j < D; j += kRowThreads)
    Y[i * D + j] = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(x[j], m), r), w[j]), b[j]);
}

// dX += the LayerNorm input gradient of dY, one CTA per row i of `rows` (row i mod M's X,
// mean, rstd): with x̂ = (x − mean)·rstd rounded as the forward rounds it and g = w·dy (exact
// in double), dx = float(rstd·((g − Σg/D) − x̂·Σ(g·x̂)/D)).
__global__ void __launch_bounds__(kRowThreads) layerNormBackKernel(const float* dY, const float* X, const float* mean,
                                                                   const float* rstd, const float* w, float* dX,
                                                                   long long M, long long D) {
  __shared__ double partA[kRowThreads];
  __shared__ double partB[kRowThreads];
  const long long i = blockIdx.x;
  const float* x = X + (i % M) * D;
  const float* dy = dY + i * D;
  const float m = mean[i % M], r = rstd[i % M];
  double sg = 0, sgx = 0;  // Σ g, Σ g·x̂
  for (long long j = threadIdx.x; j < D; j += kRowThreads) {
    const double g = static_cast<double>(w[j]) * dy[j];
    sg += g;
    sgx += g * static_cast<double>(__fmul_rn(__fsub_rn(x[j], m), r));
  }
  blockSum2(sg, sgx, partA, partB);
  const double a = sg / static_cast<double>(D), c = sgx / static_cast<double>(D), rd = r;
  for (long long j = threadIdx.x; j < D; j += kRowThreads) {
    const double g = static_cast<double>(w[j]) * dy[j];
    const double xh = __fmul_rn(__fsub_rn(x[j], m), r);
    dX[i * D + j] = __fadd_rn(dX[i * D + j], static_cast<float>(rd * ((g - a) - xh * c)));
  }
}

// The weight and bias gradients, one thread per column j, rows in order (the CPU's sums
// exactly: each term is exact in double): dW[j] = (accumulate ? dW[j] : 0) +
// scale·float(Σ_i dY[i, j]·x̂[i, j]), dB[j] likewise with Σ_i dY[i, j].
__global__ void __launch_bounds__(kThreads) layerNormParamKernel(const float* dY, const float* X, const float* mean,
                                                                 const float* rstd, float scale, bool accumulate,
                                                                 float* dW, float* dB, long long M, long long D) {
  CG_GRID_LOOP(j, D) {
    double sw = 0, sb = 0;
    for (long long i = 0; i < M; ++i) {
      const float dy = dY[i * D + j];
      sw += static_cast<double>(dy) * static_cast<double>(__fmul_rn(__fsub_rn(X[i * D + j], mean[i]), rstd[i]));
      sb += dy;
    }
    const float tw = __fmul_rn(scale, static_cast<float>(sw)), tb = __fmul_rn(scale, static_cast<float>(sb));
    dW[j] = accumulate ? __fadd_rn(dW[j], tw) : tw;
    dB[j] = accumulate ? __fadd_rn(dB[j], tb) : tb;
  }
}

// ---- attention ----
// Q rows b·T + i, K and V rows b·Tk + j; query row i reads keys [0, keyEnd(i)): [0, i] when
// causal (Tk == T), else all Tk. The gate multiplies the scores a = scale·(q·k) of the keys
// [g0, g1) by t = float(tanh(double(g))) (g0 == g1 and no gate pointer without a gate).
struct AttnDims {
  long long B, T, Tk, M, Mk, heads, kvHeads, hd, qD, kvD;
  long long g0, g1;
  const float* gate;
  float scale;
  bool causal;
};

__device__ inline long long keyEnd(const AttnDims& s, long long i) { return s.causal ? i + 1 : s.Tk; }
__device__ inline bool gatedKey(const AttnDims& s, long long j) { return j >= s.g0 && j < s.g1; }
// t = float(tanh(double(g))), the CPU's rounding of the same double function; 1 without a gate.
__device__ inline float gateFactor(const float* gate) {
  return gate ? static_cast<float>(tanh(static_cast<double>(*gate))) : 1.0f;
}

// One CTA per (sample, head, query row i): the probabilities P[(b·heads + h)·T + i][0..Tk)
// (zero on the masked keys). !recompute: from the scores, keeping the row's max and sum;
// recompute: from the kept max and sum (then rowMax and rowSum are only read).
__global__ void __launch_bounds__(kRowThreads) attnProbsKernel(const float* Q, const float* K, float* rowMax,
                                                               float* rowSum, float* P, AttnDims s, bool recompute) {
  __shared__ double part[kRowThreads];
  __shared__ float fpart[kRowThreads];
  const long long row = blockIdx.x, i = row % s.T, h = (row / s.T) % s.heads, b = row / (s.T * s.heads);
  const long long group = s.heads / s.kvHeads, e = keyEnd(s, i);
  const float* q = Q + (b * s.T + i) * s.qD + h * s.hd;
  const float* k = K + b * s.Tk * s.kvD + (h / group) * s.hd;
  float* p = P + row * s.Tk;
  const float t = gateFactor(s.gate);
  float lmax = -INFINITY;
  for (long long j = threadIdx.x; j < e; j += kRowThreads) {
    float acc = 0.0f;
    for (long long d = 0; d < s.hd; ++d) acc = __fmaf_rn(q[d], k[j * s.kvD + d], acc);
    float v = __fmul_rn(s.scale, acc);
    if (gatedKey(s, j)) v = __fmul_rn(v, t);
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
    for (long long j = threadIdx.x; j < e; j += kRowThreads) z += static_cast<double>(expf(__fsub_rn(p[j], m)));
    sum = static_cast<float>(blockSum(z, part));
    if (threadIdx.x == 0) {
      rowMax[row] = m;
      rowSum[row] = sum;
    }
  }
  const float inv = __fdiv_rn(1.0f, sum);
  for (long long j = threadIdx.x; j < s.Tk; j += kRowThreads) p[j] = j < e ? __fmul_rn(expf(__fsub_rn(p[j], m)), inv) : 0.0f;
}

// Att[b, i, h·hd + d] = Σ_{j < keyEnd(i)} P[i, j]·V[b, j, g·hd + d] in j order; one CTA per (b, h, i).
__global__ void __launch_bounds__(kRowThreads) attnOutKernel(const float* P, const float* V, float* Att, AttnDims s) {
  const long long row = blockIdx.x, i = row % s.T, h = (row / s.T) % s.heads, b = row / (s.T * s.heads);
  const long long g = h / (s.heads / s.kvHeads), e = keyEnd(s, i);
  const float* p = P + row * s.Tk;
  const float* v = V + b * s.Tk * s.kvD + g * s.hd;
  for (long long d = threadIdx.x; d < s.hd; d += kRowThreads) {
    float acc = 0.0f;
    for (long long j = 0; j < e; ++j) acc = __fmaf_rn(p[j], v[j * s.kvD + d], acc);
    Att[(b * s.T + i) * s.qD + h * s.hd + d] = acc;
  }
}

// One CTA per (stream, sample, head, query row i): dP = dO·Vᵀ, dS = P ⊙ (dP − Σ P·dP) into
// dS[((st·B + b)·heads + h)·T + i][0..Tk), then dQ_i = scale·Σ_j dS_ij·K_j. With a gate: the
// row's Σ dS·a over its gated keys (a recomputed, ungated) to rowGate[row] (a tree), then
// the gated keys' dS times t (d a = dS·t). Two instances: the gate's code would double the
// ungated (Qwen2) form's registers.
template <bool Gated>
__global__ void __launch_bounds__(kRowThreads) attnBackRowKernel(const float* P, const float* dAtt, const float* Q,
                                                                 const float* K, const float* V, float* dS, float* dQ,
                                                                 double* rowGate, AttnDims s) {
  __shared__ double part[kRowThreads];
  const long long row = blockIdx.x, i = row % s.T, h = (row / s.T) % s.heads;
  const long long sb = row / (s.T * s.heads), b = sb % s.B, st = sb / s.B;
  const long long g = h / (s.heads / s.kvHeads), e = keyEnd(s, i);
  const float* p = P + ((b * s.heads + h) * s.T + i) * s.Tk;
  const float* dO = dAtt + (st * s.M + b * s.T + i) * s.qD + h * s.hd;
  const float* v = V + b * s.Tk * s.kvD + g * s.hd;
  const float* k = K + b * s.Tk * s.kvD + g * s.hd;
  float* ds = dS + row * s.Tk;
  double dot = 0;
  for (long long j = threadIdx.x; j < e; j += kRowThreads) {
    float acc = 0.0f;
    for (long long d = 0; d < s.hd; ++d) acc = __fmaf_rn(dO[d], v[j * s.kvD + d], acc);
    ds[j] = acc;
    dot += static_cast<double>(p[j]) * acc;
  }
  const float df = static_cast<float>(blockSum(dot, part));
  if (Gated) {
    const float t = gateFactor(s.gate);
    const float* q = Q + (b * s.T + i) * s.qD + h * s.hd;
    double gp = 0;
    for (long long j = threadIdx.x; j < s.Tk; j += kRowThreads) {
      float x = j < e ? __fmul_rn(p[j], __fsub_rn(ds[j], df)) : 0.0f;
      if (gatedKey(s, j)) {
        if (j < e) {
          float acc = 0.0f;
          for (long long d = 0; d < s.hd; ++d) acc = __fmaf_rn(q[d], k[j * s.kvD + d], acc);
          gp += static_cast<double>(x) * static_cast<double>(__fmul_rn(s.scale, acc));
        }
        x = __fmul_rn(x, t);
      }
      ds[j] = x;
    }
    gp = blockSum(gp, part);
    if (threadIdx.x == 0) rowGate[row] = gp;
  } else {
    for (long long j = threadIdx.x; j < s.Tk; j += kRowThreads) ds[j] = j < e ? __fmul_rn(p[j], __fsub_rn(ds[j], df)) : 0.0f;
  }
  __syncthreads();  // the row of dS is read by every thread below
  for (long long d = threadIdx.x; d < s.hd; d += kRowThreads) {
    float acc = 0.0f;
    for (long long j = 0; j < e; ++j) acc = __fmaf_rn(ds[j], k[j * s.kvD + d], acc);
    dQ[(st * s.M + b * s.T + i) * s.qD + h * s.hd + d] = __fmul_rn(s.scale, acc);
  }
}

// One CTA per (stream, sample, KV head, key row j): over the group's query heads in head
// order, dV_j = Σ_h Σ_i P_ij·dO_i and dK_j = Σ_h scale·Σ_i dS_ij·Q_i, over the queries that
// read key j (i ≥ j when causal, else all T) in order.
__global__ void __launch_bounds__(kRowThreads) attnBackKVKernel(const float* P, const float* dS, const float* dAtt,
                                                                const float* Q, float* dK, float* dV, AttnDims s) {
  const long long row = blockIdx.x, j = row % s.Tk, g = (row / s.Tk) % s.kvHeads;
  const long long sb = row / (s.Tk * s.kvHeads), b = sb % s.B, st = sb / s.B;
  const long long group = s.heads / s.kvHeads, i0 = s.causal ? j : 0;
  for (long long d = threadIdx.x; d < s.hd; d += kRowThreads) {
    float dv = 0.0f, dk = 0.0f;
    for (long long h = g * group; h < (g + 1) * group; ++h) {
      const float* p = P + (b * s.heads + h) * s.T * s.Tk;
      const float* ds = dS + ((st * s.B + b) * s.heads + h) * s.T * s.Tk;
      float av = 0.0f, ak = 0.0f;
      for (long long i = i0; i < s.T; ++i) {
        av = __fmaf_rn(p[i * s.Tk + j], dAtt[(st * s.M + b * s.T + i) * s.qD + h * s.hd + d], av);
        ak = __fmaf_rn(ds[i * s.Tk + j], Q[(b * s.T + i) * s.qD + h * s.hd + d], ak);
      }
      const float tk = __fmul_rn(s.scale, ak);
      if (h == g * group) dv = av, dk = tk;
      else dv = __fadd_rn(dv, av), dk = __fadd_rn(dk, tk);
    }
    dV[(st * s.Mk + b * s.Tk + j) * s.kvD + g * s.hd + d] = dv;
    dK[(st * s.Mk + b * s.Tk + j) * s.kvD + g * s.hd + d] = dk;
  }
}

// dGate[st] = float(Σ rowGate · (1 − t²)): one CTA per stream over its B·heads·T row
// partials ((sample, head, query) order, strided per thread, then the tree); no atomics.
__global__ void __launch_bounds__(kRowThreads) attnGateGradKernel(const double* rowGate, long long rowsPerStream,
                                                                  const float* gate, float* dGate) {
  __shared__ double part[kRowThreads];
  const double* r = rowGate + blockIdx.x * rowsPerStream;
  double sum = 0;
  for (long long i = threadIdx.x; i < rowsPerStream; i += kRowThreads) sum += r[i];
  sum = blockSum(sum, part);
  if (threadIdx.x == 0) {
    const float t = gateFactor(gate);
    const double dt = 1.0 - static_cast<double>(t) * t;  // d tanh(g) / dg
    dGate[blockIdx.x] = static_cast<float>(sum * dt);
  }
}

// ---- images ----
// P[b·N + py·gw + px, (c·p + ky)·p + kx] = images[((b·C + c)·H + py·p + ky)·W + px·p + kx], one
// thread per element of P (N = gh·gw patches of C·p·p).
__global__ void __launch_bounds__(kThreads) patchifyKernel(const float* images, float* P, long long B, long long C,
                                                           long long H, long long W, long long p) {
  const long long gw = W / p, N = (H / p) * gw, width = C * p * p;
  CG_GRID_LOOP(idx, B * N * width) {
    const long long r = idx / width, col = idx % width;
    const long long b = r / N, py = (r % N) / gw, px = r % gw;
    const long long c = col / (p * p), ky = (col / p) % p, kx = col % p;
    P[idx] = images[((b * C + c) * H + py * p + ky) * W + px * p + kx];
  }
}

// ---- sequences ----
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

// dst[b, 0..nD) = src[(b·T + t0)·D + 0..nD) (rows [t0, t0 + n) of each sample), or the reverse.
__global__ void __launch_bounds__(kThreads) gatherRowsKernel(float* dst, const float* src, long long B, long long T,
                                                             long long D, long long t0, long long nD, bool gather) {
  CG_GRID_LOOP(idx, B * nD) {
    const long long b = idx / nD, i = idx % nD, at = (b * T + t0) * D + i;
    if (gather) dst[idx] = src[at];
    else dst[at] = src[idx];
  }
}

// Rows [t0, t0 + n) of each of B samples of T rows = src (n·D values, nD = n·D).
__global__ void __launch_bounds__(kThreads) broadcastRowsKernel(float* dst, const float* src, long long B, long long T,
                                                                long long D, long long t0, long long nD) {
  CG_GRID_LOOP(idx, B * nD) {
    const long long b = idx / nD, i = idx % nD;
    dst[(b * T + t0) * D + i] = src[i];
  }
}

// Rows [t0, t0 + n) of each of B samples of T rows = embed rows of ids[b·idStride + idOffset + i].
__global__ void __launch_bounds__(kThreads) embedRowsKernel(float* H, const int* ids, long long idStride,
                                                            long long idOffset, const float* embed, long long B,
                                                            long long T, long long D, long long t0, long long n) {
  CG_GRID_LOOP(idx, B * n * D) {
    const long long d = idx % D, i = (idx / D) % n, b = idx / (n * D);
    H[(b * T + t0 + i) * D + d] = embed[static_cast<long long>(ids[b * idStride + idOffset + i]) * D + d];
  }
}

// The same from a bf16 table (frozen weights stored in bf16), each element widened exactly.
__global__ void __launch_bounds__(kThreads) embedRowsBf16Kernel(float* H, const int* ids, long long idStride,
                                                                long long idOffset, const unsigned short* embed,
                                                                long long B, long long T, long long D, long long t0,
                                                                long long n) {
  CG_GRID_LOOP(idx, B * n * D) {
    const long long d = idx % D, i = (idx / D) % n, b = idx / (n * D);
    H[(b * T + t0 + i) * D + d] =
        __int_as_float(static_cast<int>(static_cast<unsigned>(embed[static_cast<long long>(ids[b * idStride + idOffset + i]) * D + d]) << 16));
  }
}

// dst[i·ldDst + j] (= or +=) src[i·ldSrc + j], one thread per element.
__global__ void __launch_bounds__(kThreads) copyColumnsKernel(float* dst, long long ldDst, const float* src,
                                                              long long ldSrc, long long rows, long long cols,
                                                              bool accumulate) {
  CG_GRID_LOOP(idx, rows * cols) {
    const long long i = idx / cols, j = idx % cols;
    const float v = src[i * ldSrc + j];
    float* d = dst + i * ldDst + j;
    *d = accumulate ? __fadd_rn(*d, v) : v;
  }
}

// ---- pooling ----
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

// G (B, T, D) at tokens [t0, t0+n) += the pooling backward of dF[:, off .. off+D): mean
// dF / n (divided, as PyTorch's mean backward), max dF at the arg-max token.
__global__ void __launch_bounds__(kThreads) poolBackKernel(const float* dF, long long off, const int* argmax, float* G,
                                                           long long B, long long T, long long D, long long F,
                                                           long long t0, long long n, bool maxPool) {
  if (!maxPool) {
    const float fn = static_cast<float>(n);
    CG_GRID_LOOP(idx, B * n * D) {
      const long long d = idx % D, t = (idx / D) % n, b = idx / (n * D);
      float* g = G + (b * T + t0 + t) * D + d;
      *g = __fadd_rn(*g, __fdiv_rn(dF[b * F + off + d], fn));
    }
  } else {
    CG_GRID_LOOP(idx, B * D) {
      const long long b = idx / D, d = idx % D;
      float* g = G + (b * T + t0 + argmax[idx]) * D + d;
      *g = __fadd_rn(*g, dF[b * F + off + d]);
    }
  }
}

// ---- losses and gradient writes ----
// e = (O + bias) − Y; absErr = |e| (double); dO = sign(e)/(rows·cols).
__global__ void __launch_bounds__(kThreads) l1LossKernel(const float* O, const float* bias, const float* Y, float* dO,
                                                         double* absErr, long long rows, long long cols) {
  const float inv = __fdiv_rn(1.0f, static_cast<float>(rows * cols));
  CG_GRID_LOOP(i, rows * cols) {
    const float e = __fsub_rn(__fadd_rn(O[i], bias[i % cols]), Y[i]);
    absErr[i] = fabs(static_cast<double>(e));
    dO[i] = e > 0 ? inv : (e < 0 ? -inv : 0.0f);
  }
}

// sq = (f − f̃)² (double); dF = 2/n·(f − f̃) when dF is given.
__global__ void __launch_bounds__(kThreads) mseLossKernel(const float* f, const float* fa, double* sq, float* dF, long long n) {
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

AttnDims dimsOf(const AttentionShape& s) {
  const long long Tk = s.keys();
  const bool gated = s.gated();
  return AttnDims{s.B, s.T, Tk, s.B * s.T, s.B * Tk, s.heads, s.kvHeads, s.hd, s.qDim(), s.kvDim(),
                  gated ? s.gateBegin : 0, gated ? s.gateEnd : 0, gated ? s.gate : nullptr, s.scale, s.causal};
}

// The attention's scratch (attentionScratch): P, then the backward's dS, then the gate's row
// partials (doubles, at an even float offset: the scratch is a 256-byte-aligned workspace
// buffer).
struct AttnScratch {
  int64_t probs, dS, gateAt;
};
AttnScratch attnScratchOf(const AttentionShape& s, int streams) {
  const int64_t probs = s.B * s.heads * s.T * s.keys();
  const int64_t dS = probs * std::max(streams, 0);
  return AttnScratch{probs, dS, (probs + dS + 1) & ~int64_t{1}};
}

// A grid of one CTA per row: gridDim.x holds up to 2^31 − 1 (the callers' checkExtent
// keeps the rows below that; this is the backstop).
unsigned rowGrid(long long rows) {
  if (rows > 2147483647LL) throw CudaError("craftgrad: internal error: a launch of over 2^31 - 1 rows");
  return static_cast<unsigned>(rows);
}

}  // namespace

// A launch's own errors (configuration, arguments) are reported where it happens.
#define CG_LAUNCHED() CG_CUDA(device_, cudaGetLastError())

void CudaLayers::biasGelu(float* Z, const float* b, const float* residual, float* out, int64_t rows, int64_t cols) {
  biasGeluKernel<<<blocksFor(rows * cols), kThreads, 0, ctx_.stream>>>(Z, b, residual, out, rows, cols);
  CG_LAUNCHED();
}

void CudaLayers::geluBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) {
  geluBackKernel<<<std::min<unsigned>(blocksFor(n), 4096), kThreads, 0, ctx_.stream>>>(Z, G, dZ, n, streams);
  CG_LAUNCHED();
}

void CudaLayers::addBias(float* Y, const float* b, int64_t rows, int64_t cols) {
  addBiasKernel<<<blocksFor(rows * cols), kThreads, 0, ctx_.stream>>>(Y, b, rows, cols);
  CG_LAUNCHED();
}

void CudaLayers::add(float* Y, const float* X, int64_t n) {
  addKernel<<<blocksFor(n), kThreads, 0, ctx_.stream>>>(Y, X, n);
  CG_LAUNCHED();
}

void CudaLayers::biasGeluErf(float* Z, const float* b, const float* residual, float* out, int64_t rows, int64_t cols) {
  biasGeluErfKernel<<<blocksFor(rows * cols), kThreads, 0, ctx_.stream>>>(Z, b, residual, out, rows, cols);
  CG_LAUNCHED();
}

void CudaLayers::geluErfBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) {
  geluErfBackKernel<<<std::min<unsigned>(blocksFor(n), 4096), kThreads, 0, ctx_.stream>>>(Z, G, dZ, n, streams);
  CG_LAUNCHED();
}

void CudaLayers::biasRelu(float* Z, const float* b, float* out, int64_t rows, int64_t cols) {
  if (rows * cols <= 0) return;
  biasReluKernel<<<blocksFor(rows * cols), kThreads, 0, ctx_.stream>>>(Z, b, out, rows, cols);
  CG_LAUNCHED();
}

void CudaLayers::reluBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) {
  if (n <= 0 || streams <= 0) return;
  reluBackKernel<<<std::min<unsigned>(blocksFor(n), 4096), kThreads, 0, ctx_.stream>>>(Z, G, dZ, n, streams);
  CG_LAUNCHED();
}

void CudaLayers::layerScaleAdd(float* Y, const float* X, const float* gamma, int64_t rows, int64_t cols) {
  layerScaleAddKernel<<<blocksFor(rows * cols), kThreads, 0, ctx_.stream>>>(Y, X, gamma, rows, cols);
  CG_LAUNCHED();
}

void CudaLayers::layerScaleBackward(const float* dY, const float* gamma, float* dX, int64_t rows, int64_t cols) {
  layerScaleBackKernel<<<blocksFor(rows * cols), kThreads, 0, ctx_.stream>>>(dY, gamma, dX, rows, cols);
  CG_LAUNCHED();
}

void CudaLayers::swiglu(const float* Gt, const float* Up, float* Act, int64_t n) {
  swigluKernel<<<blocksFor(n), kThreads, 0, ctx_.stream>>>(Gt, Up, Act, n);
  CG_LAUNCHED();
}

void CudaLayers::swigluBackward(const float* Gt, const float* Up, float* dAct, float* dUp, int64_t n, int64_t m) {
  swigluBackKernel<<<blocksFor(n), kThreads, 0, ctx_.stream>>>(Gt, Up, dAct, dUp, n, m);
  CG_LAUNCHED();
}

void CudaLayers::rmsNorm(int64_t rows, int64_t D, float eps, const float* X, const float* w, float* Y, float* rstd) {
  if (rows <= 0) return;
  rmsNormKernel<<<rowGrid(rows), kRowThreads, 0, ctx_.stream>>>(X, w, Y, rstd, D, eps);
  CG_LAUNCHED();
}

void CudaLayers::rmsNormBackward(int64_t rows, int64_t M, int64_t D, const float* dY, const float* X, const float* rstd,
                                 const float* w, float* dX) {
  if (rows <= 0) return;
  rmsNormBackKernel<<<rowGrid(rows), kRowThreads, 0, ctx_.stream>>>(dY, X, rstd, w, dX, M, D);
  CG_LAUNCHED();
}

void CudaLayers::layerNorm(int64_t rows, int64_t D, float eps, const float* X, const float* w, const float* b, float* Y,
                           float* mean, float* rstd) {
  if (rows <= 0) return;
  layerNormKernel<<<rowGrid(rows), kRowThreads, 0, ctx_.stream>>>(X, w, b, Y, mean, rstd, D, eps);
  CG_LAUNCHED();
}

void CudaLayers::layerNormBackward(int64_t rows, int64_t M, int64_t D, const float* dY, const float* X,
                                   const float* mean, const float* rstd, const float* w, float* dX) {
  if (rows <= 0) return;
  layerNormBackKernel<<<rowGrid(rows), kRowThreads, 0, ctx_.stream>>>(dY, X, mean, rstd, w, dX, M, D);
  CG_LAUNCHED();
}

void CudaLayers::layerNormParamGrad(int64_t M, int64_t D, const float* dY, const float* X, const float* mean,
                                    const float* rstd, float scale, bool accumulate, float* dW, float* dB) {
  if (D <= 0) return;
  layerNormParamKernel<<<blocksFor(D), kThreads, 0, ctx_.stream>>>(dY, X, mean, rstd, scale, accumulate, dW, dB, M, D);
  CG_LAUNCHED();
}

void CudaLayers::rope(float* X, int64_t rows, int64_t width, int64_t hd, int64_t T, const float* cosT, const float* sinT,
                      bool inverse) {
  const long long n = rows * (width / hd) * (hd / 2);
  ropeKernel<<<blocksFor(n), kThreads, 0, ctx_.stream>>>(X, cosT, sinT, rows, width, hd, T, inverse);
  CG_LAUNCHED();
}

void CudaLayers::ropeProHead(float* X, int64_t rows, int64_t width, int64_t hd, int64_t T, const float* cosT,
                             const float* sinT, bool inverse) {
  const long long n = rows * (width / hd) * (hd / 2);
  if (n <= 0) return;
  ropeProHeadKernel<<<blocksFor(n), kThreads, 0, ctx_.stream>>>(X, cosT, sinT, rows, width, hd, T, inverse);
  CG_LAUNCHED();
}

// Bf16 (AttentionShape::precision): the fused kernels of attention_fused.cu, no T×Tk matrix;
// Fp32: the kernels above, unchanged.
int64_t CudaLayers::attentionScratch(const AttentionShape& s, int streams) const {
  if (s.precision == GemmPrecision::Bf16) return fusedAttentionScratch(s, streams);
  const AttnScratch a = attnScratchOf(s, streams);
  if (streams <= 0) return a.probs;
  return a.gateAt + 2 * static_cast<int64_t>(streams) * s.rows();  // streams·rows doubles
}

void CudaLayers::attentionForward(const AttentionShape& s, const float* Q, const float* K, const float* V, float* Att,
                                  float* rowMax, float* rowSum, float* scratch) {
  if (s.precision == GemmPrecision::Bf16) {
    fusedAttentionForward(device_, ctx_.stream, s, Q, K, V, Att, rowMax, rowSum);
    return;
  }
  const AttnDims d = dimsOf(s);
  const unsigned rows = rowGrid(s.rows());
  if (rows == 0) return;
  float* P = scratch;  // B·heads·T·Tk
  attnProbsKernel<<<rows, kRowThreads, 0, ctx_.stream>>>(Q, K, rowMax, rowSum, P, d, false);
  CG_LAUNCHED();
  attnOutKernel<<<rows, kRowThreads, 0, ctx_.stream>>>(P, V, Att, d);
  CG_LAUNCHED();
}

void CudaLayers::attentionBackward(const AttentionShape& s, int streams, const float* Q, const float* K, const float* V,
                                   const float* rowMax, const float* rowSum, const float* dAtt, float* dQ, float* dK,
                                   float* dV, float* dGate, float* scratch) {
  if (s.precision == GemmPrecision::Bf16) {
    const double* rowGate =
        fusedAttentionBackward(device_, ctx_.stream, s, streams, Q, K, V, rowMax, rowSum, dAtt, dQ, dK, dV, scratch);
    if (rowGate && s.gated()) {
      attnGateGradKernel<<<static_cast<unsigned>(streams), kRowThreads, 0, ctx_.stream>>>(rowGate, s.rows(), s.gate, dGate);
      CG_LAUNCHED();
    }
    return;
  }
  const AttnDims d = dimsOf(s);
  const unsigned rows = rowGrid(s.rows());
  if (rows == 0 || streams <= 0) return;
  if (reinterpret_cast<uintptr_t>(scratch) % alignof(double) != 0)
    throw CudaError("craftgrad: internal error: the attention's scratch is not 8-byte aligned");
  const AttnScratch a = attnScratchOf(s, streams);
  float* P = scratch;            // B·heads·T·Tk, shared by the streams
  float* dS = scratch + a.probs;  // streams·B·heads·T·Tk
  double* rowGate = reinterpret_cast<double*>(scratch + a.gateAt);  // streams·B·heads·T
  // Recomputing, the kernel only reads rowMax and rowSum.
  attnProbsKernel<<<rows, kRowThreads, 0, ctx_.stream>>>(Q, K, const_cast<float*>(rowMax), const_cast<float*>(rowSum),
                                                         P, d, true);
  CG_LAUNCHED();
  const unsigned rowsAll = rowGrid(streams * s.rows());
  if (d.g1 > d.g0)
    attnBackRowKernel<true><<<rowsAll, kRowThreads, 0, ctx_.stream>>>(P, dAtt, Q, K, V, dS, dQ, rowGate, d);
  else
    attnBackRowKernel<false><<<rowsAll, kRowThreads, 0, ctx_.stream>>>(P, dAtt, Q, K, V, dS, dQ, rowGate, d);
  CG_LAUNCHED();
  attnBackKVKernel<<<rowGrid(streams * s.B * s.kvHeads * d.Tk), kRowThreads, 0, ctx_.stream>>>(P, dS, dAtt, Q, dK, dV,
                                                                                                d);
  CG_LAUNCHED();
  if (d.g1 > d.g0) {
    attnGateGradKernel<<<static_cast<unsigned>(streams), kRowThreads, 0, ctx_.stream>>>(rowGate, s.rows(), d.gate, dGate);
    CG_LAUNCHED();
  }
}

void CudaLayers::patchify(const float* images, float* P, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p) {
  const long long n = B * (H / p) * (W / p) * C * p * p;
  if (n <= 0) return;
  patchifyKernel<<<blocksFor(n), kThreads, 0, ctx_.stream>>>(images, P, B, C, H, W, p);
  CG_LAUNCHED();
}

void CudaLayers::embedSequence(float* H, const float* prefix, const int32_t* ids, const float* embed,
                               const float* queries, int64_t B, int64_t T, int64_t P, int64_t S, int64_t D) {
  embedKernel<<<blocksFor(B * T * D), kThreads, 0, ctx_.stream>>>(H, prefix, ids, embed, queries, B, T, P, S, D);
  CG_LAUNCHED();
}

void CudaLayers::gatherRows(float* dst, const float* src, int64_t B, int64_t T, int64_t D, int64_t t0, int64_t n,
                            bool gather) {
  gatherRowsKernel<<<blocksFor(B * n * D), kThreads, 0, ctx_.stream>>>(dst, src, B, T, D, t0, n * D, gather);
  CG_LAUNCHED();
}

void CudaLayers::broadcastRows(float* dst, const float* src, int64_t B, int64_t T, int64_t D, int64_t t0, int64_t n) {
  if (B * n * D <= 0) return;
  broadcastRowsKernel<<<blocksFor(B * n * D), kThreads, 0, ctx_.stream>>>(dst, src, B, T, D, t0, n * D);
  CG_LAUNCHED();
}

void CudaLayers::embedRows(float* H, const int32_t* ids, int64_t idStride, int64_t idOffset, const float* embed,
                           int64_t B, int64_t T, int64_t D, int64_t t0, int64_t n) {
  if (B * n * D <= 0) return;
  embedRowsKernel<<<blocksFor(B * n * D), kThreads, 0, ctx_.stream>>>(H, ids, idStride, idOffset, embed, B, T, D, t0, n);
  CG_LAUNCHED();
}

void CudaLayers::embedRowsBf16(float* H, const int32_t* ids, int64_t idStride, int64_t idOffset, const uint16_t* embed,
                               int64_t B, int64_t T, int64_t D, int64_t t0, int64_t n) {
  if (B * n * D <= 0) return;
  embedRowsBf16Kernel<<<blocksFor(B * n * D), kThreads, 0, ctx_.stream>>>(
      H, ids, idStride, idOffset, reinterpret_cast<const unsigned short*>(embed), B, T, D, t0, n);
  CG_LAUNCHED();
}

void CudaLayers::copyColumns(float* dst, int64_t ldDst, const float* src, int64_t ldSrc, int64_t rows, int64_t cols,
                             bool accumulate) {
  if (rows * cols <= 0 || (!accumulate && dst == src && ldDst == ldSrc)) return;
  copyColumnsKernel<<<blocksFor(rows * cols), kThreads, 0, ctx_.stream>>>(dst, ldDst, src, ldSrc, rows, cols,
                                                                          accumulate);
  CG_LAUNCHED();
}

void CudaLayers::pool(const PoolShape& s, const float* H, float* f, int32_t* argmax) {
  poolKernel<<<blocksFor(s.B * s.D), kThreads, 0, ctx_.stream>>>(H, f, s.off, argmax, s.B, s.T, s.D, s.F, s.t0, s.n,
                                                                 s.pool == Pooling::Max);
  CG_LAUNCHED();
}

void CudaLayers::poolBackward(const PoolShape& s, const float* dF, const int32_t* argmax, float* G) {
  const bool mx = s.pool == Pooling::Max;
  poolBackKernel<<<blocksFor(mx ? s.B * s.D : s.B * s.n * s.D), kThreads, 0, ctx_.stream>>>(
      dF, s.off, argmax, G, s.B, s.T, s.D, s.F, s.t0, s.n, mx);
  CG_LAUNCHED();
}

void CudaLayers::l1Loss(const float* O, const float* bias, const float* Y, float* dO, int64_t rows, int64_t cols,
                        double* terms, double* loss) {
  l1LossKernel<<<blocksFor(rows * cols), kThreads, 0, ctx_.stream>>>(O, bias, Y, dO, terms, rows, cols);
  CG_LAUNCHED();
  meanKernel<<<1, kRowThreads, 0, ctx_.stream>>>(terms, rows * cols, loss);
  CG_LAUNCHED();
}

void CudaLayers::mseLoss(const float* f, const float* fa, float* dF, int64_t n, double* terms, double* loss) {
  mseLossKernel<<<blocksFor(n), kThreads, 0, ctx_.stream>>>(f, fa, terms, dF, n);
  CG_LAUNCHED();
  meanKernel<<<1, kRowThreads, 0, ctx_.stream>>>(terms, n, loss);
  CG_LAUNCHED();
}

void CudaLayers::columnSum(const float* X, int64_t rows, int64_t cols, int64_t ld, float scale, bool accumulate,
                           float* g) {
  colSumKernel<<<blocksFor(cols), kThreads, 0, ctx_.stream>>>(X, rows, cols, ld, scale, accumulate, g);
  CG_LAUNCHED();
}

}  // namespace cuda
}  // namespace craftgrad
