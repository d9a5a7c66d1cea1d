#ifdef CRAFTGRAD_HAVE_CUDA
#include "cuda_objects.h"

#include <cmath>
#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>

#include "typed_arrays.h"

namespace craftgrad {
namespace {

// Random 128-bit tags: what an object must carry to be unwrapped as one of ours.
constexpr napi_type_tag kBufferTag = {0x6a1c3f1e9b2d4c07ULL, 0x8f0e2a5d7c3b1e46ULL};
constexpr napi_type_tag kLayoutTag = {0x2d94b7e0c15a4f38ULL, 0xa3c6e1f2047b9d5cULL};

// The class constructors of each environment (main thread and worker threads).
std::mutex ctorMutex;
std::unordered_map<napi_env, Napi::FunctionReference*>& constructors(int which) {
  static auto* m = new std::unordered_map<napi_env, Napi::FunctionReference*>[2]();
  return m[which];
}

void registerCtor(Napi::Env env, int which, Napi::Function ctor) {
  auto* ref = new Napi::FunctionReference(Napi::Persistent(ctor));
  {
    std::lock_guard<std::mutex> lock(ctorMutex);
    constructors(which)[env] = ref;
  }
  napi_env raw = env;
  env.AddCleanupHook([raw, ref, which]() {
    std::lock_guard<std::mutex> lock(ctorMutex);
    constructors(which).erase(raw);
    delete ref;
  });
}

Napi::Object construct(Napi::Env env, int which, const std::initializer_list<napi_value>& args) {
  Napi::FunctionReference* ref = nullptr;
  {
    std::lock_guard<std::mutex> lock(ctorMutex);
    auto it = constructors(which).find(env);
    if (it != constructors(which).end()) ref = it->second;
  }
  if (ref == nullptr) throw Napi::Error::New(env, "craftgrad: CUDA classes are not registered in this environment");
  return ref->New(args);
}

bool hasTag(Napi::Env env, Napi::Value v, const napi_type_tag& tag) {
  if (!v.IsObject()) return false;
  bool result = false;
  if (napi_check_object_type_tag(env, v, &tag, &result) != napi_ok) return false;
  return result;
}

std::string describeHandle(Napi::Value v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return "a number";
  if (v.IsString()) return "a string";
  if (v.IsBoolean()) return "a boolean";
  if (v.IsTypedArray()) return "a typed array";
  if (v.IsArray()) return "an Array";
  if (v.IsFunction()) return "a function";
  return "another object";
}

std::string fmtNum(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

}  // namespace

int64_t readElementCount(Napi::Env env, Napi::Value v, const char* name) {
  const double d = readNumber(env, v, name);
  if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0)
    throw rangeError(std::string(name) + " must be a non-negative integer, got " + fmtNum(d));
  return static_cast<int64_t>(d);
}

std::string deviceName(int d) { return "cuda:" + std::to_string(d); }

void checkAgainstLayout(const cuda::DeviceMemory& m, const char* name, int device, int64_t total) {
  if (m.device() != device)
    throw rangeError(std::string(name) + " is on " + deviceName(m.device()) + " but layout is on " + deviceName(device));
  if (m.length() != total)
    throw rangeError(std::string(name) + " has " + std::to_string(m.length()) + " elements but layout has " +
                     std::to_string(total));
}

LaidOutBuffers readLaidOut(Napi::Env env, const std::vector<BufferArg>& buffers, Napi::Value layout) {
  LaidOutBuffers out;
  for (const BufferArg& b : buffers) {
    out.names.push_back(b.name);
    out.memory.push_back(b.optional && isNullish(env, b.value) ? nullptr
                                                              : DeviceBufferWrap::unwrap(env, b.value, b.name)->memory());
  }
  out.layout = DeviceLayoutWrap::unwrap(env, layout, "layout")->layout();
  const int device = cuda::layoutDevice(*out.layout);
  const int64_t total = cuda::layoutTotal(*out.layout);
  for (size_t i = 0; i < out.memory.size(); ++i)
    if (out.memory[i]) checkAgainstLayout(*out.memory[i], out.names[i], device, total);
  return out;
}

void LaidOutBuffers::requireWrittenDistinct(size_t written) const {
  for (size_t i = 0; i < written && i < memory.size(); ++i)
    for (size_t j = i + 1; j < memory.size(); ++j)
      if (memory[i] && memory[i] == memory[j])
        throw rangeError(std::string(names[i]) + " and " + names[j] + " are the same DeviceBuffer");
}

Napi::Error cudaJsError(Napi::Env env, const cuda::CudaError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  if (const auto* oom = dynamic_cast<const cuda::CudaOutOfMemory*>(&e)) {
    err.Set("code", Napi::String::New(env, "ERR_CRAFTGRAD_CUDA_OOM"));
    err.Set("device", Napi::Number::New(env, oom->device));
    err.Set("requestedBytes", Napi::Number::New(env, static_cast<double>(oom->requestedBytes)));
  } else {
    err.Set("code", Napi::String::New(env, "ERR_CRAFTGRAD_CUDA"));
  }
  return err;
}

Napi::Error cudaJsErrorFor(Napi::Env env, const std::exception& e) {
  if (const auto* cudaError = dynamic_cast<const cuda::CudaError*>(&e)) return cudaJsError(env, *cudaError);
  return jsErrorFor(env, e);
}

std::string WorkerFailure::capture(const std::exception& e) {
  caught_ = std::current_exception();  // the exception itself, so no detail is lost
  return e.what();
}

Napi::Error WorkerFailure::toJs(Napi::Env env) const {
  try {
    std::rethrow_exception(caught_);
  } catch (const std::exception& e) {
    return cudaJsErrorFor(env, e);
  }
}

int readDeviceIndex(Napi::Env env, Napi::Value v, const char* name) {
  const double d = readNumber(env, v, name);
  if (!(d >= 0) || d != std::floor(d) || d > 1e6)
    throw rangeError(std::string(name) + " must be a non-negative integer device index, got " + fmtNum(d));
  const cuda::Info& in = cuda::info();
  if (!in.available) throw cuda::CudaError("craftgrad: CUDA is not available: " + in.reason);
  if (d >= static_cast<double>(in.devices.size()))
    throw rangeError(std::string(name) + " is " + std::to_string(static_cast<int>(d)) + " but only " +
                     std::to_string(in.devices.size()) + " CUDA device(s) are visible");
  return static_cast<int>(d);
}

// ---------------------------------------------------------------- DeviceBuffer

Napi::Function DeviceBufferWrap::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(
      env, "DeviceBuffer",
      {InstanceAccessor<&DeviceBufferWrap::device>("device"),
       InstanceAccessor<&DeviceBufferWrap::length>("length"),
       InstanceAccessor<&DeviceBufferWrap::disposed>("disposed"),
       InstanceMethod<&DeviceBufferWrap::upload>("upload"),
       InstanceMethod<&DeviceBufferWrap::download>("download"),
       InstanceMethod<&DeviceBufferWrap::fill>("fill"),
       InstanceMethod<&DeviceBufferWrap::dispose>("dispose")});
  registerCtor(env, 0, ctor);
  return ctor;
}

