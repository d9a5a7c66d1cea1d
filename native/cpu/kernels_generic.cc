// Portable 16-lane kernels: plain loops the compiler vectorizes for the baseline target
// (x86-64-v2 on x86, the native baseline elsewhere). fma goes through __builtin_fmaf, a
// libm call where the target lacks the instruction: slower, but the same bits.
#include "kernels.h"

namespace craftgrad {
namespace generic_isa {

#include "vec16_generic.inc"

#include "kernels_body.inc"

}  // namespace generic_isa

const KernelTable& genericKernels() {
  static const KernelTable table{"generic", generic_isa::reduceChunk, generic_isa::axpyChunk, nullptr};
  return table;
}

}  // namespace craftgrad
