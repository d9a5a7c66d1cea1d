// Upstream's training augmentation (dlimp's augment_image with openvla-oft's kwargs) and its
// evaluation centre crop on one uint8 RGB image — the native form of
// src/data/images/augment.ts, to the bit: uint8 → float32 (x · float(1/255)), crop_and_resize
// (bilinear) of `box` back to the image's size, then brightness, contrast, saturation and hue
// as TF's CPU kernels compute them, clipped to [0, 1] after each op, back to uint8 by
// trunc(clamp(x · 255.5)). Each op is written with augment.ts's operations in augment.ts's
// order, rounded to float32 (compiled without FP contraction, CMakeLists.txt); where augment.ts
// computes in float64 and rounds once (the single-row crop's centre, the hue offsets 2/6 and
// 4/6), so does this. Callers have checked the sizes and parameters (native/napi/image_call.cc).
#pragma once
#include <cstdint>

namespace craftgrad {
namespace image {

// TF's normalised crop box [y1, x1, y2, x2] (float32).
struct Box {
  float y1, x1, y2, x2;
};

struct ColorParams {
  float brightness;  // added
  float contrast;    // factor around each channel's mean
  float saturation;  // factor on HSV's s
  float hue;         // added to the hue, in turns (TF's delta, [-1, 1])
};

// Scratch of the augmentation: three float images and one more of the image's values.
struct AugmentScratch {
  float* image;  // height × width × 3
  float* crop;   // height × width × 3
  float* sums;   // height × width × 3 (the contrast's mean)
};

// augment.ts augmentImage (color given) or centerCropImage (color null: the crop alone), up to
// the last clip: the float32 image in [0, 1] (height × width × 3) at scratch.crop, returned.
// src is read only before anything is written.
const float* augmentImageFloat(const uint8_t* src, int64_t height, int64_t width, const Box& box,
                               const ColorParams* color, const AugmentScratch& scratch);

// convert_image_dtype(x, uint8, saturate=True): trunc(clamp(x · 255.5, 0, 255)) (augment.ts floatToUint8).
void floatToUint8(const float* src, int64_t n, uint8_t* dst);

}  // namespace image
}  // namespace craftgrad
