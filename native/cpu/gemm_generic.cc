// Portable micro-kernel: std::fma per step so that its bits equal the FMA variants'.
#include <cmath>

#include "../core/gelu_math.h"
#include "gemm.h"

namespace craftgrad {
namespace gemm_generic_isa {

constexpr int MR = 4, NR = 16;

#include "gemm_store.inc"
constexpr int kVW = 1;
struct VF : ScalarF {
  VF(ScalarF s) : ScalarF(s) {}
  static VF loadu(const float* p) { return ScalarF{*p}; }
  static void storeu(float* p, ScalarF v) { *p = v.v; }
};
#include "gelu_body.inc"

void micro(int64_t K, const float* ap, int64_t astride, int64_t arow, const float* bp, float* C, int64_t ldc,
           int rows, int cols, float alpha, float beta) {
  float acc[MR * NR] = {};
  for (int64_t k = 0; k < K; ++k) {
    float a[MR];
    for (int i = 0; i < MR; ++i) a[i] = ap[k * astride + i * arow];
    const float* b = bp + k * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i * NR + j] = std::fma(a[i], b[j], acc[i * NR + j]);
  }
  storeTile(acc, NR, C, ldc, rows, cols, alpha, beta);
}

}  // namespace gemm_generic_isa

const GemmKernel& gemmGenericKernel() {
  static const GemmKernel k{"generic", gemm_generic_isa::MR, gemm_generic_isa::NR, gemm_generic_isa::micro, 0, 0, nullptr, 0, 0, nullptr, gemm_generic_isa::biasGeluResidual, gemm_generic_isa::geluGradRows};
  return k;
}

}  // namespace craftgrad
