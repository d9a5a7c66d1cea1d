// AdapterPolicy on a CUDA device: the CPU backend's algorithm (native/cpu/model_cpu.cc)
// step for step, with hand-written kernels (no cuBLAS; the products: gemm_kernels.cu). See model_cuda.h for the numeric
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

}  // namespace cuda
}  // namespace craftgrad
