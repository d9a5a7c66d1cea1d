// The robot datasets' per-frame image work (native/data; src/data/images, docs/ARCHITECTURE.md
// §4g), synchronous on the calling thread (the frame pool's workers give the parallelism):
//   imageResize(src: Uint8Array, out: Float32Array | Uint8Array, { height, width, channels,
//     outHeight, outWidth, rowSpans, colSpans }): lanczos3/antialias with the caller's spans
//     ({ spanSize, starts: Int32Array, weights: Float32Array }, resize.ts computeSpans); a
//     Float32Array out gets TF's float result, a Uint8Array dlimp's rounded uint8;
//   imageAugment(src: Uint8Array, out: Uint8Array | Float32Array, { height, width, box, color? }):
//     crop of box resized back, then (color: { brightness, contrast, saturation, hue }) the
//     colour ops; a Uint8Array out gets the uint8 image (it may be src), a Float32Array the
//     float32 image after the last clip (what the tests compare op by op);
//   imageNormalize(rgb: Uint8Array, out: Float32Array, { height, width, mean, std }): both
//     towers' normalisation, 6 planes.
// Every size, length, span and parameter is checked first (TypeError / RangeError naming it;
// weights, boxes and factors within ±1e6, so no sum overflows into an infinity or NaN); out
// may not overlap an input (but imageAugment's uint8 out may be its src). Nothing is written
// on a bad call.
#pragma once
#include <napi.h>

namespace craftgrad {

void registerImageExports(Napi::Env env, Napi::Object exports);

}  // namespace craftgrad
