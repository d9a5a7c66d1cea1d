// AVX2+FMA micro-kernel, 6×16 tile: 12 ymm accumulators, 2 for B, 1 broadcast.
// Compiled with -mavx2 -mfma; used only after cpu_features.cc confirmed support.
#include <immintrin.h>

#include "../core/gelu_math.h"
#include "gemm.h"

namespace craftgrad {
namespace gemm_avx2_isa {

constexpr int MR = 6, NR = 16;

#include "gemm_store.inc"
constexpr int kVW = 8;
struct VF {
  __m256 v;
  static VF splat(float x) { return {_mm256_set1_ps(x)}; }
  static VF loadu(const float* p) { return {_mm256_loadu_ps(p)}; }
  static void storeu(float* p, VF x) { _mm256_storeu_ps(p, x.v); }
  friend VF operator+(VF a, VF b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend VF operator-(VF a, VF b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend VF operator*(VF a, VF b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend VF operator/(VF a, VF b) { return {_mm256_div_ps(a.v, b.v)}; }
  static VF minv(VF a, VF b) { return {_mm256_min_ps(a.v, b.v)}; }
  static VF maxv(VF a, VF b) { return {_mm256_max_ps(a.v, b.v)}; }
  static VF floorv(VF a) { return {_mm256_floor_ps(a.v)}; }
  static VF pow2(VF n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(e, 23))};
  }
};
#include "gelu_body.inc"

void micro(int64_t K, const float* ap, int64_t astride, int64_t arow, const float* bp, float* C, int64_t ldc,
           int rows, int cols, float alpha, float beta) {
  // Named accumulators, not an array: GCC kept a `__m256 c[6][2]` in memory and stored every
  // accumulator after each FMA, which halved the kernel's speed. Same FMAs, same order.
#define CRAFTGRAD_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define CRAFTGRAD_DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
#define CRAFTGRAD_FMA(i)                                                   \
  {                                                                       \
    const __m256 ai = _mm256_broadcast_ss(a + (i) * arow);               \
    c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                           \
    c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                           \
  }
#define CRAFTGRAD_STORE(i)                          \
  _mm256_store_ps(acc + (i) * NR, c##i##0);         \
  _mm256_store_ps(acc + (i) * NR + 8, c##i##1);
  static_assert(MR == 6, "CRAFTGRAD_ROWS lists the tile's rows");
  CRAFTGRAD_ROWS(CRAFTGRAD_DECL)
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(bp + k * NR), b1 = _mm256_loadu_ps(bp + k * NR + 8);
    const float* a = ap + k * astride;
    CRAFTGRAD_ROWS(CRAFTGRAD_FMA)
  }
  alignas(32) float acc[MR * NR];
  CRAFTGRAD_ROWS(CRAFTGRAD_STORE)
#undef CRAFTGRAD_STORE
#undef CRAFTGRAD_FMA
#undef CRAFTGRAD_DECL
#undef CRAFTGRAD_ROWS
  storeTile(acc, NR, C, ldc, rows, cols, alpha, beta);
}

// Peak probe: 12 independent FMA chains in named registers (an array could be spilled to
// memory), enough to cover FMA latency (4-5 cycles) x 2 ports on current AVX2 cores, and
// within the 16 ymm registers with the two operands.
double fmaLoop(int64_t iters) {
#define CRAFTGRAD_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define CRAFTGRAD_INIT(i) __m256 c##i = _mm256_set1_ps(0.001f * i);
#define CRAFTGRAD_FMA(i) c##i = _mm256_fmadd_ps(c##i, m, a);
#define CRAFTGRAD_SUM(i) s = _mm256_add_ps(s, c##i);
  CRAFTGRAD_CHAINS(CRAFTGRAD_INIT)
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    CRAFTGRAD_CHAINS(CRAFTGRAD_FMA)
  }
  __m256 s = _mm256_setzero_ps();
  CRAFTGRAD_CHAINS(CRAFTGRAD_SUM)
#undef CRAFTGRAD_SUM
#undef CRAFTGRAD_FMA
#undef CRAFTGRAD_INIT
#undef CRAFTGRAD_CHAINS
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}

}  // namespace gemm_avx2_isa

namespace gemm_avx2_isa {

// dst[k*nr + j] = B[j*ld + k]: 8×8 blocks transposed in registers (unpack, shuffle, 128-bit
// lane permute); the k tail past a multiple of 8 one value at a time. A pure copy.
void packTrans(const float* B, int64_t ld, int64_t K, int nr, float* dst) {
  const int64_t K8 = K & ~int64_t{7};
  for (int j0 = 0; j0 < nr; j0 += 8) {
    const float* src = B + j0 * ld;
    for (int64_t k0 = 0; k0 < K8; k0 += 8) {
      __m256 r[8], t[8], u[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld + k0);
      for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
      }
      for (int h = 0; h < 2; ++h) {
        u[4 * h] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
      }
      for (int n = 0; n < 4; ++n) {
        r[n] = _mm256_permute2f128_ps(u[n], u[4 + n], 0x20);
        r[4 + n] = _mm256_permute2f128_ps(u[n], u[4 + n], 0x31);
      }
      for (int n = 0; n < 8; ++n) _mm256_storeu_ps(dst + (k0 + n) * nr + j0, r[n]);
    }
    for (int64_t k = K8; k < K; ++k)
      for (int j = 0; j < 8; ++j) dst[k * nr + j0 + j] = src[j * ld + k];
  }
}

}  // namespace gemm_avx2_isa

const GemmKernel& gemmAvx2Kernel() {
  static const GemmKernel k{"avx2", gemm_avx2_isa::MR, gemm_avx2_isa::NR, gemm_avx2_isa::micro, 0, 0, nullptr, 0, 0, nullptr, gemm_avx2_isa::biasGeluResidual, gemm_avx2_isa::geluGradRows, 8, gemm_avx2_isa::packTrans};
  return k;
}

// Declared in gemm.cc's peak probe; exists only in AVX2 builds.
double avx2FmaLoop(int64_t iters) { return gemm_avx2_isa::fmaLoop(iters); }

}  // namespace craftgrad
