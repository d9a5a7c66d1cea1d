// Reading Float32Arrays and lists of them from N-API values, with every check the
// boundary needs (type, detached buffer). Raw N-API calls: these run once per tensor,
// and a call may hold ten thousand tensors.
#pragma once
#include <node_api.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace craftgrad {

struct F32View {
  float* data = nullptr;
  int64_t length = 0;
  napi_value arrayBuffer = nullptr;  // the backing buffer, to keep alive in async calls
};

// `name` is the argument as the user sees it ("actFlat", or "act" with index 3 for
// "act[3]"; index -1 for none). The name is only formatted when there is an error: this
// runs once per tensor on the hot path.
F32View readFloat32Array(napi_env env, napi_value value, const char* name, int64_t index = -1);

// A JS array of Float32Array; `name` is the list's name ("act").
std::vector<F32View> readFloat32List(napi_env env, napi_value list, const char* name);

bool isNullish(napi_env env, napi_value value);
// "undefined", "a number", "an Array", "Float64Array", "an object", ... for error messages.
std::string describeValue(napi_env env, napi_value value);
double readNumber(napi_env env, napi_value value, const char* name);
bool readBool(napi_env env, napi_value value, const char* name);

// A non-negative integer up to 2^53 - 1 (RangeError naming it otherwise).
int64_t readCount(napi_env env, napi_value value, const char* name);
// An integer from lo to hi ("<name> must be an integer from lo to hi, got x" otherwise).
int64_t readInteger(napi_env env, napi_value value, const char* name, int64_t lo, int64_t hi);

// Named options: `value` must be an object (TypeError naming `name` otherwise); each
// field is read by its key and reported by it ("lambda must be a number ...").
class Options {
 public:
  Options(napi_env env, napi_value value, const char* name);
  napi_value get(const char* key) const;
  bool has(const char* key) const { return !isNullish(env_, get(key)); }
  // The value, or nullptr when it is undefined or null (one property read).
  napi_value optional(const char* key) const {
    napi_value v = get(key);
    return isNullish(env_, v) ? nullptr : v;
  }
  double number(const char* key) const { return readNumber(env_, get(key), key); }
  int64_t integer(const char* key, int64_t lo, int64_t hi) const { return readInteger(env_, get(key), key, lo, hi); }
  bool boolean(const char* key) const { return readBool(env_, get(key), key); }
  std::string string(const char* key) const;
  // The index of the string option in `choices` (RangeError listing them otherwise).
  int choice(const char* key, std::initializer_list<const char*> choices) const;
  // A model-configuration size: an integer from 0 to 2^31 - 1, reported as `config.<key>`.
  int64_t configSize(const char* key) const;
  napi_env env() const { return env_; }

 private:
  napi_env env_;
  napi_value object_;
};

// Whether the byte ranges [x, x + nx) and [y, y + ny) share a byte (empty ranges never do).
bool bytesOverlap(const void* x, int64_t nx, const void* y, int64_t ny);

// Non-negative integer sizes from an Array of numbers or a numeric TypedArray.
std::vector<int64_t> readSizes(napi_env env, napi_value value, const char* name);

}  // namespace craftgrad
