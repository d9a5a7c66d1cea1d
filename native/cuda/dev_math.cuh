// Internal to native/cuda kernel files: gelu_math.h's templates on a float whose operators
// are explicitly rounded (nvcc may not contract them into fma), so they round as on the CPU.
#pragma once
#include <cuda_runtime.h>

#include "../core/gelu_math.h"

namespace craftgrad {
namespace cuda {

struct DevF {
  float v;
  __device__ static DevF splat(float x) { return {x}; }
  __device__ friend DevF operator+(DevF a, DevF b) { return {__fadd_rn(a.v, b.v)}; }
  __device__ friend DevF operator-(DevF a, DevF b) { return {__fsub_rn(a.v, b.v)}; }
  __device__ friend DevF operator*(DevF a, DevF b) { return {__fmul_rn(a.v, b.v)}; }
  __device__ friend DevF operator/(DevF a, DevF b) { return {__fdiv_rn(a.v, b.v)}; }
  __device__ static DevF minv(DevF a, DevF b) { return {a.v < b.v ? a.v : b.v}; }
  __device__ static DevF maxv(DevF a, DevF b) { return {a.v > b.v ? a.v : b.v}; }
  __device__ static DevF floorv(DevF a) { return {floorf(a.v)}; }
  __device__ static DevF pow2(DevF n) { return {__int_as_float((static_cast<int>(n.v) + 127) << 23)}; }
};

__device__ inline float dgelu(float x) { return geluV(DevF{x}).v; }
__device__ inline float dgeluGrad(float x) { return geluGradV(DevF{x}).v; }

}  // namespace cuda
}  // namespace craftgrad