Napi::Object DeviceBufferWrap::create(Napi::Env env, int device, int64_t length) {
  return construct(env, 0, {Napi::Number::New(env, device), Napi::Number::New(env, static_cast<double>(length))});
}

DeviceBufferWrap* DeviceBufferWrap::unwrap(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!hasTag(env, v, kBufferTag)) throw typeError(name + " must be a DeviceBuffer, got " + describeHandle(v));
  DeviceBufferWrap* w = Unwrap(v.As<Napi::Object>());
  if (!w->mem_) throw typeError(name + " is a disposed DeviceBuffer");
  return w;
}

// new DeviceBuffer(device, length): `length` float32 values on CUDA device `device`,
// uninitialised (fill() or upload() before reading).
DeviceBufferWrap::DeviceBufferWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBufferWrap>(info) {
  Napi::Env env = info.Env();
  try {
    device_ = readDeviceIndex(env, info[0], "device");
    length_ = readElementCount(env, info[1], "length");
    mem_ = std::make_shared<cuda::DeviceMemory>(device_, length_);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw cudaJsErrorFor(env, e);
  }
  napi_type_tag_object(env, info.This(), &kBufferTag);
}

cuda::DeviceMemory& DeviceBufferWrap::live(const char* method) {
  if (!mem_) throw typeError(std::string("DeviceBuffer.") + method + ": the buffer has been disposed");
  return *mem_;
}

Napi::Value DeviceBufferWrap::device(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }
Napi::Value DeviceBufferWrap::length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(length_));
}
Napi::Value DeviceBufferWrap::disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !mem_); }

