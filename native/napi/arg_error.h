// Errors at the boundary, mapped in one place: argument errors raised while parsing a call
// (a JS TypeError or RangeError with a Node-style `code`), a backend's BackendError (an
// Error with its code, and `device` and `requestedBytes` when out of memory), bad_alloc
// (RangeError "out of memory"). The synchronous call throws, and its asynchronous form
// rejects with, the same error (op_call.h). Parsing happens before any kernel runs, so a
// bad call changes nothing.
#pragma once
#include <napi.h>

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "../core/backend_error.h"

namespace craftgrad {

struct ArgError : std::runtime_error {
  enum class Kind { Type, Range };
  Kind kind;
  ArgError(Kind k, const std::string& msg) : std::runtime_error(msg), kind(k) {}
};

inline ArgError typeError(const std::string& msg) { return ArgError(ArgError::Kind::Type, msg); }
inline ArgError rangeError(const std::string& msg) { return ArgError(ArgError::Kind::Range, msg); }

// The JS error for a C++ exception that reached the boundary.
Napi::Error jsErrorFor(Napi::Env env, const std::exception& e);

// Runs a binding body, converting any C++ exception into a JS exception (jsErrorFor):
// nothing escapes to N-API as a C++ exception or an abort.
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

// What a worker caught off the JS thread, kept until the JS thread can build the error
// the synchronous call would have thrown (jsErrorFor on the exception itself).
class WorkerFailure {
 public:
  // From a catch block; returns the message for AsyncWorker::SetError.
  std::string capture(const std::exception& e) {
    caught_ = std::current_exception();
    return e.what();
  }
  Napi::Error toJs(Napi::Env env) const;

 private:
  std::exception_ptr caught_;
};

}  // namespace craftgrad
