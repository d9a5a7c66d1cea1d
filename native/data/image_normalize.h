// The processor's pixel normalisation of one uint8 RGB image for both towers
// (src/data/vla-dataset.ts normalizeImage, to the bit): 6 planes (CHW), plane 3g + c holding
// (x / 255 − mean[g][c]) / std[g][c] in float32, tower g = 0 then 1.
#pragma once
#include <cstdint>

namespace craftgrad {
namespace image {

// rgb: height × width × 3; out: 6 × height × width. mean and std: 6 float32 values each,
// tower-major (mean[3g + c]).
void normalizeImage(const uint8_t* rgb, int64_t height, int64_t width, const float* mean, const float* std, float* out);

}  // namespace image
}  // namespace craftgrad
