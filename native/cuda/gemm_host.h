// The matrix product on host arrays and its timing (gemm_host.cc), behind a plain C++
// interface (no CUDA headers): for the tests (Backend::gemmHost, cudaModelGemmBatch) and
// the benchmarks (bench/native). Compiled only with CRAFTGRAD_HAVE_CUDA.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "../core/backend.h"
#include "tuning.h"

namespace craftgrad {
namespace cuda {

// What the benchmark needs to compute the fp32 CUDA-core peak.
struct DeviceProps {
  int multiprocessors = 0;
  int clockKHz = 0;  // peak SM clock
  int major = 0, minor = 0;
  int fp32LanesPerSM = 0;  // FP32 FMA lanes per SM for the architecture (0 when unknown)
};
DeviceProps deviceProps(int device);

// Milliseconds of each of `reps` launches of the model's matrix-product kernel
// C = op(A)·op(B) (M×N, inner K) on scratch operands, timed with CUDA events after one
// warm-up (benchmarks). `precision` as timeGemmSet's.
std::vector<double> timeGemm(int device, int64_t M, int64_t N, int64_t K, bool transA, bool transB, int reps,
                             GemmVariant variant, GemmPrecision precision = GemmPrecision::Fp32);

// Milliseconds of each of `reps` runs of the products of `shapes` (same transposes, each
// with operands of its own): in one batched launch (as the model's LoRA gradients of a
// layer) or one launch each (benchmarks: what batching saves). Fp32: the operands are
// constants (0.5 and 0.25), as they always were. Bf16: the products go through gemmBatch's
// cuBLASLt path as a model call's do (fp32 operands rounded to bf16 into its workspace, then
// cublasLtMatmul with fp32 accumulation and output: the rounding is inside the timing), on
// seeded pseudo-random operands in [-1, 1) (constant data can run faster than real data).
struct GemmShape {
  int64_t M, N, K;
};
std::vector<double> timeGemmSet(int device, const std::vector<GemmShape>& shapes, bool transA, bool transB, int reps,
                                GemmVariant variant, bool batched, GemmPrecision precision = GemmPrecision::Fp32);

// Milliseconds of each of `reps` runs of `launch` (work queued on the device's stream, the
// one every CudaLayers operation uses), timed with CUDA events after one warm-up run
// (benchmarks: bench/native's cudaAttentionTime).
std::vector<double> timeOnStream(int device, int reps, const std::function<void()>& launch);

// C = beta·C + alpha·op(A)·op(B) on host arrays (row-major; A is M×K, or K×M when
// transposed; B likewise): upload, the product on the device, download; one stream sync.
// For tests: the GPU's products against the CPU's, bit for bit; and, with Bf16, the
// cuBLASLt product (gemm_lt.h) against the fp32 one.
void gemmHost(int device, int64_t M, int64_t N, int64_t K, float alpha, const float* a, bool transA, const float* b,
              bool transB, float beta, float* c, GemmVariant variant, GemmPrecision precision = GemmPrecision::Fp32);

// Several independent products of the same transposes on host arrays, batched as the model
// batches its LoRA gradients (launches of up to 4 products); otherwise as gemmHost. For
// tests: batched results against unbatched ones and the CPU's, bit for bit.
struct HostProduct {
  int64_t M, N, K;
  float alpha;
  const float* a;
  const float* b;
  float beta;
  float* c;
};
void gemmHostBatch(int device, const std::vector<HostProduct>& products, bool transA, bool transB, GemmVariant variant,
                   GemmPrecision precision = GemmPrecision::Fp32);

}  // namespace cuda
}  // namespace craftgrad
