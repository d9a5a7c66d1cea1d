// From decoded component planes to interleaved output pixels, as libjpeg-turbo does it with
// fancy upsampling on (its default, and TensorFlow's: jdsample.c, jdmainct.c's context rows,
// jdcolor.c). Per component, by its sampling factors against the largest (h, v):
//   same size: as is; h/2 (width > 2): h2v1 "fancy" (triangle: 3/4 nearer + 1/4 further);
//   v/2: h1v2 fancy; h/2 and v/2 (width > 2): h2v2 fancy (9/16, 3/16, 3/16, 1/16 with
//   libjpeg-turbo's alternating +8/+7 rounding); any other integral ratio, and h2 with width
//   ≤ 2: replication. Rows above the first and below the last real row repeat that row.
// libjpeg-turbo's SSE2/AVX2 upsamplers and YCbCr→RGB converters compute the same integers as
// its C code (checked by the tests against djpeg with and without JSIMD_FORCENONE). Written
// from the algorithm, not copied.
#pragma once
#include <cstdint>
#include <vector>

namespace craftgrad {

struct PlaneView {
  const uint8_t* data;
  int stride;
  int width;   // the component's real samples (libjpeg's downsampled_width)
  int height;  // downsampled_height
  int h, v;    // sampling factors
};

enum class ColorTransform { Gray, YCbCr, Rgb };

// Throws JpegError (Unsupported) for a ratio that is not integral.
void writePixels(const std::vector<PlaneView>& planes, int hmax, int vmax, int width, int height,
                 ColorTransform transform, uint8_t* out);

// Only checks the ratios (so that a header can be refused before anything is decoded).
void checkSampling(const std::vector<PlaneView>& planes, int hmax, int vmax);

}  // namespace craftgrad
