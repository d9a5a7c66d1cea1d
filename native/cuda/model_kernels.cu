// AdapterPolicy on a CUDA device: the CPU backend's algorithm (native/cpu/model_cpu.cc)
// step for step, with hand-written kernels (no cuBLAS). See model_cuda.h for the numeric
// contract. Status: never run on a GPU by its author (no GPU was available); it passes
// test/model-cuda.test.mjs on the CPU emulator (test/cuda-emulator), and that file checks
// it against the CPU backend on a GPU.
#include <cuda_runtime.h>

// gelu_math.h's templates are __host__ __device__; their host-only instantiation on
// ScalarF (never called from device code here) would warn 20014 at every line.
#pragma nv_diag_suppress 20014

#include <algorithm>
#include <mutex>
#include <vector>

#include "cuda_internal.h"
#include "dev_math.cuh"
#include "device_scratch.h"
#include "gemm_cuda.h"
#include "model_cuda.h"

namespace craftgrad {
namespace cuda {
namespace {

constexpr int kThreads = 256;
inline unsigned blocksFor(long long n) { return static_cast<unsigned>(std::max<long long>(1, (n + kThreads - 1) / kThreads)); }

// ---- matrix product: C = beta·C + alpha·op(A)·op(B), beta 0 or 1 ----
// A TBM×TBN output tile per CTA; each thread owns R×R outputs (R = 4 or 8) as R/4 runs of
// 4 rows and R/4 runs of 4 columns, the runs TBM/(R/4) apart, so its operands for one k
// are float4 shared loads: 2·R/4 loads for R² FMAs. k goes in tiles of BK through shared
// memory padded by 4 floats a row (tile stores free of bank conflicts, rows 16-byte
// aligned), two buffers deep: the next k tile is loaded from global memory into registers
// (16-byte loads where the operand is aligned) while the current one is multiplied, then
// stored to the other buffer; one barrier per k tile. Each output is one accumulator over
// k = 0..K-1 in order (fmaf), as on the CPU, then alpha·acc, then + C; the tail tile stops
// at K (no padded terms: fma(0, 0, -0) would give +0). Every variant, batched or not,
// therefore gives the same bits: the pipeline changes when operands arrive, not the chain.
//
// One launch computes up to kMaxBatch independent products of the same transposes (the
// LoRA gradients of a layer): blockIdx.x runs over the tiles of every product in turn, so
// products of different shapes (D×r and r×D) launch no idle CTAs.
constexpr int BK = 8;
constexpr int kMaxBatch = 4;

struct GemmDesc {
  const float* A;
  const float* B;
  float* C;
  int M, N, K, lda, ldb, ldc;
  float alpha, beta;
  int vecA, vecB;  // base 16-byte aligned and ld a multiple of 4: float4 global loads allowed
  int tilesN;      // column tiles of this product
  int firstTile;   // its first tile in the launch's blockIdx.x
};

struct GemmBatch {
  GemmDesc d[kMaxBatch];
  int count;
};

// One operand's k tile (BK × TBX, X the rows of op(A) or the columns of op(B)), staged
// through registers, PER float4s a thread. kContig: k is the operand's contiguous dimension
// (A row-major, B transposed); a float4 then holds 4 consecutive k of one x and is stored
// transposed, else it holds 4 consecutive x of one k and is stored as one float4.
template <int TBX, bool kContig, int NT>
struct TileStage {
  static constexpr int F4 = TBX * BK / 4, PER = (F4 + NT - 1) / NT;
  float4 v[PER];

