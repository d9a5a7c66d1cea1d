#include "typed_arrays.h"

#include <cmath>

#include "arg_error.h"

namespace craftgrad {
namespace {

void check(napi_env env, napi_status status) {
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

std::string describe(napi_env env, napi_value v) {
  napi_valuetype t;
  check(env, napi_typeof(env, v, &t));
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
  check(env, napi_is_array(env, v, &isArray));
  if (isArray) return "an Array";
  bool isTyped = false;
  check(env, napi_is_typedarray(env, v, &isTyped));
  if (isTyped) {
    napi_typedarray_type type;
    check(env, napi_get_typedarray_info(env, v, &type, nullptr, nullptr, nullptr, nullptr));
    return typedArrayName(type);
  }
  return "an object";
}

}  // namespace

std::string describeValue(napi_env env, napi_value value) { return describe(env, value); }

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

Options::Options(napi_env env, napi_value value, const char* name) : env_(env), object_(value) {
  napi_valuetype t;
  check(env, napi_typeof(env, value, &t));
  if (t != napi_object) throw typeError(std::string(name) + " must be an object, got " + describe(env, value));
}

napi_value Options::get(const char* key) const {
  napi_value v;
  check(env_, napi_get_named_property(env_, object_, key, &v));
  return v;
}

std::string Options::string(const char* key) const {
  napi_value v = get(key);
  napi_valuetype t;
  check(env_, napi_typeof(env_, v, &t));
  if (t != napi_string) throw typeError(std::string(key) + " must be a string, got " + describe(env_, v));
  size_t len = 0;
  check(env_, napi_get_value_string_utf8(env_, v, nullptr, 0, &len));
  std::string s(len, '\0');
  check(env_, napi_get_value_string_utf8(env_, v, &s[0], len + 1, &len));
  return s;
}

int Options::choice(const char* key, std::initializer_list<const char*> choices) const {
  const std::string s = string(key);
  int i = 0;
  std::string list;
  for (const char* c : choices) {
    if (s == c) return i;
    list += (i ? ", '" : "'") + std::string(c) + "'";
    ++i;
  }
  throw rangeError(std::string(key) + " must be one of " + list + ", got '" + s + "'");
}

int64_t Options::configSize(const char* key) const {
  const double d = number(key);
  if (!(d >= 0 && d < 2147483648.0) || d != std::floor(d))
    throw rangeError(std::string("config.") + key + " must be a non-negative integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

bool bytesOverlap(const void* x, int64_t nx, const void* y, int64_t ny) {
  if (!x || !y || nx == 0 || ny == 0) return false;
  const char* a = static_cast<const char*>(x);
  const char* b = static_cast<const char*>(y);
  return a < b + ny && b < a + nx;
}

bool isNullish(napi_env env, napi_value value) {
  napi_valuetype t;
  check(env, napi_typeof(env, value, &t));
  return t == napi_undefined || t == napi_null;
}

F32View readFloat32Array(napi_env env, napi_value value, const char* name, int64_t index) {
  auto label = [&] { return index < 0 ? std::string(name) : std::string(name) + "[" + std::to_string(index) + "]"; };
  napi_typedarray_type type;
  size_t length = 0, byteOffset = 0;
  void* data = nullptr;
  napi_value buffer = nullptr;
  // One call both checks and reads: it fails (without a JS exception) for non-typed arrays.
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, &byteOffset) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) throw Napi::Error::New(env);
    throw typeError(label() + " must be a Float32Array, got " + describe(env, value));
  }
  if (type != napi_float32_array)
    throw typeError(label() + " must be a Float32Array, got " + typedArrayName(type));
  // A detached buffer reads as empty; only then is the extra call needed.
  if (length == 0 || data == nullptr) {
    bool detached = false;
    check(env, napi_is_detached_arraybuffer(env, buffer, &detached));
    if (detached) throw typeError(label() + " is backed by a detached ArrayBuffer");
  }
  F32View v;
  v.data = static_cast<float*>(data);
  v.length = static_cast<int64_t>(length);
  v.arrayBuffer = buffer;
  return v;
}

std::vector<F32View> readFloat32List(napi_env env, napi_value list, const char* name) {
  bool isArray = false;
  check(env, napi_is_array(env, list, &isArray));
  if (!isArray)
    throw typeError(std::string(name) + " must be an Array of Float32Array, got " + describe(env, list));
  uint32_t count = 0;
  check(env, napi_get_array_length(env, list, &count));
  std::vector<F32View> views(count);
  for (uint32_t i = 0; i < count; ++i) {
    napi_value element;
    check(env, napi_get_element(env, list, i, &element));
    views[i] = readFloat32Array(env, element, name, i);
  }
  return views;
}

double readNumber(napi_env env, napi_value value, const char* name) {
  napi_valuetype t;
  check(env, napi_typeof(env, value, &t));
  if (t != napi_number) throw typeError(std::string(name) + " must be a number, got " + describe(env, value));
  double d;
  check(env, napi_get_value_double(env, value, &d));
  return d;
}

bool readBool(napi_env env, napi_value value, const char* name) {
  napi_valuetype t;
  check(env, napi_typeof(env, value, &t));
  if (t != napi_boolean) throw typeError(std::string(name) + " must be a boolean, got " + describe(env, value));
  bool b;
  check(env, napi_get_value_bool(env, value, &b));
  return b;
}

std::vector<int64_t> readSizes(napi_env env, napi_value value, const char* name) {
  std::vector<int64_t> sizes;
  auto take = [&](double d, uint32_t i) {
    if (!(d >= 0) || !std::isfinite(d) || d != std::floor(d) || d > 9007199254740991.0)
      throw rangeError(std::string(name) + "[" + std::to_string(i) +
                       "] must be a non-negative integer, got " + std::to_string(d));
    sizes.push_back(static_cast<int64_t>(d));
  };
  bool isTyped = false, isArray = false;
  check(env, napi_is_typedarray(env, value, &isTyped));
  check(env, napi_is_array(env, value, &isArray));
  if (isTyped) {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    napi_value buffer;
    check(env, napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, nullptr));
    bool detached = false;
    check(env, napi_is_detached_arraybuffer(env, buffer, &detached));
    if (detached) throw typeError(std::string(name) + " is backed by a detached ArrayBuffer");
    sizes.reserve(length);
    for (size_t i = 0; i < length; ++i) {
      double d;
      switch (type) {
        case napi_uint32_array: d = static_cast<const uint32_t*>(data)[i]; break;
        case napi_int32_array: d = static_cast<const int32_t*>(data)[i]; break;
        case napi_float64_array: d = static_cast<const double*>(data)[i]; break;
        default:
          throw typeError(std::string(name) + " must be an Array of numbers, a Uint32Array, Int32Array or Float64Array, got " +
                          typedArrayName(type));
      }
      take(d, static_cast<uint32_t>(i));
    }
    return sizes;
  }
  if (!isArray)
    throw typeError(std::string(name) + " must be an Array of numbers or a Uint32Array, got " + describe(env, value));
  uint32_t count = 0;
  check(env, napi_get_array_length(env, value, &count));
  sizes.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    napi_value element;
    check(env, napi_get_element(env, value, i, &element));
    napi_valuetype t;
    check(env, napi_typeof(env, element, &t));
    if (t != napi_number)
      throw typeError(std::string(name) + "[" + std::to_string(i) + "] must be a number, got " + describe(env, element));
    double d;
    check(env, napi_get_value_double(env, element, &d));
    take(d, i);
  }
  return sizes;
}

}  // namespace craftgrad
