// One way to expose an operation: its synchronous form and its asynchronous form (on a
// libuv worker thread) come from the same three steps, so both check the same things and
// fail with the same JS error (arg_error.h: jsErrorFor).
//
// An operation is a struct Op with
//   static constexpr const char* kName;       // the async resource name
//   static Op parse(const Napi::CallbackInfo&);  // every check, on the JS thread, before any kernel
//   void compute();                           // the backend call; any thread
//   Napi::Value result(Napi::Env);            // on the JS thread, after compute()
//   JsHold hold;                              // what it needs kept alive (operands.h fills it)
// and is exported as callSync<Op> (and callAsync<Op> when it is worth running off the
// event loop). native/core/README.md, "How to add an operation".
#pragma once
#include <napi.h>

#include <memory>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../core/backend.h"
#include "arg_error.h"
#include "inline_vector.h"

namespace craftgrad {

// What an operation must keep alive until it settles: an async call turns the JS values
// into references, so the host memory stays alive (and the result's values exist); the
// TensorSets' native memory is held by shared_ptr, so a set disposed meanwhile stays valid.
// The operand reader (operands.h) fills buffers and memory. Inline for a few entries: the
// synchronous small call allocates nothing here.
struct JsHold {
  InlineVector<napi_value, 4> buffers;  // ArrayBuffers behind host memory the call reads or writes
  InlineVector<napi_value, 2> values;   // values the result returns, by index (keep())
  InlineVector<std::shared_ptr<Memory>, 4> memory;  // the native memory of its TensorSets

  size_t keep(napi_value v) {
    values.push_back(v);
    return values.size() - 1;
  }
  void buffer(napi_value b) {
    if (b != nullptr) buffers.push_back(b);
  }
};

template <typename Op>
class OpWorker final : public Napi::AsyncWorker {
 public:
  OpWorker(Napi::Env env, Op op)
      : Napi::AsyncWorker(env, Op::kName), op_(std::move(op)), deferred_(Napi::Promise::Deferred::New(env)) {
    for (napi_value v : op_.hold.values) values_.push_back(Napi::Persistent(Napi::Value(env, v)));
    // Lists usually share a few buffers: one reference per distinct backing store.
    std::unordered_set<const void*> seen;
    for (napi_value b : op_.hold.buffers) {
      const void* data = Napi::ArrayBuffer(env, b).Data();
      if (data != nullptr && seen.insert(data).second) buffers_.push_back(Napi::Persistent(Napi::Value(env, b)));
    }
    op_.hold.buffers.clear();
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      op_.compute();
    } catch (const std::exception& e) {
      SetError(failure_.capture(e));
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (size_t i = 0; i < values_.size(); ++i) op_.hold.values[i] = values_[i].Value();
    try {
      deferred_.Resolve(op_.result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(jsErrorFor(env, e).Value());
    }
  }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(failure_.toJs(Env()).Value());
  }

 private:
  Op op_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::Reference<Napi::Value>> values_, buffers_;
  WorkerFailure failure_;
};

template <typename Op>
Napi::Value callSync(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Op op = Op::parse(info);
    op.compute();
    return op.result(info.Env());
  });
}

// Argument errors throw synchronously (as from callSync); failures of the computation reject.
template <typename Op>
Napi::Value callAsync(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* worker = new OpWorker<Op>(info.Env(), Op::parse(info));
    Napi::Promise promise = worker->promise();
    worker->Queue();  // deletes itself when done
    return promise;
  });
}

}  // namespace craftgrad
