// Argument errors raised while parsing a call, turned into a JS TypeError or RangeError
// (with a Node-style `code`) at the boundary. Parsing happens before any kernel runs, so
// a bad call changes nothing.
#pragma once
#include <napi.h>

#include <new>
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

// The JS error for a C++ exception that reached the boundary: an ArgError as its
// TypeError or RangeError, bad_alloc as a RangeError, anything else as an internal error.
inline Napi::Error jsErrorFor(Napi::Env env, const std::exception& e) {
  if (const auto* arg = dynamic_cast<const ArgError*>(&e)) return toJsError(env, *arg);
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return Napi::RangeError::New(env, "craftgrad: out of memory");
  return Napi::Error::New(env, std::string("craftgrad internal error: ") + e.what());
}

// Runs a binding body, converting ArgError and any stray C++ exception into a JS
// exception (jsErrorFor): nothing escapes to N-API as a C++ exception or an abort.
template <typename Body>
Napi::Value guarded(const Napi::CallbackInfo& info, Body body) {
  Napi::Env env = info.Env();
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;  // already a JS exception
  } catch (const std::exception& e) {
    jsErrorFor(env, e).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

}  // namespace craftgrad
