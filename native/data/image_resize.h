// tf.image.resize(lanczos3, antialias=True) of a uint8 image, gathered in float32 as
// TensorFlow's ScaleAndTranslate CPU kernel gathers it, then dlimp's round-half-even, clip,
// uint8 — the native form of src/data/images/resize.ts, to the bit (docs/ARCHITECTURE.md §4g).
//
// The per-axis spans (which inputs each output reads, and their float32 weights) are the
// caller's: src/data/images/resize.ts computeSpans makes them (one sin per tap, a few thousand
// per size pair, cached), so the weights are the TypeScript's own bits whatever this platform's
// libm or V8's Math.sin do. This file does the gathers (all of the work): rows first into a
// float (outHeight × width × channels) buffer, then columns, each output a float sum of
// w·pixel in source order, every operation rounded to float32 as written (compiled without FP
// contraction, CMakeLists.txt). Callers have checked every size and span (native/napi/image_call.cc).
#pragma once
#include <cstddef>
#include <cstdint>

namespace craftgrad {
namespace image {

// One axis's spans: output i reads inputs starts[i] .. min(starts[i] + spanSize, inputSize) - 1
// with weights[i * spanSize + k].
struct Spans {
  int64_t spanSize = 0;
  const int32_t* starts = nullptr;
  const float* weights = nullptr;
};

struct ResizeShape {
  int64_t height = 0, width = 0, channels = 0, outHeight = 0, outWidth = 0;
};

// The float32 result (outHeight × outWidth × channels), as tf.image.resize returns it
// (resize.ts resizeLanczos3). `mid` is scratch of outHeight × width × channels floats.
void resizeLanczos3(const uint8_t* src, const ResizeShape& shape, const Spans& rows, const Spans& cols, float* mid,
                    float* dst);

// resizeLanczos3 then dlimp's `tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)`
// (resize.ts resizeImageUint8): round half to even, clip, NaN to 0 (as a JS Uint8Array store).
void resizeLanczos3Uint8(const uint8_t* src, const ResizeShape& shape, const Spans& rows, const Spans& cols, float* mid,
                         uint8_t* dst);

}  // namespace image
}  // namespace craftgrad
