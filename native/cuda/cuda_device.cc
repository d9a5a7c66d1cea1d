// Device discovery, error reporting, memory and the per-device contexts.
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "cuda_internal.h"

namespace craftgrad {
namespace cuda {

namespace {

std::string errorText(cudaError_t err) {
  const char* name = cudaGetErrorName(err);
  const char* text = cudaGetErrorString(err);
  return std::string(name ? name : "cudaError") + ": " + (text ? text : "unknown error");
}

std::string humanBytes(size_t b) {
  char buf[64];
  const double gib = static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0);
  if (gib >= 1.0) std::snprintf(buf, sizeof buf, "%.2f GiB", gib);
  else std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
  return buf;
}

Info queryInfo() {
  Info in;
  cudaRuntimeGetVersion(&in.runtimeVersion);
  if (cudaDriverGetVersion(&in.driverVersion) != cudaSuccess) in.driverVersion = 0;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    if (err == cudaErrorNoDevice)
      in.reason = "no CUDA device is visible (cudaErrorNoDevice)";
    else if (err == cudaErrorInsufficientDriver && in.driverVersion == 0)
      in.reason = "no NVIDIA driver is installed (libcuda.so.1 could not be loaded)";
    else if (err == cudaErrorInsufficientDriver)
      in.reason = "the NVIDIA driver (CUDA " + std::to_string(in.driverVersion / 1000) + "." +
                  std::to_string(in.driverVersion % 1000 / 10) + ") is older than this build's CUDA runtime (" +
                  std::to_string(in.runtimeVersion / 1000) + "." + std::to_string(in.runtimeVersion % 1000 / 10) + ")";
    else
      in.reason = "cudaGetDeviceCount failed: " + errorText(err);
    return in;
  }
  if (count == 0) {
    in.reason = "no CUDA device is visible";
    return in;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p;
    std::memset(&p, 0, sizeof p);
    const cudaError_t e = cudaGetDeviceProperties(&p, d);
    if (e != cudaSuccess) {
      cudaGetLastError();
      in.reason = "cudaGetDeviceProperties(" + std::to_string(d) + ") failed: " + errorText(e);
      in.devices.clear();
      return in;
    }
    DeviceInfo di;
    di.index = d;
    di.name = p.name;
    di.totalMemory = p.totalGlobalMem;
    di.major = p.major;
    di.minor = p.minor;
    di.l2Bytes = p.l2CacheSize;
    di.multiprocessors = p.multiProcessorCount;
    in.devices.push_back(di);
  }
  in.available = true;
  return in;
}

// Frees device and pinned memory on a thread of its own. cudaFree and cudaFreeHost wait
// for the whole device (every in-flight step), and the destructors that free run where the
// last reference drops: for a set collected by the GC or disposed, the JS main thread.
// One thread for the process, started on first use, never joined (like the contexts); at
// exit it stops taking work and what is still queued is left to the driver.
class Releaser {
 public:
  static Releaser& instance() {
    static Releaser* r = new Releaser();  // never destroyed
    return *r;
  }
  void push(int device, void* p, bool pinned) {
    std::lock_guard<std::mutex> lock(mu_);
    if (exiting_) return;
    if (!started_) {
      std::thread([this] { run(); }).detach();
      std::atexit([] { Releaser::instance().stop(); });
      started_ = true;
    }
    queue_.push_back({device, p, pinned});
    work_.notify_one();
  }
  // Returns when every free queued so far has been done (before a retry after out of
  // memory, and before the free memory is reported).
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [this] { return exiting_ || (queue_.empty() && !busy_); });
  }

 private:
  struct Item {
    int device;
    void* p;
    bool pinned;
  };
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      work_.wait(lock, [this] { return !queue_.empty() && !exiting_; });
      const Item it = queue_.front();
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      // Errors are ignored, as in freeDevice: nothing can be done about them here.
      if (cudaSetDevice(it.device) == cudaSuccess) {
        if ((it.pinned ? cudaFreeHost(it.p) : cudaFree(it.p)) != cudaSuccess) cudaGetLastError();
      } else {
        cudaGetLastError();
      }
      lock.lock();
      busy_ = false;
      idle_.notify_all();
    }
  }
  // At exit: finish the free in progress (the runtime is still loaded), take no more.
  void stop() {
    std::unique_lock<std::mutex> lock(mu_);
    exiting_ = true;
    idle_.wait(lock, [this] { return !busy_; });
    idle_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable work_, idle_;
  std::deque<Item> queue_;
  bool busy_ = false, started_ = false, exiting_ = false;
};

}  // namespace

