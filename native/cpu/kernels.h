// The per-chunk CPU kernels, compiled once per instruction set (generic, AVX2, AVX-512)
// and chosen at load time. Every variant follows numerics.h exactly, so all of them
// produce the same bits: the choice changes speed, never results.
#pragma once
#include <cstdint>

namespace craftgrad {

// Plain data (no inline member functions): the ISA-specific translation units must not
// emit COMDAT copies of shared inline code, which the linker could pick for generic callers.
struct ChunkSums {
  double dot, rr, aa;
  int nonFinite;
};

struct KernelTable {
  const char* name;
  // Pass 1 over one chunk (n <= kChunk): <a,r>, <r,r>, <a,a> and a non-finite flag.
  void (*reduce)(const float* a, const float* r, int64_t n, ChunkSums* out);
  // Pass 2 over one chunk: out = fma(c, r, a); returns the chunk's sum of out².
  // `out` may be `a` or `r` exactly.
  double (*axpy)(const float* a, const float* r, float* out, int64_t n, float c);
  // The same as axpy, with non-temporal stores for `out` (no read-for-ownership of the
  // destination lines), for large outputs that alias neither input. nullptr where the
  // instruction set offers no way to do it; the driver then uses axpy. Same bits.
  double (*axpyStream)(const float* a, const float* r, float* out, int64_t n, float c);
};

const KernelTable& genericKernels();
#if defined(CRAFTGRAD_HAVE_AVX2)
const KernelTable& avx2Kernels();
#endif
#if defined(CRAFTGRAD_HAVE_AVX512)
const KernelTable& avx512Kernels();
#endif

}  // namespace craftgrad
