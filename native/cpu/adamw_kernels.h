// The per-chunk AdamW kernels, compiled once per instruction set like kernels.h (and
// chosen by the same dispatch): every variant rounds every operation the same way, so all
// of them produce the same bits.
#pragma once
#include <cstdint>

#include "../core/adamw_params.h"

namespace craftgrad {

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
