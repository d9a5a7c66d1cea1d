// Portable AdamW kernels (see adamw_body.inc): plain 16-lane loops the compiler
// vectorizes for the baseline target. sqrt and division are correctly rounded everywhere.
#include "adamw_kernels.h"

namespace craftgrad {
namespace generic_adamw {

#include "vec16_generic.inc"

#include "adamw_body.inc"

}  // namespace generic_adamw

const AdamWKernelTable& genericAdamWKernels() {
  static const AdamWKernelTable table{"generic", generic_adamw::fusedChunk, generic_adamw::plainChunk};
  return table;
}

}  // namespace craftgrad
