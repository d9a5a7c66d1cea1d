// Internal to native/cuda: the model's matrix product (model_kernels.cu) for the other
// kernel files (qwen2_kernels.cu). C = beta·C + alpha·op(A)·op(B), each output one fmaf
// chain over k = 0..K-1 (model_cuda.h's numeric contract); beta 0 or 1.
#pragma once
#include "cuda_internal.h"
#include "tuning.h"

namespace craftgrad {
namespace cuda {

struct Mat {
  const float* p;
  long long ld;
  bool trans;
};

// One product of a batch: C (M×N, leading dimension ldc) = beta·C + alpha·op(A)·op(B).
struct Product {
  long long M, N, K;
  float alpha;
  Mat A, B;
  float beta;
  float* C;
  long long ldc;
};

// The products p[0..count), independent (no C is another's operand or overlaps another C),
// all with A.trans and B.trans equal to the first's, in launches of up to 4, on ctx.stream.
// Operands are read through the read-only data cache: no C may overlap an A or B.
void gemmBatch(const DeviceContext& ctx, const Product* p, int count, GemmVariant variant = GemmVariant::Auto);
void gemm(const DeviceContext& ctx, long long M, long long N, long long K, float alpha, Mat A, Mat B, float beta,
          float* C, long long ldc, GemmVariant variant = GemmVariant::Auto);

}  // namespace cuda
}  // namespace craftgrad
