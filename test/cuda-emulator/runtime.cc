// The CUDA runtime API on the CPU, for the emulator build (README.md here): one emulated
// device whose memory is host memory with a budget, streams whose work runs when the
// host waits for it (so a result read before its synchronisation is stale, as on a GPU),
// and launches whose pointer arguments must be device memory.
//
// Errors follow CUDA: a bad call returns its error and leaves it for cudaGetLastError; a
// failure inside a kernel (a pointer that is not device memory, a deadlock, a divergent
// barrier) is sticky: every later call returns it, and the detail goes to stderr.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fibers.h"

// The head first (cuda_runtime_api.h: the stand-ins read it through the stream pointer).
struct CUstream_st {
  cgemuStreamHead head{CGEMU_STREAM_MAGIC, &cudaLaunchHostFunc};
  std::deque<std::function<void()>> pending;
};
struct CUevent_st {
  bool done = false;
  std::chrono::steady_clock::time_point when;
};

namespace cgemu {
namespace {

constexpr size_t kDefaultMemory = size_t{4} << 30;

struct Allocation {
  size_t bytes;
  bool device;  // else pinned host memory
};

struct State {
  std::recursive_mutex mu;
  size_t totalBytes = kDefaultMemory, usedBytes = 0;
  std::map<std::uintptr_t, Allocation> allocations;
  std::vector<cudaStream_t> streams;
  CUstream_st legacy;  // stream 0
  cudaError_t lastError = cudaSuccess, sticky = cudaSuccess;
  std::uint64_t rng = 1;
  State() {
    if (const char* e = std::getenv("CGEMU_DEVICE_MEMORY")) {
      const unsigned long long v = std::strtoull(e, nullptr, 10);
      if (v > 0) totalBytes = static_cast<size_t>(v);
    }
    rng = schedule().seed;
  }
};

State& state() {
  static State* s = new State();  // never destroyed: streams may be used from static destructors
  return *s;
}

thread_local int t_device = 0;

cudaError_t setError(cudaError_t e) {
  if (e != cudaSuccess) state().lastError = e;
  return e;
}

void stickyFailure(cudaError_t e, const std::string& what) {
  State& s = state();
  if (s.sticky == cudaSuccess) {
    s.sticky = e;
    std::fprintf(stderr, "cgemu: %s\n", what.c_str());
  }
}

// The allocation holding [p, p + bytes), or nullptr; `bytes` 0 also matches one past the end.
const Allocation* find(const void* p, size_t bytes, std::uintptr_t* base = nullptr) {
  State& s = state();
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = s.allocations.upper_bound(a);
  if (it == s.allocations.begin()) return nullptr;
  --it;
  if (a + bytes > it->first + it->second.bytes) return nullptr;
  if (bytes > 0 && a >= it->first + it->second.bytes) return nullptr;
  if (base) *base = it->first;
  return &it->second;
}
bool isDevice(const void* p, size_t bytes) {
  const Allocation* a = find(p, bytes);
  return a != nullptr && a->device;
}
bool isPinned(const void* p, size_t bytes) {
  const Allocation* a = find(p, bytes);
  return a != nullptr && !a->device;
}

CUstream_st* streamOf(cudaStream_t s) { return s == nullptr ? &state().legacy : s; }
bool validStream(cudaStream_t s) {
  if (s == nullptr) return true;
  for (cudaStream_t k : state().streams)
    if (k == s) return true;
  return false;
}

// Runs the stream's pending work in order; after a sticky error the rest is dropped.
void drain(CUstream_st* st) {
  while (!st->pending.empty()) {
    std::function<void()> op = std::move(st->pending.front());
    st->pending.pop_front();
    if (state().sticky == cudaSuccess) op();
  }
}
void drainAll() {
  drain(&state().legacy);
  for (cudaStream_t s : state().streams) drain(s);
}

void enqueue(cudaStream_t s, std::function<void()> op) { streamOf(s)->pending.push_back(std::move(op)); }

const char* nameOf(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorMisalignedAddress: return "cudaErrorMisalignedAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    default: return "cudaErrorUnknown";
  }
}

}  // namespace

