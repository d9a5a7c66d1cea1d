#include "image_augment.h"

#include <cmath>

namespace craftgrad {
namespace image {
namespace {

// JavaScript's Math.max / Math.min (NaN wins; +0 above -0), as augment.ts calls them.
inline float jsMax(float a, float b) {
  if (a != a || b != b) return NAN;
  if (a == 0.0f && b == 0.0f) return std::signbit(a) && std::signbit(b) ? -0.0f : 0.0f;
  return a > b ? a : b;
}
inline float jsMin(float a, float b) {
  if (a != a || b != b) return NAN;
  if (a == 0.0f && b == 0.0f) return std::signbit(a) || std::signbit(b) ? -0.0f : 0.0f;
  return a < b ? a : b;
}

const float kInv255 = 1.0f / 255.0f;  // float(1/255): the float nearest 1/255, as Math.fround(1 / 255)

void uint8ToFloat(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) * kInv255;
}

void clip01(float* img, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = img[i];
    img[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
  }
}

// tf.image.crop_and_resize (bilinear, extrapolation 0) of the box back to height × width.
void cropAndResize(const float* img, int64_t height, int64_t width, const Box& box, float* out) {
  const int64_t C = 3, ch = height, cw = width;
  const float hm1 = static_cast<float>(height - 1), wm1 = static_cast<float>(width - 1);
  const float hScale = ch > 1 ? (box.y2 - box.y1) * hm1 / static_cast<float>(ch - 1) : 0.0f;
  const float wScale = cw > 1 ? (box.x2 - box.x1) * wm1 / static_cast<float>(cw - 1) : 0.0f;
  for (int64_t y = 0; y < ch; ++y) {
    float* row = out + y * cw * C;
    const float inY = ch > 1 ? box.y1 * hm1 + static_cast<float>(y) * hScale
                             : static_cast<float>(0.5 * (static_cast<double>(box.y1) + box.y2) * (height - 1));
    // Outside the image (or not a number: never, for the boxes the boundary admits): 0.
    if (!(inY >= 0.0f && inY <= hm1)) {
      for (int64_t i = 0; i < cw * C; ++i) row[i] = 0.0f;
      continue;
    }
    // Math.floor / Math.ceil as floats (floor(-0) is -0, so the lerp of -0 is +0 as in augment.ts).
    const float topF = std::floor(inY);
    const int64_t top = static_cast<int64_t>(topF), bottom = static_cast<int64_t>(std::ceil(inY));
    const float yLerp = inY - topF;
    const float* topRow = img + top * width * C;
    const float* bottomRow = img + bottom * width * C;
    for (int64_t x = 0; x < cw; ++x) {
      const float inX = cw > 1 ? box.x1 * wm1 + static_cast<float>(x) * wScale
                               : static_cast<float>(0.5 * (static_cast<double>(box.x1) + box.x2) * (width - 1));
      float* o = row + x * C;
      if (!(inX >= 0.0f && inX <= wm1)) {
        o[0] = o[1] = o[2] = 0.0f;
        continue;
      }
      const float leftF = std::floor(inX);
      const int64_t left = static_cast<int64_t>(leftF), right = static_cast<int64_t>(std::ceil(inX));
      const float xLerp = inX - leftF;
      for (int64_t d = 0; d < C; ++d) {
        const float tl = topRow[left * C + d], tr = topRow[right * C + d];
        const float bl = bottomRow[left * C + d], br = bottomRow[right * C + d];
        const float t = tl + (tr - tl) * xLerp;
        const float b = bl + (br - bl) * xLerp;
        o[d] = t + (b - t) * yLerp;
      }
    }
  }
}

void adjustBrightness(float* img, int64_t n, float delta) {
  for (int64_t i = 0; i < n; ++i) img[i] = img[i] + delta;
}

// AdjustContrastv2's mean as the kernel folds it (augment.ts adjustContrast), then
// x ← m + factor·(x − m).
void adjustContrast(float* img, int64_t pixels, float factor, float* sum) {
  const int64_t C = 3, n = pixels;
  int64_t remaining = n;
  int round = 0;
  do {
    const int64_t right = remaining / 2, left = remaining - right;
    if (round == 0) {
      for (int64_t i = 0; i < right * C; ++i) sum[i] = img[left * C + i] + img[i];
      if (left > right)
        for (int64_t c = 0; c < C; ++c) sum[right * C + c] = img[right * C + c];
    } else {
      for (int64_t i = 0; i < right * C; ++i) sum[i] = sum[i] + sum[left * C + i];
    }
    remaining = left;
    ++round;
  } while (remaining > 1);
  const float scaling = static_cast<float>(1.0 / static_cast<double>(n));  // f(1 / n), n exact in float64
  const float mean[3] = {sum[0] * scaling, sum[1] * scaling, sum[2] * scaling};
  for (int64_t p = 0; p < n; ++p) {
    float* px = img + p * C;
    for (int64_t c = 0; c < C; ++c) px[c] = mean[c] + factor * (px[c] - mean[c]);
  }
}

// adjust_saturation_op.cc's rgb_to_hsv / hsv_to_rgb as augment.ts writes them.
inline void rgbToHsv(float r, float g, float b, float& h, float& s, float& v) {
  const float vv = jsMax(r, jsMax(g, b));
  const float range = vv - jsMin(r, jsMin(g, b));
  s = vv > 0.0f ? range / vv : 0.0f;
  const float norm = 1.0f / (6.0f * range);
  float hh;
  if (r == vv)
    hh = norm * (g - b);
  else if (g == vv)
    hh = static_cast<float>(static_cast<double>(norm * (b - r)) + 2.0 / 6.0);  // float64 sum, rounded once
  else
    hh = static_cast<float>(static_cast<double>(norm * (r - g)) + 4.0 / 6.0);
  if (range <= 0.0f) hh = 0.0f;
  if (hh < 0.0f) hh = hh + 1.0f;
  h = hh;
  v = vv;
}

inline void hsvToRgb(float h, float s, float v, float* out) {
  const float c = s * v;
  const float m = v - c;
  const float dh = h * 6.0f;
  // Math.trunc of a float in [0, 6] (or NaN: category -1, no case), as augment.ts.
  const int cat = dh == dh ? static_cast<int>(std::trunc(dh)) : -1;
  float fmodu = dh;
  while (fmodu <= 0.0f) fmodu = fmodu + 2.0f;
  while (fmodu >= 2.0f) fmodu = fmodu - 2.0f;
  const float x = c * (1.0f - std::fabs(fmodu - 1.0f));
  float rr = 0.0f, gg = 0.0f, bb = 0.0f;
  switch (cat) {
    case 0: rr = c; gg = x; break;
    case 1: rr = x; gg = c; break;
    case 2: gg = c; bb = x; break;
    case 3: gg = x; bb = c; break;
    case 4: rr = x; bb = c; break;
    case 5: rr = c; bb = x; break;
    default: break;
  }
  out[0] = rr + m;
  out[1] = gg + m;
  out[2] = bb + m;
}

void adjustSaturation(float* img, int64_t n, float scale) {
  for (int64_t p = 0; p < n; p += 3) {
    float h, s, v;
    rgbToHsv(img[p], img[p + 1], img[p + 2], h, s, v);
    const float s2 = jsMin(1.0f, jsMax(0.0f, s * scale));
    hsvToRgb(h, s2, v, img + p);
  }
}

// AdjustHue's CPU kernel as augment.ts writes it. |delta| <= 1 (checked at the boundary), so
// each wrap loop runs at most once or twice.
void adjustHue(float* img, int64_t n, float delta) {
  const float dh = delta * 6.0f;
  for (int64_t p = 0; p < n; p += 3) {
    const float r = img[p], g = img[p + 1], b = img[p + 2];
    float vMax, vMid, vMin;
    int cat;
    if (r < g) {
      if (b < r) { vMax = g; vMid = r; vMin = b; cat = 1; }
      else if (b > g) { vMax = b; vMid = g; vMin = r; cat = 3; }
      else { vMax = g; vMid = b; vMin = r; cat = 2; }
    } else {
      if (b < g) { vMax = r; vMid = g; vMin = b; cat = 0; }
      else if (b > r) { vMax = b; vMid = r; vMin = g; cat = 4; }
      else { vMax = r; vMid = b; vMin = g; cat = 5; }
    }
    float h;
    if (vMax == vMin) {
      h = 0.0f;
    } else {
      const float ratio = (vMid - vMin) / (vMax - vMin);
      h = static_cast<float>(cat) + ((cat & 1) == 0 ? ratio : 1.0f - ratio);
    }
    h = h + dh;
    while (h < 0.0f) h = h + 6.0f;
    while (h >= 6.0f) h = h - 6.0f;
    const int hc = h == h ? static_cast<int>(std::trunc(h)) : -1;
    float ratio = h - static_cast<float>(hc);
    if ((hc & 1) != 0) ratio = 1.0f - ratio;
    const float mid = vMin + ratio * (vMax - vMin);
    float rr, gg, bb;
    switch (hc) {
      case 0: rr = vMax; gg = mid; bb = vMin; break;
      case 1: rr = mid; gg = vMax; bb = vMin; break;
      case 2: rr = vMin; gg = vMax; bb = mid; break;
      case 3: rr = vMin; gg = mid; bb = vMax; break;
      case 4: rr = mid; gg = vMin; bb = vMax; break;
      default: rr = vMax; gg = vMin; bb = mid;
    }
    img[p] = rr;
    img[p + 1] = gg;
    img[p + 2] = bb;
  }
}

}  // namespace

const float* augmentImageFloat(const uint8_t* src, int64_t height, int64_t width, const Box& box,
                               const ColorParams* color, const AugmentScratch& scratch) {
  const int64_t n = height * width * 3;
  uint8ToFloat(src, n, scratch.image);
  float* img = scratch.crop;
  cropAndResize(scratch.image, height, width, box, img);
  clip01(img, n);
  if (color) {
    adjustBrightness(img, n, color->brightness);
    clip01(img, n);
    adjustContrast(img, height * width, color->contrast, scratch.sums);
    clip01(img, n);
    adjustSaturation(img, n, color->saturation);
    clip01(img, n);
    adjustHue(img, n, color->hue);
    clip01(img, n);
  }
  return img;
}

void floatToUint8(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = src[i] * 255.5f;
    dst[i] = v > 255.0f ? 255 : v > 0.0f ? static_cast<uint8_t>(v) : 0;  // the cast truncates
  }
}

}  // namespace image
}  // namespace craftgrad
