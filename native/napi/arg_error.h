// Argument errors raised while parsing a call, turned into a JS TypeError or RangeError
// (with a Node-style `code`) at the boundary. Parsing happens before any kernel runs, so
// a bad call changes nothing.
#pragma once
#include <napi.h>

#include <stdexcept>
#include <string>

namespace craftgrad {

struct ArgError : std::runtime_error {
  enum class Kind { Type, Range };
  Kind kind;
  ArgError(Kind k, const std::string& msg) : std::runtime_error(msg), kind(k) {}
};

inline ArgError typeError(const std::string& msg) { return ArgError(ArgError::Kind::Type, msg); }
inline ArgError rangeError(const std::string& msg) { return ArgError(ArgError::Kind::Range, msg); }

// Converts an ArgError into the matching JS error object.
inline Napi::Error toJsError(Napi::Env env, const ArgError& e) {
  if (e.kind == ArgError::Kind::Type) {
    Napi::TypeError err = Napi::TypeError::New(env, e.what());
    err.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
    return err;
  }
  Napi::RangeError err = Napi::RangeError::New(env, e.what());
  err.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
  return err;
}

// Runs a binding body, converting ArgError and any stray C++ exception into a JS
// exception: nothing escapes to N-API as a C++ exception or an abort.
template <typename Body>
Napi::Value guarded(const Napi::CallbackInfo& info, Body body) {
  Napi::Env env = info.Env();
  try {
    return body();
  } catch (const ArgError& e) {
    toJsError(env, e).ThrowAsJavaScriptException();
  } catch (const Napi::Error&) {
    throw;  // already a JS exception
  } catch (const std::bad_alloc&) {
    Napi::RangeError::New(env, "craftgrad: out of memory").ThrowAsJavaScriptException();
  } catch (const std::exception& e) {
    Napi::Error::New(env, std::string("craftgrad internal error: ") + e.what()).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

}  // namespace craftgrad
