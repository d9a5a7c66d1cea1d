// What the binding keeps per N-API environment (the main thread, and each worker thread that
// loads the addon), made once when the module is initialised: the TensorSet constructor, and
// what a small call's result is built with.
//
// The result of a small surgery call (a few tensors, bench/surgery-call.js) cost more to
// build than to compute: eight property sets through N-API (each a runtime lookup of the
// name, then a map transition), and two ArrayBuffers allocated with malloc and freed by
// V8's sweeper. N-API 8 cannot keep a property-name string by reference (napi_ref takes
// objects only before N-API 10), so the result is built by one JavaScript function, compiled
// here once per environment: an object literal (one allocation, its shape known to V8) and
// typed arrays sliced from scratch arrays the C++ side has filled (V8 keeps small typed
// arrays on its heap: no malloc). One N-API call instead of a dozen.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace craftgrad {

struct EnvData {
  explicit EnvData(napi_env env);
  ~EnvData();
  EnvData(const EnvData&) = delete;
  EnvData& operator=(const EnvData&) = delete;

  napi_env env;
  Napi::FunctionReference tensorSet;  // set by TensorSetWrap::define
  napi_ref surgeryResult = nullptr;   // the function, see surgeryResult() in surgery_call.cc
  // Scratch arrays the C++ side fills and the result function slices: bytes (conflict flags)
  // and doubles (dots, then cosines), grown to the largest call seen.
  napi_ref bytes = nullptr, doubles = nullptr;
  uint8_t* byteData = nullptr;
  double* doubleData = nullptr;
  size_t byteCapacity = 0, doubleCapacity = 0;

  // Scratch of at least n bytes and m doubles (JS arrays in *bytesArray and *doublesArray).
  void scratch(size_t n, size_t m, napi_value* bytesArray, napi_value* doublesArray);
};

// Makes the environment's EnvData (module init, before anything else); deleted with the
// environment.
EnvData& initEnvData(Napi::Env env);
EnvData& envData(napi_env env);

}  // namespace craftgrad
