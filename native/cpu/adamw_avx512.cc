// AVX-512F AdamW kernels (see adamw_body.inc): 16 lanes as one register.
// Compiled with -mavx512f; called only when cpu_features.cc chose the avx512 variant.
// GCC 12 warns (falsely) about the mask operand inside _mm512_sqrt_ps.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "adamw_kernels.h"

namespace craftgrad {
namespace avx512_adamw {

struct V {
  __m512 v;
  static V splat(float x) { return {_mm512_set1_ps(x)}; }
  static V load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static void store(float* p, const V& x) { _mm512_storeu_ps(p, x.v); }
  static V add(const V& x, const V& y) { return {_mm512_add_ps(x.v, y.v)}; }
  static V sub(const V& x, const V& y) { return {_mm512_sub_ps(x.v, y.v)}; }
  static V mul(const V& x, const V& y) { return {_mm512_mul_ps(x.v, y.v)}; }
  static V div(const V& x, const V& y) { return {_mm512_div_ps(x.v, y.v)}; }
  static V sqrt(const V& x) { return {_mm512_sqrt_ps(x.v)}; }
  static V fma(const V& x, const V& y, const V& z) { return {_mm512_fmadd_ps(x.v, y.v, z.v)}; }
};

#include "adamw_body.inc"
#pragma GCC diagnostic pop

}  // namespace avx512_adamw

const AdamWKernelTable& avx512AdamWKernels() {
  static const AdamWKernelTable table{"avx512", avx512_adamw::fusedChunk, avx512_adamw::plainChunk};
  return table;
}

}  // namespace craftgrad
