#include "options.h"

#include <cmath>

#include "arg_error.h"

namespace craftgrad {

Options::Options(napi_env env, napi_value value, const char* name) : env_(env), object_(value) {
  napi_valuetype t;
  checkStatus(env, napi_typeof(env, value, &t));
  if (t != napi_object) throw typeError(std::string(name) + " must be an object, got " + describeValue(env, value));
}

napi_value Options::get(const char* key) const {
  napi_value v;
  checkStatus(env_, napi_get_named_property(env_, object_, key, &v));
  return v;
}

std::string Options::string(const char* key) const {
  napi_value v = get(key);
  napi_valuetype t;
  checkStatus(env_, napi_typeof(env_, v, &t));
  if (t != napi_string) throw typeError(std::string(key) + " must be a string, got " + describeValue(env_, v));
  size_t len = 0;
  checkStatus(env_, napi_get_value_string_utf8(env_, v, nullptr, 0, &len));
  std::string s(len, '\0');
  checkStatus(env_, napi_get_value_string_utf8(env_, v, &s[0], len + 1, &len));
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

}  // namespace craftgrad
