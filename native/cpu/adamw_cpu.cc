#include "adamw_cpu.h"

#include <cmath>
#include <cstring>

#include "adamw_kernels.h"
#include "cpu_features.h"
#include "cpu_schedule.h"

namespace craftgrad {
namespace {

// The AdamW variant matching the surgery kernels' choice (CRAFTGRAD_CPU_ISA included).
const AdamWKernelTable& adamwKernels() {
  static const AdamWKernelTable* table = [] {
    const char* name = cpuDispatch().kernels->name;
#if defined(CRAFTGRAD_HAVE_AVX512)
    if (std::strcmp(name, "avx512") == 0) return &avx512AdamWKernels();
#endif
#if defined(CRAFTGRAD_HAVE_AVX2)
    if (std::strcmp(name, "avx2") == 0) return &avx2AdamWKernels();
#endif
    (void)name;
    return &genericAdamWKernels();
  }();
  return *table;
}

}  // namespace

void adamwFusedCpu(const FusedTensor* tensors, int64_t count, const AdamWParams& params) {
  const AdamWKernelTable& k = adamwKernels();
  const AdamWConsts consts = makeAdamWConsts(params);
  auto chunk = [&](const FusedTensor& t, int64_t c) {
    const int64_t o = c * kChunk;
    k.fused(t.a + o, t.r + o, t.c, t.p + o, t.m + o, t.v + o, chunkLength(t.n, c), consts);
  };
  forEachTensor(
      count, [&](int64_t i) { return tensors[i].n; },
      [&](int64_t i) {
        const int64_t chunks = chunkCount(tensors[i].n);
        for (int64_t c = 0; c < chunks; ++c) chunk(tensors[i], c);
      },
      [&](int64_t i) { parallelFor(chunkCount(tensors[i].n), 1, [&](int64_t c) { chunk(tensors[i], c); }); });
}

void adamwCpu(const float* grad, float* p, float* m, float* v, int64_t n, const AdamWParams& params) {
  const AdamWKernelTable& k = adamwKernels();
  const AdamWConsts consts = makeAdamWConsts(params);
  auto chunk = [&](int64_t c) {
    const int64_t o = c * kChunk;
    k.plain(grad + o, p + o, m + o, v + o, chunkLength(n, c), consts);
  };
  const int64_t chunks = chunkCount(n);
  if (n < kParallelMinElements) {
    for (int64_t c = 0; c < chunks; ++c) chunk(c);
  } else {
    parallelFor(chunks, 1, chunk);
  }
}

}  // namespace craftgrad
