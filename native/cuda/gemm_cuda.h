// Internal to native/cuda: the matrix product of every model (gemm_kernels.cu), for the
// models' kernel files and the host-array products of gemm_host.cc.
// C = beta·C + alpha·op(A)·op(B), each output one fmaf chain over k = 0..K-1 (core/layers.h's
// numeric contract); beta 0 or 1. With GemmPrecision::Bf16 (or CRAFTGRAD_CUDA_FP32_GEMM=cublaslt)
// and cuBLASLt loaded, cublasLtMatmul computes them instead (gemm_lt.h: other bits).
#pragma once
#include "../core/layers.h"
#include "cuda_internal.h"
#include "tuning.h"

namespace craftgrad {
namespace cuda {

// An operand and one product of a batch, as core/layers.h states them.
using Mat = LayerMat;
using Product = LayerProduct;

// The products p[0..count), independent (no C is another's operand or overlaps another C),
// all with A.trans and B.trans equal to the first's, in launches of up to 4, on ctx.stream.
// Operands are read through the read-only data cache: no C may overlap an A or B. Every
// dimension and leading dimension must stay below 2^31 (CudaError otherwise).
void gemmBatch(const DeviceContext& ctx, const Product* p, int count, GemmVariant variant = GemmVariant::Auto,
               GemmPrecision precision = GemmPrecision::Fp32);
void gemm(const DeviceContext& ctx, long long M, long long N, long long K, float alpha, Mat A, Mat B, float beta,
          float* C, long long ldc, GemmVariant variant = GemmVariant::Auto, GemmPrecision precision = GemmPrecision::Fp32);

}  // namespace cuda
}  // namespace craftgrad
