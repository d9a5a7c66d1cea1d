// AVX2 + FMA AdamW kernels (see adamw_body.inc): 16 lanes as two 8-wide registers.
// Compiled with -mavx2 -mfma; called only when cpu_features.cc chose the avx2 variant.
#include <immintrin.h>

#include "adamw_kernels.h"

namespace craftgrad {
namespace avx2_adamw {

#include "vec16_avx2.inc"

#include "adamw_body.inc"

}  // namespace avx2_adamw

const AdamWKernelTable& avx2AdamWKernels() {
  static const AdamWKernelTable table{"avx2", avx2_adamw::fusedChunk, avx2_adamw::plainChunk};
  return table;
}

}  // namespace craftgrad
