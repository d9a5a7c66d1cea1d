# The NCCL stand-in (test/cuda-emulator/README.md "NCCL stand-in"): libnccl.so.2 over MPI,
# for the emulator build with MPI only. Tests point CRAFTGRAD_NCCL_LIBRARY at
# <build>/cuda-emulator/libnccl.so.2; the addon never links it (it dlopens NCCL).
add_library(cgemu_nccl SHARED ${CMAKE_CURRENT_SOURCE_DIR}/test/cuda-emulator/nccl/nccl_standin.cc)
# libnccl.so.2.7.0 with the libnccl.so.2 and libnccl.so links, as NCCL's own packages lay it out.
set_target_properties(cgemu_nccl PROPERTIES
  OUTPUT_NAME nccl
  VERSION 2.7.0
  SOVERSION 2
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/cuda-emulator)
target_include_directories(cgemu_nccl PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/native/nccl)
target_link_libraries(cgemu_nccl PRIVATE MPI::MPI_CXX)
target_compile_options(cgemu_nccl PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:${CRAFTGRAD_CXX_OPTIONS}>")
# The addon runs under a preloaded libasan in that build, and so does what it dlopens.
if(CGEMU_ASAN)
  target_compile_options(cgemu_nccl PRIVATE -fsanitize=address -fno-omit-frame-pointer)
  target_link_options(cgemu_nccl PRIVATE -fsanitize=address)
endif()
# Built with the addon, so that a plain build of the emulator has it.
add_dependencies(craftgrad cgemu_nccl)