  __device__ static void coords(int e, int& x, int& k) {
    if (kContig) x = e / (BK / 4), k = (e % (BK / 4)) * 4;
    else k = e / (TBX / 4), x = (e % (TBX / 4)) * 4;
  }
  __device__ static long long at(int ld, int x, int k) {
    return kContig ? static_cast<long long>(x) * ld + k : static_cast<long long>(k) * ld + x;
  }
  // full: the whole tile lies inside the operand and vec holds (unconditional float4 loads).
  __device__ void load(const float* __restrict__ p, int ld, int x0, int X, int k0, int K, bool vec, bool full) {
#pragma unroll
    for (int q = 0; q < PER; ++q) {
      const int e = static_cast<int>(threadIdx.x) + q * NT;
      if (F4 % NT != 0 && e >= F4) break;
      int x, k;
      coords(e, x, k);
      const int gx = x0 + x, gk = k0 + k;
      if (full) {
        v[q] = __ldg(reinterpret_cast<const float4*>(p + at(ld, gx, gk)));
        continue;
      }
      const bool inside = kContig ? (gx < X && gk + 3 < K) : (gk < K && gx + 3 < X);
      if (vec && inside) {
        v[q] = __ldg(reinterpret_cast<const float4*>(p + at(ld, gx, gk)));
        continue;
      }
      float t[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int ux = kContig ? gx : gx + u, uk = kContig ? gk + u : gk;
        t[u] = (ux < X && uk < K) ? p[at(ld, ux, uk)] : 0.0f;
      }
      v[q] = make_float4(t[0], t[1], t[2], t[3]);
    }
  }
  __device__ void store(float (*s)[TBX + 4]) const {
#pragma unroll
    for (int q = 0; q < PER; ++q) {
      const int e = static_cast<int>(threadIdx.x) + q * NT;
      if (F4 % NT != 0 && e >= F4) break;
      int x, k;
      coords(e, x, k);
      if (kContig) {
        s[k][x] = v[q].x, s[k + 1][x] = v[q].y, s[k + 2][x] = v[q].z, s[k + 3][x] = v[q].w;
      } else {
        *reinterpret_cast<float4*>(&s[k][x]) = v[q];
      }
    }
  }
};

template <bool TA, bool TB, int TBM, int TBN, int R>
__global__ void __launch_bounds__((TBM / R) * (TBN / R)) gemmKernel(const GemmBatch batch) {
  constexpr int RUNS = R / 4, TX = TBN / R, NT = (TBM / R) * (TBN / R);
  __shared__ __align__(16) float As[2][BK][TBM + 4];
  __shared__ __align__(16) float Bs[2][BK][TBN + 4];
  // This CTA's product: selected with constant indices (a run-time index into the
  // parameter would copy the batch to local memory).
  const int tile = static_cast<int>(blockIdx.x);
  GemmDesc d = batch.d[0];
#pragma unroll
  for (int z = 1; z < kMaxBatch; ++z)
    if (z < batch.count && tile >= batch.d[z].firstTile) d = batch.d[z];
  const int t = tile - d.firstTile;
  const int i0 = (t / d.tilesN) * TBM, j0 = (t % d.tilesN) * TBN;
  const int M = d.M, N = d.N, K = d.K;
  const int tid = threadIdx.x, tx = tid % TX, ty = tid / TX;
  // Output (r, c) of this thread is tile row rowOf(r), tile column colOf(c).
  auto rowOf = [&](int r) { return (r / 4) * (TBM / RUNS) + ty * 4 + r % 4; };
  auto colOf = [&](int c) { return (c / 4) * (TBN / RUNS) + tx * 4 + c % 4; };
  float acc[R][R];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < R; ++c) acc[r][c] = 0.0f;

  TileStage<TBM, !TA, NT> sa;
  TileStage<TBN, TB, NT> sb;
  const bool fullA = d.vecA && i0 + TBM <= M, fullB = d.vecB && j0 + TBN <= N;
  auto fetch = [&](int k0) {
    const bool kIn = k0 + BK <= K;
    sa.load(d.A, d.lda, i0, M, k0, K, d.vecA, fullA && kIn);
    sb.load(d.B, d.ldb, j0, N, k0, K, d.vecB, fullB && kIn);
  };
  // acc += the k rows [0, kmax) of one staged tile, in order.
  auto multiply = [&](const float (*as)[TBM + 4], const float (*bs)[TBN + 4], int k) {
    float a[R], b[R];
#pragma unroll
    for (int q = 0; q < RUNS; ++q) {
      const float4 av = *reinterpret_cast<const float4*>(&as[k][rowOf(4 * q)]);
      const float4 bv = *reinterpret_cast<const float4*>(&bs[k][colOf(4 * q)]);
      a[4 * q] = av.x, a[4 * q + 1] = av.y, a[4 * q + 2] = av.z, a[4 * q + 3] = av.w;
      b[4 * q] = bv.x, b[4 * q + 1] = bv.y, b[4 * q + 2] = bv.z, b[4 * q + 3] = bv.w;
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int c = 0; c < R; ++c) acc[r][c] = __fmaf_rn(a[r], b[c], acc[r][c]);
  };

