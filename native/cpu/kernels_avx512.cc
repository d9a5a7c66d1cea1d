// AVX-512F kernels: the 16 lanes are one register. Compiled with -mavx512f;
// called only after cpu_features.cc has confirmed the CPU and OS support it.
#include <immintrin.h>

#include "kernels.h"

namespace craftgrad {
namespace avx512_isa {

struct V {
  __m512 v;
  static V zero() { return {_mm512_setzero_ps()}; }
  static V splat(float x) { return {_mm512_set1_ps(x)}; }
  static V load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static void store(float* p, const V& x) { _mm512_storeu_ps(p, x.v); }
  static V add(const V& x, const V& y) { return {_mm512_add_ps(x.v, y.v)}; }
  static V sub(const V& x, const V& y) { return {_mm512_sub_ps(x.v, y.v)}; }
  static V mul(const V& x, const V& y) { return {_mm512_mul_ps(x.v, y.v)}; }
  static V fma(const V& x, const V& y, const V& z) { return {_mm512_fmadd_ps(x.v, y.v, z.v)}; }
};

#include "kernels_body.inc"

}  // namespace avx512_isa

const KernelTable& avx512Kernels() {
  static const KernelTable table{"avx512", avx512_isa::reduceChunk, avx512_isa::axpyChunk};
  return table;
}

}  // namespace craftgrad
