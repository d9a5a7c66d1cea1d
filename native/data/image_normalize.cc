#include "image_normalize.h"

namespace craftgrad {
namespace image {

void normalizeImage(const uint8_t* rgb, int64_t height, int64_t width, const float* mean, const float* std, float* out) {
  const int64_t hw = height * width;
  for (int64_t k = 0; k < 6; ++k) {
    const int64_t c = k % 3;
    const float m = mean[k], s = std[k];
    float* plane = out + k * hw;
    for (int64_t p = 0; p < hw; ++p) plane[p] = (static_cast<float>(rgb[p * 3 + c]) / 255.0f - m) / s;
  }
}

}  // namespace image
}  // namespace craftgrad
