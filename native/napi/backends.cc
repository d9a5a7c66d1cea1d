#include "backends.h"

#include <cmath>
#include <string>

#include "../core/thread_pool.h"
#include "../cublaslt/cublaslt_library.h"
#include "../cpu/cpu_backend.h"
#include "../cpu/cpu_features.h"
#include "arg_error.h"
#include "js_values.h"
#include "mpi_call.h"
#include "nccl_call.h"
#ifdef CRAFTGRAD_HAVE_CUDA
#include "../cuda/cuda_backend.h"
#include "../cuda/tuning.h"
#endif

namespace craftgrad {

Backend& backendNamed(const std::string& device, const std::string& name) {
  if (device == "cpu") return cpuBackend();
  const std::string prefix = "cuda:";
  const std::string digits = device.compare(0, prefix.size(), prefix) == 0 ? device.substr(prefix.size()) : "";
  if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos)
    throw rangeError(name + " must be 'cpu' or 'cuda:N', got '" + device + "'");
  const int index = std::stoi(digits);
#ifdef CRAFTGRAD_HAVE_CUDA
  const cuda::Info& in = cuda::info();
  if (!in.available) throw cuda::CudaError("craftgrad: CUDA is not available: " + in.reason);
  if (index >= static_cast<int>(in.devices.size()))
    throw rangeError(name + " is " + device + " but only " + std::to_string(in.devices.size()) +
                     " CUDA device(s) are visible");
  return cuda::backend(index);
#else
  (void)index;
  throw rangeError(name + " is " + device + " but this build of craftgrad has no CUDA backend");
#endif
}

Backend& defaultHostBackend() { return cpuBackend(); }

Backend& readBackend(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsString()) throw typeError(name + " must be a device name ('cpu' or 'cuda:N'), got " + describeValue(env, v));
  return backendNamed(v.As<Napi::String>().Utf8Value(), name);
}

namespace {

#ifdef CRAFTGRAD_HAVE_CUDA
void fillCudaInfo(Napi::Env env, Napi::Object out) {
  const cuda::Info& in = cuda::info();
  out.Set("compiled", true);
  out.Set("available", in.available);
  if (!in.available) out.Set("reason", in.reason);
  out.Set("driverVersion", in.driverVersion);
  out.Set("runtimeVersion", in.runtimeVersion);
  Napi::Array devices = Napi::Array::New(env, in.devices.size());
  for (size_t i = 0; i < in.devices.size(); ++i) {
    const cuda::DeviceInfo& d = in.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", d.index);
    o.Set("name", d.name);
    o.Set("totalMemory", static_cast<double>(d.totalMemory));
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    o.Set("multiprocessors", d.multiprocessors);
    o.Set("l2CacheBytes", d.l2Bytes);
    devices.Set(static_cast<uint32_t>(i), o);
  }
  out.Set("devices", devices);
  // The overrides in effect (tuning.h), so that a benchmark's record says what it timed.
  const cuda::Tuning& t = cuda::tuning();
  Napi::Object tuning = Napi::Object::New(env);
  tuning.Set("gemm", cuda::gemmVariantName(t.gemm));
  tuning.Set("groupBytes", t.groupBytes > 0 ? Napi::Value(Napi::Number::New(env, static_cast<double>(t.groupBytes)))
                                            : env.Null());
  tuning.Set("fp32Gemm", t.fp32Lt ? "cublaslt" : "kernels");
  if (!t.note.empty()) tuning.Set("note", t.note);
  out.Set("tuning", tuning);
}
#endif

// backendInfo().cublasLt: { available, library?, version?, reason? } (native/cublaslt).
Napi::Object cublasLtInfo(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
#ifndef CRAFTGRAD_HAVE_CUDA
  o.Set("available", false);
  o.Set("reason", "this build of craftgrad has no CUDA backend (cuBLASLt computes products on CUDA devices)");
#else
  std::string why;
  const bool ok = cublaslt::available(&why);  // loads libcublasLt on first call
  o.Set("available", ok);
  if (ok) {
    o.Set("library", cublaslt::library().path);
    o.Set("version", cublaslt::library().version());
  } else {
    o.Set("reason", why);
  }
#endif
  return o;
}

}  // namespace

Napi::Object backendInfo(Napi::Env env) {
  const CpuDispatch& d = cpuDispatch();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("isa", d.kernels->name);
  Napi::Array available = Napi::Array::New(env, d.available.size());
  for (size_t i = 0; i < d.available.size(); ++i) available.Set(static_cast<uint32_t>(i), d.available[i]);
  cpu.Set("available", available);
  cpu.Set("threads", ThreadPool::instance().size());
  if (!d.note.empty()) cpu.Set("note", d.note);

  Napi::Object cuda = Napi::Object::New(env);
  Napi::Array backends = Napi::Array::New(env);
  backends.Set(0u, "cpu");
#ifdef CRAFTGRAD_HAVE_CUDA
  fillCudaInfo(env, cuda);
  backends.Set(1u, "cuda");
#else
  cuda.Set("compiled", false);
  cuda.Set("available", false);
  cuda.Set("reason", "this build of craftgrad has no CUDA backend");
  cuda.Set("devices", Napi::Array::New(env, 0));
#endif

  Napi::Object info = Napi::Object::New(env);
  info.Set("backends", backends);
  info.Set("napiVersion", NAPI_VERSION);
  info.Set("cpu", cpu);
  info.Set("cuda", cuda);
  info.Set("mpi", mpiInfo(env));
  info.Set("nccl", ncclInfo(env));  // loads libnccl on first call (native/nccl)
  info.Set("cublasLt", cublasLtInfo(env));
  return info;
}

}  // namespace craftgrad
