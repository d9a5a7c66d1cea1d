// Portable AdamW kernels (see adamw_body.inc): plain 16-lane loops the compiler
// vectorizes for the baseline target. sqrt and division are correctly rounded everywhere.
#include "adamw_kernels.h"

namespace craftgrad {
namespace generic_adamw {

struct V {
  float v[16];
  static V splat(float x) { V r; for (int j = 0; j < 16; ++j) r.v[j] = x; return r; }
  static V load(const float* p) { V r; for (int j = 0; j < 16; ++j) r.v[j] = p[j]; return r; }
  static void store(float* p, const V& x) { for (int j = 0; j < 16; ++j) p[j] = x.v[j]; }
  static V add(const V& x, const V& y) { V r; for (int j = 0; j < 16; ++j) r.v[j] = x.v[j] + y.v[j]; return r; }
  static V sub(const V& x, const V& y) { V r; for (int j = 0; j < 16; ++j) r.v[j] = x.v[j] - y.v[j]; return r; }
  static V mul(const V& x, const V& y) { V r; for (int j = 0; j < 16; ++j) r.v[j] = x.v[j] * y.v[j]; return r; }
  static V div(const V& x, const V& y) { V r; for (int j = 0; j < 16; ++j) r.v[j] = x.v[j] / y.v[j]; return r; }
  static V sqrt(const V& x) { V r; for (int j = 0; j < 16; ++j) r.v[j] = __builtin_sqrtf(x.v[j]); return r; }
  static V fma(const V& x, const V& y, const V& z) {
    V r;
    for (int j = 0; j < 16; ++j) r.v[j] = __builtin_fmaf(x.v[j], y.v[j], z.v[j]);
    return r;
  }
};

#include "adamw_body.inc"

}  // namespace generic_adamw

const AdamWKernelTable& genericAdamWKernels() {
  static const AdamWKernelTable table{"generic", generic_adamw::fusedChunk, generic_adamw::plainChunk};
  return table;
}

}  // namespace craftgrad
