// The native module's entry point: the only place that lists what JS can call.
// Argument order is internal (binding.d.ts); src/native.ts is the only caller.
#include <napi.h>

#include "../core/thread_pool.h"
#include "adamw_call.h"
#include "arg_error.h"
#include "backend_info.h"
#include "model_call.h"
#include "surgery_call.h"
#include "surgery_worker.h"
#include "typed_arrays.h"
#ifdef CRAFTGRAD_HAVE_CUDA
#include "cuda_exports.h"
#endif

namespace craftgrad {
namespace {

Napi::Value Surgery(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    SurgeryCall call = SurgeryCall::parseList(info);
    call.compute();
    return call.result(info.Env());
  });
}

Napi::Value SurgeryFlat(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    SurgeryCall call = SurgeryCall::parseFlat(info);
    call.compute();
    return call.result(info.Env());
  });
}

template <bool Flat>
Napi::Value SurgeryAsync(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    SurgeryCall call = Flat ? SurgeryCall::parseFlat(info) : SurgeryCall::parseList(info);
    auto* worker = new SurgeryWorker(info.Env(), std::move(call));
    Napi::Promise promise = worker->promise();
    worker->Queue();  // the worker deletes itself when done
    return promise;
  });
}

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
  exports.Set("surgery", Napi::Function::New(env, Surgery, "surgery"));
  exports.Set("surgeryFlat", Napi::Function::New(env, SurgeryFlat, "surgeryFlat"));
  exports.Set("surgeryAsync", Napi::Function::New(env, SurgeryAsync<false>, "surgeryAsync"));
  exports.Set("surgeryFlatAsync", Napi::Function::New(env, SurgeryAsync<true>, "surgeryFlatAsync"));
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  registerModelExports(env, exports);
#ifdef CRAFTGRAD_HAVE_CUDA
  registerCuda(env, exports);
#endif
  registerAdamW(env, exports);  // craftReduce, adamwFused, adamw (the optimizer step)
  return exports;
}

}  // namespace
}  // namespace craftgrad

// The macro pastes its second argument into a name, so it must be unqualified.
static Napi::Object InitCraftgrad(Napi::Env env, Napi::Object exports) { return craftgrad::Init(env, exports); }
NODE_API_MODULE(craftgrad, InitCraftgrad)
