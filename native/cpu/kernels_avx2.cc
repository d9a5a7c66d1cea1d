// AVX2 + FMA kernels: the 16 lanes are two 8-wide registers. Compiled with -mavx2 -mfma;
// called only after cpu_features.cc has confirmed the CPU and OS support them.
#include <immintrin.h>

#include "kernels.h"

namespace craftgrad {
namespace avx2_isa {

struct V {
  __m256 lo, hi;
  static V zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static V splat(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
  static V load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static void store(float* p, const V& x) { _mm256_storeu_ps(p, x.lo); _mm256_storeu_ps(p + 8, x.hi); }
  static V add(const V& x, const V& y) { return {_mm256_add_ps(x.lo, y.lo), _mm256_add_ps(x.hi, y.hi)}; }
  static V sub(const V& x, const V& y) { return {_mm256_sub_ps(x.lo, y.lo), _mm256_sub_ps(x.hi, y.hi)}; }
  static V mul(const V& x, const V& y) { return {_mm256_mul_ps(x.lo, y.lo), _mm256_mul_ps(x.hi, y.hi)}; }
  static V fma(const V& x, const V& y, const V& z) {
    return {_mm256_fmadd_ps(x.lo, y.lo, z.lo), _mm256_fmadd_ps(x.hi, y.hi, z.hi)};
  }
};

#include "kernels_body.inc"

}  // namespace avx2_isa

const KernelTable& avx2Kernels() {
  static const KernelTable table{"avx2", avx2_isa::reduceChunk, avx2_isa::axpyChunk, nullptr};
  return table;
}

}  // namespace craftgrad