void releaseDevice(int device, void* p) noexcept {
  if (p == nullptr) return;
  try {
    Releaser::instance().push(device, p, false);
  } catch (...) {  // no thread or no memory for the queue: free here
    if (cudaSetDevice(device) == cudaSuccess) freeDevice(p);
  }
}

void releasePinned(int device, void* p) noexcept {
  if (p == nullptr) return;
  try {
    Releaser::instance().push(device, p, true);
  } catch (...) {
    if (cudaFreeHost(p) != cudaSuccess) cudaGetLastError();
  }
}

void waitForReleases() { Releaser::instance().wait(); }

[[noreturn]] void throwCuda(cudaError_t err, const char* call, int device) {
  cudaGetLastError();  // clear non-sticky errors
  throw CudaError("craftgrad: CUDA error on cuda:" + std::to_string(device) + " in " + call + ": " + errorText(err));
}

const Info& info() {
  static const Info cached = queryInfo();
  return cached;
}

void requireDevice(int device, const char* what) {
  const Info& in = info();
  if (!in.available) throw CudaError("craftgrad: CUDA is not available: " + in.reason);
  if (device < 0 || device >= static_cast<int>(in.devices.size()))
    throw CudaError(std::string("craftgrad: ") + what + " " + std::to_string(device) + " does not exist (" +
                    std::to_string(in.devices.size()) + " CUDA device(s) visible)");
}

void useDevice(int device) { CG_CUDA(device, cudaSetDevice(device)); }

MemoryInfo memoryInfo(int device) {
  deviceContext(device);  // checks the device, makes it current
  waitForReleases();      // what was disposed is free
  MemoryInfo m;
  CG_CUDA(device, cudaMemGetInfo(&m.freeBytes, &m.totalBytes));
  return m;
}

void* mallocDevice(int device, size_t bytes, const char* what) {
  if (bytes == 0) return nullptr;
  useDevice(device);
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    // Memory disposed just before may still be queued for the release thread.
    cudaGetLastError();
    waitForReleases();
    useDevice(device);
    err = cudaMalloc(&p, bytes);
  }
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t freeB = 0, totalB = 0;
    std::string state;
    if (cudaMemGetInfo(&freeB, &totalB) == cudaSuccess)
      state = "; " + humanBytes(freeB) + " free of " + humanBytes(totalB);
    cudaGetLastError();
    throw CudaOutOfMemory("craftgrad: out of device memory: " + std::string(what) + " asked for " +
                              std::to_string(bytes) + " bytes (" + humanBytes(bytes) + ") on cuda:" +
                              std::to_string(device) + state,
                          device, bytes);
  }
  if (err != cudaSuccess) throwCuda(err, "cudaMalloc", device);
  return p;
}

void* mallocPinned(int device, size_t bytes, const char* what) {
  void* p = nullptr;
  cudaError_t err = cudaMallocHost(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    waitForReleases();
    err = cudaMallocHost(&p, bytes);
  }
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw CudaOutOfMemory("craftgrad: out of pinned host memory: " + std::string(what) + " asked for " +
                              std::to_string(bytes) + " bytes (" + humanBytes(bytes) + ") for cuda:" +
                              std::to_string(device),
                          device, bytes);
  }
  if (err != cudaSuccess) throwCuda(err, "cudaMallocHost", device);
  return p;
}

void freeDevice(void* p) noexcept {
  if (p == nullptr) return;
  // Errors here are ignored: at process exit the runtime may be unloading.
  if (cudaFree(p) != cudaSuccess) cudaGetLastError();
}

