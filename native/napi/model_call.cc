#include "model_call.h"

#include <cmath>
#include <string>
#include <initializer_list>
#include <memory>
#include <vector>

#include "../core/model_desc.h"
#include "../cpu/gemm.h"
#include "../cpu/model_cpu.h"
#include "arg_error.h"
#include "typed_arrays.h"
#ifdef CRAFTGRAD_HAVE_CUDA
#include "../cuda/model_cuda.h"
#include "cuda_objects.h"
#endif

namespace craftgrad {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

F32View needLength(napi_env env, napi_value v, const char* name, int64_t expected, const std::string& what) {
  F32View view = readFloat32Array(env, v, name);
  if (view.length != expected)
    throw rangeError(std::string(name) + " has " + str(view.length) + " elements but " + what + " needs " +
                     str(expected));
  return view;
}

bool overlaps(const F32View& x, const F32View& y) {
  if (!x.data || !y.data || x.length == 0 || y.length == 0) return false;
  return x.data < y.data + y.length && y.data < x.data + x.length;
}

int64_t readInt(napi_env env, napi_value v, const char* name, int64_t lo, int64_t hi) {
  const double d = readNumber(env, v, name);
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != std::floor(d))
    throw rangeError(std::string(name) + " must be an integer from " + str(lo) + " to " + str(hi) + ", got " +
                     std::to_string(d));
  return static_cast<int64_t>(d);
}

ModelConfig readConfig(const Napi::CallbackInfo& info) {
  Napi::Value v = info[0];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw typeError("config must be a Float64Array");
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  if (a.ElementLength() != kModelConfigFields)
    throw rangeError("config must have " + str(kModelConfigFields) + " values, got " + str(a.ElementLength()));
  for (int k : {6, 7})
    if (!(a[k] == 0 || a[k] == 1 || (k == 7 && a[k] == 2)))
      throw rangeError(k == 6 ? "config.pooling must be 0 (mean) or 1 (max)"
                              : "config.anchor must be 0 (concat), 1 (aq_only) or 2 (raw_only)");
  ModelConfig c = unpackModelConfig(a.Data());
  const std::string err = modelConfigError(c);
  if (!err.empty()) throw rangeError(err);
  return c;
}

// Everything a model call needs, parsed and validated on the JS thread.
struct ModelCall {
  ModelConfig config;
  ModelStepArgs args;
  std::vector<napi_value> keepAlive;  // backing ArrayBuffers (for the async worker)

  Napi::Value result(Napi::Env env, const ModelStepResult& r) const {
    Napi::Object out = Napi::Object::New(env);
    out.Set("actionLoss", r.actionLoss);
    out.Set("retentionLoss", r.retentionLoss);
    return out;
  }
};

