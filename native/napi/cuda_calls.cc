// The CUDA entry points of the binding (argument order: binding.d.ts).
//   cudaAlloc(device, length) -> DeviceBuffer
//   cudaLayout(device, sizes) -> DeviceLayout
//   cudaSurgery(act, ret, out|undefined, layout, lambda, eps, projection, cosines)
//   cudaSurgeryAsync(...same) -> Promise
//   cudaSurgeryHost(act[], ret[], out[]|undefined, lambda, eps, projection, cosines, device)
//   cudaSurgeryHostAsync(...same) -> Promise
//   cudaSurgeryHostFlat(actFlat, retFlat, sizes, out|undefined, lambda, eps, projection, cosines, device)
//   cudaSurgeryHostFlatAsync(...same) -> Promise
//   cudaTimeCopy(device, elements, reps) -> Float64Array (ms per device-to-device copy)
//   cudaMemInfo(device) -> { freeBytes, totalBytes }
// Results have the shape of binding.surgery's; for DeviceBuffers `out` is the out buffer.
#ifdef CRAFTGRAD_HAVE_CUDA
#include <memory>
#include <string>

#include "../cuda/tuning.h"
#include "cuda_exports.h"
#include "cuda_objects.h"
#include "surgery_call.h"
#include "surgery_worker.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

// A parsed, validated cudaSurgery call on DeviceBuffers.
struct DeviceCall {
  std::shared_ptr<cuda::DeviceMemory> a, r, out;
  std::shared_ptr<cuda::Layout> layout;
  SurgeryParams params;
  bool cosines = false;
  Napi::Value outObject;
  std::vector<TensorStats> stats;

  void compute() {
    stats.resize(static_cast<size_t>(cuda::layoutCount(*layout)));
    cuda::surgery(*layout, a->data(), r->data(), out->data(), params, stats.data());
  }

  Napi::Object result(Napi::Env env, napi_value outValue) {
    SurgeryCall shaped;  // reuses the result builder of the host calls
    shaped.cosines = cosines;
    shaped.stats = std::move(stats);
    shaped.out = outValue;
    return shaped.result(env);
  }
};

DeviceCall parseDeviceCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceCall call;
  const LaidOutBuffers io =
      readLaidOut(env, {{"act", info[0]}, {"ret", info[1]}, {"out", info[2], /*optional=*/true}}, info[3]);
  call.params = readSurgeryParams(info, 4, &call.cosines);
  call.layout = io.layout;
  call.a = io.memory[0];
  call.r = io.memory[1];
  if (io.memory[2]) {
    call.out = io.memory[2];
    call.outObject = info[2];
  } else {
    Napi::Object fresh = DeviceBufferWrap::create(env, cuda::layoutDevice(*io.layout), cuda::layoutTotal(*io.layout));
    call.out = DeviceBufferWrap::Unwrap(fresh)->memory();
    call.outObject = fresh;
  }
  return call;
}

// cudaSurgeryAsync: the launches and the one stream sync happen on a libuv worker thread.
// The worker holds the memory (shared_ptr) and the out handle until it settles.
class CudaSurgeryWorker : public Napi::AsyncWorker {
 public:
  CudaSurgeryWorker(Napi::Env env, DeviceCall call)
      : Napi::AsyncWorker(env, "craftgrad.cudaSurgery"), call_(std::move(call)),
        deferred_(Napi::Promise::Deferred::New(env)) {
    out_ = Napi::Persistent(call_.outObject);
    call_.outObject = Napi::Value();
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      call_.compute();
    } catch (const std::exception& e) {
      SetError(failure_.capture(e));
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    deferred_.Resolve(call_.result(Env(), out_.Value()));
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(failure_.toJs(Env()).Value());
  }

 private:
  DeviceCall call_;
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Value> out_;
  WorkerFailure failure_;
};

Napi::Value CudaAlloc(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int device = readDeviceIndex(env, info[0], "device");
    const int64_t length = readElementCount(env, info[1], "length");
    return DeviceBufferWrap::create(env, device, length);
  });
}

Napi::Value CudaLayout(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    readDeviceIndex(env, info[0], "device");
    readSizes(env, info[1], "sizes");
    return DeviceLayoutWrap::create(env, info[0], info[1]);
  });
}

