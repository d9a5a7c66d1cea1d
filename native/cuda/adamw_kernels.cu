// The trainer's optimizer step on the device: the surgery's pass 2 fused with AdamW, and
// AdamW alone. Pass 1 is cuda::reduce (surgery_kernels.cu); the host decides skip, clip
// and c_i from its statistics exactly as on the CPU (native/napi/adamw_call.cc), then
// one launch here applies the update.
//
// Work decomposition: one CTA of 256 threads per entry of the layout's chunk -> tensor
// table (cuda_layout.cuh, built once per layout): the CTA reads its tensor's coefficient
// once and walks the chunk's elements with 16-byte loads and stores when every buffer is
// 16-byte aligned at the chunk's start (scalar otherwise, same arithmetic). Every element
// is independent, so the bits do not depend on the decomposition.
//
// Numerics: the element update of native/cpu/adamw_body.inc, operation for operation,
// with explicit round-to-nearest intrinsics (no contraction, IEEE division and square
// root; the backend is compiled without --use_fast_math and with --fmad=false), and the
// per-step constants of native/core/adamw_params.h computed once on the host: the CPU's
// bits. Data is streamed (__ldcs/__stcs): each element is read once and written once.
#include <cuda_runtime.h>

#include <mutex>

#include "cuda_layout.cuh"

namespace craftgrad {
namespace cuda {
namespace {

constexpr int kAdamThreads = 256;
constexpr int kAdamMinCtasPerSm = 3;

// p ← p·decay; m ← m + (1−β1)·(g − m); v ← v·β2 + ((1−β2)·g)·g;
// p ← p − stepSize·(m / (sqrt(v)/sqrt(bc2) + eps)). One rounding per operation.
__device__ __forceinline__ void adamwOne(float g, float& p, float& m, float& v, const AdamWConsts& k) {
  const float pv = __fmul_rn(p, k.decay);
  const float mn = __fadd_rn(m, __fmul_rn(k.oneMinusBeta1, __fsub_rn(g, m)));
  const float vn = __fadd_rn(__fmul_rn(v, k.beta2), __fmul_rn(__fmul_rn(k.oneMinusBeta2, g), g));
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vn), k.bc2Sqrt), k.eps);
  p = __fsub_rn(pv, __fmul_rn(k.stepSize, __fdiv_rn(mn, denom)));
  m = mn;
  v = vn;
}

// The gradient of element i: fma(c, r, a)·gradScale (fused) or grad·gradScale.
template <bool Fused>
__device__ __forceinline__ float gradOf(float x, float y, float c, float scale) {
  return Fused ? __fmul_rn(__fmaf_rn(c, y, x), scale) : __fmul_rn(x, scale);
}

// One chunk: `x` is a (fused) or grad (standalone); `y` is r (fused only).
template <bool Fused, bool Vec>
__device__ void adamwChunk(const float* __restrict__ x, const float* __restrict__ y, float c, float* __restrict__ p,
                           float* __restrict__ m, float* __restrict__ v, int len, const AdamWConsts& k) {
  int i0 = 0;
  if (Vec) {
    const int n4 = len >> 2;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    const float4* y4 = reinterpret_cast<const float4*>(y);
    float4* p4 = reinterpret_cast<float4*>(p);
    float4* m4 = reinterpret_cast<float4*>(m);
    float4* v4 = reinterpret_cast<float4*>(v);
#pragma unroll 2
    for (int j = threadIdx.x; j < n4; j += kAdamThreads) {
      const float4 xa = __ldcs(x4 + j);
      const float4 yr = Fused ? __ldcs(y4 + j) : make_float4(0.f, 0.f, 0.f, 0.f);
      float4 pp = __ldcs(p4 + j), mm = __ldcs(m4 + j), vv = __ldcs(v4 + j);
      adamwOne(gradOf<Fused>(xa.x, yr.x, c, k.gradScale), pp.x, mm.x, vv.x, k);
      adamwOne(gradOf<Fused>(xa.y, yr.y, c, k.gradScale), pp.y, mm.y, vv.y, k);
      adamwOne(gradOf<Fused>(xa.z, yr.z, c, k.gradScale), pp.z, mm.z, vv.z, k);
      adamwOne(gradOf<Fused>(xa.w, yr.w, c, k.gradScale), pp.w, mm.w, vv.w, k);
      __stcs(p4 + j, pp);
      __stcs(m4 + j, mm);
      __stcs(v4 + j, vv);
    }
    i0 = n4 << 2;
  }
  for (int i = i0 + threadIdx.x; i < len; i += kAdamThreads) {
    float pp = __ldcs(p + i), mm = __ldcs(m + i), vv = __ldcs(v + i);
    adamwOne(gradOf<Fused>(__ldcs(x + i), Fused ? __ldcs(y + i) : 0.0f, c, k.gradScale), pp, mm, vv, k);
    __stcs(p + i, pp);
    __stcs(m + i, mm);
    __stcs(v + i, vv);
  }
}

