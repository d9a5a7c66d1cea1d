// The CUDA half of the binding (native/napi/cuda_*.cc): compiled only with
// CRAFTGRAD_HAVE_CUDA. addon.cc and backend_info.cc call these two functions.
#pragma once
#include <napi.h>

namespace craftgrad {

// Adds DeviceBuffer, DeviceLayout, cudaAlloc, cudaLayout, cudaSurgery, cudaSurgeryAsync,
// cudaSurgeryHost, cudaSurgeryHostAsync, cudaSurgeryHostFlat, cudaSurgeryHostFlatAsync,
// cudaTimeCopy and cudaMemInfo to `exports`.
void registerCuda(Napi::Env env, Napi::Object exports);

// Adds cudaCraftReduce, cudaAdamwFused and cudaAdamw (native/napi/cuda_adamw.cc); called
// by registerCuda.
void registerCudaAdamW(Napi::Env env, Napi::Object exports);

// Fills backendInfo().cuda: compiled, available, reason, driverVersion, runtimeVersion,
// devices [{index, name, totalMemory, computeCapability, multiprocessors, l2CacheBytes}].
void fillCudaInfo(Napi::Env env, Napi::Object cuda);

}  // namespace craftgrad
