#include "backend_info.h"

#include "../core/thread_pool.h"
#include "../cpu/cpu_features.h"
#ifdef CRAFTGRAD_HAVE_CUDA
#include "cuda_exports.h"
#endif

namespace craftgrad {

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
#ifdef CRAFTGRAD_HAVE_CUDA
  fillCudaInfo(env, cuda);
#else
  cuda.Set("compiled", false);
  cuda.Set("available", false);
  cuda.Set("reason", "this build of craftgrad has no CUDA backend");
  cuda.Set("devices", Napi::Array::New(env, 0));
#endif

  Napi::Object info = Napi::Object::New(env);
  Napi::Array backends = Napi::Array::New(env);
  backends.Set(0u, "cpu");
#ifdef CRAFTGRAD_HAVE_CUDA
  backends.Set(1u, "cuda");
#endif
  info.Set("backends", backends);
  info.Set("napiVersion", NAPI_VERSION);
  info.Set("cpu", cpu);
  info.Set("cuda", cuda);
  return info;
}

}  // namespace craftgrad
