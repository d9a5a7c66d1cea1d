// AVX2 + FMA AdamW kernels (see adamw_body.inc): 16 lanes as two 8-wide registers.
// Compiled with -mavx2 -mfma; called only when cpu_features.cc chose the avx2 variant.
#include <immintrin.h>

#include "adamw_kernels.h"

namespace craftgrad {
namespace avx2_adamw {

struct V {
  __m256 lo, hi;
  static V splat(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
  static V load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static void store(float* p, const V& x) { _mm256_storeu_ps(p, x.lo); _mm256_storeu_ps(p + 8, x.hi); }
  static V add(const V& x, const V& y) { return {_mm256_add_ps(x.lo, y.lo), _mm256_add_ps(x.hi, y.hi)}; }
  static V sub(const V& x, const V& y) { return {_mm256_sub_ps(x.lo, y.lo), _mm256_sub_ps(x.hi, y.hi)}; }
  static V mul(const V& x, const V& y) { return {_mm256_mul_ps(x.lo, y.lo), _mm256_mul_ps(x.hi, y.hi)}; }
  static V div(const V& x, const V& y) { return {_mm256_div_ps(x.lo, y.lo), _mm256_div_ps(x.hi, y.hi)}; }
  static V sqrt(const V& x) { return {_mm256_sqrt_ps(x.lo), _mm256_sqrt_ps(x.hi)}; }
  static V fma(const V& x, const V& y, const V& z) {
    return {_mm256_fmadd_ps(x.lo, y.lo, z.lo), _mm256_fmadd_ps(x.hi, y.hi, z.hi)};
  }
};

#include "adamw_body.inc"

}  // namespace avx2_adamw

const AdamWKernelTable& avx2AdamWKernels() {
  static const AdamWKernelTable table{"avx2", avx2_adamw::fusedChunk, avx2_adamw::plainChunk};
  return table;
}

}  // namespace craftgrad
