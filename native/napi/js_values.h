// Reading plain JS values at the boundary (numbers, booleans, integers) with the checks and
// messages every call shares, and describing a value for an error message. Raw N-API: these
// run on every call, some once per tensor.
#pragma once
#include <node_api.h>

#include <cstdint>
#include <string>

namespace craftgrad {

// Throws a JS exception for a failed N-API call: the pending one (a getter threw), else
// "craftgrad: N-API call failed: ...".
void checkStatus(napi_env env, napi_status status);

bool isNullish(napi_env env, napi_value value);
// "undefined", "a number", "an Array", "Float64Array", "an object", ... for error messages.
std::string describeValue(napi_env env, napi_value value);
// The name of a typed array type for messages ("Float32Array").
const char* typedArrayName(napi_typedarray_type t);

double readNumber(napi_env env, napi_value value, const char* name);
bool readBool(napi_env env, napi_value value, const char* name);
// A non-negative integer up to 2^53 - 1 (RangeError naming it otherwise).
int64_t readCount(napi_env env, napi_value value, const char* name);
// An integer from lo to hi ("<name> must be an integer from lo to hi, got x" otherwise).
int64_t readInteger(napi_env env, napi_value value, const char* name, int64_t lo, int64_t hi);

}  // namespace craftgrad
