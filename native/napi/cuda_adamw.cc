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

struct Named {
  const char* name;
  const cuda::DeviceMemory* mem;
};

// Written buffers must be distinct and must not be read as a gradient.
void checkDistinct(const std::vector<Named>& written, const std::vector<Named>& read) {
  for (size_t i = 0; i < written.size(); ++i) {
    for (size_t j = i + 1; j < written.size(); ++j)
      if (written[i].mem == written[j].mem)
        throw rangeError(std::string(written[i].name) + " and " + written[j].name + " are the same DeviceBuffer");
    for (const Named& r : read)
      if (written[i].mem == r.mem)
        throw rangeError(std::string(written[i].name) + " and " + r.name + " are the same DeviceBuffer");
  }
}

void requireFloat64Array(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw typeError(std::string(name) + " must be a Float64Array");
}

Napi::Value CudaCraftReduce(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const SurgeryParams sp = readReduceParams(info, 3);
    DeviceBufferWrap* act = DeviceBufferWrap::unwrap(env, info[0], "act");
    DeviceBufferWrap* ret = DeviceBufferWrap::unwrap(env, info[1], "ret");
    DeviceLayoutWrap* lw = DeviceLayoutWrap::unwrap(env, info[2], "layout");
    const std::shared_ptr<cuda::Layout> layout = lw->layout();
    const int device = cuda::layoutDevice(*layout);
    const int64_t total = cuda::layoutTotal(*layout);
    checkAgainstLayout(*act->memory(), "act", device, total);
    checkAgainstLayout(*ret->memory(), "ret", device, total);
    std::vector<ReduceSums> sums(static_cast<size_t>(cuda::layoutCount(*layout)));
    cuda::reduce(*layout, act->memory()->data(), ret->memory()->data(), sums.data());
    return craftReduceResult(env, sums, sp);
  });
}

Napi::Value CudaAdamwFused(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const AdamWParams hp = readAdamW(info, 7);
    requireFloat64Array(env, info[5], "coefficients");
    DeviceBufferWrap* p = DeviceBufferWrap::unwrap(env, info[0], "params");
    DeviceBufferWrap* m = DeviceBufferWrap::unwrap(env, info[1], "m");
    DeviceBufferWrap* v = DeviceBufferWrap::unwrap(env, info[2], "v");
    DeviceBufferWrap* a = DeviceBufferWrap::unwrap(env, info[3], "act");
    DeviceBufferWrap* r = DeviceBufferWrap::unwrap(env, info[4], "ret");
    DeviceLayoutWrap* lw = DeviceLayoutWrap::unwrap(env, info[6], "layout");
    const std::shared_ptr<cuda::Layout> layout = lw->layout();
    const int device = cuda::layoutDevice(*layout);
    const int64_t total = cuda::layoutTotal(*layout);
    checkAgainstLayout(*p->memory(), "params", device, total);
    checkAgainstLayout(*m->memory(), "m", device, total);
    checkAgainstLayout(*v->memory(), "v", device, total);
    checkAgainstLayout(*a->memory(), "act", device, total);
    checkAgainstLayout(*r->memory(), "ret", device, total);
    const double* coef = readFloat64(env, info[5], "coefficients", cuda::layoutCount(*layout));
    checkDistinct({{"params", p->memory().get()}, {"m", m->memory().get()}, {"v", v->memory().get()}},
                  {{"act", a->memory().get()}, {"ret", r->memory().get()}});
    cuda::adamwFused(*layout, a->memory()->data(), r->memory()->data(), coef, p->memory()->data(),
                     m->memory()->data(), v->memory()->data(), hp);
    return env.Undefined();
  });
}

Napi::Value CudaAdamw(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const AdamWParams hp = readAdamW(info, 5);
    DeviceBufferWrap* p = DeviceBufferWrap::unwrap(env, info[0], "params");
    DeviceBufferWrap* m = DeviceBufferWrap::unwrap(env, info[1], "m");
    DeviceBufferWrap* v = DeviceBufferWrap::unwrap(env, info[2], "v");
    DeviceBufferWrap* g = DeviceBufferWrap::unwrap(env, info[3], "grad");
    DeviceLayoutWrap* lw = DeviceLayoutWrap::unwrap(env, info[4], "layout");
    const std::shared_ptr<cuda::Layout> layout = lw->layout();
    const int device = cuda::layoutDevice(*layout);
    const int64_t total = cuda::layoutTotal(*layout);
    checkAgainstLayout(*p->memory(), "params", device, total);
    checkAgainstLayout(*m->memory(), "m", device, total);
    checkAgainstLayout(*v->memory(), "v", device, total);
    checkAgainstLayout(*g->memory(), "grad", device, total);
    checkDistinct({{"params", p->memory().get()}, {"m", m->memory().get()}, {"v", v->memory().get()}},
                  {{"grad", g->memory().get()}});
    cuda::adamw(*layout, g->memory()->data(), p->memory()->data(), m->memory()->data(), v->memory()->data(), hp);
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