namespace {

// The host array and element offset of upload/download, checked to fit in the buffer.
struct HostRange {
  F32View view;
  int64_t offset;
};

HostRange readHostRange(const Napi::CallbackInfo& info, const char* name, const cuda::DeviceMemory& m) {
  Napi::Env env = info.Env();
  HostRange r{readFloat32Array(env, info[0], name), 0};
  r.offset = isNullish(env, info[1]) ? 0 : readElementCount(env, info[1], "offsetElements");
  if (r.offset > m.length() || r.view.length > m.length() - r.offset)
    throw rangeError(std::string(name) + " has " + std::to_string(r.view.length) + " elements, which at offsetElements " +
                     std::to_string(r.offset) + " do not fit in the DeviceBuffer's " + std::to_string(m.length()));
  return r;
}

}  // namespace

// upload(src: Float32Array, offsetElements = 0): copies src into [offset, offset + src.length).
Napi::Value DeviceBufferWrap::upload(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    cuda::DeviceMemory& m = live("upload");
    const HostRange src = readHostRange(info, "src", m);
    m.upload(src.view.data, src.offset, src.view.length);
    return info.Env().Undefined();
  });
}

// download(dst: Float32Array, offsetElements = 0): copies [offset, offset + dst.length) into dst.
Napi::Value DeviceBufferWrap::download(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    cuda::DeviceMemory& m = live("download");
    const HostRange dst = readHostRange(info, "dst", m);
    m.download(dst.view.data, dst.offset, dst.view.length);
    return info.Env().Undefined();
  });
}

Napi::Value DeviceBufferWrap::fill(const Napi::CallbackInfo& info) {
  return cudaGuarded(info, [&]() -> Napi::Value {
    cuda::DeviceMemory& m = live("fill");
    const double v = readNumber(info.Env(), info[0], "value");
    m.fill(static_cast<float>(v));
    return info.Env().Undefined();
  });
}

// Frees the memory now (or when the last in-flight async call using it finishes).
// Idempotent; the finalizer does the same for a handle JS drops.
Napi::Value DeviceBufferWrap::dispose(const Napi::CallbackInfo& info) {
  mem_.reset();
  return info.Env().Undefined();
}

// ---------------------------------------------------------------- DeviceLayout

Napi::Function DeviceLayoutWrap::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "DeviceLayout",
                                    {InstanceAccessor<&DeviceLayoutWrap::device>("device"),
                                     InstanceAccessor<&DeviceLayoutWrap::length>("length"),
                                     InstanceAccessor<&DeviceLayoutWrap::numTensors>("numTensors"),
                                     InstanceAccessor<&DeviceLayoutWrap::disposed>("disposed"),
                                     InstanceMethod<&DeviceLayoutWrap::dispose>("dispose")});
  registerCtor(env, 1, ctor);
  return ctor;
}

Napi::Object DeviceLayoutWrap::create(Napi::Env env, Napi::Value device, Napi::Value sizes) {
  return construct(env, 1, {device, sizes});
}

DeviceLayoutWrap* DeviceLayoutWrap::unwrap(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!hasTag(env, v, kLayoutTag)) throw typeError(name + " must be a DeviceLayout (from cudaLayout), got " + describeHandle(v));
  DeviceLayoutWrap* w = Unwrap(v.As<Napi::Object>());
  if (!w->layout_) throw typeError(name + " is a disposed DeviceLayout");
  return w;
}

// new DeviceLayout(device, sizes): the tensor sizes of a set packed back to back.
DeviceLayoutWrap::DeviceLayoutWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceLayoutWrap>(info) {
  Napi::Env env = info.Env();
  try {
    device_ = readDeviceIndex(env, info[0], "device");
    const std::vector<int64_t> sizes = readSizes(env, info[1], "sizes");
    layout_ = cuda::makeLayout(device_, sizes);
    length_ = cuda::layoutTotal(*layout_);
    count_ = cuda::layoutCount(*layout_);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw cudaJsErrorFor(env, e);
  }
  napi_type_tag_object(env, info.This(), &kLayoutTag);
}

Napi::Value DeviceLayoutWrap::device(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }
Napi::Value DeviceLayoutWrap::length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(length_));
}
Napi::Value DeviceLayoutWrap::numTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(count_));
}
Napi::Value DeviceLayoutWrap::disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !layout_); }
Napi::Value DeviceLayoutWrap::dispose(const Napi::CallbackInfo& info) {
  layout_.reset();
  return info.Env().Undefined();
}

}  // namespace craftgrad
#endif  // CRAFTGRAD_HAVE_CUDA
