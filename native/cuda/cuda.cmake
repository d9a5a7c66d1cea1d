# The CUDA backend, included by CMakeLists.txt on target `craftgrad` when nvcc is found.
# Its sources are listed in native/sources.cmake.
#
# Machine code for sm_75..sm_90 plus PTX for compute_90 (JIT-compiled by the driver on
# newer GPUs). The CUDA runtime is linked statically, so the addon needs only the driver
# (libcuda.so.1) at run time, and loads without it (backendInfo() then says why).
# Numerics (native/core/numerics.h): no --use_fast_math; the kernels use explicit
# __fmul_rn/__fadd_rn/__fmaf_rn so nvcc cannot contract or reorder the reductions.
enable_language(CUDA)
if(CMAKE_CUDA_COMPILER_VERSION VERSION_LESS 12.0)
  message(WARNING "craftgrad: the CUDA backend is written for CUDA 13 (found ${CMAKE_CUDA_COMPILER_VERSION})")
endif()

# Overridable for local builds, e.g. -DCRAFTGRAD_CUDA_ARCHS=90-real to compile faster.
set(CRAFTGRAD_CUDA_ARCHS "75-real;80-real;86-real;89-real;90-real;90-virtual"
    CACHE STRING "CUDA architectures of the craftgrad CUDA backend")

target_sources(craftgrad PRIVATE ${CRAFTGRAD_CUDA_KERNEL_SOURCES} ${CRAFTGRAD_CUDA_HOST_SOURCES})
set_target_properties(craftgrad PROPERTIES
  CUDA_ARCHITECTURES "${CRAFTGRAD_CUDA_ARCHS}"
  CUDA_RUNTIME_LIBRARY Static
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_VISIBILITY_PRESET hidden)
# The .cc files of the backend call the runtime API directly and need its headers.
target_include_directories(craftgrad PRIVATE ${CMAKE_CUDA_TOOLKIT_INCLUDE_DIRECTORIES})
target_compile_definitions(craftgrad PRIVATE CRAFTGRAD_HAVE_CUDA)
# nvcc's options, for the .cu files only (CMakeLists.txt guards the C++ compiler's options
# the same way). -O3 for host and device code; -Xptxas=-O3 is nvcc's default but said
# explicitly; --fmad=false keeps nvcc from contracting any a*b+c we did not write as an fma.
# scripts/cuda-resources reads this list to compile the kernels as the build does.
set(CRAFTGRAD_CUDA_OPTIONS -O3 --fmad=false -Xptxas=-O3)
target_compile_options(craftgrad PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:${CRAFTGRAD_CUDA_OPTIONS}>")
# Host code in .cu files computes per-step constants (native/core/adamw_params.h) that must
# round as in the C++ build, which never contracts a*b+c (CMakeLists.txt).
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(craftgrad PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-ffp-contract=off>)
endif()
