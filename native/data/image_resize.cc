#include "image_resize.h"

#include <algorithm>
#include <cmath>

namespace craftgrad {
namespace image {

void resizeLanczos3(const uint8_t* src, const ResizeShape& s, const Spans& rows, const Spans& cols, float* mid,
                    float* dst) {
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
    float* out = dst + y * s.outWidth * C;
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
        out[x * 3] = a0;
        out[x * 3 + 1] = a1;
        out[x * 3 + 2] = a2;
        continue;
      }
      for (int64_t c = 0; c < C; ++c) {
        float acc = 0.0f;
        for (int64_t k = 0; k < n; ++k) acc = acc + w[k] * base[k * C + c];
        out[x * C + c] = acc;
      }
    }
  }
}

void roundClipToUint8(const float* src, size_t n, uint8_t* dst) {
  for (size_t i = 0; i < n; ++i) {
    // nearbyint in the default rounding mode: half to even, as tf.round (and resize.ts's roundHalfEven).
    const float r = std::nearbyint(src[i]);
    dst[i] = r < 0.0f ? 0 : r > 255.0f ? 255 : r == r ? static_cast<uint8_t>(r) : 0;
  }
}

}  // namespace image
}  // namespace craftgrad