// Grid: one CTA per chunk of the layout. coef: k floats (fused only).
// Three CTAs per SM asked of ptxas: with its own choice (64 registers) the fused kernel
// spilled on sm_86..sm_90; the budget this gives (85) holds it without spills
// (scripts/cuda-resources, checked by test/cuda-resources.test.mjs).
template <bool Fused>
__global__ void __launch_bounds__(kAdamThreads, kAdamMinCtasPerSm)
    adamwKernel(Tables T, const float* x, const float* y, const float* coef, float* p, float* m, float* v,
                AdamWConsts k) {
  const ChunkWork w = chunkWork(T, blockIdx.x);
  const float c = Fused ? coef[w.tensor] : 0.0f;
  const float* xs = x + w.start;
  const float* ys = Fused ? y + w.start : nullptr;
  float* ps = p + w.start;
  float* ms = m + w.start;
  float* vs = v + w.start;
  const uintptr_t bits = reinterpret_cast<uintptr_t>(xs) | reinterpret_cast<uintptr_t>(ys) |
                         reinterpret_cast<uintptr_t>(ps) | reinterpret_cast<uintptr_t>(ms) |
                         reinterpret_cast<uintptr_t>(vs);
  const int len = static_cast<int>(w.len);
  if ((bits & 15) == 0)
    adamwChunk<Fused, true>(xs, ys, c, ps, ms, vs, len, k);
  else
    adamwChunk<Fused, false>(xs, ys, c, ps, ms, vs, len, k);
}

template <bool Fused>
void launch(Layout& l, const float* x, const float* y, const double* coefficients, float* p, float* m, float* v,
            const AdamWParams& params) {
  if (l.numChunks == 0) return;  // no tensors, or only empty ones
  if (l.numChunks > 0x7fffffffLL) throw CudaError("craftgrad: too many chunks for one launch");
  DeviceContext& ctx = deviceContext(l.device);
  const AdamWConsts k = makeAdamWConsts(params);
  std::lock_guard<std::mutex> lock(l.mu);  // the coefficient table is the layout's scratch
  if (Fused) {
    const size_t n = l.sizes.size();
    for (size_t i = 0; i < n; ++i) l.pinnedCoef[i] = static_cast<float>(coefficients[i]);
    CG_CUDA(l.device, cudaMemcpyAsync(l.tables.coef, l.pinnedCoef, n * sizeof(float), cudaMemcpyHostToDevice,
                                      ctx.stream));
  }
  adamwKernel<Fused><<<static_cast<unsigned>(l.numChunks), kAdamThreads, 0, ctx.stream>>>(l.tables, x, y, l.tables.coef,
                                                                                          p, m, v, k);
  CG_CUDA(l.device, cudaGetLastError());
  // The one sync: the pinned coefficients may be rewritten by the next call, and an error
  // of the launch belongs to this call.
  CG_CUDA(l.device, cudaStreamSynchronize(ctx.stream));
}

}  // namespace

void adamwFused(Layout& l, const float* a, const float* r, const double* coefficients, float* p, float* m, float* v,
                const AdamWParams& params) {
  launch<true>(l, a, r, coefficients, p, m, v, params);
}

void adamw(Layout& l, const float* grad, float* p, float* m, float* v, const AdamWParams& params) {
  launch<false>(l, grad, nullptr, nullptr, p, m, v, params);
}

}  // namespace cuda
}  // namespace craftgrad
