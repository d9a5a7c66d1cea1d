// Which CPU kernel variant runs: the best one the CPU and OS support, unless
// CRAFTGRAD_CPU_ISA names a supported one (generic | avx2 | avx512).
#pragma once
#include <string>
#include <vector>

#include "kernels.h"

namespace craftgrad {

struct CpuDispatch {
  const KernelTable* kernels;
  std::vector<std::string> available;  // variants this CPU can run, best last
  std::string requested;               // CRAFTGRAD_CPU_ISA, if set
  std::string note;                    // why a request was not honoured, if it wasn't
};

const CpuDispatch& cpuDispatch();

}  // namespace craftgrad
