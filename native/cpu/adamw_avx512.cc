// AVX-512F AdamW kernels (see adamw_body.inc): 16 lanes as one register.
// Compiled with -mavx512f; called only when cpu_features.cc chose the avx512 variant.
// GCC 12 warns (falsely) about the mask operand inside _mm512_sqrt_ps.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "adamw_kernels.h"

namespace craftgrad {
namespace avx512_adamw {

#include "vec16_avx512.inc"

#include "adamw_body.inc"
#pragma GCC diagnostic pop

}  // namespace avx512_adamw

const AdamWKernelTable& avx512AdamWKernels() {
  static const AdamWKernelTable table{"avx512", avx512_adamw::fusedChunk, avx512_adamw::plainChunk};
  return table;
}

}  // namespace craftgrad