ModelCall parseModelCall(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  ModelCall call;
  const ModelConfig c = readConfig(info);
  call.config = c;
  const ModelLayout lay = modelLayout(c);
  ModelStepArgs& a = call.args;
  const int64_t mode = readInt(env, info[9], "mode", 0, 3);
  a.mode = static_cast<ModelMode>(mode);
  const bool withRet = a.mode == ModelMode::Craft || a.mode == ModelMode::EvalRet;
  const bool withGrad = a.mode == ModelMode::Craft || a.mode == ModelMode::Baseline;
  a.batch = readInt(env, info[6], "batch", 1, int64_t{1} << 24);
  const F32View params = needLength(env, info[1], "params", lay.paramCount, "the model's trainable layout");
  const F32View frozen = needLength(env, info[2], "frozen", lay.frozenCount, "the model's frozen layout");
  F32View anchor;
  if (withRet) anchor = needLength(env, info[3], "anchor", lay.anchorCount, "the model's anchor layout");
  const F32View tokens = needLength(env, info[4], "tokens", a.batch * c.T * c.D, "batch×T×D");
  const F32View actions = needLength(env, info[5], "actions", a.batch * c.actionDim(), "batch×K×A");
  F32View gAct, gRet;
  if (withGrad) gAct = needLength(env, info[7], "gAct", lay.paramCount, "the model's trainable layout");
  if (a.mode == ModelMode::Craft) gRet = needLength(env, info[8], "gRet", lay.paramCount, "the model's trainable layout");
  a.accumulate = readBool(env, info[10], "accumulate");
  const double scale = readNumber(env, info[11], "scale");
  if (!std::isfinite(scale)) throw rangeError("scale must be a finite number, got " + std::to_string(scale));
  a.scale = static_cast<float>(scale);
  // Outputs must not alias inputs or each other: the kernels read inputs after writing outputs.
  const std::pair<const F32View*, const char*> ins[] = {
      {&params, "params"}, {&frozen, "frozen"}, {&anchor, "anchor"}, {&tokens, "tokens"}, {&actions, "actions"}};
  for (auto out : {std::make_pair(&gAct, "gAct"), std::make_pair(&gRet, "gRet")}) {
    for (const auto& in : ins)
      if (overlaps(*out.first, *in.first))
        throw rangeError(std::string(out.second) + " and " + in.second + " overlap in memory");
  }
  if (overlaps(gAct, gRet)) throw rangeError("gAct and gRet overlap in memory");
  a.params = params.data;
  a.frozen = frozen.data;
  a.anchor = anchor.data;
  a.tokens = tokens.data;
  a.actions = actions.data;
  a.gAct = gAct.data;
  a.gRet = gRet.data;
  for (const F32View* v : std::initializer_list<const F32View*>{&params, &frozen, &anchor, &tokens, &actions, &gAct, &gRet})
    if (v->arrayBuffer) call.keepAlive.push_back(v->arrayBuffer);
  return call;
}

// modelStepAsync: the same call on a libuv worker thread, holding a reference to every
// backing ArrayBuffer until it settles. The caller must not change the arrays meanwhile.
class ModelWorker : public Napi::AsyncWorker {
 public:
  ModelWorker(Napi::Env env, ModelCall call)
      : Napi::AsyncWorker(env, "craftgrad.modelStep"), call_(std::move(call)), deferred_(Napi::Promise::Deferred::New(env)) {
    for (napi_value b : call_.keepAlive) buffers_.push_back(Napi::Persistent(Napi::Value(env, b)));
    call_.keepAlive.clear();
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = modelStepCpu(call_.config, call_.args);
    } catch (const std::exception& e) {
      SetError(std::string("craftgrad: model step failed: ") + e.what());
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    deferred_.Resolve(call_.result(Env(), result_));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  ModelCall call_;
  ModelStepResult result_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::Reference<Napi::Value>> buffers_;
};

}  // namespace

Napi::Value ModelStep(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const ModelCall call = parseModelCall(info);
    return call.result(info.Env(), modelStepCpu(call.config, call.args));
  });
}

Napi::Value ModelStepAsync(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* worker = new ModelWorker(info.Env(), parseModelCall(info));
    Napi::Promise promise = worker->promise();
    worker->Queue();  // deletes itself when done
    return promise;
  });
}

// The arguments of modelGemm / cudaModelGemm from info[first]: M, N, K, alpha, a, transA,
// b, transB, beta, c (c may not overlap a or b).
struct GemmArgs {
  int64_t M, N, K;
  float alpha, beta;
  F32View a, b, c;
  bool ta, tb;
};

