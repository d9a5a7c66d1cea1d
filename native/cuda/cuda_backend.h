// The CUDA backend behind a plain C++ interface: no CUDA headers here, so native/napi
// includes it like any other header. Everything is compiled only with
// CRAFTGRAD_HAVE_CUDA (native/cuda/cuda.cmake).
//
// Errors: every CUDA call is checked; a failure throws CudaError (a BackendError, code
// ERR_CRAFTGRAD_CUDA, whose message names the call, the device and CUDA's own words).
// Out-of-memory throws CudaOutOfMemory (code ERR_CRAFTGRAD_CUDA_OOM), which also says how
// many bytes were asked for and on which device.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/adamw_params.h"
#include "../core/backend.h"
#include "../core/backend_error.h"
#include "../core/numerics.h"
#include "../core/tensor_span.h"

namespace craftgrad {
namespace cuda {

struct CudaError : BackendError {
  explicit CudaError(const std::string& msg, const char* code = "ERR_CRAFTGRAD_CUDA") : BackendError(msg, code) {}
};

struct CudaOutOfMemory : CudaError {
  CudaOutOfMemory(const std::string& msg, int dev, size_t bytes) : CudaError(msg, "ERR_CRAFTGRAD_CUDA_OOM") {
    device = dev;
    requestedBytes = static_cast<int64_t>(bytes);
  }
};

// The CUDA backend of core/backend.h on one device (cuda_backend.cc): throws CudaError
// unless CUDA is usable and `device` is visible. One per device, kept for the process.
Backend& backend(int device);

// ---- What the machine offers ----
struct DeviceInfo {
  int index = 0;
  std::string name;
  size_t totalMemory = 0;
  int major = 0, minor = 0;
  int l2Bytes = 0;
  int multiprocessors = 0;
};

struct Info {
  bool available = false;
  std::string reason;        // why not, when !available
  int driverVersion = 0;     // e.g. 13000; 0 without a driver
  int runtimeVersion = 0;    // the statically linked runtime
  std::vector<DeviceInfo> devices;
};

// Queried once, then cached (device enumeration is stable for the process).
const Info& info();

// Free and total device memory now (cudaMemGetInfo), in bytes.
struct MemoryInfo {
  size_t freeBytes = 0, totalBytes = 0;
};
MemoryInfo memoryInfo(int device);

// Throws CudaError unless CUDA is usable and `device` names a visible device; `what`
// names the argument in the message ("device").
void requireDevice(int device, const char* what);

// ---- Device memory ----
// One cudaMalloc'd range of floats on one device. Freed by the destructor (errors while
// freeing are ignored: the process may be shutting the runtime down).
class DeviceMemory final : public Memory {
 public:
  DeviceMemory(int device, int64_t length);  // throws CudaOutOfMemory
  ~DeviceMemory() override;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  int device() const { return device_; }
  int64_t length() const override { return length_; }
  float* data() const override { return data_; }

 private:
  int device_;
  int64_t length_;
  float* data_ = nullptr;
};

// Copies and fills on any device range (a DeviceMemory's, or a view into one: core/backend.h
// MemoryView), synchronous with respect to the host (they return when the data has arrived).
void uploadDevice(int device, float* dst, const float* src, int64_t count);
void downloadDevice(int device, float* dst, const float* src, int64_t count);
void fillDevice(int device, float* p, int64_t count, float value);
// dst[0..n) = src[0..n), both on `device`, not overlapping (device-to-device on the device's
// stream; returns when the copy is done).
void copyDevice(int device, float* dst, const float* src, int64_t n);

// ---- Layout: a list of tensor sizes packed back to back in one buffer ----
// Owns the chunk table (cached on the device) and the per-call scratch, allocated once
// when the layout is made: calls allocate nothing in proportion to the data.
class Layout;
std::shared_ptr<Layout> makeLayout(int device, const std::vector<int64_t>& sizes);
int layoutDevice(const Layout& l);
int64_t layoutTotal(const Layout& l);
int64_t layoutCount(const Layout& l);
const std::vector<int64_t>& layoutSizes(const Layout& l);

// ---- The surgery ----
// a, r, out: device pointers on the layout's device holding layoutTotal(l) floats each;
// out may equal a or r exactly. Fills stats[i] for every tensor; one stream sync.
// Thread-safe: concurrent calls on one layout are serialised by the layout.
void surgery(Layout& l, const float* a, const float* r, float* out, const SurgeryParams& params,
             TensorStats* stats);

// Pass 1 alone (the trainer's craftReduce): per-tensor <a,r>, <r,r>, <a,a> and the
// non-finite flag, the same bits as reduceAllCpu; nothing written. a may equal r. One
// stream sync (the statistics' copy to pinned memory).
void reduce(Layout& l, const float* a, const float* r, ReduceSums* sums);

// The optimizer step (adamw_kernels.cu), the element update of native/cpu/adamw_body.inc
// in the same fp32 operation order. p, m, v: distinct device buffers of layoutTotal(l)
// floats, none of them a, r or g. One launch over the layout's chunk table, then one
// stream sync (which reports any error of the launch).
// Fused: g = fma(c_i, r, a)·gradScale with c_i = float(coefficients[i]) (k entries), then
// AdamW: a, r, p, m, v read once; p, m, v written once.
void adamwFused(Layout& l, const float* a, const float* r, const double* coefficients, float* p, float* m, float* v,
                const AdamWParams& params);
// Standalone: g = grad·gradScale.
void adamw(Layout& l, const float* grad, float* p, float* m, float* v, const AdamWParams& params);

// Host arrays staged through a device staging area cached per device (grown when
// needed). out may alias a or r exactly (host spans as the CPU backend takes them).
void surgeryHost(int device, const HostTensor* tensors, int64_t count, const SurgeryParams& params,
                 TensorStats* stats);

// The HBM floor for benchmarks: a device-to-device copy of `elements` floats timed with
// CUDA events; returns the milliseconds of each of `reps` copies (after one warm-up).
std::vector<double> timeDeviceCopy(int device, int64_t elements, int reps);

}  // namespace cuda
}  // namespace craftgrad
