// The CUDA emulator's stand-in for mma.h (README.md here): the WMMA API (nvcuda::wmma) for
// the shapes craftgrad's kernels use, 16×16×16 with __nv_bfloat16 inputs (matrix_a,
// matrix_b, row_major or col_major) and float accumulators. Emulator build only.
//
// On a GPU a fragment is spread over the 32 lanes of a warp and every operation is
// warp-collective. Here each thread (fiber) holds the whole 16×16 tile, row-major, and
// computes every operation alone: the 32 lanes of a warp compute the same tile, so a result
// stored by each is the same bytes. One thing must stay collective: a warp that loads an
// accumulator from memory, adds to it and stores it back (C += A·B in place) must have every
// lane's load done before any lane's store, or lane 1 would add to lane 0's result. So the
// accumulator's load and every store end / begin with a full-warp shuffle, where the lanes
// wait for each other (as at any shuffle; all 32 lanes must call them, as on a GPU).
// Kernels must not touch fragment elements (`x[]`) directly: their layout on a GPU is
// unspecified, and this stand-in has no `x` to touch.
//
// Numerics: mma_sync is, per output element, one fp32 accumulator starting from C, then
// fmaf(a[i][k], b[k][j], acc) for k = 0..15 in order; a product of two bf16 values is exact
// in fp32, so each step rounds once. A tensor core may add in another order: a kernel's
// tests must allow for that (a bound over Σ|terms|, not bits).
//
// load_matrix_sync and store_matrix_sync check what CUDA requires of their arguments (a
// 32-byte aligned pointer, ldm a multiple of 8 bf16 or 4 floats) and stop the process with a
// `cgemu:` line when they are broken: on a GPU that is undefined behaviour.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
class fragment;

namespace detail {
inline void check(const void* p, unsigned ldm, unsigned multiple, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0 || ldm % multiple != 0) {
    std::fprintf(stderr, "cgemu: wmma::%s with a pointer not 32-byte aligned or ldm %u not a multiple of %u\n", what, ldm,
                 multiple);
    std::abort();
  }
}
// The lanes of the calling warp wait for each other here.
inline void warpSync(const char* file, int line) {
  (void)::cgemu::shuffleAs<int>(0xffffffffu, 0, ::cgemu::ShuffleKind::Index, 0, 32, ::cgemu::Site{file, line});
}
}  // namespace detail

template <class Layout>
class fragment<matrix_a, 16, 16, 16, __nv_bfloat16, Layout> {
 public:
  float v[16][16];  // (row i, k)
};
template <class Layout>
class fragment<matrix_b, 16, 16, 16, __nv_bfloat16, Layout> {
 public:
  float v[16][16];  // (k, column j)
};
template <>
class fragment<accumulator, 16, 16, 16, float, void> {
 public:
  float v[16][16];  // (row i, column j)
};

// matrix_a: element (i, k) at p[i·ldm + k] (row_major) or p[k·ldm + i] (col_major).
template <class Layout>
inline void load_matrix_sync(fragment<matrix_a, 16, 16, 16, __nv_bfloat16, Layout>& f, const __nv_bfloat16* p,
                             unsigned ldm) {
  detail::check(p, ldm, 8, "load_matrix_sync (matrix_a)");
  constexpr bool row = std::is_same<Layout, row_major>::value;
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 16; ++k) f.v[i][k] = __bfloat162float(row ? p[i * ldm + k] : p[k * ldm + i]);
}
// matrix_b: element (k, j) at p[k·ldm + j] (row_major) or p[j·ldm + k] (col_major).
template <class Layout>
inline void load_matrix_sync(fragment<matrix_b, 16, 16, 16, __nv_bfloat16, Layout>& f, const __nv_bfloat16* p,
                             unsigned ldm) {
  detail::check(p, ldm, 8, "load_matrix_sync (matrix_b)");
  constexpr bool row = std::is_same<Layout, row_major>::value;
  for (int k = 0; k < 16; ++k)
    for (int j = 0; j < 16; ++j) f.v[k][j] = __bfloat162float(row ? p[k * ldm + j] : p[j * ldm + k]);
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float, void>& f, const float* p, unsigned ldm,
                             layout_t layout, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  detail::check(p, ldm, 4, "load_matrix_sync (accumulator)");
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) f.v[i][j] = layout == mem_row_major ? p[i * ldm + j] : p[j * ldm + i];
  detail::warpSync(file, line);  // every lane has read before any stores
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float, void>& f, unsigned ldm,
                              layout_t layout, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  detail::check(p, ldm, 4, "store_matrix_sync");
  detail::warpSync(file, line);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) (layout == mem_row_major ? p[i * ldm + j] : p[j * ldm + i]) = f.v[i][j];
}
inline void fill_fragment(fragment<accumulator, 16, 16, 16, float, void>& f, float value) {
  for (auto& row : f.v)
    for (float& x : row) x = value;
}
// d = a·b + c, per element one fp32 accumulator from c over k in order (d may be c).
template <class LayoutA, class LayoutB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float, void>& d,
                     const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LayoutA>& a,
                     const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB>& b,
                     const fragment<accumulator, 16, 16, 16, float, void>& c) {
  float out[16][16];
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float acc = c.v[i][j];
      for (int k = 0; k < 16; ++k) acc = std::fma(a.v[i][k], b.v[k][j], acc);
      out[i][j] = acc;
    }
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) d.v[i][j] = out[i][j];
}

}  // namespace wmma
}  // namespace nvcuda