GemmArgs readGemmArgs(napi_env env, const Napi::CallbackInfo& info, size_t first, int64_t minDim, int64_t maxDim) {
  GemmArgs g;
  g.M = readInt(env, info[first], "M", minDim, maxDim);
  g.N = readInt(env, info[first + 1], "N", minDim, maxDim);
  g.K = readInt(env, info[first + 2], "K", minDim, maxDim);
  g.alpha = static_cast<float>(readNumber(env, info[first + 3], "alpha"));
  g.ta = readBool(env, info[first + 5], "transA");
  g.tb = readBool(env, info[first + 7], "transB");
  const double beta = readNumber(env, info[first + 8], "beta");
  if (beta != 0 && beta != 1) throw rangeError("beta must be 0 or 1");
  g.beta = static_cast<float>(beta);
  g.a = needLength(env, info[first + 4], "a", g.M * g.K, "M×K");
  g.b = needLength(env, info[first + 6], "b", g.K * g.N, "K×N");
  g.c = needLength(env, info[first + 9], "c", g.M * g.N, "M×N");
  if (overlaps(g.c, g.a) || overlaps(g.c, g.b)) throw rangeError("c overlaps a or b in memory");
  return g;
}

Napi::Value ModelGemm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const GemmArgs g = readGemmArgs(info.Env(), info, 0, 0, int64_t{1} << 20);
    gemm(g.M, g.N, g.K, g.alpha, MatRef{g.a.data, g.ta ? g.M : g.K, g.ta}, MatRef{g.b.data, g.tb ? g.K : g.N, g.tb},
         g.beta, g.c.data, g.N);
    return info.Env().Undefined();
  });
}

Napi::Value FmaPeakGflops(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const double s = readNumber(info.Env(), info[0], "seconds");
    if (!(s > 0 && s <= 60)) throw rangeError("seconds must be in (0, 60]");
    return Napi::Number::New(info.Env(), measureFmaPeakGflops(s));
  });
}

#ifdef CRAFTGRAD_HAVE_CUDA
// cudaModelStep(config, params, frozen, anchor, tokens, actions, batch, gAct, gRet, mode,
// accumulate, scale): params, frozen, anchor, gAct, gRet are DeviceBuffers on one device;
// tokens and actions host Float32Arrays, staged into the per-device model scratch (cached,
// grown when needed). Synchronous (one stream sync); cudaModelStepAsync runs the same call
// on a libuv worker thread.
struct CudaModelCall {
  ModelConfig config;
  ModelStepArgs args;
  int device = -1;
  std::vector<std::shared_ptr<cuda::DeviceMemory>> memory;  // kept alive for the async worker
  std::vector<napi_value> keepAlive;                        // tokens' and actions' ArrayBuffers
};

CudaModelCall parseCudaModelCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CudaModelCall call;
  const ModelConfig c = readConfig(info);
  call.config = c;
  const ModelLayout lay = modelLayout(c);
  ModelStepArgs& a = call.args;
  a.mode = static_cast<ModelMode>(readInt(env, info[9], "mode", 0, 3));
  const bool withRet = a.mode == ModelMode::Craft || a.mode == ModelMode::EvalRet;
  const bool withGrad = a.mode == ModelMode::Craft || a.mode == ModelMode::Baseline;
  a.batch = readInt(env, info[6], "batch", 1, int64_t{1} << 24);
  int& device = call.device;
  auto buffer = [&](size_t i, const char* name, int64_t need) -> float* {
    DeviceBufferWrap* w = DeviceBufferWrap::unwrap(env, info[i], name);
    const auto& mem = w->memory();
    if (mem->length() != need)
      throw rangeError(std::string(name) + " has " + str(mem->length()) + " elements but the model needs " + str(need));
    if (device < 0) device = mem->device();
    else if (mem->device() != device)
      throw rangeError(std::string(name) + " is on cuda:" + std::to_string(mem->device()) + ", params on cuda:" + std::to_string(device));
    call.memory.push_back(mem);
    return mem->data();
  };
  a.params = buffer(1, "params", lay.paramCount);
  a.frozen = buffer(2, "frozen", lay.frozenCount);
  if (withRet) a.anchor = buffer(3, "anchor", lay.anchorCount);
  const F32View tokens = needLength(env, info[4], "tokens", a.batch * c.T * c.D, "batch×T×D");
  const F32View actions = needLength(env, info[5], "actions", a.batch * c.actionDim(), "batch×K×A");
  if (withGrad) a.gAct = buffer(7, "gAct", lay.paramCount);
  if (a.mode == ModelMode::Craft) a.gRet = buffer(8, "gRet", lay.paramCount);
  for (const float* in : {a.params, a.frozen, a.anchor}) {
    if (in && (in == a.gAct || in == a.gRet)) throw rangeError("gAct and gRet must not be an input buffer");
  }
  if (a.gRet && a.gRet == a.gAct) throw rangeError("gAct and gRet overlap in memory");
  a.accumulate = readBool(env, info[10], "accumulate");
  const double scale = readNumber(env, info[11], "scale");
  if (!std::isfinite(scale)) throw rangeError("scale must be a finite number, got " + std::to_string(scale));
  a.scale = static_cast<float>(scale);
  a.tokens = tokens.data;
  a.actions = actions.data;
  for (const F32View* v : {&tokens, &actions})
    if (v->arrayBuffer) call.keepAlive.push_back(v->arrayBuffer);
  return call;
}

