#include "surgery_worker.h"

#include <unordered_set>

#ifdef CRAFTGRAD_HAVE_CUDA
#include "cuda_objects.h"
#endif

namespace craftgrad {

SurgeryWorker::SurgeryWorker(Napi::Env env, SurgeryCall call)
    : Napi::AsyncWorker(env, "craftgrad.surgery"), call_(std::move(call)), deferred_(Napi::Promise::Deferred::New(env)) {
  out_ = Napi::Persistent(Napi::Value(env, call_.out));
  // Lists usually share a few buffers: one reference per distinct backing store.
  std::unordered_set<const void*> seen;
  for (napi_value b : call_.keepAlive) {
    Napi::ArrayBuffer ab(env, b);
    const void* data = ab.Data();
    if (data == nullptr || !seen.insert(data).second) continue;
    buffers_.push_back(Napi::Persistent(Napi::Value(env, b)));
  }
  call_.keepAlive.clear();
  call_.out = nullptr;  // napi_values die with the calling scope; out_ holds it now
}

void SurgeryWorker::Execute() {
  try {
    call_.compute();
#ifdef CRAFTGRAD_HAVE_CUDA
  } catch (const cuda::CudaError& e) {
    cudaError_ = std::current_exception();
    SetError(e.what());
#endif
  } catch (const std::exception& e) {
    SetError(std::string("craftgrad: surgery failed: ") + e.what());
  }
}

void SurgeryWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  call_.out = out_.Value();
  deferred_.Resolve(call_.result(env));
}

void SurgeryWorker::OnError(const Napi::Error& e) {
#ifdef CRAFTGRAD_HAVE_CUDA
  if (cudaError_) {
    try {
      std::rethrow_exception(cudaError_);
    } catch (const cuda::CudaError& ce) {
      deferred_.Reject(cudaJsError(Env(), ce).Value());
      return;
    }
  }
#endif
  deferred_.Reject(e.Value());
}

}  // namespace craftgrad
