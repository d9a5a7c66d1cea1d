// AVX-512F micro-kernel, 12×32 tile: 24 zmm accumulators, 2 for B, broadcasts folded
// into the FMAs. Compiled with -mavx512f; used only after cpu_features.cc confirmed support.
#include <immintrin.h>

// GCC 12's AVX-512 intrinsic headers trip -Wmaybe-uninitialized on their own
// _mm512_undefined_* placeholders (a false positive in the system header).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "../core/gelu_math.h"
#include "gemm.h"

namespace craftgrad {
namespace gemm_avx512_isa {

constexpr int MR = 12, NR = 32;

#include "gemm_store.inc"
constexpr int kVW = 16;
struct VF {
  __m512 v;
  static VF splat(float x) { return {_mm512_set1_ps(x)}; }
  static VF loadu(const float* p) { return {_mm512_loadu_ps(p)}; }
  static void storeu(float* p, VF x) { _mm512_storeu_ps(p, x.v); }
  friend VF operator+(VF a, VF b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend VF operator-(VF a, VF b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend VF operator*(VF a, VF b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend VF operator/(VF a, VF b) { return {_mm512_div_ps(a.v, b.v)}; }
  static VF minv(VF a, VF b) { return {_mm512_min_ps(a.v, b.v)}; }
  static VF maxv(VF a, VF b) { return {_mm512_max_ps(a.v, b.v)}; }
  static VF floorv(VF a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)}; }
  static VF pow2(VF n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(e, 23))};
  }
};
#include "gelu_body.inc"

void micro(int64_t K, const float* ap, int64_t astride, int64_t arow, const float* bp, float* C, int64_t ldc,
           int rows, int cols, float alpha, float beta) {
  __m512 c[MR][2];
  for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = _mm512_setzero_ps();
  if (arow == 1) {
    // Packed panel or transposed A: the mr values of one k are contiguous.
    for (int64_t k = 0; k < K; ++k) {
      const __m512 b0 = _mm512_loadu_ps(bp + k * NR), b1 = _mm512_loadu_ps(bp + k * NR + 16);
      const float* a = ap + k * astride;
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(a[i]);
        c[i][0] = _mm512_fmadd_ps(ai, b0, c[i][0]);
        c[i][1] = _mm512_fmadd_ps(ai, b1, c[i][1]);
      }
    }
  } else {
    // Row-major A read in place (astride 1): two groups of 6 row pointers keep the
    // address registers within the 16 GPRs.
    const float* a0 = ap;
    const float* a6 = ap + 6 * arow;
    const int64_t r1 = arow, r2 = 2 * arow, r3 = 3 * arow, r4 = 4 * arow, r5 = 5 * arow;
    for (int64_t k = 0; k < K; ++k) {
      const __m512 b0 = _mm512_loadu_ps(bp + k * NR), b1 = _mm512_loadu_ps(bp + k * NR + 16);
      const float av[MR] = {a0[k], a0[k + r1], a0[k + r2], a0[k + r3], a0[k + r4], a0[k + r5],
                            a6[k], a6[k + r1], a6[k + r2], a6[k + r3], a6[k + r4], a6[k + r5]};
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(av[i]);
        c[i][0] = _mm512_fmadd_ps(ai, b0, c[i][0]);
        c[i][1] = _mm512_fmadd_ps(ai, b1, c[i][1]);
      }
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (rows == MR && cols == NR) {
    // Full tile: store straight from registers (same mul-then-add rounding as storeTile).
    for (int i = 0; i < MR; ++i) {
      float* ci = C + i * ldc;
      __m512 t0 = _mm512_mul_ps(va, c[i][0]), t1 = _mm512_mul_ps(va, c[i][1]);
      if (beta != 0.0f) {
        t0 = _mm512_add_ps(_mm512_loadu_ps(ci), t0);
        t1 = _mm512_add_ps(_mm512_loadu_ps(ci + 16), t1);
      }
      _mm512_storeu_ps(ci, t0);
      _mm512_storeu_ps(ci + 16, t1);
    }
    return;
  }
  alignas(64) float acc[MR * NR];
  for (int i = 0; i < MR; ++i) {
    _mm512_store_ps(acc + i * NR, c[i][0]);
    _mm512_store_ps(acc + i * NR + 16, c[i][1]);
  }
  storeTile(acc, NR, C, ldc, rows, cols, alpha, beta);
}

// Narrow 14×16 tile for products with at most 16 columns (the LoRA rank): 14 accumulators,
// one B vector per k; A as in micro().
constexpr int MRN = 14, NRN = 16;

void microNarrow(int64_t K, const float* ap, int64_t astride, int64_t arow, const float* bp, float* C, int64_t ldc,
                 int rows, int cols, float alpha, float beta) {
  __m512 c[MRN];
  for (int i = 0; i < MRN; ++i) c[i] = _mm512_setzero_ps();
  if (arow == 1) {
    for (int64_t k = 0; k < K; ++k) {
      const __m512 b = _mm512_loadu_ps(bp + k * NRN);
      const float* a = ap + k * astride;
      for (int i = 0; i < MRN; ++i) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b, c[i]);
    }
  } else {
    const float* a0 = ap;
    const float* a7 = ap + 7 * arow;
    const int64_t r1 = arow, r2 = 2 * arow, r3 = 3 * arow, r4 = 4 * arow, r5 = 5 * arow, r6 = 6 * arow;
    for (int64_t k = 0; k < K; ++k) {
      const __m512 b = _mm512_loadu_ps(bp + k * NRN);
      const float av[MRN] = {a0[k], a0[k + r1], a0[k + r2], a0[k + r3], a0[k + r4], a0[k + r5], a0[k + r6],
                             a7[k], a7[k + r1], a7[k + r2], a7[k + r3], a7[k + r4], a7[k + r5], a7[k + r6]};
      for (int i = 0; i < MRN; ++i) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(av[i]), b, c[i]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (rows == MRN && cols == NRN) {
    for (int i = 0; i < MRN; ++i) {
      float* ci = C + i * ldc;
      __m512 t = _mm512_mul_ps(va, c[i]);
      if (beta != 0.0f) t = _mm512_add_ps(_mm512_loadu_ps(ci), t);
      _mm512_storeu_ps(ci, t);
    }
    return;
  }
  alignas(64) float acc[MRN * NRN];
  for (int i = 0; i < MRN; ++i) _mm512_store_ps(acc + i * NRN, c[i]);
  storeTile(acc, NRN, C, ldc, rows, cols, alpha, beta);
}

// Column tile for a transposed A (a(i,k) = ap[k*astride + i], arow 1) and at most 16
// columns: the weight gradients dZᵀ·u and (swapped) hᵀ·V. The 16 rows of one k are one
// vector load and each column's B value a broadcast, so a k step reads one cache line of
// A where the 14-row tile above reads 56 bytes that straddle two. Each accumulator lane
// runs over k in order with one FMA, exactly as in micro(): the same bits.
constexpr int MRC = 16, NRC = 16;

// C[i, j] = beta·C[i, j] + alpha·acc(i, j) from the column accumulators (c[j] lane i).
static void storeColumnTile(const __m512* c, float* C, int64_t ldc, int rows, int cols, float alpha, float beta) {
  alignas(64) float acc[MRC * NRC];  // acc[i*NRC + j], the row-major tile storeTile expects
  const __m512i rowIndex = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                              _mm512_set1_epi32(NRC));
  for (int j = 0; j < NRC; ++j) _mm512_i32scatter_ps(acc + j, rowIndex, c[j], 4);
  storeTile(acc, NRC, C, ldc, rows, cols, alpha, beta);
}

void microColumns(int64_t K, const float* ap, int64_t astride, int64_t arow, const float* bp, float* C,
                  int64_t ldc, int rows, int cols, float alpha, float beta) {
  __m512 c[NRC];
  for (int j = 0; j < NRC; ++j) c[j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m512 a = _mm512_loadu_ps(ap + k * astride);
    const float* b = bp + k * NRC;
    for (int j = 0; j < NRC; ++j) c[j] = _mm512_fmadd_ps(_mm512_set1_ps(b[j]), a, c[j]);
  }
  storeColumnTile(c, C, ldc, rows, cols, alpha, beta);
}

// Peak probe: 20 independent FMA chains in named registers (an array would be spilled to
// memory), enough to cover FMA latency × issue width on current cores.
double fmaLoop(int64_t iters) {
  __m512 c0 = _mm512_set1_ps(0.001f * 0);
  __m512 c1 = _mm512_set1_ps(0.001f * 1);
  __m512 c2 = _mm512_set1_ps(0.001f * 2);
  __m512 c3 = _mm512_set1_ps(0.001f * 3);
  __m512 c4 = _mm512_set1_ps(0.001f * 4);
  __m512 c5 = _mm512_set1_ps(0.001f * 5);
  __m512 c6 = _mm512_set1_ps(0.001f * 6);
  __m512 c7 = _mm512_set1_ps(0.001f * 7);
  __m512 c8 = _mm512_set1_ps(0.001f * 8);
  __m512 c9 = _mm512_set1_ps(0.001f * 9);
  __m512 c10 = _mm512_set1_ps(0.001f * 10);
  __m512 c11 = _mm512_set1_ps(0.001f * 11);
  __m512 c12 = _mm512_set1_ps(0.001f * 12);
  __m512 c13 = _mm512_set1_ps(0.001f * 13);
  __m512 c14 = _mm512_set1_ps(0.001f * 14);
  __m512 c15 = _mm512_set1_ps(0.001f * 15);
  __m512 c16 = _mm512_set1_ps(0.001f * 16);
  __m512 c17 = _mm512_set1_ps(0.001f * 17);
  __m512 c18 = _mm512_set1_ps(0.001f * 18);
  __m512 c19 = _mm512_set1_ps(0.001f * 19);
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
  for (int64_t t = 0; t < iters; ++t) {
    c0 = _mm512_fmadd_ps(c0, m, a);
    c1 = _mm512_fmadd_ps(c1, m, a);
    c2 = _mm512_fmadd_ps(c2, m, a);
    c3 = _mm512_fmadd_ps(c3, m, a);
    c4 = _mm512_fmadd_ps(c4, m, a);
    c5 = _mm512_fmadd_ps(c5, m, a);
    c6 = _mm512_fmadd_ps(c6, m, a);
    c7 = _mm512_fmadd_ps(c7, m, a);
    c8 = _mm512_fmadd_ps(c8, m, a);
    c9 = _mm512_fmadd_ps(c9, m, a);
    c10 = _mm512_fmadd_ps(c10, m, a);
    c11 = _mm512_fmadd_ps(c11, m, a);
    c12 = _mm512_fmadd_ps(c12, m, a);
    c13 = _mm512_fmadd_ps(c13, m, a);
    c14 = _mm512_fmadd_ps(c14, m, a);
    c15 = _mm512_fmadd_ps(c15, m, a);
    c16 = _mm512_fmadd_ps(c16, m, a);
    c17 = _mm512_fmadd_ps(c17, m, a);
    c18 = _mm512_fmadd_ps(c18, m, a);
    c19 = _mm512_fmadd_ps(c19, m, a);
  }
  __m512 s = c0;
  s = _mm512_add_ps(s, c1);
  s = _mm512_add_ps(s, c2);
  s = _mm512_add_ps(s, c3);
  s = _mm512_add_ps(s, c4);
  s = _mm512_add_ps(s, c5);
  s = _mm512_add_ps(s, c6);
  s = _mm512_add_ps(s, c7);
  s = _mm512_add_ps(s, c8);
  s = _mm512_add_ps(s, c9);
  s = _mm512_add_ps(s, c10);
  s = _mm512_add_ps(s, c11);
  s = _mm512_add_ps(s, c12);
  s = _mm512_add_ps(s, c13);
  s = _mm512_add_ps(s, c14);
  s = _mm512_add_ps(s, c15);
  s = _mm512_add_ps(s, c16);
  s = _mm512_add_ps(s, c17);
  s = _mm512_add_ps(s, c18);
  s = _mm512_add_ps(s, c19);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  return out[0];
}

}  // namespace gemm_avx512_isa

