#include "env_data.h"

#include <algorithm>

#include "js_values.h"

namespace craftgrad {
namespace {

// surgery()'s result, with its keys in the order the binding has always set them. The
// typed arrays' slice is taken when the module loads, so that later changes to the
// prototypes do not reach it.
constexpr char kSurgeryResult[] = R"JS(
(function () {
  'use strict';
  const slice = Function.prototype.call.bind(Object.getPrototypeOf(Uint8Array.prototype).slice);
  return function surgeryResult(out, bytes, doubles, k, cosines, numConflicts, gradNorm, nonFinite) {
    const conflicts = slice(bytes, 0, k), dots = slice(doubles, 0, k), conflictRatio = k ? numConflicts / k : 0;
    return cosines
      ? { out, conflicts, dots, cosines: slice(doubles, k, 2 * k), numConflicts, numTensors: k, conflictRatio, gradNorm, nonFinite }
      : { out, conflicts, dots, numConflicts, numTensors: k, conflictRatio, gradNorm, nonFinite };
  };
})()
)JS";

napi_ref compile(napi_env env, const char* source, size_t length) {
  napi_value text, fn;
  napi_ref ref;
  checkStatus(env, napi_create_string_utf8(env, source, length, &text));
  checkStatus(env, napi_run_script(env, text, &fn));
  checkStatus(env, napi_create_reference(env, fn, 1, &ref));
  return ref;
}

// A typed array of `n` elements of `type` on a fresh buffer, kept by reference; its data in *data.
napi_ref makeArray(napi_env env, napi_typedarray_type type, size_t n, size_t elementBytes, void** data) {
  napi_value buffer, array;
  napi_ref ref;
  checkStatus(env, napi_create_arraybuffer(env, n * elementBytes, data, &buffer));
  checkStatus(env, napi_create_typedarray(env, type, n, buffer, 0, &array));
  checkStatus(env, napi_create_reference(env, array, 1, &ref));
  return ref;
}

}  // namespace

EnvData::EnvData(napi_env e) : env(e) { surgeryResult = compile(env, kSurgeryResult, sizeof kSurgeryResult - 1); }

EnvData::~EnvData() {
  for (napi_ref r : {surgeryResult, bytes, doubles})
    if (r) napi_delete_reference(env, r);
}

void EnvData::scratch(size_t n, size_t m, napi_value* bytesArray, napi_value* doublesArray) {
  if (n > byteCapacity || !bytes) {
    const size_t cap = std::max<size_t>({n, 2 * byteCapacity, 64});
    if (bytes) napi_delete_reference(env, bytes);
    void* data = nullptr;
    bytes = makeArray(env, napi_uint8_array, cap, 1, &data);
    byteData = static_cast<uint8_t*>(data);
    byteCapacity = cap;
  }
  if (m > doubleCapacity || !doubles) {
    const size_t cap = std::max<size_t>({m, 2 * doubleCapacity, 64});
    if (doubles) napi_delete_reference(env, doubles);
    void* data = nullptr;
    doubles = makeArray(env, napi_float64_array, cap, sizeof(double), &data);
    doubleData = static_cast<double*>(data);
    doubleCapacity = cap;
  }
  checkStatus(env, napi_get_reference_value(env, bytes, bytesArray));
  checkStatus(env, napi_get_reference_value(env, doubles, doublesArray));
}

EnvData& initEnvData(Napi::Env env) {
  auto* data = new EnvData(env);
  env.SetInstanceData(data);  // deleted with the environment
  return *data;
}

EnvData& envData(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  return *static_cast<EnvData*>(data);
}

}  // namespace craftgrad
