// The per-chunk AdamW kernels, compiled once per instruction set like kernels.h (and
// chosen by the same dispatch): every variant rounds every operation the same way, so all
// of them produce the same bits.
#pragma once
#include <cstdint>

namespace craftgrad {

// Per-step constants, precomputed in double and rounded to float once (adamw_cpu.cc).
// Plain data for the same reason as ChunkSums (kernels.h).
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

struct AdamWKernelTable {
  const char* name;
  // Fused surgery pass 2 + AdamW over one chunk: g = fma(c, r, a)·gradScale, then the
  // AdamW update of p, m, v with g. `out` is never materialised.
  void (*fused)(const float* a, const float* r, float c, float* p, float* m, float* v, int64_t n,
                const AdamWConsts& k);
  // AdamW alone with g = grad·gradScale.
  void (*plain)(const float* grad, float* p, float* m, float* v, int64_t n, const AdamWConsts& k);
};

const AdamWKernelTable& genericAdamWKernels();
#if defined(CRAFTGRAD_HAVE_AVX2)
const AdamWKernelTable& avx2AdamWKernels();
#endif
#if defined(CRAFTGRAD_HAVE_AVX512)
const AdamWKernelTable& avx512AdamWKernels();
#endif

}  // namespace craftgrad
