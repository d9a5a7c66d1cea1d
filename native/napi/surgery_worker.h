// surgeryAsync: the same call, computed on a libuv worker thread. The worker holds a
// reference to every backing ArrayBuffer, so the data stays alive until it resolves
// even if the caller drops its arrays (transferring a buffer to another thread while
// a call is in flight is unsupported, as with fs.read).
#pragma once
#include <napi.h>

#include <exception>
#include <vector>

#include "surgery_call.h"

namespace craftgrad {

class SurgeryWorker : public Napi::AsyncWorker {
 public:
  SurgeryWorker(Napi::Env env, SurgeryCall call);
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  SurgeryCall call_;
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Value> out_;
  std::vector<Napi::Reference<Napi::Value>> buffers_;
  // A cuda::CudaError from host arrays staged through a GPU: rejected as the synchronous
  // call throws it (cudaJsError: code, and device/requestedBytes when out of memory).
  std::exception_ptr cudaError_;
};

}  // namespace craftgrad
