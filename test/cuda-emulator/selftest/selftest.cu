// The CUDA emulator's self-test (../README.md, "What it catches"). Each case is a small
// kernel with one planted mistake, or a correct control, built exactly as the backend's
// kernels are (launches rewritten, -fsanitize=alignment). test/cuda-emulator.test.mjs runs
// every case in a child process.
//   cgemu-selftest <case>    runs one case: one line "pass <case>: ..." or "fail <case>: ..."
//                            on stdout; exit 0 when the emulator reacted as expected
//   cgemu-selftest --list    the case names
// float4-misaligned and oob-write never pass: a sanitizer must stop the process first
// (for oob-write, AddressSanitizer in a CGEMU_ASAN=ON build; elsewhere it refuses to run).
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr int kThreads = 128, kBlocks = 3, kN = kThreads * kBlocks;

// ---- kernels ----

// The sum of each CTA's elements: warp shuffles, then the warps' sums through shared memory.
__global__ void blockSumKernel(const float* x, float* sums) {
  __shared__ float warpSums[kThreads / 32];
  const unsigned t = threadIdx.x;
  float v = x[blockIdx.x * kThreads + t];
  for (unsigned d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
  if (t % 32 == 0) warpSums[t / 32] = v;
  __syncthreads();
  if (t == 0) {
    float s = 0.0f;
    for (int w = 0; w < kThreads / 32; ++w) s += warpSums[w];
    sums[blockIdx.x] = s;
  }
}

// y[t] = x[t + 1] within each CTA, through shared memory. Without the barrier, thread t
// may read s[t + 1] before thread t + 1 wrote it.
template <bool kSync>
__global__ void rotateKernel(const float* x, float* y) {
  __shared__ float s[kThreads];
  const unsigned t = threadIdx.x, base = blockIdx.x * kThreads;
  s[t] = x[base + t];
  if (kSync) __syncthreads();
  y[base + t] = s[(t + 1) % kThreads];
}

__global__ void fillKernel(float* p, float v) { p[blockIdx.x * blockDim.x + threadIdx.x] = v; }

// One float whatever the configuration, so that a launch that should not run cannot
// write past it either.
__global__ void markKernel(float* flag) { *flag = 1.0f; }

// Half the CTA waits at one __syncthreads, half at another.
__global__ void divergentSyncKernel(float* p) {
  if (threadIdx.x < 16) {
    p[threadIdx.x] = 1.0f;
    __syncthreads();
  } else {
    p[threadIdx.x] = 2.0f;
    __syncthreads();
  }
}

// Half a warp waits at a shuffle for the other half, which waits at __syncthreads for
// the first: neither ever fills.
__global__ void deadlockKernel(float* p) {
  float v = p[threadIdx.x];
  if (threadIdx.x < 16) v = __shfl_down_sync(0xffffffffu, v, 1);
  else __syncthreads();
  p[threadIdx.x] = v;
}

// Lane 31 returns; the other lanes then shuffle with a full mask.
__global__ void shuffleAfterReturnKernel(float* p) {
  float v = p[threadIdx.x];
  if (threadIdx.x == 31) return;
  v += __shfl_down_sync(0xffffffffu, v, 1);
  p[threadIdx.x] = v;
}

// Every lane of the warp is live, but the mask names only the lower half.
__global__ void partialMaskKernel(float* p) {
  float v = p[threadIdx.x];
  v += __shfl_down_sync(0x0000ffffu, v, 1);
  p[threadIdx.x] = v;
}

// y[t] = s[t], where only the first half of the CTA wrote s (all of it when `full`).
__global__ void halfSharedKernel(float* y, bool full) {
  __shared__ float s[kThreads];
  const unsigned t = threadIdx.x;
  if (full || t < kThreads / 2) s[t] = static_cast<float>(blockIdx.x + 1);
  __syncthreads();
  y[blockIdx.x * kThreads + t] = s[t];
}

__global__ void float4LoadKernel(const float* p, int offset, float* out) {
  const float4 v = *reinterpret_cast<const float4*>(p + offset);
  out[0] = v.x + v.y + v.z + v.w;
}

// ---- checks ----

// What a case found: the first expectation that failed, and a note for the result line.
struct Check {
  std::string failure, note;
  bool that(bool ok, const std::string& what) {
    if (!ok && failure.empty()) failure = what;
    return ok;
  }
  bool err(const char* what, cudaError_t got, cudaError_t want) {
    return that(got == want, std::string(what) + " returned " + cudaGetErrorName(got) + ", expected " +
                                 cudaGetErrorName(want));
  }
};

const char* scheduleName() {
  const char* s = std::getenv("CGEMU_SCHEDULE");
  return s && *s ? s : "forward";
}

std::vector<float> iota(int n) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i + 1);
  return x;
}

