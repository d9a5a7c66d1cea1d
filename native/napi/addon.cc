// The native module's entry point: the only place that lists what JS can call
// (binding.d.ts). Each operation is one export whatever the device: it takes the backend
// from its TensorSet operands (native/napi/tensor_set.h) or from options.device.
#include <napi.h>

#include "../core/thread_pool.h"
#include "adamw_call.h"
#include "arg_error.h"
#include "backends.h"
#include "env_data.h"
#include "image_call.h"
#include "jpeg_call.h"
#include "js_values.h"
#include "model_call.h"
#include "mpi_call.h"
#include "nccl_call.h"
#include "op_call.h"
#include "qwen2_call.h"
#include "surgery_call.h"
#include "tensor_set.h"
#include "vla_call.h"
#ifdef CRAFTGRAD_BENCH
#include "../../bench/native/bench_natives.h"
#endif

namespace craftgrad {
namespace {

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return backendInfo(info.Env()); });
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const double n = readNumber(info.Env(), info[0], "threads");
    if (!(n >= 1 && n <= 1024) || n != static_cast<double>(static_cast<int>(n)))
      throw rangeError("threads must be an integer from 1 to 1024, got " + std::to_string(n));
    ThreadPool::instance().resize(static_cast<int>(n));
    return info.Env().Undefined();
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  initEnvData(env);  // first: the TensorSet constructor and the surgery result function live there
  exports.Set("TensorSet", TensorSetWrap::define(env));
  exports.Set("surgery", Napi::Function::New(env, callSync<SurgeryOp>, "surgery"));
  exports.Set("surgeryAsync", Napi::Function::New(env, callAsync<SurgeryOp>, "surgeryAsync"));
  registerAdamW(env, exports);         // craftReduce, adamwFused, adamw
  registerModelExports(env, exports);  // modelStep, modelStepAsync, copy, modelTensors, modelGemm
  registerQwen2Exports(env, exports);  // qwen2Step, qwen2StepAsync, qwen2Tensors
  registerVlaExports(env, exports);    // vlaStep, vlaStepAsync, vlaTensors
  registerMpiExports(env, exports);   // mpi.{init, rank, size, sumInRankOrder, broadcast, ...}
  registerNcclExports(env, exports);  // nccl.{info, uniqueId, Communicator}
  registerJpegExports(env, exports);  // decodeJpeg
  registerImageExports(env, exports); // imageResize, imageAugment, imageNormalize
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
#ifdef CRAFTGRAD_BENCH
  // Measurements for bench/ and some tests, in repository builds only (CMakeLists.txt).
  registerBenchNatives(env, exports);  // bench.{fmaPeakGflops, cudaTimeCopy, cudaMemInfo, ...}
#endif
  return exports;
}

}  // namespace
}  // namespace craftgrad

// The macro pastes its second argument into a name, so it must be unqualified.
static Napi::Object InitCraftgrad(Napi::Env env, Napi::Object exports) { return craftgrad::Init(env, exports); }
NODE_API_MODULE(craftgrad, InitCraftgrad)
