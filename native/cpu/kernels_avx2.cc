// AVX2 + FMA kernels: the 16 lanes are two 8-wide registers. Compiled with -mavx2 -mfma;
// called only after cpu_features.cc has confirmed the CPU and OS support them.
#include <immintrin.h>

#include "kernels.h"

namespace craftgrad {
namespace avx2_isa {

#include "vec16_avx2.inc"

#include "kernels_body.inc"

}  // namespace avx2_isa

const KernelTable& avx2Kernels() {
  static const KernelTable table{"avx2", avx2_isa::reduceChunk, avx2_isa::axpyChunk, nullptr};
  return table;
}

}  // namespace craftgrad