Napi::Value modelResult(Napi::Env env, const ModelStepResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("actionLoss", r.actionLoss);
  out.Set("retentionLoss", r.retentionLoss);
  return out;
}

class CudaModelWorker : public Napi::AsyncWorker {
 public:
  CudaModelWorker(Napi::Env env, CudaModelCall call)
      : Napi::AsyncWorker(env, "craftgrad.cudaModelStep"), call_(std::move(call)),
        deferred_(Napi::Promise::Deferred::New(env)) {
    for (napi_value b : call_.keepAlive) buffers_.push_back(Napi::Persistent(Napi::Value(env, b)));
    call_.keepAlive.clear();
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = cuda::modelStep(call_.device, call_.config, call_.args);
    } catch (const std::exception& e) {
      SetError(failure_.capture(e));
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    deferred_.Resolve(modelResult(Env(), result_));
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(failure_.toJs(Env()).Value());
  }

 private:
  CudaModelCall call_;
  ModelStepResult result_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::Reference<Napi::Value>> buffers_;
  WorkerFailure failure_;
};

Napi::Value CudaModelStep(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    const CudaModelCall call = parseCudaModelCall(info);
    return modelResult(info.Env(), cuda::modelStep(call.device, call.config, call.args));
  });
}

Napi::Value CudaModelStepAsync(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    auto* worker = new CudaModelWorker(info.Env(), parseCudaModelCall(info));
    Napi::Promise promise = worker->promise();
    worker->Queue();  // deletes itself when done
    return promise;
  });
}

// cudaCopy(dst, dstOffset, src, srcOffset, count): device-to-device copy between (or
// within, without overlap) DeviceBuffers on one device. Synchronous.
Napi::Value CudaCopy(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    DeviceBufferWrap* dst = DeviceBufferWrap::unwrap(env, info[0], "dst");
    DeviceBufferWrap* src = DeviceBufferWrap::unwrap(env, info[2], "src");
    const int64_t dOff = readElementCount(env, info[1], "dstOffset");
    const int64_t sOff = readElementCount(env, info[3], "srcOffset");
    const int64_t n = readElementCount(env, info[4], "count");
    const auto& dm = dst->memory();
    const auto& sm = src->memory();
    if (dm->device() != sm->device())
      throw rangeError("dst is on cuda:" + std::to_string(dm->device()) + ", src on cuda:" + std::to_string(sm->device()));
    if (dOff + n > dm->length()) throw rangeError("dstOffset + count (" + str(dOff + n) + ") exceeds dst's " + str(dm->length()) + " elements");
    if (sOff + n > sm->length()) throw rangeError("srcOffset + count (" + str(sOff + n) + ") exceeds src's " + str(sm->length()) + " elements");
    float* d = dm->data() + dOff;
    const float* s = sm->data() + sOff;
    if (n > 0 && d != s && d < s + n && s < d + n) throw rangeError("dst and src ranges overlap");
    cuda::copyDevice(dm->device(), d, s, n);
    return env.Undefined();
  });
}

