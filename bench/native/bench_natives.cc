// The benchmark-only natives, `binding.bench` of a repository build (CMakeLists.txt,
// CRAFTGRAD_BENCH; never in the npm package or the prebuilds). Not operations of the backend
// interface: measurements for bench/*.js and a few GPU tests.
//   fmaPeakGflops(seconds): measured fp32 FMA throughput of the pool's threads
//   CUDA builds only:
//   cudaTimeCopy(device, elements, reps) -> Float64Array of ms per device-to-device copy
//   cudaMemInfo(device) -> { freeBytes, totalBytes }
//   cudaDeviceProps(device) -> { multiprocessors, clockKHz, computeCapability, fp32LanesPerSM }
//   cudaModelGemmTime(device, M, N, K, transA, transB, reps, variant) -> Float64Array of ms
#include "bench_natives.h"

#include <cmath>
#include <string>
#include <vector>

#include "../../native/cpu/gemm.h"
#include "../../native/napi/arg_error.h"
#include "../../native/napi/typed_arrays.h"
#ifdef CRAFTGRAD_HAVE_CUDA
#include "../../native/cuda/cuda_backend.h"
#include "../../native/cuda/model_cuda.h"
#endif

namespace craftgrad {
namespace {

Napi::Value FmaPeakGflops(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const double s = readNumber(info.Env(), info[0], "seconds");
    if (!(s > 0 && s <= 60)) throw rangeError("seconds must be in (0, 60]");
    return Napi::Number::New(info.Env(), measureFmaPeakGflops(s));
  });
}

#ifdef CRAFTGRAD_HAVE_CUDA

// A device index naming a visible device (RangeError otherwise); CudaError when CUDA is unavailable.
int readDeviceIndex(Napi::Env env, Napi::Value v, const char* name) {
  const double d = readNumber(env, v, name);
  if (!(d >= 0) || d != std::floor(d) || d > 1e6)
    throw rangeError(std::string(name) + " must be a non-negative integer device index, got " + std::to_string(d));
  const cuda::Info& in = cuda::info();
  if (!in.available) throw cuda::CudaError("craftgrad: CUDA is not available: " + in.reason);
  if (d >= static_cast<double>(in.devices.size()))
    throw rangeError(std::string(name) + " is " + std::to_string(static_cast<int>(d)) + " but only " +
                     std::to_string(in.devices.size()) + " CUDA device(s) are visible");
  return static_cast<int>(d);
}

int64_t readInt(Napi::Env env, Napi::Value v, const char* name, int64_t lo, int64_t hi) {
  const double d = readNumber(env, v, name);
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != std::floor(d))
    throw rangeError(std::string(name) + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                     ", got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

Napi::Float64Array toArray(Napi::Env env, const std::vector<double>& ms) {
  Napi::Float64Array out = Napi::Float64Array::New(env, ms.size());
  for (size_t i = 0; i < ms.size(); ++i) out[i] = ms[i];
  return out;
}

// Milliseconds per device-to-device copy (benchmarks: the HBM floor measured in the same run).
Napi::Value CudaTimeCopy(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int device = readDeviceIndex(env, info[0], "device");
    const int64_t elements = readCount(env, info[1], "elements");
    const int64_t reps = readInt(env, info[2], "reps", 1, 10000);
    return toArray(env, cuda::timeDeviceCopy(device, elements, static_cast<int>(reps)));
  });
}

// { freeBytes, totalBytes } now (tests size their largest sets by it).
Napi::Value CudaMemInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const cuda::MemoryInfo m = cuda::memoryInfo(readDeviceIndex(env, info[0], "device"));
    Napi::Object out = Napi::Object::New(env);
    out.Set("freeBytes", Napi::Number::New(env, static_cast<double>(m.freeBytes)));
    out.Set("totalBytes", Napi::Number::New(env, static_cast<double>(m.totalBytes)));
    return out;
  });
}

// { multiprocessors, clockKHz, computeCapability, fp32LanesPerSM }: the fp32 peak's inputs.
Napi::Value CudaDeviceProps(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const cuda::DeviceProps p = cuda::deviceProps(readDeviceIndex(env, info[0], "device"));
    Napi::Object out = Napi::Object::New(env);
    out.Set("multiprocessors", p.multiprocessors);
    out.Set("clockKHz", p.clockKHz);
    out.Set("computeCapability", std::to_string(p.major) + "." + std::to_string(p.minor));
    out.Set("fp32LanesPerSM", p.fp32LanesPerSM);
    return out;
  });
}

// Milliseconds of each launch of the model's product kernel (variant: 0 by shape, 1 simple,
// 2 tiled64, 3 tiled128).
Napi::Value CudaModelGemmTime(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int device = readDeviceIndex(env, info[0], "device");
    const int64_t lim = int64_t{1} << 16;
    const int64_t M = readInt(env, info[1], "M", 1, lim), N = readInt(env, info[2], "N", 1, lim),
                  K = readInt(env, info[3], "K", 1, lim);
    const bool ta = readBool(env, info[4], "transA"), tb = readBool(env, info[5], "transB");
    const int reps = static_cast<int>(readInt(env, info[6], "reps", 1, 10000));
    const auto variant = static_cast<cuda::GemmVariant>(readInt(env, info[7], "variant", 0, 3));
    return toArray(env, cuda::timeGemm(device, M, N, K, ta, tb, reps, variant));
  });
}

#endif  // CRAFTGRAD_HAVE_CUDA

}  // namespace

void registerBenchNatives(Napi::Env env, Napi::Object exports) {
  Napi::Object bench = Napi::Object::New(env);
  bench.Set("fmaPeakGflops", Napi::Function::New(env, FmaPeakGflops, "fmaPeakGflops"));
#ifdef CRAFTGRAD_HAVE_CUDA
  bench.Set("cudaTimeCopy", Napi::Function::New(env, CudaTimeCopy, "cudaTimeCopy"));
  bench.Set("cudaMemInfo", Napi::Function::New(env, CudaMemInfo, "cudaMemInfo"));
  bench.Set("cudaDeviceProps", Napi::Function::New(env, CudaDeviceProps, "cudaDeviceProps"));
  bench.Set("cudaModelGemmTime", Napi::Function::New(env, CudaModelGemmTime, "cudaModelGemmTime"));
#endif
  exports.Set("bench", bench);
}

}  // namespace craftgrad
