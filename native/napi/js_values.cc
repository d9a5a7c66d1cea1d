#include "js_values.h"

#include <cmath>

#include "arg_error.h"

namespace craftgrad {

void checkStatus(napi_env env, napi_status status) {
  if (status != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) throw Napi::Error::New(env);  // rethrows what JS code (a getter) threw
    const napi_extended_error_info* info = nullptr;
    napi_get_last_error_info(env, &info);
    throw Napi::Error::New(env, std::string("craftgrad: N-API call failed: ") +
                                    (info && info->error_message ? info->error_message : "unknown"));
  }
}

const char* typedArrayName(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "a typed array";
  }
}

std::string describeValue(napi_env env, napi_value v) {
  napi_valuetype t;
  checkStatus(env, napi_typeof(env, v, &t));
  switch (t) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_bigint: return "a bigint";
    case napi_function: return "a function";
    default: break;
  }
  bool isArray = false;
  checkStatus(env, napi_is_array(env, v, &isArray));
  if (isArray) return "an Array";
  bool isTyped = false;
  checkStatus(env, napi_is_typedarray(env, v, &isTyped));
  if (isTyped) {
    napi_typedarray_type type;
    checkStatus(env, napi_get_typedarray_info(env, v, &type, nullptr, nullptr, nullptr, nullptr));
    return typedArrayName(type);
  }
  return "an object";
}

bool isNullish(napi_env env, napi_value value) {
  napi_valuetype t;
  checkStatus(env, napi_typeof(env, value, &t));
  return t == napi_undefined || t == napi_null;
}

double readNumber(napi_env env, napi_value value, const char* name) {
  napi_valuetype t;
  checkStatus(env, napi_typeof(env, value, &t));
  if (t != napi_number) throw typeError(std::string(name) + " must be a number, got " + describeValue(env, value));
  double d;
  checkStatus(env, napi_get_value_double(env, value, &d));
  return d;
}

bool readBool(napi_env env, napi_value value, const char* name) {
  napi_valuetype t;
  checkStatus(env, napi_typeof(env, value, &t));
  if (t != napi_boolean) throw typeError(std::string(name) + " must be a boolean, got " + describeValue(env, value));
  bool b;
  checkStatus(env, napi_get_value_bool(env, value, &b));
  return b;
}

int64_t readCount(napi_env env, napi_value value, const char* name) {
  const double d = readNumber(env, value, name);
  if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0)
    throw rangeError(std::string(name) + " must be a non-negative integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

int64_t readInteger(napi_env env, napi_value value, const char* name, int64_t lo, int64_t hi) {
  const double d = readNumber(env, value, name);
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != std::floor(d)) {
    throw rangeError(std::string(name) + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                     std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

}  // namespace craftgrad
