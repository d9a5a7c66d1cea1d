#include "arg_error.h"

namespace craftgrad {

Napi::Error jsErrorFor(Napi::Env env, const std::exception& e) {
  if (const auto* arg = dynamic_cast<const ArgError*>(&e)) {
    if (arg->kind == ArgError::Kind::Type) {
      Napi::TypeError err = Napi::TypeError::New(env, e.what());
      err.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
      return err;
    }
    Napi::RangeError err = Napi::RangeError::New(env, e.what());
    err.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
    return err;
  }
  if (const auto* be = dynamic_cast<const BackendError*>(&e)) {
    Napi::Error err = Napi::Error::New(env, e.what());
    err.Set("code", Napi::String::New(env, be->code));
    if (be->requestedBytes >= 0) {
      err.Set("device", Napi::Number::New(env, be->device));
      err.Set("requestedBytes", Napi::Number::New(env, static_cast<double>(be->requestedBytes)));
    }
    return err;
  }
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return Napi::RangeError::New(env, "craftgrad: out of memory");
  return Napi::Error::New(env, std::string("craftgrad internal error: ") + e.what());
}

Napi::Error WorkerFailure::toJs(Napi::Env env) const {
  try {
    std::rethrow_exception(caught_);
  } catch (const std::exception& e) {
    return jsErrorFor(env, e);
  } catch (...) {
    return Napi::Error::New(env, "craftgrad internal error: unknown exception");
  }
}

}  // namespace craftgrad