// cudaDeviceProps(device) -> { multiprocessors, clockKHz, computeCapability, fp32LanesPerSM }.
Napi::Value CudaDeviceProps(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int device = readDeviceIndex(env, info[0], "device");
    const cuda::DeviceProps p = cuda::deviceProps(device);
    Napi::Object out = Napi::Object::New(env);
    out.Set("multiprocessors", p.multiprocessors);
    out.Set("clockKHz", p.clockKHz);
    out.Set("computeCapability", std::to_string(p.major) + "." + std::to_string(p.minor));
    out.Set("fp32LanesPerSM", p.fp32LanesPerSM);
    return out;
  });
}

// cudaModelGemmTime(device, M, N, K, transA, transB, reps, variant) -> Float64Array of milliseconds
// (variant: 0 by shape, 1 simple, 2 tiled64, 3 tiled128).
Napi::Value CudaModelGemmTime(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int device = readDeviceIndex(env, info[0], "device");
    const int64_t lim = int64_t{1} << 16;
    const int64_t M = readInt(env, info[1], "M", 1, lim), N = readInt(env, info[2], "N", 1, lim),
                  K = readInt(env, info[3], "K", 1, lim);
    const bool ta = readBool(env, info[4], "transA"), tb = readBool(env, info[5], "transB");
    const int reps = static_cast<int>(readInt(env, info[6], "reps", 1, 10000));
    const auto variant = static_cast<cuda::GemmVariant>(readInt(env, info[7], "variant", 0, 3));
    const std::vector<double> ms = cuda::timeGemm(device, M, N, K, ta, tb, reps, variant);
    Napi::Float64Array out = Napi::Float64Array::New(env, ms.size());
    for (size_t i = 0; i < ms.size(); ++i) out[i] = ms[i];
    return out;
  });
}

// cudaModelGemm(device, M, N, K, alpha, a, transA, b, transB, beta, c, variant): the GPU's
// product on host arrays (tests), c updated in place; arguments as modelGemm's.
Napi::Value CudaModelGemm(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int device = readDeviceIndex(env, info[0], "device");
    const GemmArgs g = readGemmArgs(env, info, 1, 1, int64_t{1} << 16);
    const auto variant = static_cast<cuda::GemmVariant>(readInt(env, info[11], "variant", 0, 3));
    cuda::gemmHost(device, g.M, g.N, g.K, g.alpha, g.a.data, g.ta, g.b.data, g.tb, g.beta, g.c.data, variant);
    return env.Undefined();
  });
}
#endif

void registerModelExports(Napi::Env env, Napi::Object exports) {
  exports.Set("modelStep", Napi::Function::New(env, ModelStep, "modelStep"));
  exports.Set("modelStepAsync", Napi::Function::New(env, ModelStepAsync, "modelStepAsync"));
  exports.Set("modelGemm", Napi::Function::New(env, ModelGemm, "modelGemm"));
  exports.Set("fmaPeakGflops", Napi::Function::New(env, FmaPeakGflops, "fmaPeakGflops"));
#ifdef CRAFTGRAD_HAVE_CUDA
  exports.Set("cudaModelStep", Napi::Function::New(env, CudaModelStep, "cudaModelStep"));
  exports.Set("cudaModelStepAsync", Napi::Function::New(env, CudaModelStepAsync, "cudaModelStepAsync"));
  exports.Set("cudaCopy", Napi::Function::New(env, CudaCopy, "cudaCopy"));
  exports.Set("cudaDeviceProps", Napi::Function::New(env, CudaDeviceProps, "cudaDeviceProps"));
  exports.Set("cudaModelGemmTime", Napi::Function::New(env, CudaModelGemmTime, "cudaModelGemmTime"));
  exports.Set("cudaModelGemm", Napi::Function::New(env, CudaModelGemm, "cudaModelGemm"));
#endif
}

}  // namespace craftgrad
