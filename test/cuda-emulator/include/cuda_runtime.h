// The device side of the CUDA emulator: built-in variables, intrinsics, __syncthreads,
// warp shuffles and the launch that test/cuda-emulator/rewrite-launches.mjs puts in
// place of `kernel<<<grid, block, smem, stream>>>(args)`. Kernels are plain C++ functions;
// runtime.cc runs each CTA's threads as fibers on one CPU thread, switching at barriers.
// Emulator build only (README.md here).
#pragma once
#include <math.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime_api.h"

// ---- qualifiers ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Shared memory: one copy per function, which is one copy per CTA because CTAs run one at
// a time (and every kernel runs under the emulator's lock). All of it lives in one linker
// section, which the emulator fills with NaN bytes before each CTA (fibers.cc): on a GPU a
// CTA's shared memory starts as garbage, not as zeros or as the previous CTA's values.
#define __shared__ static __attribute__((section("cgemu_shared")))

// ---- vector and index types ----
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

namespace cgemu {

// The emulated thread running now: its built-in variables.
// (Named apart from the built-ins, which are macros over these members.)
struct Builtins {
  uint3 thread, block;
  dim3 blockSize, gridSize;
};
const Builtins& builtins();

// A source position, to tell the barriers of different call sites apart.
struct Site {
  const char* file;
  int line;
};

void syncThreads(Site site);
enum class ShuffleKind { Down, Up, Xor, Index };
std::uint64_t shuffle(unsigned mask, std::uint64_t bits, ShuffleKind kind, int arg, int width, Site site);

// ---- launches ----
// One kernel launch: the configuration checked when it is enqueued (as CUDA reports a bad
// configuration from the launch), the body run for every thread when the stream reaches it.
struct KernelBody {
  virtual ~KernelBody() = default;
  virtual void runThread() = 0;                  // the kernel with this launch's arguments
  virtual const char* checkPointers() = 0;       // nullptr, or what is wrong with an argument
};
void enqueueKernel(const char* name, Site site, dim3 grid, dim3 block, size_t sharedBytes, cudaStream_t stream,
                   std::shared_ptr<KernelBody> body);
// nullptr when p is null or lies in (or one past) device or pinned memory; else a message.
const char* describeBadPointer(const void* p, int index);

template <typename... P>
struct Bound : KernelBody {
  void (*kernel)(P...);
  std::tuple<std::decay_t<P>...> args;
  template <typename... A>
  explicit Bound(void (*k)(P...), A&&... a) : kernel(k), args(std::forward<A>(a)...) {}
  void runThread() override { std::apply(kernel, args); }
  const char* checkPointers() override { return checkFrom<0>(); }

 private:
  template <size_t I>
  const char* checkFrom() {
    if constexpr (I == sizeof...(P)) {
      return nullptr;
    } else {
      if constexpr (std::is_pointer_v<std::tuple_element_t<I, decltype(args)>>) {
        if (const char* bad = describeBadPointer(std::get<I>(args), static_cast<int>(I))) return bad;
      }
      return checkFrom<I + 1>();
    }
  }
};

struct Launch {
  const char* name;
  Site site;
  dim3 grid, block;
  size_t sharedBytes;
  cudaStream_t stream;
  Launch(const char* n, const char* file, int line, dim3 g, dim3 b, size_t smem = 0, cudaStream_t s = 0)
      : name(n), site{file, line}, grid(g), block(b), sharedBytes(smem), stream(s) {}
  template <typename... P, typename... A>
  void operator()(void (*kernel)(P...), A&&... args) const {
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    enqueueKernel(name, site, grid, block, sharedBytes, stream,
                  std::make_shared<Bound<P...>>(kernel, std::forward<A>(args)...));
  }
};

template <typename T>
struct Same {
  using type = T;
};

template <typename T>
inline T shuffleAs(unsigned mask, T v, ShuffleKind kind, int arg, int width, Site site) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move values of up to 8 bytes");
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = shuffle(mask, bits, kind, arg, width, site);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

}  // namespace cgemu

#define threadIdx (::cgemu::builtins().thread)
#define blockIdx (::cgemu::builtins().block)
#define blockDim (::cgemu::builtins().blockSize)
#define gridDim (::cgemu::builtins().gridSize)
#define __syncthreads() ::cgemu::syncThreads(::cgemu::Site{__FILE__, __LINE__})

template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                          int line = __builtin_LINE()) {
  return ::cgemu::shuffleAs(mask, v, ::cgemu::ShuffleKind::Down, static_cast<int>(delta), width, {file, line});
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                        int line = __builtin_LINE()) {
  return ::cgemu::shuffleAs(mask, v, ::cgemu::ShuffleKind::Up, static_cast<int>(delta), width, {file, line});
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32, const char* file = __builtin_FILE(),
                         int line = __builtin_LINE()) {
  return ::cgemu::shuffleAs(mask, v, ::cgemu::ShuffleKind::Xor, laneMask, width, {file, line});
}
template <typename T>
inline T __shfl_sync(unsigned mask, T v, int srcLane, int width = 32, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
  return ::cgemu::shuffleAs(mask, v, ::cgemu::ShuffleKind::Index, srcLane, width, {file, line});
}

// ---- memory ----
// Cache hints do not change values. One CPU thread runs every kernel: fences and atomics
// are plain operations.
template <typename T>
inline T __ldcs(const T* p) { return *p; }
template <typename T>
inline T __ldcg(const T* p) { return *p; }
template <typename T>
inline T __ldg(const T* p) { return *p; }
template <typename T>
inline void __stcs(T* p, typename ::cgemu::Same<T>::type v) { *p = v; }
template <typename T>
inline void __stcg(T* p, typename ::cgemu::Same<T>::type v) { *p = v; }
inline void __threadfence() {}
template <typename T>
inline T atomicAdd(T* p, typename ::cgemu::Same<T>::type v) {
  const T old = *p;
  *p = old + v;
  return old;
}

// ---- arithmetic: IEEE round-to-nearest, as the emulator build never contracts a*b+c ----
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline float __double2float_rn(double a) { return static_cast<float>(a); }
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
inline int __float_as_int(float f) {
  int i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}
// CUDA's integer and floating min/max overloads (one type per call, as the kernels use them).
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
