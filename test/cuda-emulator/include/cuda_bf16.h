// The CUDA emulator's stand-in for cuda_bf16.h (README.md here): __nv_bfloat16 and the
// conversions craftgrad's kernels use, on the CPU. A bf16 is the top 16 bits of a float;
// __float2bfloat16_rn rounds to nearest even (NaN stays a quiet NaN of the same sign), as
// the real header does; __bfloat162float widens exactly. Emulator build only.
#pragma once
#include <cstdint>
#include <cstring>

// Plain data (no constructor), so that it can be a __shared__ array (a function static here).
struct __nv_bfloat16 {
  uint16_t __x;
};

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  __nv_bfloat16 h;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    h.__x = static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN: quiet, sign kept
    return h;
  }
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even (overflow → ±inf)
  h.__x = static_cast<uint16_t>(u >> 16);
  return h;
}
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }

inline float __bfloat162float(__nv_bfloat16 h) {
  const uint32_t u = static_cast<uint32_t>(h.__x) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
