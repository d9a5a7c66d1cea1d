#include "tuning.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>

namespace craftgrad {
namespace cuda {

namespace {

// Indexed by GemmVariant.
constexpr const char* kGemmNames[] = {"auto", "simple", "tiled64", "tiled128", "small32"};
constexpr int kGemmCount = static_cast<int>(std::size(kGemmNames));

void addNote(Tuning& t, const std::string& s) { t.note += (t.note.empty() ? "" : "; ") + s; }

// From the variables' values (nullptr: unset).
Tuning parseTuning(const char* gemm, const char* groupBytes, const char* fp32Gemm) {
  Tuning t;
  if (gemm != nullptr && *gemm != '\0') {
    bool known = false;
    for (int i = 0; i < kGemmCount && !known; ++i) {
      if (std::strcmp(gemm, kGemmNames[i]) == 0) {
        t.gemm = static_cast<GemmVariant>(i);
        known = true;
      }
    }
    if (!known) {
      addNote(t, std::string("CRAFTGRAD_CUDA_GEMM='") + gemm +
                     "' is not one of auto, simple, tiled64, tiled128, small32; choosing by shape");
    }
  }
  if (groupBytes != nullptr && *groupBytes != '\0') {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(groupBytes, &end, 10);
    if (errno != 0 || end == groupBytes || *end != '\0' || v <= 0) {
      addNote(t, std::string("CRAFTGRAD_CUDA_GROUP_BYTES='") + groupBytes +
                     "' is not a positive whole number of bytes; using 40% of the L2 cache");
    } else {
      t.groupBytes = v;
    }
  }
  if (fp32Gemm != nullptr && *fp32Gemm != '\0') {
    if (std::strcmp(fp32Gemm, "cublaslt") == 0) t.fp32Lt = true;
    else if (std::strcmp(fp32Gemm, "kernels") != 0)
      addNote(t, std::string("CRAFTGRAD_CUDA_FP32_GEMM='") + fp32Gemm + "' is not kernels or cublaslt; using the kernels");
  }
  return t;
}

}  // namespace

const char* gemmVariantName(GemmVariant v) {
  const int i = static_cast<int>(v);
  return i >= 0 && i < kGemmCount ? kGemmNames[i] : "unknown";
}

const Tuning& tuning() {
  static const Tuning t = parseTuning(std::getenv("CRAFTGRAD_CUDA_GEMM"), std::getenv("CRAFTGRAD_CUDA_GROUP_BYTES"),
                                      std::getenv("CRAFTGRAD_CUDA_FP32_GEMM"));
  return t;
}

}  // namespace cuda
}  // namespace craftgrad
