// The CPU optimizer step: AdamW alone, and the surgery's pass 2 fused with AdamW (the
// trainer's step: pass 1 is reduceAllCpu from surgery_cpu.h, run first over every tensor
// so that non-finite gradients and the clipping norm are known before anything is written).
#pragma once
#include <cstdint>

#include "../core/numerics.h"
#include "../core/tensor_span.h"

namespace craftgrad {

// torch.optim.AdamW's hyper-parameters for one step (validated by the caller).
struct AdamWParams {
  double lr = 5e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weightDecay = 0.01;
  double step = 1;         // the optimizer's step count after this step (t >= 1)
  double gradScale = 1.0;  // multiplies the gradient (clipping)
};

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

// ‖out‖² of one tensor from pass 1 alone: ‖a + c·r‖² = aa + 2c·d + c²·q (clamped at 0).
// Caveat: when a is nearly anti-parallel to r the terms cancel (‖ã‖² = aa − d²/q with
// projection) and the result keeps only about aa·2^-52 absolute accuracy, unlike the
// standalone surgery, which sums the squares of the values it wrote. It only feeds the
// reported norm and the clipping factor.
double outSquaredNorm(const ReduceSums& s, double c);

}  // namespace craftgrad
