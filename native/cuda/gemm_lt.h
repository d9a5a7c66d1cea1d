// Internal to native/cuda: the products through cuBLASLt (gemm_lt.cc), loaded at run time by
// native/cublaslt. gemmBatch (gemm_kernels.cu) asks here first; see README.md "Products
// through cuBLASLt" and docs/ARCHITECTURE.md §8 "Precision".
#pragma once
#include <cstdint>

#include "../core/backend.h"
#include "gemm_cuda.h"

namespace craftgrad {
namespace cuda {

// Computes the products p[0..count) (as gemmBatch states them: row-major, beta 0 or 1) with
// cublasLtMatmul on ctx.stream when `precision` asks for cuBLASLt: Bf16 (A and B rounded to
// bf16, round to nearest even, into a workspace; fp32 accumulation and output), or Fp32 with
// CRAFTGRAD_CUDA_FP32_GEMM=cublaslt (tuning.h). Returns false when the hand-written kernels
// must compute them instead: an fp32 request by default, a batch with K = 0, or cuBLASLt not
// available (then a one-line notice on stderr, once per process). Throws CublasLtError
// (ERR_CRAFTGRAD_CUBLASLT) when cuBLASLt fails, or has no algorithm without split-K for a shape.
bool ltGemmBatch(const DeviceContext& ctx, const Product* p, int count, GemmPrecision precision);

// gemm_kernels.cu: dst[r·dstLd + c] = bf16(src[r·ld + c]) for a rows×cols matrix, round to
// nearest even (NaN stays a quiet NaN, ±Inf and overflow give ±Inf), on ctx.stream; the
// padding columns of dst are not written.
void launchToBf16(const DeviceContext& ctx, const float* src, long long rows, long long cols, long long ld, uint16_t* dst,
                  long long dstLd);

// gemm_kernels.cu: dst[i] = the bf16 bits src[i] widened exactly to fp32 (bits << 16), i < n, on
// ctx.stream: a frozen bf16 vector for the fp32 layers, or a bf16 operand for the
// hand-written products when cuBLASLt is missing.
void launchWidenBf16(const DeviceContext& ctx, const uint16_t* src, long long n, float* dst);

}  // namespace cuda
}  // namespace craftgrad
