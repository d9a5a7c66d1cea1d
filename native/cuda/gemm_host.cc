// The matrix product on host arrays and its timing (gemm_host.h): host code around the
// kernels of gemm_kernels.cu, for tests and benchmarks.
#include "gemm_host.h"

#include <algorithm>
#include <vector>

#include "cuda_internal.h"
#include "gemm_cuda.h"

namespace craftgrad {
namespace cuda {

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

// n floats at dst (device) of seeded pseudo-random values in [-1, 1): one 1 Mi-float tile,
// made on the host once and copied over the range.
static void fillPseudoRandom(int device, const DeviceContext& ctx, float* dst, int64_t n) {
  static const std::vector<float> tile = [] {
    std::vector<float> t((size_t{1} << 20) + 7);  // not a power of two: rows do not repeat in step
    uint32_t s = 12345;
    for (float& x : t) {
      s = s * 1664525u + 1013904223u;
      x = static_cast<float>(s) / 2147483648.0f - 1.0f;
    }
    return t;
  }();
  for (int64_t o = 0; o < n; o += static_cast<int64_t>(tile.size())) {
    const int64_t len = std::min<int64_t>(static_cast<int64_t>(tile.size()), n - o);
    CG_CUDA(device, cudaMemcpyAsync(dst + o, tile.data(), sizeof(float) * static_cast<size_t>(len), cudaMemcpyHostToDevice,
                                    ctx.stream));
  }
  CG_CUDA(device, cudaStreamSynchronize(ctx.stream));  // the tile is pageable host memory
}

std::vector<double> timeOnStream(int device, int reps, const std::function<void()>& launch) {
  DeviceContext& ctx = deviceContext(device);
  std::vector<double> ms;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  try {
    CG_CUDA(device, cudaEventCreate(&e0));
    CG_CUDA(device, cudaEventCreate(&e1));
    launch();  // warm-up
    CG_CUDA(device, cudaStreamSynchronize(ctx.stream));
    for (int i = 0; i < reps; ++i) {
      CG_CUDA(device, cudaEventRecord(e0, ctx.stream));
      launch();
      CG_CUDA(device, cudaEventRecord(e1, ctx.stream));
      CG_CUDA(device, cudaEventSynchronize(e1));
      float t = 0;
      CG_CUDA(device, cudaEventElapsedTime(&t, e0, e1));
      ms.push_back(t);
    }
    CG_CUDA(device, cudaGetLastError());
  } catch (...) {
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    throw;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return ms;
}

std::vector<double> timeGemmSet(int device, const std::vector<GemmShape>& shapes, bool transA, bool transB, int reps,
                                GemmVariant variant, bool batched, GemmPrecision precision) {
  DeviceContext& ctx = deviceContext(device);
  size_t elems = 0;
  for (const GemmShape& g : shapes) elems += static_cast<size_t>(g.M * g.K + g.K * g.N + g.M * g.N);
  float* base = static_cast<float*>(mallocDevice(device, std::max<size_t>(sizeof(float) * elems, 4), "gemm benchmark"));
  std::vector<double> ms;
  try {
    std::vector<Product> prods;
    float* at = base;
    for (const GemmShape& g : shapes) {
      float* A = at;
      float* Bm = A + g.M * g.K;
      float* C = Bm + g.K * g.N;
      at = C + g.M * g.N;
      if (precision == GemmPrecision::Bf16) {
        fillPseudoRandom(device, ctx, A, g.M * g.K);
        fillPseudoRandom(device, ctx, Bm, g.K * g.N);
      } else {
        launchFill(ctx, A, g.M * g.K, 0.5f);
        launchFill(ctx, Bm, g.K * g.N, 0.25f);
      }
      prods.push_back(Product{g.M, g.N, g.K, 1.0f, Mat{A, transA ? g.M : g.K, transA}, Mat{Bm, transB ? g.K : g.N, transB},
                              0.0f, C, g.N});
    }
    ms = timeOnStream(device, reps, [&]() {
      if (batched) gemmBatch(ctx, prods.data(), static_cast<int>(prods.size()), variant, precision);
      else
        for (const Product& q : prods) gemmBatch(ctx, &q, 1, variant, precision);
    });
  } catch (...) {
    freeDevice(base);
    throw;
  }
  freeDevice(base);
  return ms;
}

std::vector<double> timeGemm(int device, int64_t M, int64_t N, int64_t K, bool transA, bool transB, int reps,
                             GemmVariant variant, GemmPrecision precision) {
  return timeGemmSet(device, {GemmShape{M, N, K}}, transA, transB, reps, variant, false, precision);
}

void gemmHostBatch(int device, const std::vector<HostProduct>& products, bool transA, bool transB, GemmVariant variant,
                   GemmPrecision precision) {
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
    gemmBatch(ctx, prods.data(), static_cast<int>(prods.size()), variant, precision);
    CG_CUDA(device, cudaGetLastError());
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
              bool transB, float beta, float* c, GemmVariant variant, GemmPrecision precision) {
  gemmHostBatch(device, {HostProduct{M, N, K, alpha, a, b, beta, c}}, transA, transB, variant, precision);
}


}  // namespace cuda
}  // namespace craftgrad
