#include "cpu_features.h"

#include <cstdlib>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace craftgrad {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
uint64_t readXcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

struct X86Features {
  bool avx2 = false, avx512 = false;
};

// CPUID says what the core implements; XCR0 says whether the OS saves the wider
// registers on context switches. Both are needed before using a variant.
X86Features detectX86() {
  X86Features f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = readXcr0();
  const bool ymmState = (xcr0 & 0x6) == 0x6;
  const bool zmmState = (xcr0 & 0xe6) == 0xe6;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
  f.avx2 = avx2 && fma && ymmState;
  f.avx512 = f.avx2 && avx512f && zmmState;
  return f;
}
#endif

CpuDispatch makeDispatch() {
  CpuDispatch d;
  d.kernels = &genericKernels();
  d.available.push_back("generic");
#if defined(__x86_64__) || defined(_M_X64)
  const X86Features f = detectX86();
#if defined(CRAFTGRAD_HAVE_AVX2)
  if (f.avx2) {
    d.available.push_back("avx2");
    d.kernels = &avx2Kernels();
  }
#endif
#if defined(CRAFTGRAD_HAVE_AVX512)
  if (f.avx512) {
    d.available.push_back("avx512");
    d.kernels = &avx512Kernels();
  }
#endif
#endif
  if (const char* env = std::getenv("CRAFTGRAD_CPU_ISA")) {
    d.requested = env;
    bool found = false;
    for (const auto& name : d.available) found = found || name == d.requested;
    if (!found) {
      d.note = "CRAFTGRAD_CPU_ISA=" + d.requested + " is not available on this CPU/build; using " +
               d.kernels->name;
    } else if (d.requested == "generic") {
      d.kernels = &genericKernels();
#if defined(CRAFTGRAD_HAVE_AVX2)
    } else if (d.requested == "avx2") {
      d.kernels = &avx2Kernels();
#endif
    }
  }
  return d;
}

}  // namespace

const CpuDispatch& cpuDispatch() {
  static const CpuDispatch d = makeDispatch();
  return d;
}

}  // namespace craftgrad