Napi::Value CudaSurgery(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    DeviceCall call = parseDeviceCall(info);
    call.compute();
    return call.result(info.Env(), call.outObject);
  });
}

Napi::Value CudaSurgeryAsync(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    auto* worker = new CudaSurgeryWorker(info.Env(), parseDeviceCall(info));
    Napi::Promise promise = worker->promise();
    worker->Queue();  // deletes itself when done
    return promise;
  });
}

// Host arrays: the host calls' own parsing and checks, then compute() stages the data
// through the device (SurgeryCall::cudaDevice).
template <bool Flat, bool Async>
Napi::Value CudaSurgeryHost(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    SurgeryCall call = Flat ? SurgeryCall::parseFlat(info) : SurgeryCall::parseList(info);
    call.cudaDevice = readDeviceIndex(env, info[Flat ? 8 : 7], "device");
    if (Async) {
      auto* worker = new SurgeryWorker(env, std::move(call));
      Napi::Promise promise = worker->promise();
      worker->Queue();
      return promise;
    }
    call.compute();
    return call.result(env);
  });
}

// cudaTimeCopy(device, elements, reps) -> Float64Array of milliseconds per D2D copy
// (benchmarks: the HBM floor measured in the same run).
Napi::Value CudaTimeCopy(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int device = readDeviceIndex(env, info[0], "device");
    const int64_t elements = readElementCount(env, info[1], "elements");
    const int64_t reps = readElementCount(env, info[2], "reps");
    if (reps < 1 || reps > 10000) throw rangeError("reps must be from 1 to 10000, got " + std::to_string(reps));
    const std::vector<double> ms = cuda::timeDeviceCopy(device, elements, static_cast<int>(reps));
    Napi::Float64Array out = Napi::Float64Array::New(env, ms.size());
    for (size_t i = 0; i < ms.size(); ++i) out[i] = ms[i];
    return out;
  });
}

// cudaMemInfo(device) -> { freeBytes, totalBytes } now (tests size their largest sets by it).
Napi::Value CudaMemInfo(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const cuda::MemoryInfo m = cuda::memoryInfo(readDeviceIndex(env, info[0], "device"));
    Napi::Object out = Napi::Object::New(env);
    out.Set("freeBytes", Napi::Number::New(env, static_cast<double>(m.freeBytes)));
    out.Set("totalBytes", Napi::Number::New(env, static_cast<double>(m.totalBytes)));
    return out;
  });
}

}  // namespace

void registerCuda(Napi::Env env, Napi::Object exports) {
  exports.Set("DeviceBuffer", DeviceBufferWrap::define(env));
  exports.Set("DeviceLayout", DeviceLayoutWrap::define(env));
  exports.Set("cudaAlloc", Napi::Function::New(env, CudaAlloc, "cudaAlloc"));
  exports.Set("cudaLayout", Napi::Function::New(env, CudaLayout, "cudaLayout"));
  exports.Set("cudaSurgery", Napi::Function::New(env, CudaSurgery, "cudaSurgery"));
  exports.Set("cudaSurgeryAsync", Napi::Function::New(env, CudaSurgeryAsync, "cudaSurgeryAsync"));
  exports.Set("cudaSurgeryHost", Napi::Function::New(env, CudaSurgeryHost<false, false>, "cudaSurgeryHost"));
  exports.Set("cudaSurgeryHostAsync", Napi::Function::New(env, CudaSurgeryHost<false, true>, "cudaSurgeryHostAsync"));
  exports.Set("cudaSurgeryHostFlat", Napi::Function::New(env, CudaSurgeryHost<true, false>, "cudaSurgeryHostFlat"));
  exports.Set("cudaSurgeryHostFlatAsync",
              Napi::Function::New(env, CudaSurgeryHost<true, true>, "cudaSurgeryHostFlatAsync"));
  exports.Set("cudaTimeCopy", Napi::Function::New(env, CudaTimeCopy, "cudaTimeCopy"));
  exports.Set("cudaMemInfo", Napi::Function::New(env, CudaMemInfo, "cudaMemInfo"));
  registerCudaAdamW(env, exports);
}

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
  if (!t.note.empty()) tuning.Set("note", t.note);
  out.Set("tuning", tuning);
}

}  // namespace craftgrad
#endif  // CRAFTGRAD_HAVE_CUDA