  const int tiles = (K + BK - 1) / BK;
  if (tiles > 0) {
    fetch(0);
    sa.store(As[0]);
    sb.store(Bs[0]);
  }
  __syncthreads();
  for (int kt = 0; kt < tiles; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < tiles;
    if (more) fetch((kt + 1) * BK);  // in flight while the current tile is multiplied
    const int kmax = min(BK, K - kt * BK);
    if (kmax == BK) {
#pragma unroll
      for (int k = 0; k < BK; ++k) multiply(As[cur], Bs[cur], k);
    } else {
      for (int k = 0; k < kmax; ++k) multiply(As[cur], Bs[cur], k);
    }
    if (more) {
      // The other buffer was last read before the previous iteration's barrier.
      sa.store(As[cur ^ 1]);
      sb.store(Bs[cur ^ 1]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int gi = i0 + rowOf(r);
    if (gi >= M) continue;
#pragma unroll
    for (int c = 0; c < R; ++c) {
      const int gj = j0 + colOf(c);
      if (gj >= N) continue;
      float* p = d.C + static_cast<long long>(gi) * d.ldc + gj;
      const float v = __fmul_rn(d.alpha, acc[r][c]);
      *p = d.beta == 0.0f ? v : __fadd_rn(*p, v);
    }
  }
}

// By shape, when neither the caller nor CRAFTGRAD_CUDA_GEMM (tuning.h) forces one. A first
// guess, to be tuned on a GPU with bench/model.js --device cuda, which times every variant:
// the 8×8 register tiles when there are enough tiles (over the whole batch) to give every
// SM of the device one 64×64 tile or two 128×128 ones, else the 4×4 kernel, whose
// 256-thread CTAs keep four times as many threads busy on the narrow LoRA products; and
// when even its 64×64 tiles would leave half of the SMs idle (a layer's LoRA gradients:
// few outputs, long K that the fixed summation order cannot split), `small32`: the same
// 4×4 outputs a thread in 32×32 tiles (64-thread CTAs), spread over four times as many SMs.
GemmVariant chooseGemmVariant(const Product* p, int count, int multiprocessors) {
  const long long sms = std::max(1, multiprocessors);
  long long tiles64 = 0, tiles128 = 0;  // 64×64 and 128×128 tiles
  for (int i = 0; i < count; ++i) {
    tiles64 += ((p[i].M + 63) / 64) * ((p[i].N + 63) / 64);
    tiles128 += ((p[i].M + 127) / 128) * ((p[i].N + 127) / 128);
  }
  if (tiles128 >= 2 * sms) return GemmVariant::Tiled128;
  if (tiles64 >= sms) return GemmVariant::Tiled64;
  if (2 * tiles64 >= sms) return GemmVariant::Simple;
  return GemmVariant::Small32;
}

bool aligned16(const float* p, long long ld) { return reinterpret_cast<uintptr_t>(p) % 16 == 0 && ld % 4 == 0; }

template <int TBM, int TBN, int R>
void launchGemm(cudaStream_t s, unsigned tiles, bool ta, bool tb, const GemmBatch& b) {
  constexpr unsigned threads = (TBM / R) * (TBN / R);
  if (!ta && !tb) gemmKernel<false, false, TBM, TBN, R><<<tiles, threads, 0, s>>>(b);
  else if (!ta && tb) gemmKernel<false, true, TBM, TBN, R><<<tiles, threads, 0, s>>>(b);
  else if (ta && !tb) gemmKernel<true, false, TBM, TBN, R><<<tiles, threads, 0, s>>>(b);
  else gemmKernel<true, true, TBM, TBN, R><<<tiles, threads, 0, s>>>(b);
}

}  // namespace

// gemm_cuda.h: in launches of up to kMaxBatch.
void gemmBatch(const DeviceContext& ctx, const Product* p, int count, GemmVariant variant) {
  if (variant == GemmVariant::Auto) variant = tuning().gemm;
  const bool ta = count > 0 && p[0].A.trans, tb = count > 0 && p[0].B.trans;
  for (int first = 0; first < count; first += kMaxBatch) {
    const int n = std::min(kMaxBatch, count - first);
    const GemmVariant v = variant == GemmVariant::Auto ? chooseGemmVariant(p + first, n, ctx.multiprocessors) : variant;
    const long long tile = v == GemmVariant::Tiled128 ? 128 : v == GemmVariant::Small32 ? 32 : 64;
    GemmBatch b{};
    long long tiles = 0;
    for (int i = 0; i < n; ++i) {
      const Product& q = p[first + i];
      if (q.A.trans != ta || q.B.trans != tb) throw CudaError("craftgrad: internal error: a batch of products mixes transposes");
      GemmDesc& d = b.d[b.count];
      if (q.M <= 0 || q.N <= 0) continue;  // nothing to write
      d = GemmDesc{q.A.p, q.B.p, q.C, static_cast<int>(q.M), static_cast<int>(q.N), static_cast<int>(q.K),
                   static_cast<int>(q.A.ld), static_cast<int>(q.B.ld), static_cast<int>(q.ldc), q.alpha, q.beta,
                   aligned16(q.A.p, q.A.ld), aligned16(q.B.p, q.B.ld), static_cast<int>((q.N + tile - 1) / tile),
                   static_cast<int>(tiles)};
      tiles += ((q.M + tile - 1) / tile) * d.tilesN;
      ++b.count;
    }
    if (b.count == 0) continue;
    // blockIdx.x (up to 2^31 - 1) counts the tiles of the whole launch.
    if (tiles > 2147483647LL) throw CudaError("craftgrad: matrix product too large for one launch (over 2^31 tiles)");
    switch (v) {
      case GemmVariant::Tiled128: launchGemm<128, 128, 8>(ctx.stream, static_cast<unsigned>(tiles), ta, tb, b); break;
      case GemmVariant::Tiled64: launchGemm<64, 64, 8>(ctx.stream, static_cast<unsigned>(tiles), ta, tb, b); break;
      case GemmVariant::Small32: launchGemm<32, 32, 4>(ctx.stream, static_cast<unsigned>(tiles), ta, tb, b); break;
      default: launchGemm<64, 64, 4>(ctx.stream, static_cast<unsigned>(tiles), ta, tb, b);
    }
  }
}

void gemm(const DeviceContext& ctx, long long M, long long N, long long K, float alpha, Mat A, Mat B, float beta,
          float* C, long long ldc, GemmVariant variant) {
  const Product p{M, N, K, alpha, A, B, beta, C, ldc};
  gemmBatch(ctx, &p, 1, variant);
}

namespace {

// ---- element-wise and small kernels ----
// Z[i,j] += b[j]; out[i,j] = (H ? H[i,j] : 0) + gelu(Z[i,j]).
__global__ void __launch_bounds__(kThreads) biasGeluKernel(float* Z, const float* b, const float* H, float* out, long long rows, long long D) {
  const long long n = rows * D;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n; i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float v = __fadd_rn(Z[i], b[i % D]);
    Z[i] = v;
    out[i] = H ? __fadd_rn(H[i], dgelu(v)) : dgelu(v);
  }
}

// dZ[s][i] = G[s][i] · gelu'(Z[i]) for S streams of n values.
__global__ void __launch_bounds__(kThreads) geluBackKernel(const float* Z, const float* G, float* dZ, long long n, int S) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n; i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float g = dgeluGrad(Z[i]);
    for (int s = 0; s < S; ++s) dZ[s * n + i] = __fmul_rn(G[s * n + i], g);
  }
}

// In-place dY *= gelu'(Y).
__global__ void __launch_bounds__(kThreads) geluScaleKernel(const float* Y, float* dY, long long n) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i < n) dY[i] = __fmul_rn(dY[i], dgeluGrad(Y[i]));
}

