// GELU, tanh form (PyTorch's nn.GELU(approximate='tanh')), written as
// gelu(x) = 0.5·x·(1 + tanh(k)) = x·σ(2k), k = √(2/π)·(x + 0.044715·x³), with an exp
// built from plain multiplies and adds (Cody–Waite range reduction + degree-7 Taylor
// polynomial, relative error ~1e-7). No libm call: one template body runs on a scalar type
// here and on AVX2/AVX-512 vector types in gemm_*.cc; every operation is IEEE-exact
// rounded and -ffp-contract=off forbids fusing, so all variants produce the same bits.
// Anonymous namespace: each translation unit (each ISA) gets its own copy, never a
// COMDAT shared with code compiled for another ISA.
#pragma once
// The CUDA backend (native/cuda/layer_kernels.cu) instantiates the same templates on a
// device type whose operators are explicitly rounded intrinsics.
#if defined(__CUDACC__)
#define CG_HOST_DEVICE __host__ __device__
#else
#define CG_HOST_DEVICE
#endif
#include <cmath>
#include <cstdint>
#include <cstring>

namespace craftgrad {
namespace {

struct ScalarF {
  float v;
  static ScalarF splat(float x) { return {x}; }
  friend ScalarF operator+(ScalarF a, ScalarF b) { return {a.v + b.v}; }
  friend ScalarF operator-(ScalarF a, ScalarF b) { return {a.v - b.v}; }
  friend ScalarF operator*(ScalarF a, ScalarF b) { return {a.v * b.v}; }
  friend ScalarF operator/(ScalarF a, ScalarF b) { return {a.v / b.v}; }
  static ScalarF minv(ScalarF a, ScalarF b) { return {a.v < b.v ? a.v : b.v}; }  // = vminps(a, b)
  static ScalarF maxv(ScalarF a, ScalarF b) { return {a.v > b.v ? a.v : b.v}; }  // = vmaxps(a, b)
  static ScalarF floorv(ScalarF a) { return {std::floor(a.v)}; }
  // 2^n for an integer-valued n in [-126, 127].
  static ScalarF pow2(ScalarF n) {
    const int32_t bits = (static_cast<int32_t>(n.v) + 127) << 23;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return {f};
  }
};

template <class V>
CG_HOST_DEVICE inline V expApproxV(V y) {
  y = V::minv(y, V::splat(88.0f));
  y = V::maxv(y, V::splat(-87.0f));
  const V n = V::floorv(y * V::splat(1.44269504f) + V::splat(0.5f));
  const V r = (y - n * V::splat(0.693145752f)) - n * V::splat(1.42860677e-06f);  // ln2 split hi/lo
  V p = V::splat(1.0f / 5040.0f);
  p = p * r + V::splat(1.0f / 720.0f);
  p = p * r + V::splat(1.0f / 120.0f);
  p = p * r + V::splat(1.0f / 24.0f);
  p = p * r + V::splat(1.0f / 6.0f);
  p = p * r + V::splat(0.5f);
  p = p * r + V::splat(1.0f);
  p = p * r + V::splat(1.0f);
  return p * V::pow2(n);
}

// σ(2k) at x.
template <class V>
CG_HOST_DEVICE inline V sigma2kV(V x) {
  const V k = V::splat(0.7978845608028654f) * (x + V::splat(0.044715f) * x * x * x);
  return V::splat(1.0f) / (V::splat(1.0f) + expApproxV(V::splat(-2.0f) * k));
}

template <class V>
CG_HOST_DEVICE inline V geluV(V x) {
  return x * sigma2kV(x);
}

// d/dx gelu = σ + 2·x·σ·(1 − σ)·√(2/π)·(1 + 3·0.044715·x²).
template <class V>
CG_HOST_DEVICE inline V geluGradV(V x) {
  const V s = sigma2kV(x);
  return s + V::splat(2.0f) * x * s * (V::splat(1.0f) - s) * V::splat(0.7978845608028654f) *
                 (V::splat(1.0f) + V::splat(3.0f * 0.044715f) * x * x);
}

inline float gelu(float x) { return geluV(ScalarF{x}).v; }
inline float geluGrad(float x) { return geluGradV(ScalarF{x}).v; }

}  // namespace
}  // namespace craftgrad
