#include "image_resize.h"

#include <algorithm>
#include <cmath>

namespace craftgrad {
namespace image {

namespace {

// round half to even (nearbyint in the default rounding mode, as tf.round and resize.ts's
// roundHalfEven), clip to [0, 255], NaN to 0.
inline uint8_t roundClip(float v) {
  const float r = std::nearbyint(v);
  return r < 0.0f ? 0 : r > 255.0f ? 255 : r == r ? static_cast<uint8_t>(r) : 0;
}

struct FloatOut {
  float* dst;
  void operator()(int64_t i, float v) const { dst[i] = v; }
};
struct RoundedOut {
  uint8_t* dst;
  void operator()(int64_t i, float v) const { dst[i] = roundClip(v); }
};

template <typename Out>
void resize(const uint8_t* src, const ResizeShape& s, const Spans& rows, const Spans& cols, float* mid, Out store) {
  const int64_t rowLen = s.width * s.channels;
  // GatherRows (resize.ts): mid[y] = Σ_k w_k · src[start + k], k ascending, from 0.
  for (int64_t y = 0; y < s.outHeight; ++y) {
    float* out = mid + y * rowLen;
    std::fill(out, out + rowLen, 0.0f);
    const int64_t start = rows.starts[y];
    const int64_t n = std::min(start + rows.spanSize, s.height) - start;
    for (int64_t k = 0; k < n; ++k) {
      const float w = rows.weights[y * rows.spanSize + k];
      const uint8_t* in = src + (start + k) * rowLen;
      for (int64_t i = 0; i < rowLen; ++i) out[i] = out[i] + w * static_cast<float>(in[i]);
    }
  }
  // GatherColumns: dst[y, x, c] = Σ_k w_k · mid[y, start + k, c], k ascending, from 0.
  const int64_t C = s.channels;
  for (int64_t y = 0; y < s.outHeight; ++y) {
    const float* in = mid + y * rowLen;
    const int64_t o = y * s.outWidth * C;
    for (int64_t x = 0; x < s.outWidth; ++x) {
      const int64_t start = cols.starts[x];
      const int64_t n = std::min(start + cols.spanSize, s.width) - start;
      const float* w = cols.weights + x * cols.spanSize;
      const float* base = in + start * C;
      if (C == 3) {  // the images' case, unrolled over the channels (the same sums)
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f;
        for (int64_t k = 0; k < n; ++k) {
          a0 = a0 + w[k] * base[k * 3];
          a1 = a1 + w[k] * base[k * 3 + 1];
          a2 = a2 + w[k] * base[k * 3 + 2];
        }
        store(o + x * 3, a0);
        store(o + x * 3 + 1, a1);
        store(o + x * 3 + 2, a2);
        continue;
      }
      for (int64_t c = 0; c < C; ++c) {
        float acc = 0.0f;
        for (int64_t k = 0; k < n; ++k) acc = acc + w[k] * base[k * C + c];
        store(o + x * C + c, acc);
      }
    }
  }
}

}  // namespace

void resizeLanczos3(const uint8_t* src, const ResizeShape& s, const Spans& rows, const Spans& cols, float* mid,
                    float* dst) {
  resize(src, s, rows, cols, mid, FloatOut{dst});
}

void resizeLanczos3Uint8(const uint8_t* src, const ResizeShape& s, const Spans& rows, const Spans& cols, float* mid,
                         uint8_t* dst) {
  resize(src, s, rows, cols, mid, RoundedOut{dst});
}

}  // namespace image
}  // namespace craftgrad
