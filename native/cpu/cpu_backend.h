// The CPU backend behind core/backend.h: each operation delegates to the CPU kernels
// (surgery_cpu.h, adamw_cpu.h, gemm.h) and its layers (layers_cpu.h), on host memory.
#pragma once
#include "../core/backend.h"

namespace craftgrad {

// The process's one CPU backend (the kernels share the process thread pool).
Backend& cpuBackend();

}  // namespace craftgrad