const char* describeBadPointer(const void* p, int index) {
  if (p == nullptr) return nullptr;
  if (find(p, 0) != nullptr) return nullptr;
  static thread_local char msg[160];
  std::snprintf(msg, sizeof msg, "kernel argument %d (%p) is neither device nor pinned memory", index, p);
  return msg;
}

void enqueueKernel(const char* name, Site site, dim3 grid, dim3 block, size_t sharedBytes, cudaStream_t stream,
                   std::shared_ptr<KernelBody> body) {
  State& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mu);
  const std::string at = std::string(name) + " launched at " + site.file + ":" + std::to_string(site.line);
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0 || threads > 1024 || block.z > 64 ||
      grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535 || sharedBytes > 48 * 1024) {
    std::fprintf(stderr, "cgemu: invalid configuration: %s with grid (%u, %u, %u), block (%u, %u, %u), %zu bytes of shared memory\n",
                 at.c_str(), grid.x, grid.y, grid.z, block.x, block.y, block.z, sharedBytes);
    setError(cudaErrorInvalidConfiguration);
    return;
  }
  if (!validStream(stream)) {
    setError(cudaErrorInvalidResourceHandle);
    return;
  }
  enqueue(stream, [at, grid, block, body] {
    if (const char* bad = body->checkPointers()) {
      stickyFailure(cudaErrorIllegalAddress, at + ": " + bad);
      return;
    }
    State& st = state();
    const unsigned long long nBlocks = 1ull * grid.x * grid.y * grid.z;
    std::vector<std::uint64_t> order;  // empty in the natural order: a grid may have millions of CTAs
    if (schedule().order != Order::Forward) arrange(order, nBlocks, &st.rng);
    for (unsigned long long k = 0; k < nBlocks; ++k) {
      const unsigned long long b = order.empty() ? k : order[k];
      const uint3 idx{static_cast<unsigned>(b % grid.x), static_cast<unsigned>(b / grid.x % grid.y),
                      static_cast<unsigned>(b / (1ull * grid.x * grid.y))};
      const std::string err = runBlock(*body, grid, block, idx, &st.rng);
      if (!err.empty()) {
        stickyFailure(cudaErrorLaunchFailure, at + ", block (" + std::to_string(idx.x) + ", " + std::to_string(idx.y) +
                                                  ", " + std::to_string(idx.z) + "): " + err);
        return;
      }
    }
  });
}

}  // namespace cgemu

using cgemu::state;

