#include "nccl_call.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../core/communicator.h"
#include "../nccl/nccl_library.h"
#include "arg_error.h"
#include "backends.h"
#include "js_values.h"
#include "operands.h"
#include "tensor_set.h"

namespace craftgrad {
namespace {

// Its methods called on another object throw V8's "Illegal invocation" (the class's
// signature check), so no type tag is needed (test/nccl.test.mjs).
class CommunicatorWrap : public Napi::ObjectWrap<CommunicatorWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Communicator",
                       {InstanceAccessor<&CommunicatorWrap::rankValue>("rank"),
                        InstanceAccessor<&CommunicatorWrap::sizeValue>("size"),
                        InstanceAccessor<&CommunicatorWrap::deviceValue>("device"),
                        InstanceMethod<&CommunicatorWrap::reduceScatter>("reduceScatterInRankOrder"),
                        InstanceMethod<&CommunicatorWrap::allgather>("allgatherSegments"),
                        InstanceMethod<&CommunicatorWrap::abortComm>("abort")});
  }

  explicit CommunicatorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CommunicatorWrap>(info) {
    Napi::Env env = info.Env();
    try {
      if (!info[0].IsObject()) throw typeError("options must be an object { id, rank, size, device }, got " + describeValue(env, info[0]));
      const Napi::Object o = info[0].As<Napi::Object>();
      const Napi::Value id = o.Get("id");
      if (!id.IsTypedArray() || id.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
          id.As<Napi::TypedArray>().ByteLength() != CommunicatorInit{}.id.size()) {
        throw typeError("options.id must be a Uint8Array of 128 bytes (nccl.uniqueId() on rank 0), got " + describeValue(env, id));
      }
      CommunicatorInit init;
      const Napi::Uint8Array bytes = id.As<Napi::Uint8Array>();
      std::memcpy(init.id.data(), bytes.Data(), init.id.size());
      init.size = static_cast<int>(readInteger(env, o.Get("size"), "options.size", 1, 1 << 20));
      init.rank = static_cast<int>(readInteger(env, o.Get("rank"), "options.rank", 0, init.size - 1));
      backend_ = &readBackend(env, o.Get("device"), "options.device");
      comm_ = backend_->communicator(init);
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      jsErrorFor(env, e).ThrowAsJavaScriptException();
    }
  }

 private:
  Napi::Value rankValue(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), comm_ ? comm_->rank() : -1); }
  Napi::Value sizeValue(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), comm_ ? comm_->size() : 0); }
  Napi::Value deviceValue(const Napi::CallbackInfo& info) {
    return backend_ ? Napi::String::New(info.Env(), backend_->name()) : info.Env().Undefined();
  }

  // The sets of a call: TensorSets on this communicator's device (checked before any transfer).
  std::vector<TensorSetWrap*> readSets(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!comm_) throw typeError("this Communicator was aborted");
    if (!info[0].IsArray()) throw typeError("sets must be an Array of TensorSet, got " + describeValue(env, info[0]));
    const Napi::Array list = info[0].As<Napi::Array>();
    Operands ops(env, nullptr, Wording{"{x} is on {xv}, {y} on {yv}"});  // synchronous: nothing to hold
    ops.useBackend(*backend_, "the communicator");
    std::vector<TensorSetWrap*> sets;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      TensorSetWrap* s = ops.set(list.Get(i), "sets", Access::Write, i);
      ops.requireBackend(s, "sets", i);
      sets.push_back(s);
    }
    return sets;
  }

  Napi::Value reduceScatter(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      for (TensorSetWrap* s : readSets(info)) comm_->reduceScatterInRankOrder(s->data(), s->length());
      return info.Env().Undefined();
    });
  }

  Napi::Value allgather(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      for (TensorSetWrap* s : readSets(info)) comm_->allgatherSegments(s->data(), s->length());
      return info.Env().Undefined();
    });
  }

  Napi::Value abortComm(const Napi::CallbackInfo& info) {
    if (comm_) comm_->abort();
    comm_.reset();
    return info.Env().Undefined();
  }

  Backend* backend_ = nullptr;
  std::unique_ptr<Communicator> comm_;
};

Napi::Value UniqueId(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const nccl::Library& lib = nccl::library();
    ncclUniqueId id;
    lib.check(lib.getUniqueId(&id), "ncclGetUniqueId");
    Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), sizeof id.internal);
    std::memcpy(out.Data(), id.internal, sizeof id.internal);
    return out;
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) { return ncclInfo(info.Env()); }

}  // namespace

Napi::Object ncclInfo(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
#ifndef CRAFTGRAD_HAVE_CUDA
  o.Set("available", false);
  o.Set("reason", "this build of craftgrad has no CUDA backend (NCCL reduces sets on CUDA devices)");
  return o;
#else
  std::string why;
  const bool ok = nccl::available(&why);
  o.Set("available", ok);
  if (ok) {
    o.Set("library", nccl::library().path);
    o.Set("version", nccl::library().version());
  } else {
    o.Set("reason", why);
  }
  return o;
#endif
}

void registerNcclExports(Napi::Env env, Napi::Object exports) {
  Napi::Object n = Napi::Object::New(env);
  n.Set("info", Napi::Function::New(env, Info, "info"));
  n.Set("uniqueId", Napi::Function::New(env, UniqueId, "uniqueId"));
  n.Set("Communicator", CommunicatorWrap::define(env));
  exports.Set("nccl", n);
}

}  // namespace craftgrad
