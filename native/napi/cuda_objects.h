// DeviceBuffer and DeviceLayout: JS handles on device memory and on a cached layout.
// Both hold a shared_ptr, so an in-flight async call keeps the memory alive even if JS
// disposes or drops the handle meanwhile. Instances carry an N-API type tag, so a
// foreign object is rejected with a TypeError instead of being unwrapped.
#pragma once
#ifdef CRAFTGRAD_HAVE_CUDA
#include <napi.h>

#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "../cuda/cuda_backend.h"
#include "arg_error.h"

namespace craftgrad {

class DeviceBufferWrap : public Napi::ObjectWrap<DeviceBufferWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  // new DeviceBuffer(device, length) through the constructor registered for `env`.
  static Napi::Object create(Napi::Env env, int device, int64_t length);
  // Checks type, tag and liveness; `name` is the argument ("act", "out", ...).
  static DeviceBufferWrap* unwrap(Napi::Env env, Napi::Value v, const std::string& name);

  explicit DeviceBufferWrap(const Napi::CallbackInfo& info);
  const std::shared_ptr<cuda::DeviceMemory>& memory() const { return mem_; }

 private:
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value length(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  Napi::Value upload(const Napi::CallbackInfo& info);
  Napi::Value download(const Napi::CallbackInfo& info);
  Napi::Value fill(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  cuda::DeviceMemory& live(const char* method);

  std::shared_ptr<cuda::DeviceMemory> mem_;
  int device_ = 0;
  int64_t length_ = 0;
};

class DeviceLayoutWrap : public Napi::ObjectWrap<DeviceLayoutWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  // new DeviceLayout(device, sizes) (the constructor checks both).
  static Napi::Object create(Napi::Env env, Napi::Value device, Napi::Value sizes);
  static DeviceLayoutWrap* unwrap(Napi::Env env, Napi::Value v, const std::string& name);

  explicit DeviceLayoutWrap(const Napi::CallbackInfo& info);
  const std::shared_ptr<cuda::Layout>& layout() const { return layout_; }

 private:
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value length(const Napi::CallbackInfo& info);
  Napi::Value numTensors(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<cuda::Layout> layout_;
  int device_ = 0;
  int64_t length_ = 0, count_ = 0;
};

// Reads a device index argument: an integer >= 0 naming a visible device (RangeError
// otherwise); throws cuda::CudaError when CUDA is unavailable.
int readDeviceIndex(Napi::Env env, Napi::Value v, const char* name);
// A non-negative integer element count or offset (RangeError otherwise).
int64_t readElementCount(Napi::Env env, Napi::Value v, const char* name);

// "cuda:N".
std::string deviceName(int device);
// A buffer that must live on `device` and hold exactly `total` elements (a layout's);
// RangeError naming `name` otherwise.
void checkAgainstLayout(const cuda::DeviceMemory& m, const char* name, int device, int64_t total);

// DeviceBuffer arguments laid out by one DeviceLayout argument. readLaidOut unwraps every
// buffer first (TypeError naming the first that is not a live DeviceBuffer), then the
// layout, then checks each buffer against it (checkAgainstLayout's RangeError). An optional
// buffer may be null or undefined; its memory is then null.
struct BufferArg {
  const char* name;
  Napi::Value value;
  bool optional = false;
};
struct LaidOutBuffers {
  std::shared_ptr<cuda::Layout> layout;
  std::vector<const char*> names;
  std::vector<std::shared_ptr<cuda::DeviceMemory>> memory;  // in argument order

  float* data(size_t i) const { return memory[i] ? memory[i]->data() : nullptr; }
  // The first `written` buffers are written by the call: each must differ from every
  // other buffer of the call (RangeError naming both).
  void requireWrittenDistinct(size_t written) const;
};
LaidOutBuffers readLaidOut(Napi::Env env, const std::vector<BufferArg>& buffers, Napi::Value layout);

// Runs a binding body: cuda::CudaError becomes a JS Error (code ERR_CRAFTGRAD_CUDA, or
// ERR_CRAFTGRAD_CUDA_OOM with `device` and `requestedBytes`), the rest as guarded().
Napi::Error cudaJsError(Napi::Env env, const cuda::CudaError& e);
// jsErrorFor (arg_error.h), with a cuda::CudaError as cudaJsError.
Napi::Error cudaJsErrorFor(Napi::Env env, const std::exception& e);

// What an async CUDA binding's worker caught off the JS thread, kept until the JS thread
// can build the Error the synchronous binding would have thrown (cudaJsErrorFor: never a
// CUDA code on a non-CUDA error).
class WorkerFailure {
 public:
  // From a catch block in Execute(); returns the message for AsyncWorker::SetError.
  std::string capture(const std::exception& e);
  Napi::Error toJs(Napi::Env env) const;

 private:
  std::exception_ptr caught_;
};
template <typename Body>
Napi::Value cudaGuarded(const Napi::CallbackInfo& info, Body body) {
  return guarded(info, [&]() -> Napi::Value {
    try {
      return body();
    } catch (const cuda::CudaError& e) {
      throw cudaJsError(info.Env(), e);
    }
  });
}

}  // namespace craftgrad
#endif
