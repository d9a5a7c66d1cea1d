// Single-precision matrix products for the built-in model: C = beta·C + alpha·op(A)·op(B)
// with beta 0 or 1, row-major, blocked, packed, multithreaded on the shared ThreadPool and
// vectorized per instruction set (gemm_generic/avx2/avx512.cc, chosen at load time).
//
// Determinism: every output element is one fp32 accumulator that runs over k = 0..K-1 in
// order with one fused multiply-add per step; threads split the output tiles, never the
// reduction. The bits therefore depend neither on the thread count nor on the ISA variant
// (the generic variant uses std::fma), only on the data.
#pragma once
#include <cstdint>

namespace craftgrad {

// Plain data (see kernels.h on COMDAT): one micro-kernel per ISA and its tile shape.
struct GemmKernel {
  const char* name;
  int mr, nr;  // tile rows and columns; nr is a multiple of the ISA's vector width
  // acc(mr×nr) = Σ_k a(i,k)·bp[k*nr+j] with a(i,k) = ap[k*astride + i*arow] (a packed
  // panel: astride = mr, arow = 1; A read in place: transposed (lda, 1) or row-major
  // (1, lda)); C[i,j] = beta·C[i,j] + alpha·acc for the top-left rows×cols of the tile.
  // All mr rows of `a` are read, so partial row panels must be packed (zero-padded).
  void (*micro)(int64_t K, const float* ap, int64_t astride, int64_t arow, const float* bp, float* C,
                int64_t ldc, int rows, int cols, float alpha, float beta);
  // Optional narrow variant (one vector of columns) for products with few columns, such
  // as the LoRA rank r: mrNarrow×nrNarrow tiles, same contract as `micro`. Null if none.
  int mrNarrow, nrNarrow;
  void (*microNarrow)(int64_t K, const float* ap, int64_t astride, int64_t arow, const float* bp, float* C,
                      int64_t ldc, int rows, int cols, float alpha, float beta);
  // Optional column variant for a transposed A (arow 1 only) and at most nrColumns
  // columns, such as the LoRA weight gradients: mrColumns×nrColumns tiles whose rows are
  // the vector lanes; same contract and bits as `micro`. Null if none.
  int mrColumns, nrColumns;
  void (*microColumns)(int64_t K, const float* ap, int64_t astride, int64_t arow, const float* bp, float* C,
                       int64_t ldc, int rows, int cols, float alpha, float beta);
  // Model element loops (gelu_math.h, same bits on every ISA):
  // Z[i,j] += b[j]; Hn[i,j] = H[i,j] + gelu(Z[i,j]) for `rows` rows of width D.
  void (*biasGeluResidual)(float* Z, const float* b, const float* H, float* Hn, int64_t rows, int64_t D);
  // out[i] = gelu'(Z[i]).
  void (*geluGrad)(const float* Z, float* out, int64_t n);
  // Optional: packs a full panel of a transposed B (the frozen weights W in x·Wᵀ):
  // dst[k*nr + j] = B[j*ld + k] for j < nr (a multiple of packTransWidth), k < K, by
  // vector transposes instead of one scalar gather per value. Null if none.
  int packTransWidth;
  void (*packTrans)(const float* B, int64_t ld, int64_t K, int nr, float* dst);
};

const GemmKernel& gemmGenericKernel();
#if defined(CRAFTGRAD_HAVE_AVX2)
const GemmKernel& gemmAvx2Kernel();
#endif
#if defined(CRAFTGRAD_HAVE_AVX512)
const GemmKernel& gemmAvx512Kernel();
#endif

// The variant cpu_features.h dispatched (same choice as the surgery kernels).
const GemmKernel& gemmKernel();

// A row-major operand: element (i, k) at p[i*ld + k], or p[k*ld + i] when transposed.
struct MatRef {
  const float* p;
  int64_t ld;
  bool trans;
};

// C (M×N, leading dimension ldc) = beta·C + alpha·op(A)(M×K)·op(B)(K×N); beta is 0 or 1.
// With beta 0, C is never read (it may hold garbage or NaN).
void gemm(int64_t M, int64_t N, int64_t K, float alpha, MatRef A, MatRef B, float beta, float* C,
          int64_t ldc);

// The machine's measured fp32 FMA throughput (GFLOP/s) on every pool participant: a
// tight loop of independent FMAs of the instruction set in use (AVX-512 or AVX2, as
// gemmKernel() chose, CRAFTGRAD_CPU_ISA included), for the benchmark; 0 for the generic
// variant (not measured).
double measureFmaPeakGflops(double seconds);

}  // namespace craftgrad