#define CGEMU_ENTER                                               \
  cgemu::State& S = state();                                      \
  std::lock_guard<std::recursive_mutex> cgemuLock(S.mu);          \
  if (S.sticky != cudaSuccess) return S.sticky

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return cgemu::setError(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (!p) return cgemu::setError(cudaErrorInvalidValue);
  if (device != 0) return cgemu::setError(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "craftgrad CUDA emulator (CPU)");
  p->totalGlobalMem = state().totalBytes;
  p->sharedMemPerBlock = 48 * 1024;
  p->maxThreadsPerBlock = 1024;
  p->clockRate = 1755000;  // an H100's figures, so that derived numbers look plausible
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 132;
  p->l2CacheSize = 50 << 20;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  cudaDeviceProp p;
  if (!value) return cgemu::setError(cudaErrorInvalidValue);
  if (const cudaError_t e = cudaGetDeviceProperties(&p, device)) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrClockRate: *value = p.clockRate; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
    default: return cgemu::setError(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  CGEMU_ENTER;
  if (device != 0) return cgemu::setError(cudaErrorInvalidDevice);
  cgemu::t_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (!device) return cgemu::setError(cudaErrorInvalidValue);
  *device = cgemu::t_device;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* v) {
  if (!v) return cgemu::setError(cudaErrorInvalidValue);
  *v = 13000;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* v) {
  if (!v) return cgemu::setError(cudaErrorInvalidValue);
  *v = 13000;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  CGEMU_ENTER;
  cgemu::drainAll();
  return S.sticky;
}

cudaError_t cudaGetLastError() {
  cgemu::State& S = state();
  std::lock_guard<std::recursive_mutex> lock(S.mu);
  if (S.sticky != cudaSuccess) return S.sticky;
  const cudaError_t e = S.lastError;
  S.lastError = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() {
  cgemu::State& S = state();
  std::lock_guard<std::recursive_mutex> lock(S.mu);
  return S.sticky != cudaSuccess ? S.sticky : S.lastError;
}

const char* cudaGetErrorName(cudaError_t err) { return cgemu::nameOf(err); }

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return "emulated CUDA error (see cgemu's message on stderr)";
  }
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  CGEMU_ENTER;
  if (!ptr) return cgemu::setError(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  if (bytes > S.totalBytes - S.usedBytes) return cgemu::setError(cudaErrorMemoryAllocation);
  // 256-byte aligned as cudaMalloc's, but exactly `bytes` long: the range checks (and
  // AddressSanitizer in a CGEMU_ASAN build) see the first byte past the end.
  void* p = nullptr;
  if (posix_memalign(&p, 256, bytes) != 0) return cgemu::setError(cudaErrorMemoryAllocation);
  // Fresh device memory is garbage: all-ones bytes are NaNs, so a kernel that reads what
  // nobody wrote shows in its results.
  std::memset(p, 0xff, bytes);
  S.allocations[reinterpret_cast<std::uintptr_t>(p)] = {bytes, true};
  S.usedBytes += bytes;
  *ptr = p;
  return cudaSuccess;
}

static cudaError_t freeAllocation(void* ptr, bool device) {
  CGEMU_ENTER;
  if (!ptr) return cudaSuccess;
  cgemu::drainAll();  // cudaFree synchronises the device
  auto it = S.allocations.find(reinterpret_cast<std::uintptr_t>(ptr));
  if (it == S.allocations.end() || it->second.device != device) return cgemu::setError(cudaErrorInvalidValue);
  if (device) S.usedBytes -= it->second.bytes;
  S.allocations.erase(it);
  std::free(ptr);
  return S.sticky;
}

cudaError_t cudaFree(void* ptr) { return freeAllocation(ptr, true); }
cudaError_t cudaFreeHost(void* ptr) { return freeAllocation(ptr, false); }

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  CGEMU_ENTER;
  if (!ptr) return cgemu::setError(cudaErrorInvalidValue);
  const size_t size = bytes > 0 ? bytes : 1;
  void* p = nullptr;
  if (posix_memalign(&p, 256, size) != 0) return cgemu::setError(cudaErrorMemoryAllocation);
  S.allocations[reinterpret_cast<std::uintptr_t>(p)] = {size, false};
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* freeBytes, size_t* totalBytes) {
  CGEMU_ENTER;
  if (!freeBytes || !totalBytes) return cgemu::setError(cudaErrorInvalidValue);
  *freeBytes = S.totalBytes - S.usedBytes;
  *totalBytes = S.totalBytes;
  return cudaSuccess;
}

