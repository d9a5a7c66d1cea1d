// AVX-512F kernels: the 16 lanes are one register. Compiled with -mavx512f;
// called only after cpu_features.cc has confirmed the CPU and OS support it.
#include <immintrin.h>

#include "kernels.h"

namespace craftgrad {
namespace avx512_isa {

#include "vec16_avx512.inc"

#include "kernels_body.inc"

namespace {

// axpyChunk with streaming stores. The arithmetic is axpyChunk's, vector for vector (the
// canonical vectors start at multiples of 16 elements from the tensor start, which is
// what the out² lanes need); only the stores differ: each 64-byte line of `out` is
// assembled from two consecutive canonical vectors with one permute and written with
// _mm512_stream_ps. The partial lines at both ends use ordinary masked stores.
double axpyStreamChunk(const float* a, const float* r, float* out, int64_t n, float c) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(out);
  const int64_t vectors = n / 16;
  if ((addr & 3) != 0 || vectors < 2) return axpyChunk(a, r, out, n, c);
  const int h = static_cast<int>((16 - (addr / 4) % 16) % 16);  // elements before the first line boundary
  const __m512i shift = _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm512_set1_epi32(h));
  const __mmask16 headMask = static_cast<__mmask16>((1u << h) - 1);
  const __m512 vc = _mm512_set1_ps(c);
  double sq = 0.0;
  __m512 prev = _mm512_setzero_ps();
  int64_t k = 0;  // canonical vector index within the chunk
  for (int64_t b = 0; b < n; b += kBlockElems) {
    const int64_t len = (n - b < kBlockElems) ? n - b : kBlockElems;
    __m512 vs = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= len; i += 16, ++k) {
      const __m512 o = _mm512_fmadd_ps(vc, _mm512_loadu_ps(r + b + i), _mm512_loadu_ps(a + b + i));
      vs = _mm512_add_ps(vs, _mm512_mul_ps(o, o));
      if (h == 0) {
        _mm512_stream_ps(out + 16 * k, o);
      } else if (k == 0) {
        _mm512_mask_storeu_ps(out, headMask, o);
      } else {
        // Elements h+16(k-1) .. h+16k-1: the top of prev and the bottom of o.
        _mm512_stream_ps(out + h + 16 * (k - 1), _mm512_permutex2var_ps(prev, shift, o));
      }
      prev = o;
    }
    alignas(64) float ls[16];
    _mm512_store_ps(ls, vs);
    for (int j = 0; i < len; ++i, ++j) {
      const float o = __builtin_fmaf(c, r[b + i], a[b + i]);
      out[b + i] = o;
      ls[j] = ls[j] + o * o;
    }
    sq += combineLanes16(ls);
  }
  if (h != 0)  // the rest of the last full vector, up to where the scalar tail began
    _mm512_mask_storeu_ps(out + 16 * (vectors - 1), static_cast<__mmask16>(~headMask), prev);
  _mm_sfence();  // streaming stores are weakly ordered: publish them before returning
  return sq;
}

}  // namespace

}  // namespace avx512_isa

const KernelTable& avx512Kernels() {
  static const KernelTable table{"avx512", avx512_isa::reduceChunk, avx512_isa::axpyChunk, avx512_isa::axpyStreamChunk};
  return table;
}

}  // namespace craftgrad
