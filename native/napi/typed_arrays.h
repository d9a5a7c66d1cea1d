// Reading typed arrays from N-API values, with every check the boundary needs (type,
// detached buffer): Float32Arrays, Int32Arrays, size lists. Raw N-API calls: these run once
// per tensor, and a call may hold ten thousand tensors. Operations read their operands
// through operands.h (lists of Float32Array included), which calls these.
#pragma once
#include <node_api.h>

#include <cstdint>
#include <string>
#include <vector>

namespace craftgrad {

struct F32View {
  float* data = nullptr;
  int64_t length = 0;
  napi_value arrayBuffer = nullptr;  // the backing buffer, to keep alive in async calls
  const void* bufferData = nullptr;  // where that buffer's bytes start (views of one buffer share it)
};

// `name` is the argument as the user sees it ("actFlat", or "act" with index 3 for
// "act[3]"; index -1 for none). The name is only formatted when there is an error: this
// runs once per tensor on the hot path.
F32View readFloat32Array(napi_env env, napi_value value, const char* name, int64_t index = -1);

struct I32View {
  const int32_t* data = nullptr;
  int64_t length = 0;
  napi_value arrayBuffer = nullptr;
};

// An Int32Array whose buffer is not detached (TypeError "<name> must be an Int32Array, got
// ..." or "<name>'s buffer is detached" otherwise).
I32View readInt32Array(napi_env env, napi_value value, const char* name);

struct U8View {
  uint8_t* data = nullptr;
  int64_t length = 0;
};

// A Uint8Array whose buffer is not detached (TypeError "<name> must be a Uint8Array, got ..."
// or "<name> is backed by a detached ArrayBuffer" otherwise).
U8View readUint8Array(napi_env env, napi_value value, const char* name);

// Non-negative integer sizes from an Array of numbers or a numeric TypedArray.
std::vector<int64_t> readSizes(napi_env env, napi_value value, const char* name);

}  // namespace craftgrad
