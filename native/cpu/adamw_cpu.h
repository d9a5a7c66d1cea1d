// The CPU optimizer step: AdamW alone, and the surgery's pass 2 fused with AdamW (the
// trainer's step: pass 1 is reduceAllCpu from surgery_cpu.h, run first over every tensor
// so that non-finite gradients and the clipping norm are known before anything is written).
//
// The CUDA fused step (native/cuda/adamw_kernels.cu) keeps this split. Pass 1 = the CUDA surgery's reduction
// (same chunk→tensor table, same per-chunk partials reduced per tensor in fixed order),
// with the per-tensor d, q, ‖a‖² and non-finite flags copied to the host once; the host
// decides skip / clip / c_i exactly as the CPU path does (craftReduce); pass 2 = one
// launch over all tensors reading a, r, p, m, v and writing p, m, v, c_i per tensor from
// a small device table, the same fp32 operation order as adamw_body.inc (fma for
// a + c·r, then ·gradScale, IEEE div and sqrt: compile without --use_fast_math so the
// CPU and GPU agree bit for bit).
#pragma once
#include <cstdint>

#include "../core/adamw_params.h"
#include "../core/numerics.h"
#include "../core/tensor_span.h"

namespace craftgrad {

// One tensor of the fused step: a, r read; p, m, v updated in place; c from pass 1.
struct FusedTensor {
  const float* a;
  const float* r;
  float* p;
  float* m;
  float* v;
  int64_t n;
  float c;  // surgery coefficient λ − (conflict ? d/(q+eps) : 0), rounded to float
};

// g = fma(c_i, r, a)·gradScale, then AdamW, for every tensor. Elementwise: the same bits
// for any thread count, and the same bits as surgeryCpu followed by adamwCpu.
void adamwFusedCpu(const FusedTensor* tensors, int64_t count, const AdamWParams& params);

// AdamW with g = grad·gradScale over n elements.
void adamwCpu(const float* grad, float* p, float* m, float* v, int64_t n, const AdamWParams& params);

}  // namespace craftgrad
