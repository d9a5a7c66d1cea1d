// The CUDA backend's tuning overrides, read once per process from the environment:
//   CRAFTGRAD_CUDA_GEMM=auto|simple|tiled64|tiled128|small32  the model's matrix-product kernel
//   CRAFTGRAD_CUDA_GROUP_BYTES=<positive integer>  the surgery's L2 group (bytes of a + r)
//   CRAFTGRAD_CUDA_FP32_GEMM=kernels|cublaslt  who computes fp32 products: the hand-written
//     kernels (the default: the CPU's bits, which the tests compare) or cuBLASLt (fp32
//     inputs and accumulation, no TF32; other bits, run-to-run identical: gemm_lt.h)
// A value that does not parse is ignored with a note (backendInfo().cuda.tuning.note,
// `craftgrad info`), never read as something else: "64M" is not 64 bytes.
// Plain C++ (no CUDA headers): native/napi reports it.
#pragma once
#include <string>

namespace craftgrad {
namespace cuda {

// The model's matrix-product kernels. Auto picks by shape; the others force one (every
// variant gives the same bits).
enum class GemmVariant : int { Auto = 0, Simple = 1, Tiled64 = 2, Tiled128 = 3, Small32 = 4 };
const char* gemmVariantName(GemmVariant v);

struct Tuning {
  GemmVariant gemm = GemmVariant::Auto;
  long long groupBytes = 0;  // 0: the default, 40% of the device's L2
  bool fp32Lt = false;       // CRAFTGRAD_CUDA_FP32_GEMM=cublaslt
  std::string note;          // the values ignored, and why; empty when none
};

// The environment's overrides, read on first use and kept for the process.
const Tuning& tuning();

}  // namespace cuda
}  // namespace craftgrad