DeviceContext& deviceContext(int device) {
  requireDevice(device, "device");
  static std::mutex mu;
  static std::vector<DeviceContext*>* contexts = new std::vector<DeviceContext*>();
  std::lock_guard<std::mutex> lock(mu);
  if (contexts->size() < info().devices.size()) contexts->resize(info().devices.size(), nullptr);
  DeviceContext*& slot = (*contexts)[device];
  useDevice(device);
  if (slot == nullptr) {
    auto* ctx = new DeviceContext();
    ctx->device = device;
    ctx->l2Bytes = info().devices[device].l2Bytes;
    ctx->multiprocessors = info().devices[device].multiprocessors;
    const cudaError_t err = cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking);
    if (err != cudaSuccess) {
      delete ctx;
      throwCuda(err, "cudaStreamCreateWithFlags", device);
    }
    slot = ctx;
  }
  return *slot;
}

// ---- DeviceMemory ----

DeviceMemory::DeviceMemory(int device, int64_t length) : device_(device), length_(length) {
  requireDevice(device, "device");
  if (length < 0) throw CudaError("craftgrad: negative device buffer length");
  data_ = static_cast<float*>(mallocDevice(device, static_cast<size_t>(length) * sizeof(float), "cudaAlloc"));
}

DeviceMemory::~DeviceMemory() { releaseDevice(device_, data_); }

void uploadDevice(int device, float* dst, const float* src, int64_t count) {
  if (count == 0) return;
  DeviceContext& ctx = deviceContext(device);
  CG_CUDA(device, cudaMemcpyAsync(dst, src, static_cast<size_t>(count) * sizeof(float), cudaMemcpyHostToDevice, ctx.stream));
  CG_CUDA(device, cudaStreamSynchronize(ctx.stream));
}

void downloadDevice(int device, float* dst, const float* src, int64_t count) {
  if (count == 0) return;
  DeviceContext& ctx = deviceContext(device);
  CG_CUDA(device, cudaMemcpyAsync(dst, src, static_cast<size_t>(count) * sizeof(float), cudaMemcpyDeviceToHost, ctx.stream));
  CG_CUDA(device, cudaStreamSynchronize(ctx.stream));
}

void fillDevice(int device, float* p, int64_t count, float value) {
  if (count == 0) return;
  DeviceContext& ctx = deviceContext(device);
  launchFill(ctx, p, count, value);
  CG_CUDA(device, cudaStreamSynchronize(ctx.stream));
}

void copyDevice(int device, float* dst, const float* src, int64_t n) {
  if (n <= 0 || dst == src) return;
  DeviceContext& ctx = deviceContext(device);
  CG_CUDA(device, cudaMemcpyAsync(dst, src, sizeof(float) * static_cast<size_t>(n), cudaMemcpyDeviceToDevice, ctx.stream));
  CG_CUDA(device, cudaStreamSynchronize(ctx.stream));
}

std::vector<double> timeDeviceCopy(int device, int64_t elements, int reps) {
  DeviceContext& ctx = deviceContext(device);
  DeviceMemory src(device, elements), dst(device, elements);
  fillDevice(device, src.data(), src.length(), 1.0f);
  const size_t bytes = static_cast<size_t>(elements) * sizeof(float);
  cudaEvent_t start = nullptr, stop = nullptr;
  CG_CUDA(device, cudaEventCreate(&start));
  std::vector<double> ms;
  try {
    CG_CUDA(device, cudaEventCreate(&stop));
    CG_CUDA(device, cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, ctx.stream));
    for (int i = 0; i < reps; ++i) {
      CG_CUDA(device, cudaEventRecord(start, ctx.stream));
      CG_CUDA(device, cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, ctx.stream));
      CG_CUDA(device, cudaEventRecord(stop, ctx.stream));
      CG_CUDA(device, cudaEventSynchronize(stop));
      float t = 0.0f;
      CG_CUDA(device, cudaEventElapsedTime(&t, start, stop));
      ms.push_back(t);
    }
  } catch (...) {
    cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    throw;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms;
}

}  // namespace cuda
}  // namespace craftgrad