// Device ranges must lie inside one allocation; host ranges must not be device memory.
// Pageable host sources are read when the call is made and pageable destinations written
// before it returns (CUDA's rules for pageable memory); pinned ones when the stream runs.
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  CGEMU_ENTER;
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src || !cgemu::validStream(stream)) return cgemu::setError(cudaErrorInvalidValue);
  if (kind == cudaMemcpyDefault)
    kind = cgemu::isDevice(src, 1) ? (cgemu::isDevice(dst, 1) ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                                   : (cgemu::isDevice(dst, 1) ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
  const bool srcDevice = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool dstDevice = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  if (srcDevice ? !cgemu::isDevice(src, bytes) : cgemu::isDevice(src, 1)) {
    std::fprintf(stderr, "cgemu: cudaMemcpyAsync: source %p (%zu bytes) is not %s memory\n", src, bytes,
                 srcDevice ? "device" : "host");
    return cgemu::setError(cudaErrorInvalidValue);
  }
  if (dstDevice ? !cgemu::isDevice(dst, bytes) : cgemu::isDevice(dst, 1)) {
    std::fprintf(stderr, "cgemu: cudaMemcpyAsync: destination %p (%zu bytes) is not %s memory\n", dst, bytes,
                 dstDevice ? "device" : "host");
    return cgemu::setError(cudaErrorInvalidValue);
  }
  if (!srcDevice && !cgemu::isPinned(src, bytes)) {
    auto copy = std::make_shared<std::vector<char>>(static_cast<const char*>(src), static_cast<const char*>(src) + bytes);
    cgemu::enqueue(stream, [dst, copy] { std::memcpy(dst, copy->data(), copy->size()); });
  } else {
    cgemu::enqueue(stream, [dst, src, bytes] { std::memmove(dst, src, bytes); });
  }
  if (!dstDevice && !cgemu::isPinned(dst, bytes)) {
    cgemu::drain(cgemu::streamOf(stream));
    return S.sticky;
  }
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, nullptr)) return e;
  return cudaDeviceSynchronize();
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  CGEMU_ENTER;
  if (bytes == 0) return cudaSuccess;
  if (!cgemu::validStream(stream) || !cgemu::isDevice(dst, bytes)) {
    std::fprintf(stderr, "cgemu: cudaMemsetAsync: %p (%zu bytes) is not device memory\n", dst, bytes);
    return cgemu::setError(cudaErrorInvalidValue);
  }
  cgemu::enqueue(stream, [dst, value, bytes] { std::memset(dst, value, bytes); });
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  CGEMU_ENTER;
  if (!stream) return cgemu::setError(cudaErrorInvalidValue);
  *stream = new CUstream_st();
  S.streams.push_back(*stream);
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  CGEMU_ENTER;
  for (size_t i = 0; i < S.streams.size(); ++i)
    if (S.streams[i] == stream) {
      cgemu::drain(stream);
      S.streams.erase(S.streams.begin() + static_cast<long>(i));
      delete stream;
      return S.sticky;
    }
  return cgemu::setError(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  CGEMU_ENTER;
  if (!cgemu::validStream(stream)) return cgemu::setError(cudaErrorInvalidResourceHandle);
  cgemu::drain(cgemu::streamOf(stream));
  return S.sticky;
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  CGEMU_ENTER;
  if (!cgemu::validStream(stream)) return cgemu::setError(cudaErrorInvalidResourceHandle);
  cgemu::drain(cgemu::streamOf(stream));
  return S.sticky;
}

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* userData) {
  CGEMU_ENTER;
  if (!fn || !cgemu::validStream(stream)) return cgemu::setError(cudaErrorInvalidValue);
  cgemu::enqueue(stream, [fn, userData] { fn(userData); });
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  CGEMU_ENTER;
  if (!event) return cgemu::setError(cudaErrorInvalidValue);
  *event = new CUevent_st();
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return cgemu::setError(cudaErrorInvalidResourceHandle);
  cgemu::State& S = state();
  std::lock_guard<std::recursive_mutex> lock(S.mu);
  cgemu::drainAll();  // a pending record would write the destroyed event
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  CGEMU_ENTER;
  if (!event || !cgemu::validStream(stream)) return cgemu::setError(cudaErrorInvalidResourceHandle);
  event->done = false;
  cgemu::enqueue(stream, [event] {
    event->when = std::chrono::steady_clock::now();
    event->done = true;
  });
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  CGEMU_ENTER;
  if (!event) return cgemu::setError(cudaErrorInvalidResourceHandle);
  cgemu::drainAll();
  return S.sticky;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  CGEMU_ENTER;
  if (!ms || !start || !end) return cgemu::setError(cudaErrorInvalidValue);
  if (!start->done || !end->done) return cgemu::setError(cudaErrorNotReady);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}