namespace gemm_avx512_isa {

// dst[k*nr + j] = B[j*ld + k]: 16×16 blocks (16 rows of B, 16 k) loaded as 16 vectors and
// transposed in registers (unpack 32-bit, unpack 64-bit, two 128-bit lane shuffles); the
// k tail past a multiple of 16 is copied one value at a time. A pure copy: no rounding.
void packTrans(const float* B, int64_t ld, int64_t K, int nr, float* dst) {
  const int64_t K16 = K & ~int64_t{15};
  for (int j0 = 0; j0 < nr; j0 += 16) {
    const float* src = B + j0 * ld;
    for (int64_t k0 = 0; k0 < K16; k0 += 16) {
      __m512 r[16], t[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ld + k0);
      for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
      }
      for (int i = 0; i < 4; ++i) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
      }
      for (int q = 0; q < 2; ++q)
        for (int m = 0; m < 4; ++m) {
          t[8 * q + m] = _mm512_shuffle_f32x4(r[8 * q + m], r[8 * q + 4 + m], 0x88);      // lanes 0,2 | 0,2
          t[8 * q + 4 + m] = _mm512_shuffle_f32x4(r[8 * q + m], r[8 * q + 4 + m], 0xdd);  // lanes 1,3 | 1,3
        }
      for (int m = 0; m < 8; ++m) {
        r[m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0x88);
        r[8 + m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0xdd);
      }
      // r[n] now holds k = k0 + n, columns j0..j0+15.
      for (int n = 0; n < 16; ++n) _mm512_storeu_ps(dst + (k0 + n) * nr + j0, r[n]);
    }
    for (int64_t k = K16; k < K; ++k)
      for (int j = 0; j < 16; ++j) dst[k * nr + j0 + j] = src[j * ld + k];
  }
}

}  // namespace gemm_avx512_isa

const GemmKernel& gemmAvx512Kernel() {
  static const GemmKernel k{"avx512", gemm_avx512_isa::MR, gemm_avx512_isa::NR, gemm_avx512_isa::micro, gemm_avx512_isa::MRN, gemm_avx512_isa::NRN, gemm_avx512_isa::microNarrow, gemm_avx512_isa::MRC, gemm_avx512_isa::NRC, gemm_avx512_isa::microColumns, gemm_avx512_isa::biasGeluResidual, gemm_avx512_isa::geluGradRows, 16, gemm_avx512_isa::packTrans};
  return k;
}

// Declared in gemm.cc's peak probe; exists only in AVX-512 builds.
double avx512FmaLoop(int64_t iters) { return gemm_avx512_isa::fmaLoop(iters); }

}  // namespace craftgrad
