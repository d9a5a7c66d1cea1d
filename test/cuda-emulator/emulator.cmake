# The CUDA backend built against the CUDA emulator (test/cuda-emulator/README.md):
# CRAFTGRAD_CUDA=EMULATOR. Test-only: the addon then reports one emulated CUDA device and
# runs the backend's kernels on the CPU. Needs no CUDA toolkit.
set(_cgemu_dir ${CMAKE_CURRENT_SOURCE_DIR}/test/cuda-emulator)
set(_cgemu_rewrite ${CMAKE_CURRENT_SOURCE_DIR}/test/cuda-emulator/rewrite-launches.mjs)
find_program(CRAFTGRAD_NODE node REQUIRED)

# Generates <out> from <cu> with its launches rewritten.
function(cgemu_rewrite _cu _out)
  get_filename_component(_name ${_cu} NAME_WE)
  add_custom_command(
    OUTPUT ${_out}
    COMMAND ${CRAFTGRAD_NODE} ${_cgemu_rewrite} ${_cu} ${_out}
    DEPENDS ${_cu} ${_cgemu_rewrite}
    COMMENT "cuda-emulator: rewriting the launches of ${_name}.cu")
endfunction()
set(_cgemu_generated "")
# The backend's own files (native/sources.cmake): the kernels rewritten, the host code as is.
foreach(_cu IN LISTS CRAFTGRAD_CUDA_KERNEL_SOURCES)
  get_filename_component(_name ${_cu} NAME_WE)
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/cuda-emulator/${_name}.cc)
  cgemu_rewrite(${CMAKE_CURRENT_SOURCE_DIR}/${_cu} ${_out})
  list(APPEND _cgemu_generated ${_out})
endforeach()
set(_cgemu_selftest ${CMAKE_CURRENT_BINARY_DIR}/cuda-emulator/selftest/selftest.cc)
cgemu_rewrite(${_cgemu_dir}/selftest/selftest.cu ${_cgemu_selftest})

# The emulated runtime, compiled once for the addon and the self-test, with the addon's C++
# options (CMakeLists.txt: no contraction, the same -march).
add_library(cgemu_runtime OBJECT ${_cgemu_dir}/runtime.cc ${_cgemu_dir}/fibers.cc ${_cgemu_dir}/context_switch.cc)
target_include_directories(cgemu_runtime PUBLIC ${_cgemu_dir}/include)
target_compile_options(cgemu_runtime PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:${CRAFTGRAD_CXX_OPTIONS}>")

target_sources(craftgrad PRIVATE ${_cgemu_generated} ${CRAFTGRAD_CUDA_HOST_SOURCES})
target_link_libraries(craftgrad PRIVATE cgemu_runtime)
target_include_directories(craftgrad PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/native/cuda)
target_compile_definitions(craftgrad PRIVATE CRAFTGRAD_HAVE_CUDA CRAFTGRAD_CUDA_EMULATOR)

# The cuBLASLt stand-in (cublaslt/), built with the addon.
include(${_cgemu_dir}/cublaslt/cublaslt.cmake)

# The emulator's own test (selftest/selftest.cu, run by test/cuda-emulator.test.mjs): its
# kernels are built as the backend's are, and it needs neither Node nor N-API.
add_executable(cgemu-selftest ${_cgemu_selftest})
target_link_libraries(cgemu-selftest PRIVATE cgemu_runtime)
target_compile_options(cgemu-selftest PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:${CRAFTGRAD_CXX_OPTIONS}>")
set_target_properties(cgemu-selftest PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/cuda-emulator)

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
set_source_files_properties(${_cgemu_generated} ${_cgemu_selftest} PROPERTIES
  COMPILE_OPTIONS "-Wno-unknown-pragmas;-fsanitize=alignment;-fno-sanitize-recover=alignment;${_cgemu_native}")
target_link_options(craftgrad PRIVATE -fsanitize=alignment)
target_link_options(cgemu-selftest PRIVATE -fsanitize=alignment)
# CGEMU_ASAN=ON: AddressSanitizer over the whole addon and the self-test, so that a kernel
# reading or writing past a device allocation stops with a report (the emulator's
# compute-sanitizer memcheck). Node must then preload libasan (test/cuda-emulator/run.js
# does).
option(CGEMU_ASAN "Build the emulator addon with AddressSanitizer" OFF)
if(CGEMU_ASAN)
  foreach(_target craftgrad cgemu_runtime cgemu-selftest)
    target_compile_options(${_target} PRIVATE -fsanitize=address -fno-omit-frame-pointer)
  endforeach()
  target_link_options(craftgrad PRIVATE -fsanitize=address)
  target_link_options(cgemu-selftest PRIVATE -fsanitize=address)
endif()
