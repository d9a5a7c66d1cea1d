// AdamW's hyper-parameters and the per-step constants every backend derives from them
// (backend-neutral: native/cpu and native/cuda use the same rounded constants, so their
// element updates can agree bit for bit).
#pragma once
#include <cmath>

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

// Per-step constants, computed in double as PyTorch computes them in Python floats and
// rounded to float once. Plain data (passed by value to CPU kernels and CUDA launches).
struct AdamWConsts {
  float decay;      // 1 - lr·weight_decay (decoupled decay: p *= decay first)
  float oneMinusBeta1;
  float beta2;
  float oneMinusBeta2;
  float bc2Sqrt;    // sqrt(1 - beta2^t)
  float eps;
  float stepSize;   // lr / (1 - beta1^t)
  float gradScale;  // gradient multiplier (the clipping factor; 1 when not clipping)
};

inline AdamWConsts makeAdamWConsts(const AdamWParams& p) {
  AdamWConsts k;
  k.decay = static_cast<float>(1.0 - p.lr * p.weightDecay);
  k.oneMinusBeta1 = static_cast<float>(1.0 - p.beta1);
  k.beta2 = static_cast<float>(p.beta2);
  k.oneMinusBeta2 = static_cast<float>(1.0 - p.beta2);
  k.bc2Sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(p.beta2, p.step)));
  k.eps = static_cast<float>(p.eps);
  k.stepSize = static_cast<float>(p.lr / (1.0 - std::pow(p.beta1, p.step)));
  k.gradScale = static_cast<float>(p.gradScale);
  return k;
}

}  // namespace craftgrad
