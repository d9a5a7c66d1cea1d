# The CUDA backend built against the CUDA emulator (native/cuda-emulator/README.md):
# CRAFTGRAD_CUDA=EMULATOR. Test-only: the addon then reports one emulated CUDA device and
# runs the backend's kernels on the CPU. Needs no CUDA toolkit.
set(_cgemu_dir ${CMAKE_CURRENT_SOURCE_DIR}/native/cuda-emulator)
set(_cgemu_rewrite ${CMAKE_CURRENT_SOURCE_DIR}/scripts/cuda-emulator/rewrite-launches.mjs)
file(GLOB _cgemu_cu CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/native/cuda/*.cu)
file(GLOB _cgemu_cc CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/native/cuda/*.cc)
find_program(CRAFTGRAD_NODE node REQUIRED)
set(_cgemu_generated "")
foreach(_cu IN LISTS _cgemu_cu)
  get_filename_component(_name ${_cu} NAME_WE)
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/cuda-emulator/${_name}.cc)
  add_custom_command(
    OUTPUT ${_out}
    COMMAND ${CRAFTGRAD_NODE} ${_cgemu_rewrite} ${_cu} ${_out}
    DEPENDS ${_cu} ${_cgemu_rewrite}
    COMMENT "cuda-emulator: rewriting the launches of ${_name}.cu")
  list(APPEND _cgemu_generated ${_out})
endforeach()
target_sources(craftgrad PRIVATE ${_cgemu_generated} ${_cgemu_cc} ${_cgemu_dir}/runtime.cc ${_cgemu_dir}/fibers.cc ${_cgemu_dir}/context_switch.cc)
target_include_directories(craftgrad PRIVATE ${_cgemu_dir}/include ${CMAKE_CURRENT_SOURCE_DIR}/native/cuda)
target_compile_definitions(craftgrad PRIVATE CRAFTGRAD_HAVE_CUDA CRAFTGRAD_CUDA_EMULATOR)
# A local test build: the kernels may use every instruction of this CPU (fmaf inline, not a
# libm call); IEEE results do not depend on it (no contraction, no reassociation).
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag(-march=native CRAFTGRAD_HAS_MARCH_NATIVE)
set(_cgemu_native "")
if(CRAFTGRAD_HAS_MARCH_NATIVE)
  set(_cgemu_native "-march=native")
endif()
# The kernels' pragmas (#pragma unroll, nv_diag_suppress) mean nothing to the host compiler.
# A misaligned float4 access is a fault on a GPU: UBSan's alignment check makes it one here.
set_source_files_properties(${_cgemu_generated} PROPERTIES
  COMPILE_OPTIONS "-Wno-unknown-pragmas;-fsanitize=alignment;-fno-sanitize-recover=alignment;${_cgemu_native}")
target_link_options(craftgrad PRIVATE -fsanitize=alignment)
# CGEMU_ASAN=ON: AddressSanitizer over the whole addon, so that a kernel reading or writing
# past a device allocation stops with a report (the emulator's compute-sanitizer memcheck).
# Node must then preload libasan (scripts/cuda-emulator/test.js --asan does).
option(CGEMU_ASAN "Build the emulator addon with AddressSanitizer" OFF)
if(CGEMU_ASAN)
  target_compile_options(craftgrad PRIVATE -fsanitize=address -fno-omit-frame-pointer)
  target_link_options(craftgrad PRIVATE -fsanitize=address)
endif()
