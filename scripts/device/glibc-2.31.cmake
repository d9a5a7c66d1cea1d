# CMake toolchain file: link the addon against glibc 2.31 (scripts/device/glibc-sysroot.sh
# fetches it), so that the CUDA build made here loads on any x86-64 Linux with glibc >= 2.31.
# The CUDA runtime (linked statically) and libstdc++ otherwise bind to this machine's newest
# symbol versions (pthread_create@GLIBC_2.34, arc4random@GLIBC_2.36, ...).
# Only the link uses the sysroot: the compilers keep this machine's headers, and any symbol
# those headers name that 2.31 lacks shows up as an unversioned undefined symbol, which
# test/addon-glibc.test.mjs rejects.
#
#   node scripts/build-native.js --CDCMAKE_TOOLCHAIN_FILE=$PWD/scripts/device/glibc-2.31.cmake
set(_cg_sysroot "$ENV{HOME}/.cache/craftgrad/glibc-2.31")
if(NOT EXISTS "${_cg_sysroot}/lib/x86_64-linux-gnu/libc.so.6")
  message(FATAL_ERROR "glibc-2.31.cmake: no glibc sysroot at ${_cg_sysroot}: run scripts/device/glibc-sysroot.sh")
endif()
# gcc searches its own ../../../x86_64-linux-gnu (this machine's glibc) before the sysroot's
# folders, so they are named first; --sysroot maps the absolute paths in the sysroot's
# libc.so linker script; -B takes crti.o/crtn.o from the sysroot.
set(CMAKE_SHARED_LINKER_FLAGS_INIT
  "--sysroot=${_cg_sysroot} -B${_cg_sysroot}/usr/lib/x86_64-linux-gnu/ -L${_cg_sysroot}/lib/x86_64-linux-gnu -L${_cg_sysroot}/usr/lib/x86_64-linux-gnu")
# The two glibc symbols this compiler's static libstdc++ needs and 2.31 lacks (CMakeLists.txt adds it).
set(CRAFTGRAD_GLIBC_COMPAT_SOURCE "${CMAKE_CURRENT_LIST_DIR}/glibc-2.31-compat.cc")
