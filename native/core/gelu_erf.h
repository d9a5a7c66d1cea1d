// GELU, exact (erf) form: PyTorch's nn.GELU() default (approximate='none'),
// gelu(x) = x·Φ(x) = 0.5·x·(1 + erf(x/√2))
// (https://docs.pytorch.org/docs/stable/generated/torch.nn.GELU.html). The tanh form the
// built-in model uses is gelu_math.h. Which upstream modules use which form (VLA-Adapter,
// issue #27): timm's ViT Mlp (timm v0.9.10, the version VLA-Adapter pins,
// timm/models/vision_transformer.py:455 `act_layer = get_act_layer(act_layer) or nn.GELU`,
// timm/layers/mlp.py:21,35) for both towers: vit_large_patch14_reg4_dinov2 and
// vit_so400m_patch14_siglip_224 set no act_layer (vision_transformer.py:2460-2463,
// 2548-2550) and Prismatic passes act_layer=None explicitly (VLA-Adapter
// prismatic/extern/hf/configuration_prismatic.py:44, modeling_prismatic.py:132-138), which
// overrides any model default: erf form in both towers (SigLIP's original big_vision and
// transformers' SiglipVisionConfig use the tanh form; timm, and so VLA-Adapter, do not).
// VLA-Adapter's projector (modeling_prismatic.py:258-259, fused: fc1, GELU, fc2, GELU, fc3)
// and ProprioProjector (prismatic/models/projectors.py:17): nn.GELU(), erf form. Its action
// head (MLPResNet, MLPResNetBlock_Pro: prismatic/models/action_heads.py:98, 296-300) uses
// ReLU, not GELU.
//
// Computed in double (std::erf / std::exp on the CPU, the device's erf / exp in double on
// CUDA), rounded to float once: within an ulp of x·Φ(x) for every float x, the same bits
// on every thread count and instruction set (one scalar path), and the CPU's and CUDA's
// equal unless the double value lies within a few double ulps of a float rounding
// boundary. Its derivative: Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π).
#pragma once
#include <cmath>

#if defined(__CUDACC__)
#define CG_ERF_HOST_DEVICE __host__ __device__
#else
#define CG_ERF_HOST_DEVICE
#endif

namespace craftgrad {

CG_ERF_HOST_DEVICE inline float geluErf(float x) {
  const double d = static_cast<double>(x);
  return static_cast<float>(0.5 * d * (1.0 + erf(d * 0.70710678118654752440)));
}

CG_ERF_HOST_DEVICE inline float geluErfGrad(float x) {
  const double d = static_cast<double>(x);
  const double cdf = 0.5 * (1.0 + erf(d * 0.70710678118654752440));
  const double pdf = exp(-0.5 * d * d) * 0.39894228040143267794;  // 1/√(2π)
  return static_cast<float>(cdf + d * pdf);
}

}  // namespace craftgrad
