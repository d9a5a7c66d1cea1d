// Named options: a call's options object (or a config object) read field by field, each
// field checked and reported by its key ("lambda must be a number, got a string").
#pragma once
#include <node_api.h>

#include <cstdint>
#include <initializer_list>
#include <string>

#include "js_values.h"

namespace craftgrad {

// `value` must be an object (TypeError "<name> must be an object, got ..." otherwise).
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

}  // namespace craftgrad
