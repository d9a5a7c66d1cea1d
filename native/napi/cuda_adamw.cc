// The optimizer step on DeviceBuffers (argument order: binding.d.ts):
//   cudaCraftReduce(act, ret, layout, lambda, eps, projection) -> craftReduce's result
//   cudaAdamwFused(params, m, v, act, ret, coefficients, layout, lr, beta1, beta2, eps,
//                  weightDecay, step, gradScale) -> undefined
//   cudaAdamw(params, m, v, grad, layout, lr, beta1, beta2, eps, weightDecay, step,
//             gradScale) -> undefined
// Checks, all before anything touches the device: the scalar hyper-parameters first
// (RangeError, the same ranges as the CPU calls in adamw_call.cc), then the handles
// (TypeError unless live DeviceBuffers / DeviceLayout), then every buffer against the
// layout (same device, layoutTotal elements: RangeError), then aliasing (params, m, v
// three distinct buffers, none of them read as a gradient: RangeError). craftReduce's
// statistics come back through cuda::reduce and are turned into the result by the same
// host code as the CPU's (craftReduceResult), so the coefficients are the CPU's doubles.
#ifdef CRAFTGRAD_HAVE_CUDA
#include <string>
#include <vector>

#include "adamw_call.h"
#include "cuda_exports.h"
#include "cuda_objects.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

void requireFloat64Array(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw typeError(std::string(name) + " must be a Float64Array");
}

Napi::Value CudaCraftReduce(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const SurgeryParams sp = readReduceParams(info, 3);
    const LaidOutBuffers io = readLaidOut(env, {{"act", info[0]}, {"ret", info[1]}}, info[2]);
    std::vector<ReduceSums> sums(static_cast<size_t>(cuda::layoutCount(*io.layout)));
    cuda::reduce(*io.layout, io.data(0), io.data(1), sums.data());
    return craftReduceResult(env, sums, sp);
  });
}

// params, m and v are written; act and ret (or grad) are read.
Napi::Value CudaAdamwFused(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const AdamWParams hp = readAdamW(info, 7);
    requireFloat64Array(env, info[5], "coefficients");
    const LaidOutBuffers io = readLaidOut(
        env, {{"params", info[0]}, {"m", info[1]}, {"v", info[2]}, {"act", info[3]}, {"ret", info[4]}}, info[6]);
    const double* coef = readFloat64(env, info[5], "coefficients", cuda::layoutCount(*io.layout));
    io.requireWrittenDistinct(3);
    cuda::adamwFused(*io.layout, io.data(3), io.data(4), coef, io.data(0), io.data(1), io.data(2), hp);
    return env.Undefined();
  });
}

Napi::Value CudaAdamw(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const AdamWParams hp = readAdamW(info, 5);
    const LaidOutBuffers io =
        readLaidOut(env, {{"params", info[0]}, {"m", info[1]}, {"v", info[2]}, {"grad", info[3]}}, info[4]);
    io.requireWrittenDistinct(3);
    cuda::adamw(*io.layout, io.data(3), io.data(0), io.data(1), io.data(2), hp);
    return env.Undefined();
  });
}

}  // namespace

void registerCudaAdamW(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaCraftReduce", Napi::Function::New(env, CudaCraftReduce, "cudaCraftReduce"));
  exports.Set("cudaAdamwFused", Napi::Function::New(env, CudaAdamwFused, "cudaAdamwFused"));
  exports.Set("cudaAdamw", Napi::Function::New(env, CudaAdamw, "cudaAdamw"));
}

}  // namespace craftgrad
#endif  // CRAFTGRAD_HAVE_CUDA
