#include "typed_arrays.h"

#include <cmath>

#include "arg_error.h"
#include "js_values.h"

namespace craftgrad {

namespace {

// A typed array's memory, or why it is not one.
struct TypedArrayInfo {
  void* data = nullptr;
  size_t length = 0, byteOffset = 0;
  napi_value buffer = nullptr;
  bool detached = false;  // a detached buffer reads as empty; only then is the extra call made
};

// `value` as a typed array of type `want`; otherwise a TypeError "<label()> must be <what>, got
// ..." (label() is built only then). One N-API call both checks and reads: it fails (without a
// JS exception) for values that are not typed arrays.
template <typename Label>
TypedArrayInfo typedArrayOf(napi_env env, napi_value value, napi_typedarray_type want, const char* what, Label label) {
  TypedArrayInfo t;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, value, &type, &t.length, &t.data, &t.buffer, &t.byteOffset) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) throw Napi::Error::New(env);
    throw typeError(label() + " must be " + what + ", got " + describeValue(env, value));
  }
  if (type != want) throw typeError(label() + " must be " + what + ", got " + typedArrayName(type));
  if (t.length == 0 || t.data == nullptr) checkStatus(env, napi_is_detached_arraybuffer(env, t.buffer, &t.detached));
  return t;
}

}  // namespace

F32View readFloat32Array(napi_env env, napi_value value, const char* name, int64_t index) {
  auto label = [&] { return index < 0 ? std::string(name) : std::string(name) + "[" + std::to_string(index) + "]"; };
  const TypedArrayInfo t = typedArrayOf(env, value, napi_float32_array, "a Float32Array", label);
  if (t.detached) throw typeError(label() + " is backed by a detached ArrayBuffer");
  F32View v;
  v.data = static_cast<float*>(t.data);
  v.length = static_cast<int64_t>(t.length);
  v.arrayBuffer = t.buffer;
  v.bufferData = t.data ? static_cast<const char*>(t.data) - t.byteOffset : nullptr;
  return v;
}

I32View readInt32Array(napi_env env, napi_value value, const char* name) {
  const TypedArrayInfo t = typedArrayOf(env, value, napi_int32_array, "an Int32Array", [&] { return std::string(name); });
  if (t.detached) throw typeError(std::string(name) + "'s buffer is detached");
  return {static_cast<const int32_t*>(t.data), static_cast<int64_t>(t.length), t.buffer};
}

U8View readUint8Array(napi_env env, napi_value value, const char* name) {
  const TypedArrayInfo t = typedArrayOf(env, value, napi_uint8_array, "a Uint8Array", [&] { return std::string(name); });
  if (t.detached) throw typeError(std::string(name) + " is backed by a detached ArrayBuffer");
  return {static_cast<uint8_t*>(t.data), static_cast<int64_t>(t.length)};
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
  checkStatus(env, napi_is_typedarray(env, value, &isTyped));
  checkStatus(env, napi_is_array(env, value, &isArray));
  if (isTyped) {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    napi_value buffer;
    checkStatus(env, napi_get_typedarray_info(env, value, &type, &length, &data, &buffer, nullptr));
    bool detached = false;
    checkStatus(env, napi_is_detached_arraybuffer(env, buffer, &detached));
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
    throw typeError(std::string(name) + " must be an Array of numbers or a Uint32Array, got " + describeValue(env, value));
  uint32_t count = 0;
  checkStatus(env, napi_get_array_length(env, value, &count));
  sizes.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    napi_value element;
    checkStatus(env, napi_get_element(env, value, i, &element));
    napi_valuetype t;
    checkStatus(env, napi_typeof(env, element, &t));
    if (t != napi_number)
      throw typeError(std::string(name) + "[" + std::to_string(i) + "] must be a number, got " + describeValue(env, element));
    double d;
    checkStatus(env, napi_get_value_double(env, element, &d));
    take(d, i);
  }
  return sizes;
}

}  // namespace craftgrad