// f[b, off+d] = pool over t of H[b, t, d]; one thread per (b, d), t in order.
__global__ void __launch_bounds__(kThreads) poolKernel(const float* H, float* f, long long off, int* argmax, long long B, long long T, long long D,
                           long long F, bool maxPool) {
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (idx >= B * D) return;
  const long long b = idx / D, d = idx % D;
  const float* h = H + b * T * D;
  if (!maxPool) {
    double s = 0;
    for (long long t = 0; t < T; ++t) s += h[t * D + d];
    f[b * F + off + d] = static_cast<float>(s / static_cast<double>(T));
  } else {
    float best = h[d];
    int arg = 0;
    for (long long t = 1; t < T; ++t) {
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

// G[b, t, d] += pooling backward of dF[b, off+d].
__global__ void __launch_bounds__(kThreads) poolBackKernel(const float* dF, long long off, const int* argmax, float* G, long long B, long long T,
                               long long D, long long F, bool maxPool) {
  const long long idx = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (!maxPool) {
    if (idx >= B * T * D) return;
    const long long b = idx / (T * D), d = idx % D;
    G[idx] = __fadd_rn(G[idx], __fdiv_rn(dF[b * F + off + d], static_cast<float>(T)));
  } else {
    if (idx >= B * D) return;
    const long long b = idx / D, d = idx % D;
    float* g = G + (b * T + argmax[idx]) * D + d;
    *g = __fadd_rn(*g, dF[b * F + off + d]);
  }
}

// Action loss terms: o = O + b2, e = o − y; dO = sign(e)/(B·KA); absErr = |e| in double.
__global__ void __launch_bounds__(kThreads) actionLossKernel(const float* O, const float* b2, const float* Y, float* dO, double* absErr, long long B,
                                 long long KA) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= B * KA) return;
  const float inv = __fdiv_rn(1.0f, static_cast<float>(B * KA));
  const float e = __fsub_rn(__fadd_rn(O[i], b2[i % KA]), Y[i]);
  absErr[i] = fabs(static_cast<double>(e));
  dO[i] = e > 0 ? inv : (e < 0 ? -inv : 0.0f);
}

// Retention terms: sq = (f − f̃)² in double; dFr = 2/(B·F) · (f − f̃) when dFr is given.
__global__ void __launch_bounds__(kThreads) retentionKernel(const float* f, const float* fa, double* sq, float* dFr, long long n) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const double d = static_cast<double>(f[i]) - static_cast<double>(fa[i]);
  sq[i] = d * d;
  if (dFr) dFr[i] = __fmul_rn(__fdiv_rn(2.0f, static_cast<float>(n)), __fsub_rn(f[i], fa[i]));
}

