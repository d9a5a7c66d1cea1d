// Portable 16-lane kernels: plain loops the compiler vectorizes for the baseline target
// (x86-64-v2 on x86, the native baseline elsewhere). fma goes through __builtin_fmaf, a
// libm call where the target lacks the instruction: slower, but the same bits.
#include "kernels.h"

namespace craftgrad {
namespace generic_isa {

struct V {
  float v[16];
  static V zero() { V r; for (int j = 0; j < 16; ++j) r.v[j] = 0.0f; return r; }
  static V splat(float x) { V r; for (int j = 0; j < 16; ++j) r.v[j] = x; return r; }
  static V load(const float* p) { V r; for (int j = 0; j < 16; ++j) r.v[j] = p[j]; return r; }
  static void store(float* p, const V& x) { for (int j = 0; j < 16; ++j) p[j] = x.v[j]; }
  static V add(const V& x, const V& y) { V r; for (int j = 0; j < 16; ++j) r.v[j] = x.v[j] + y.v[j]; return r; }
  static V sub(const V& x, const V& y) { V r; for (int j = 0; j < 16; ++j) r.v[j] = x.v[j] - y.v[j]; return r; }
  static V mul(const V& x, const V& y) { V r; for (int j = 0; j < 16; ++j) r.v[j] = x.v[j] * y.v[j]; return r; }
  static V fma(const V& x, const V& y, const V& z) {
    V r;
    for (int j = 0; j < 16; ++j) r.v[j] = __builtin_fmaf(x.v[j], y.v[j], z.v[j]);
    return r;
  }
};

#include "kernels_body.inc"

}  // namespace generic_isa

const KernelTable& genericKernels() {
  static const KernelTable table{"generic", generic_isa::reduceChunk, generic_isa::axpyChunk, nullptr};
  return table;
}

}  // namespace craftgrad
