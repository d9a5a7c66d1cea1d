# The cuBLASLt stand-in (test/cuda-emulator/README.md "cuBLASLt stand-in"): libcublasLt.so.13
# computed on the CPU, for the emulator build. Tests point CRAFTGRAD_CUBLASLT_LIBRARY at
# <build>/cuda-emulator/libcublasLt.so.13; the addon never links it (it dlopens cuBLASLt).
add_library(cgemu_cublaslt SHARED ${CMAKE_CURRENT_SOURCE_DIR}/test/cuda-emulator/cublaslt/cublaslt_standin.cc)
set_target_properties(cgemu_cublaslt PROPERTIES
  OUTPUT_NAME cublasLt
  VERSION 13.0.0
  SOVERSION 13
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/cuda-emulator)
# The emulator's runtime header for the stream head; the ABI header craftgrad declares.
target_include_directories(cgemu_cublaslt PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/native/cublaslt
                                                  ${CMAKE_CURRENT_SOURCE_DIR}/test/cuda-emulator/include)
target_compile_options(cgemu_cublaslt PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:${CRAFTGRAD_CXX_OPTIONS}>")
if(CGEMU_ASAN)
  target_compile_options(cgemu_cublaslt PRIVATE -fsanitize=address -fno-omit-frame-pointer)
  target_link_options(cgemu_cublaslt PRIVATE -fsanitize=address)
endif()
add_dependencies(craftgrad cgemu_cublaslt)