// out[0] = Σ v[i] / n: one CTA, per-thread strided sums then a fixed tree (deterministic).
__global__ void __launch_bounds__(kThreads) meanKernel(const double* v, long long n, double* out) {
  __shared__ double part[kThreads];
  double s = 0;
  for (long long i = threadIdx.x; i < n; i += kThreads) s += v[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreads / 2; w >= 1; w /= 2) {
    if (static_cast<int>(threadIdx.x) < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = part[0] / static_cast<double>(n);
}

// g[j] = (accumulate ? g[j] : 0) + scale·float(Σ_i X[i, j]) with the sum in double, i in order
// (the CPU's bias gradients).
__global__ void __launch_bounds__(kThreads) colSumKernel(const float* X, long long rows, long long cols, float scale, bool accumulate, float* g) {
  const long long j = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  double s = 0;
  for (long long i = 0; i < rows; ++i) s += X[i * cols + j];
  const float t = __fmul_rn(scale, static_cast<float>(s));
  g[j] = accumulate ? __fadd_rn(g[j], t) : t;
}

// ---- per-device scratch, grown when needed ----
struct ModelScratch;  // this step's scratch pool (device_scratch.h)

void check(int device) { CG_CUDA(device, cudaGetLastError()); }

}  // namespace

ModelStepResult modelStep(int device, const ModelConfig& c, const ModelStepArgs& a) {
  DeviceContext& ctx = deviceContext(device);
  cudaStream_t st = ctx.stream;
  const ModelLayout lay = modelLayout(c);
  const long long B = a.batch, T = c.T, D = c.D, r = c.r, F = c.F(), Hd = c.H, KA = c.actionDim();
  const long long M = B * T, MD = M * D, n = c.activeBlocks();
  const bool withRet = a.mode == ModelMode::Craft || a.mode == ModelMode::EvalRet;
  const bool withGrad = a.mode == ModelMode::Craft || a.mode == ModelMode::Baseline;
  const long long S = a.mode == ModelMode::Craft ? 2 : 1;
  const float* P = a.params;
  const bool maxPool = c.pool == Pooling::Max;
  // The kernels index matrices with int dimensions.
  const long long kIntMax = 2147483647LL;
  if (S * M > kIntMax || MD > kIntMax || B * std::max(F, Hd) > kIntMax)
    throw CudaError("craftgrad: batch too large for the CUDA model (batch×T×D must stay below 2^31)");

  // Sizes as in model_cpu.cc, plus the staged batch and the loss terms.
  Carver sizing{nullptr};
  auto plan = [&](Carver& cv) {
    struct Bufs {
      float *Weff, *WeffA, *Hs, *Zs, *Hping, *Zping, *f, *fa, *Y1, *G1, *O, *dO, *dF, *dY1, *G, *dZ, *u, *V, *tok, *act;
      int *argR, *argAq, *argR0, *argAq0;
      double *terms, *losses;
    } b;
    b.Weff = cv.take<float>(n * D * D);
    b.WeffA = cv.take<float>(D * D);
    b.Hs = cv.take<float>((n + 1) * MD);
    b.Zs = cv.take<float>(n * MD);
    b.Hping = cv.take<float>(2 * MD);
    b.Zping = cv.take<float>(MD);
    b.f = cv.take<float>(B * F);
    b.fa = cv.take<float>(B * F);
    b.Y1 = cv.take<float>(B * Hd);
    b.G1 = cv.take<float>(B * Hd);
    b.O = cv.take<float>(B * KA);
    b.dO = cv.take<float>(B * KA);
    b.dF = cv.take<float>(S * B * F);
    b.dY1 = cv.take<float>(B * Hd);
    b.G = cv.take<float>(S * MD);
    b.dZ = cv.take<float>(S * MD);
    b.u = cv.take<float>(M * r);
    b.V = cv.take<float>(S * M * r);
    b.tok = cv.take<float>(MD);
    b.act = cv.take<float>(B * KA);
    b.argR = cv.take<int>(B * D);
    b.argAq = cv.take<int>(B * D);
    b.argR0 = cv.take<int>(B * D);
    b.argAq0 = cv.take<int>(B * D);
    b.terms = cv.take<double>(std::max(B * KA, B * F));
    b.losses = cv.take<double>(2);
    return b;
  };
  plan(sizing);
  Scratch& sc = scratchFor<ModelScratch>(device);
  std::lock_guard<std::mutex> lock(sc.m);  // one model call per device at a time
  Carver cv{sc.reserve(device, sizing.used, "model scratch")};
  const auto bf = plan(cv);

  CG_CUDA(device, cudaMemcpyAsync(bf.tok, a.tokens, sizeof(float) * MD, cudaMemcpyHostToDevice, st));
  CG_CUDA(device, cudaMemcpyAsync(bf.act, a.actions, sizeof(float) * B * KA, cudaMemcpyHostToDevice, st));

  auto features = [&](const float* lora, float* Weff, float* H, float* Z, bool keep, float* f, int* argR, int* argAq) {
    CG_CUDA(device, cudaMemcpyAsync(H, bf.tok, sizeof(float) * MD, cudaMemcpyDeviceToDevice, st));
    for (long long l = 0; l < n; ++l) {
      float* Wl = keep ? Weff + l * D * D : Weff;
      CG_CUDA(device, cudaMemcpyAsync(Wl, a.frozen + lay.baseW[l], sizeof(float) * D * D, cudaMemcpyDeviceToDevice, st));
      gemm(ctx, D, D, r, c.loraScale(), Mat{lora + lay.loraB[l], r, false}, Mat{lora + lay.loraA[l], D, false}, 1.0f, Wl, D);
      const float* Hin = keep ? H + l * MD : H + (l % 2) * MD;
      float* Hout = keep ? H + (l + 1) * MD : H + ((l + 1) % 2) * MD;
      float* Zl = keep ? Z + l * MD : Z;
      gemm(ctx, M, D, D, 1.0f, Mat{Hin, D, false}, Mat{Wl, D, true}, 0.0f, Zl, D);
      biasGeluKernel<<<blocksFor(MD), kThreads, 0, st>>>(Zl, a.frozen + lay.baseB[l], Hin, Hout, M, D);
      if (l + 1 == c.m && c.usesRaw()) poolKernel<<<blocksFor(B * D), kThreads, 0, st>>>(Hout, f, c.rawOffset(), argR, B, T, D, F, maxPool);
      if (l + 1 == c.L && c.usesAq()) poolKernel<<<blocksFor(B * D), kThreads, 0, st>>>(Hout, f, c.aqOffset(), argAq, B, T, D, F, maxPool);
    }
  };

  // ---- forward ----
  features(P, bf.Weff, bf.Hs, bf.Zs, true, bf.f, bf.argR, bf.argAq);
  gemm(ctx, B, Hd, F, 1.0f, Mat{bf.f, F, false}, Mat{P + lay.fc1w, F, true}, 0.0f, bf.Y1, Hd);
  biasGeluKernel<<<blocksFor(B * Hd), kThreads, 0, st>>>(bf.Y1, P + lay.fc1b, nullptr, bf.G1, B, Hd);
  gemm(ctx, B, KA, Hd, 1.0f, Mat{bf.G1, Hd, false}, Mat{P + lay.fc2w, Hd, true}, 0.0f, bf.O, KA);
  actionLossKernel<<<blocksFor(B * KA), kThreads, 0, st>>>(bf.O, P + lay.fc2b, bf.act, bf.dO, bf.terms, B, KA);
  meanKernel<<<1, kThreads, 0, st>>>(bf.terms, B * KA, bf.losses);
  if (withRet) {
    features(a.anchor, bf.WeffA, bf.Hping, bf.Zping, false, bf.fa, bf.argR0, bf.argAq0);
    retentionKernel<<<blocksFor(B * F), kThreads, 0, st>>>(bf.f, bf.fa, bf.terms, S == 2 ? bf.dF + B * F : nullptr, B * F);
    meanKernel<<<1, kThreads, 0, st>>>(bf.terms, B * F, bf.losses + 1);
  }

  if (withGrad) {
    const float sc2 = a.scale, beta = a.accumulate ? 1.0f : 0.0f;
    float* gA = a.gAct;
    gemm(ctx, KA, Hd, B, sc2, Mat{bf.dO, KA, true}, Mat{bf.G1, Hd, false}, beta, gA + lay.fc2w, Hd);
    colSumKernel<<<blocksFor(KA), kThreads, 0, st>>>(bf.dO, B, KA, sc2, a.accumulate, gA + lay.fc2b);
    gemm(ctx, B, Hd, KA, 1.0f, Mat{bf.dO, KA, false}, Mat{P + lay.fc2w, Hd, false}, 0.0f, bf.dY1, Hd);
    geluScaleKernel<<<blocksFor(B * Hd), kThreads, 0, st>>>(bf.Y1, bf.dY1, B * Hd);
    gemm(ctx, Hd, F, B, sc2, Mat{bf.dY1, Hd, true}, Mat{bf.f, F, false}, beta, gA + lay.fc1w, F);
    colSumKernel<<<blocksFor(Hd), kThreads, 0, st>>>(bf.dY1, B, Hd, sc2, a.accumulate, gA + lay.fc1b);
    gemm(ctx, B, F, Hd, 1.0f, Mat{bf.dY1, Hd, false}, Mat{P + lay.fc1w, F, false}, 0.0f, bf.dF, F);
    if (S == 2 && !a.accumulate)
      CG_CUDA(device, cudaMemsetAsync(a.gRet + lay.fc1w, 0, sizeof(float) * (lay.paramCount - lay.fc1w), st));
    float* gOut[2] = {a.gAct, a.gRet};

    CG_CUDA(device, cudaMemsetAsync(bf.G, 0, sizeof(float) * S * MD, st));
    const float sl = c.loraScale() * sc2;
    for (long long l = n - 1; l >= 0; --l) {
      for (long long s = 0; s < S; ++s) {
        const unsigned grid = blocksFor(maxPool ? B * D : MD);
        if (l + 1 == c.L && c.usesAq())
          poolBackKernel<<<grid, kThreads, 0, st>>>(bf.dF + s * B * F, c.aqOffset(), bf.argAq, bf.G + s * MD, B, T, D, F, maxPool);
        if (l + 1 == c.m && c.usesRaw())
          poolBackKernel<<<grid, kThreads, 0, st>>>(bf.dF + s * B * F, c.rawOffset(), bf.argR, bf.G + s * MD, B, T, D, F, maxPool);
      }
      const float* Zl = bf.Zs + l * MD;
      const float* Hl = bf.Hs + l * MD;
      geluBackKernel<<<std::min<unsigned>(blocksFor(MD), 4096), kThreads, 0, st>>>(Zl, bf.G, bf.dZ, MD, static_cast<int>(S));
      const float* Al = P + lay.loraA[l];
      const float* Bl = P + lay.loraB[l];
      gemm(ctx, M, r, D, 1.0f, Mat{Hl, D, false}, Mat{Al, D, true}, 0.0f, bf.u, r);
      gemm(ctx, S * M, r, D, 1.0f, Mat{bf.dZ, D, false}, Mat{Bl, r, false}, 0.0f, bf.V, r);
      // The LoRA gradients of both streams: independent products, one launch.
      Product grads[4];
      int ng = 0;
      for (long long s = 0; s < S; ++s) {
        grads[ng++] = Product{D, r, M, sl, Mat{bf.dZ + s * MD, D, true}, Mat{bf.u, r, false}, beta, gOut[s] + lay.loraB[l], r};
        grads[ng++] = Product{r, D, M, sl, Mat{bf.V + s * M * r, r, true}, Mat{Hl, D, false}, beta, gOut[s] + lay.loraA[l], D};
      }
      gemmBatch(ctx, grads, ng);
      if (l > 0) gemm(ctx, S * M, D, D, 1.0f, Mat{bf.dZ, D, false}, Mat{bf.Weff + l * D * D, D, false}, 1.0f, bf.G, D);
    }
    if (!a.accumulate)
      for (long long l = n; l < c.L; ++l)
        for (long long s = 0; s < S; ++s) {
          CG_CUDA(device, cudaMemsetAsync(gOut[s] + lay.loraA[l], 0, sizeof(float) * r * D, st));
          CG_CUDA(device, cudaMemsetAsync(gOut[s] + lay.loraB[l], 0, sizeof(float) * D * r, st));
        }
  }
  check(device);
  double losses[2] = {0, 0};
  CG_CUDA(device, cudaMemcpyAsync(losses, bf.losses, sizeof(double) * (withRet ? 2 : 1), cudaMemcpyDeviceToHost, st));
  CG_CUDA(device, cudaStreamSynchronize(st));
  ModelStepResult res;
  res.actionLoss = losses[0];
  res.retentionLoss = withRet ? losses[1] : 0.0;
  return res;
}

void copyDevice(int device, float* dst, const float* src, int64_t n) {
  if (n <= 0 || dst == src) return;
  DeviceContext& ctx = deviceContext(device);
  CG_CUDA(device, cudaMemcpyAsync(dst, src, sizeof(float) * static_cast<size_t>(n), cudaMemcpyDeviceToDevice, ctx.stream));
  CG_CUDA(device, cudaStreamSynchronize(ctx.stream));
}

DeviceProps deviceProps(int device) {
  deviceContext(device);  // checks the device, makes it current
  DeviceProps p;
  CG_CUDA(device, cudaDeviceGetAttribute(&p.multiprocessors, cudaDevAttrMultiProcessorCount, device));
  CG_CUDA(device, cudaDeviceGetAttribute(&p.clockKHz, cudaDevAttrClockRate, device));
  CG_CUDA(device, cudaDeviceGetAttribute(&p.major, cudaDevAttrComputeCapabilityMajor, device));
  CG_CUDA(device, cudaDeviceGetAttribute(&p.minor, cudaDevAttrComputeCapabilityMinor, device));
  // FP32 lanes per SM (CUDA C Programming Guide, "Arithmetic Instructions" throughput table).
  const int cc = p.major * 10 + p.minor;
  if (cc == 60) p.fp32LanesPerSM = 64;
  else if (p.major == 6) p.fp32LanesPerSM = 128;
  else if (p.major == 7) p.fp32LanesPerSM = 64;
  else if (cc == 80) p.fp32LanesPerSM = 64;
  else if (p.major >= 8) p.fp32LanesPerSM = 128;
  return p;
}

std::vector<double> timeGemmSet(int device, const std::vector<GemmShape>& shapes, bool transA, bool transB, int reps,
                                GemmVariant variant, bool batched) {
  DeviceContext& ctx = deviceContext(device);
  cudaStream_t st = ctx.stream;
  size_t elems = 0;
  for (const GemmShape& g : shapes) elems += static_cast<size_t>(g.M * g.K + g.K * g.N + g.M * g.N);
  float* base = static_cast<float*>(mallocDevice(device, std::max<size_t>(sizeof(float) * elems, 4), "gemm benchmark"));
  std::vector<double> ms;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  try {
    std::vector<Product> prods;
    float* at = base;
    for (const GemmShape& g : shapes) {
      float* A = at;
      float* Bm = A + g.M * g.K;
      float* C = Bm + g.K * g.N;
      at = C + g.M * g.N;
      launchFill(ctx, A, g.M * g.K, 0.5f);
      launchFill(ctx, Bm, g.K * g.N, 0.25f);
      prods.push_back(Product{g.M, g.N, g.K, 1.0f, Mat{A, transA ? g.M : g.K, transA}, Mat{Bm, transB ? g.K : g.N, transB},
                              0.0f, C, g.N});
    }
    CG_CUDA(device, cudaEventCreate(&e0));
    CG_CUDA(device, cudaEventCreate(&e1));
    auto launch = [&]() {
      if (batched) gemmBatch(ctx, prods.data(), static_cast<int>(prods.size()), variant);
      else
        for (const Product& q : prods) gemmBatch(ctx, &q, 1, variant);
    };
    launch();  // warm-up
    for (int i = 0; i < reps; ++i) {
      CG_CUDA(device, cudaEventRecord(e0, st));
      launch();
      CG_CUDA(device, cudaEventRecord(e1, st));
      CG_CUDA(device, cudaEventSynchronize(e1));
      float t = 0;
      CG_CUDA(device, cudaEventElapsedTime(&t, e0, e1));
      ms.push_back(t);
    }
    check(device);
  } catch (...) {
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    freeDevice(base);
    throw;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  freeDevice(base);
  return ms;
}

std::vector<double> timeGemm(int device, int64_t M, int64_t N, int64_t K, bool transA, bool transB, int reps,
                             GemmVariant variant) {
  return timeGemmSet(device, {GemmShape{M, N, K}}, transA, transB, reps, variant, false);
}

void gemmHostBatch(int device, const std::vector<HostProduct>& products, bool transA, bool transB, GemmVariant variant) {
  DeviceContext& ctx = deviceContext(device);
  cudaStream_t st = ctx.stream;
  size_t elems = 0;
  for (const HostProduct& h : products) elems += static_cast<size_t>(h.M * h.K + h.K * h.N + h.M * h.N);
  float* base = static_cast<float*>(mallocDevice(device, std::max<size_t>(sizeof(float) * elems, 4), "gemm operands"));
  try {
    std::vector<Product> prods;
    float* at = base;
    for (const HostProduct& h : products) {
      const size_t na = static_cast<size_t>(h.M * h.K), nb = static_cast<size_t>(h.K * h.N), nc = static_cast<size_t>(h.M * h.N);
      float* dA = at;
      float* dB = dA + na;
      float* dC = dB + nb;
      at = dC + nc;
      if (na) CG_CUDA(device, cudaMemcpyAsync(dA, h.a, sizeof(float) * na, cudaMemcpyHostToDevice, st));
      if (nb) CG_CUDA(device, cudaMemcpyAsync(dB, h.b, sizeof(float) * nb, cudaMemcpyHostToDevice, st));
      // C goes up even when beta is 0: an element the kernel failed to write comes back as
      // the caller's value (tests poison it).
      if (nc) CG_CUDA(device, cudaMemcpyAsync(dC, h.c, sizeof(float) * nc, cudaMemcpyHostToDevice, st));
      prods.push_back(Product{h.M, h.N, h.K, h.alpha, Mat{dA, transA ? h.M : h.K, transA},
                              Mat{dB, transB ? h.K : h.N, transB}, h.beta, dC, h.N});
    }
    gemmBatch(ctx, prods.data(), static_cast<int>(prods.size()), variant);
    check(device);
    for (size_t i = 0; i < products.size(); ++i) {
      const size_t nc = static_cast<size_t>(products[i].M * products[i].N);
      if (nc) CG_CUDA(device, cudaMemcpyAsync(products[i].c, prods[i].C, sizeof(float) * nc, cudaMemcpyDeviceToHost, st));
    }
    CG_CUDA(device, cudaStreamSynchronize(st));
  } catch (...) {
    freeDevice(base);
    throw;
  }
  freeDevice(base);
}

void gemmHost(int device, int64_t M, int64_t N, int64_t K, float alpha, const float* a, bool transA, const float* b,
              bool transB, float beta, float* c, GemmVariant variant) {
  gemmHostBatch(device, {HostProduct{M, N, K, alpha, a, b, beta, c}}, transA, transB, variant);
}

}  // namespace cuda
}  // namespace craftgrad