template <typename T>
bool deviceAlloc(Check& c, T** p, size_t count) {
  return c.err("cudaMalloc", cudaMalloc(reinterpret_cast<void**>(p), count * sizeof(T)), cudaSuccess);
}

// A kernel failure must be sticky: every later call returns it.
void expectSticky(Check& c, cudaError_t want) {
  void* p = nullptr;
  c.err("a later cudaMalloc", cudaMalloc(&p, 256), want);
  c.err("cudaGetLastError", cudaGetLastError(), want);
  c.err("cudaGetLastError again", cudaGetLastError(), want);
}

// Launches a kernel whose sync must fail with `want`, then checks that the error sticks.
template <typename Launch>
void expectKernelFailure(Check& c, Launch launch, cudaError_t want) {
  float* p = nullptr;
  if (!deviceAlloc(c, &p, 32)) return;
  launch(p);
  // The launch itself is fine: the failure shows when the stream runs.
  c.err("the launch (cudaGetLastError)", cudaGetLastError(), cudaSuccess);
  c.err("cudaStreamSynchronize", cudaStreamSynchronize(0), want);
  expectSticky(c, want);
}

// ---- cases ----

void caseOk(Check& c) {
  const std::vector<float> x = iota(kN);
  float *dx = nullptr, *dsums = nullptr, *dy = nullptr;
  if (!deviceAlloc(c, &dx, kN) || !deviceAlloc(c, &dsums, kBlocks) || !deviceAlloc(c, &dy, kN)) return;
  c.err("cudaMemcpy to the device", cudaMemcpy(dx, x.data(), kN * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  blockSumKernel<<<kBlocks, kThreads>>>(dx, dsums);
  rotateKernel<true><<<kBlocks, kThreads>>>(dx, dy);
  c.err("the launches", cudaGetLastError(), cudaSuccess);
  std::vector<float> sums(kBlocks), y(kN);
  c.err("cudaMemcpy of the sums", cudaMemcpy(sums.data(), dsums, kBlocks * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  c.err("cudaMemcpy of y", cudaMemcpy(y.data(), dy, kN * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  for (int b = 0; b < kBlocks; ++b) {
    double want = 0;  // small integers: every order of the sum gives these exact bits
    for (int t = 0; t < kThreads; ++t) want += x[static_cast<size_t>(b * kThreads + t)];
    c.that(sums[static_cast<size_t>(b)] == static_cast<float>(want),
           "block " + std::to_string(b) + "'s sum is " + std::to_string(sums[static_cast<size_t>(b)]) +
               ", expected " + std::to_string(want));
  }
  for (int i = 0; i < kN; ++i) {
    const int b = i / kThreads, t = i % kThreads;
    const float want = x[static_cast<size_t>(b * kThreads + (t + 1) % kThreads)];
    c.that(y[static_cast<size_t>(i)] == want, "y[" + std::to_string(i) + "] is " + std::to_string(y[static_cast<size_t>(i)]) +
                                                  ", expected " + std::to_string(want));
  }
  c.err("cudaDeviceSynchronize", cudaDeviceSynchronize(), cudaSuccess);
  c.note = std::string("sums and rotation right under CGEMU_SCHEDULE=") + scheduleName();
}

// A configuration out of range: the launch reports cudaErrorInvalidConfiguration, the
// kernel never runs, and the error is not sticky.
void caseConfig(Check& c, dim3 grid, dim3 block, size_t sharedBytes) {
  float* flag = nullptr;
  if (!deviceAlloc(c, &flag, 1)) return;
  c.err("cudaMemsetAsync", cudaMemsetAsync(flag, 0, sizeof(float)), cudaSuccess);
  markKernel<<<grid, block, sharedBytes>>>(flag);
  c.err("cudaGetLastError after the launch", cudaGetLastError(), cudaErrorInvalidConfiguration);
  c.err("cudaGetLastError a second time", cudaGetLastError(), cudaSuccess);
  float got = -1.0f;
  c.err("cudaMemcpy", cudaMemcpy(&got, flag, sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  c.that(got == 0.0f, "the kernel ran (flag " + std::to_string(got) + ")");
  // The control: a valid launch of the same kernel does set the flag.
  markKernel<<<1, 1>>>(flag);
  c.err("cudaMemcpy after a valid launch", cudaMemcpy(&got, flag, sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  c.that(got == 1.0f, "a valid launch did not set the flag");
  c.note = "cudaErrorInvalidConfiguration from the launch; the kernel did not run";
}

void caseHostPointer(Check& c) {
  std::vector<float> host(32, 0.0f);
  fillKernel<<<1, 32>>>(host.data(), 1.0f);
  c.err("the launch (cudaGetLastError)", cudaGetLastError(), cudaSuccess);
  c.err("cudaStreamSynchronize", cudaStreamSynchronize(0), cudaErrorIllegalAddress);
  c.that(host[0] == 0.0f, "the kernel wrote the host vector");
  expectSticky(c, cudaErrorIllegalAddress);
  c.note = "sticky cudaErrorIllegalAddress from the next sync";
}

void caseUseAfterFree(Check& c) {
  float* p = nullptr;
  if (!deviceAlloc(c, &p, 32)) return;
  c.err("cudaFree", cudaFree(p), cudaSuccess);
  fillKernel<<<1, 32>>>(p, 1.0f);
  c.err("the launch (cudaGetLastError)", cudaGetLastError(), cudaSuccess);
  c.err("cudaStreamSynchronize", cudaStreamSynchronize(0), cudaErrorIllegalAddress);
  expectSticky(c, cudaErrorIllegalAddress);
  c.note = "sticky cudaErrorIllegalAddress from the next sync";
}

void caseDivergentSync(Check& c) {
  expectKernelFailure(c, [](float* p) { divergentSyncKernel<<<1, 32>>>(p); }, cudaErrorLaunchFailure);
  c.note = "sticky cudaErrorLaunchFailure";
}

void caseDeadlock(Check& c) {
  expectKernelFailure(c, [](float* p) { deadlockKernel<<<1, 32>>>(p); }, cudaErrorLaunchFailure);
  c.note = "sticky cudaErrorLaunchFailure";
}

void caseShuffleAfterReturn(Check& c) {
  expectKernelFailure(c, [](float* p) { shuffleAfterReturnKernel<<<1, 32>>>(p); }, cudaErrorLaunchFailure);
  c.note = "sticky cudaErrorLaunchFailure";
}

void caseShufflePartialMask(Check& c) {
  expectKernelFailure(c, [](float* p) { partialMaskKernel<<<1, 32>>>(p); }, cudaErrorLaunchFailure);
  c.note = "sticky cudaErrorLaunchFailure";
}

// A result copied to pinned memory is there only after the stream's sync.
void caseStaleRead(Check& c) {
  cudaStream_t s = nullptr;
  float *d = nullptr, *pinned = nullptr;
  if (!c.err("cudaStreamCreate", cudaStreamCreate(&s), cudaSuccess) || !deviceAlloc(c, &d, 1) ||
      !c.err("cudaMallocHost", cudaMallocHost(reinterpret_cast<void**>(&pinned), sizeof(float)), cudaSuccess))
    return;
  *pinned = 7.0f;
  fillKernel<<<1, 1, 0, s>>>(d, 42.0f);
  c.err("cudaMemcpyAsync", cudaMemcpyAsync(pinned, d, sizeof(float), cudaMemcpyDeviceToHost, s), cudaSuccess);
  const float before = *pinned;
  c.err("cudaStreamSynchronize", cudaStreamSynchronize(s), cudaSuccess);
  const float after = *pinned;
  c.that(before == 7.0f, "before the sync the host read " + std::to_string(before) + ", expected the old 7");
  c.that(after == 42.0f, "after the sync the host read " + std::to_string(after) + ", expected 42");
  c.note = "old value " + std::to_string(before) + " before the sync, " + std::to_string(after) + " after";
}

// Shared memory nobody wrote reads as NaN: in every CTA, even after a launch that filled
// it all (which a static that kept its values would hand on) and in the first launch
// (where a static would read zeros).
void caseSharedUnwritten(Check& c) {
  float* dy = nullptr;
  if (!deviceAlloc(c, &dy, kN)) return;
  std::vector<float> y(kN);
  int unwritten = 0;
  for (const bool full : {false, true, false}) {
    halfSharedKernel<<<kBlocks, kThreads>>>(dy, full);
    c.err("cudaMemcpy of y", cudaMemcpy(y.data(), dy, kN * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    for (int i = 0; i < kN; ++i) {
      const int b = i / kThreads, t = i % kThreads;
      const float got = y[static_cast<size_t>(i)];
      const std::string at = std::string(full ? "full" : "half") + " launch, y[" + std::to_string(i) + "] = " +
                             std::to_string(got);
      if (full || t < kThreads / 2) {
        c.that(got == static_cast<float>(b + 1), at + ", expected " + std::to_string(b + 1));
      } else {
        c.that(got != got, at + ": shared memory no thread wrote did not read as NaN");
        ++unwritten;
      }
    }
  }
  c.note = std::to_string(unwritten) + " reads of unwritten shared memory, all NaN";
}

// Not a failure by itself: test/cuda-emulator.test.mjs compares the counts of two orders.
void caseMissingSync(Check& c) {
  const std::vector<float> x = iota(kN);
  float *dx = nullptr, *dy = nullptr;
  if (!deviceAlloc(c, &dx, kN) || !deviceAlloc(c, &dy, kN)) return;
  c.err("cudaMemcpy to the device", cudaMemcpy(dx, x.data(), kN * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  rotateKernel<false><<<kBlocks, kThreads>>>(dx, dy);
  std::vector<float> y(kN);
  c.err("cudaMemcpy of y", cudaMemcpy(y.data(), dy, kN * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  int wrong = 0;
  for (int i = 0; i < kN; ++i) {
    const int b = i / kThreads, t = i % kThreads;
    if (y[static_cast<size_t>(i)] != x[static_cast<size_t>(b * kThreads + (t + 1) % kThreads)]) ++wrong;
  }
  c.note = std::to_string(wrong) + " of " + std::to_string(kN) + " elements wrong under CGEMU_SCHEDULE=" + scheduleName();
}

void caseFloat4(Check& c, int offset) {
  const std::vector<float> x = iota(8);
  float *dx = nullptr, *out = nullptr;
  if (!deviceAlloc(c, &dx, 8) || !deviceAlloc(c, &out, 1)) return;
  c.err("cudaMemcpy to the device", cudaMemcpy(dx, x.data(), 8 * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  float4LoadKernel<<<1, 1>>>(dx, offset, out);
  float got = 0.0f;
  c.err("cudaMemcpy of the sum", cudaMemcpy(&got, out, sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  const float want = x[static_cast<size_t>(offset)] + x[static_cast<size_t>(offset) + 1] +
                     x[static_cast<size_t>(offset) + 2] + x[static_cast<size_t>(offset) + 3];
  c.that(got == want, "the sum is " + std::to_string(got) + ", expected " + std::to_string(want));
  c.that(offset % 4 == 0, "the misaligned float4 load went unnoticed");
  c.note = "float4 load at a 16-byte boundary";
}

// CGEMU_DEVICE_MEMORY must be set: a request over it fails, and the failure is not sticky.
void caseOutOfMemory(Check& c) {
  const char* env = std::getenv("CGEMU_DEVICE_MEMORY");
  if (!c.that(env != nullptr, "run with CGEMU_DEVICE_MEMORY=<bytes>")) return;
  const size_t budget = std::strtoull(env, nullptr, 10);
  size_t freeBytes = 0, totalBytes = 0;
  c.err("cudaMemGetInfo", cudaMemGetInfo(&freeBytes, &totalBytes), cudaSuccess);
  c.that(totalBytes == budget, "cudaMemGetInfo's total is " + std::to_string(totalBytes) + ", not CGEMU_DEVICE_MEMORY");
  void* big = nullptr;
  c.err("cudaMalloc of the budget + 1", cudaMalloc(&big, budget + 1), cudaErrorMemoryAllocation);
  c.that(big == nullptr, "the failed cudaMalloc returned a pointer");
  c.err("cudaGetLastError", cudaGetLastError(), cudaErrorMemoryAllocation);
  c.err("cudaGetLastError a second time", cudaGetLastError(), cudaSuccess);
  void* half = nullptr;
  c.err("cudaMalloc of half the budget", cudaMalloc(&half, budget / 2), cudaSuccess);
  c.err("cudaFree", cudaFree(half), cudaSuccess);
  c.note = "cudaErrorMemoryAllocation over " + std::to_string(budget) + " bytes, not sticky";
}

// A copy whose device side runs past its allocation is refused; one just inside is not.
void caseMemcpyOutOfRange(Check& c) {
  float* d = nullptr;
  if (!deviceAlloc(c, &d, 256)) return;
  std::vector<float> host(256, 1.0f);
  const size_t half = 128 * sizeof(float);
  c.err("a copy to the last 128 floats", cudaMemcpyAsync(d + 128, host.data(), half, cudaMemcpyHostToDevice), cudaSuccess);
  c.err("a copy to 129 floats from the same place",
        cudaMemcpyAsync(d + 128, host.data(), half + sizeof(float), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  c.err("a copy from the last 127 floats + 1",
        cudaMemcpyAsync(host.data(), d + 129, half, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  c.err("cudaGetLastError", cudaGetLastError(), cudaErrorInvalidValue);
  c.err("cudaGetLastError a second time", cudaGetLastError(), cudaSuccess);
  c.err("cudaDeviceSynchronize", cudaDeviceSynchronize(), cudaSuccess);
  c.note = "cudaErrorInvalidValue, not sticky";
}

// One thread too many writes one float past the allocation. Only an AddressSanitizer
// build can see it; elsewhere the case refuses to run it (it would corrupt the heap).
void caseOobWrite(Check& c) {
#if defined(__SANITIZE_ADDRESS__)
  float* p = nullptr;
  if (!deviceAlloc(c, &p, 32)) return;
  fillKernel<<<1, 33>>>(p, 1.0f);
  cudaStreamSynchronize(0);
  c.that(false, "the write past the allocation went unnoticed");
#else
  c.that(false, "this build has no AddressSanitizer (CGEMU_ASAN=ON builds one)");
#endif
}

struct Case {
  const char* name;
  void (*run)(Check&);
};

const Case kCases[] = {
    {"ok", caseOk},
    {"config-block-1025", [](Check& c) { caseConfig(c, 1, 1025, 0); }},
    {"config-grid-y-65536", [](Check& c) { caseConfig(c, dim3(1, 65536), 1, 0); }},
    {"config-grid-z-65536", [](Check& c) { caseConfig(c, dim3(1, 1, 65536), 1, 0); }},
    {"config-grid-zero", [](Check& c) { caseConfig(c, 0, 32, 0); }},
    {"config-shared-48k-plus-1", [](Check& c) { caseConfig(c, 1, 32, 48 * 1024 + 1); }},
    {"host-pointer", caseHostPointer},
    {"use-after-free", caseUseAfterFree},
    {"divergent-sync", caseDivergentSync},
    {"deadlock", caseDeadlock},
    {"shuffle-after-return", caseShuffleAfterReturn},
    {"shuffle-partial-mask", caseShufflePartialMask},
    {"stale-read", caseStaleRead},
    {"missing-sync", caseMissingSync},
    {"shared-unwritten", caseSharedUnwritten},
    {"float4-aligned", [](Check& c) { caseFloat4(c, 4); }},
    {"float4-misaligned", [](Check& c) { caseFloat4(c, 1); }},
    {"out-of-memory", caseOutOfMemory},
    {"memcpy-out-of-range", caseMemcpyOutOfRange},
    {"oob-write", caseOobWrite},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const Case& k : kCases) std::printf("%s\n", k.name);
    return 0;
  }
  for (const Case& k : kCases) {
    if (argc != 2 || std::strcmp(argv[1], k.name) != 0) continue;
    Check c;
    k.run(c);
    if (c.failure.empty()) std::printf("pass %s: %s\n", k.name, c.note.c_str());
    else std::printf("fail %s: %s\n", k.name, c.failure.c_str());
    return c.failure.empty() ? 0 : 1;
  }
  std::fprintf(stderr, "usage: cgemu-selftest <case> | --list\n");
  return 2;
}
