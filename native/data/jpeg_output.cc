#include "jpeg_output.h"

#include <algorithm>
#include <string>

#include "jpeg_error.h"

namespace craftgrad {

namespace {

enum class Method { Full, H2V1Fancy, H1V2Fancy, H2V2Fancy, Replicate };

struct Upsampler {
  PlaneView p;
  Method method = Method::Full;
  int hexp = 1, vexp = 1;
  std::vector<uint8_t> row;   // one upsampled row
  std::vector<int> colsum;    // h2v2: 3·nearer + further row, per column
};

Method methodFor(const PlaneView& p, int hmax, int vmax, int& hexp, int& vexp) {
  if (p.h == hmax && p.v == vmax) return Method::Full;
  if (p.h * 2 == hmax && p.v == vmax && p.width > 2) return Method::H2V1Fancy;
  if (p.h == hmax && p.v * 2 == vmax) return Method::H1V2Fancy;
  if (p.h * 2 == hmax && p.v * 2 == vmax && p.width > 2) return Method::H2V2Fancy;
  if (hmax % p.h != 0 || vmax % p.v != 0)
    jpegUnsupported("sampling factors " + std::to_string(p.h) + "x" + std::to_string(p.v) + " against " +
                    std::to_string(hmax) + "x" + std::to_string(vmax) + " are not an integral ratio");
  hexp = hmax / p.h;
  vexp = vmax / p.v;
  return Method::Replicate;
}

inline const uint8_t* planeRow(const PlaneView& p, int r) {
  r = std::max(0, std::min(r, p.height - 1));
  return p.data + static_cast<size_t>(r) * static_cast<size_t>(p.stride);
}

// The component's samples for output row y, `width` of them (or more).
const uint8_t* upsampleRow(Upsampler& u, int y, int width) {
  const PlaneView& p = u.p;
  const int cw = p.width;
  uint8_t* out = u.row.data();
  switch (u.method) {
    case Method::Full:
      return planeRow(p, y);
    case Method::H2V1Fancy: {
      const uint8_t* in = planeRow(p, y);
      out[0] = in[0];
      out[1] = static_cast<uint8_t>((in[0] * 3 + in[1] + 2) >> 2);
      for (int i = 1; i < cw - 1; ++i) {
        const int t = in[i] * 3;
        out[2 * i] = static_cast<uint8_t>((t + in[i - 1] + 1) >> 2);
        out[2 * i + 1] = static_cast<uint8_t>((t + in[i + 1] + 2) >> 2);
      }
      out[2 * cw - 2] = static_cast<uint8_t>((in[cw - 1] * 3 + in[cw - 2] + 1) >> 2);
      out[2 * cw - 1] = in[cw - 1];
      return out;
    }
    case Method::H1V2Fancy: {
      const int r = y >> 1;
      const bool below = (y & 1) != 0;
      const uint8_t* nearer = planeRow(p, r);
      const uint8_t* further = planeRow(p, below ? r + 1 : r - 1);
      const int bias = below ? 2 : 1;
      for (int x = 0; x < cw; ++x) out[x] = static_cast<uint8_t>((nearer[x] * 3 + further[x] + bias) >> 2);
      return out;
    }
    case Method::H2V2Fancy: {
      const int r = y >> 1;
      const uint8_t* nearer = planeRow(p, r);
      const uint8_t* further = planeRow(p, (y & 1) ? r + 1 : r - 1);
      int* cs = u.colsum.data();
      for (int x = 0; x < cw; ++x) cs[x] = nearer[x] * 3 + further[x];
      out[0] = static_cast<uint8_t>((cs[0] * 4 + 8) >> 4);
      out[1] = static_cast<uint8_t>((cs[0] * 3 + cs[1] + 7) >> 4);
      for (int i = 1; i < cw - 1; ++i) {
        const int t = cs[i] * 3;
        out[2 * i] = static_cast<uint8_t>((t + cs[i - 1] + 8) >> 4);
        out[2 * i + 1] = static_cast<uint8_t>((t + cs[i + 1] + 7) >> 4);
      }
      out[2 * cw - 2] = static_cast<uint8_t>((cs[cw - 1] * 3 + cs[cw - 2] + 8) >> 4);
      out[2 * cw - 1] = static_cast<uint8_t>((cs[cw - 1] * 4 + 7) >> 4);
      return out;
    }
    case Method::Replicate: {
      const uint8_t* in = planeRow(p, y / u.vexp);
      for (int x = 0; x < width; ++x) out[x] = in[x / u.hexp];
      return out;
    }
  }
  return out;
}

// jdcolor.c's tables (SCALEBITS 16): R = Y + round(1.402·Cr'), B = Y + round(1.772·Cb'),
// G = Y + ((−0.34414·Cb' − 0.71414·Cr' + ½) >> 16), Cb' = Cb − 128, then clamped to 0..255.
struct YccTables {
  int crR[256], cbB[256], crG[256], cbG[256];
  YccTables() {
    constexpr int kHalf = 1 << 15;
    for (int i = 0; i < 256; ++i) {
      const int x = i - 128;
      crR[i] = (91881 * x + kHalf) >> 16;   // FIX(1.40200)
      cbB[i] = (116130 * x + kHalf) >> 16;  // FIX(1.77200)
      crG[i] = -46802 * x;                  // FIX(0.71414)
      cbG[i] = -22554 * x + kHalf;          // FIX(0.34414)
    }
  }
};

inline uint8_t clamp255(int v) { return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }

}  // namespace

void checkSampling(const std::vector<PlaneView>& planes, int hmax, int vmax) {
  for (const PlaneView& p : planes) {
    int hexp = 1, vexp = 1;
    methodFor(p, hmax, vmax, hexp, vexp);
  }
}

void writePixels(const std::vector<PlaneView>& planes, int hmax, int vmax, int width, int height,
                 ColorTransform transform, uint8_t* out) {
  static const YccTables tables;
  std::vector<Upsampler> ups(planes.size());
  for (size_t c = 0; c < planes.size(); ++c) {
    Upsampler& u = ups[c];
    u.p = planes[c];
    u.method = methodFor(u.p, hmax, vmax, u.hexp, u.vexp);
    u.row.resize(static_cast<size_t>(std::max(width, 2 * u.p.width)) + 16);
    if (u.method == Method::H2V2Fancy) u.colsum.resize(static_cast<size_t>(u.p.width));
  }
  const size_t n = static_cast<size_t>(width);
  for (int y = 0; y < height; ++y) {
    if (transform == ColorTransform::Gray) {
      const uint8_t* g = upsampleRow(ups[0], y, width);
      std::copy(g, g + n, out + static_cast<size_t>(y) * n);
      continue;
    }
    const uint8_t* c0 = upsampleRow(ups[0], y, width);
    const uint8_t* c1 = upsampleRow(ups[1], y, width);
    const uint8_t* c2 = upsampleRow(ups[2], y, width);
    uint8_t* o = out + static_cast<size_t>(y) * n * 3;
    if (transform == ColorTransform::Rgb) {
      for (size_t x = 0; x < n; ++x) {
        o[3 * x] = c0[x];
        o[3 * x + 1] = c1[x];
        o[3 * x + 2] = c2[x];
      }
      continue;
    }
    for (size_t x = 0; x < n; ++x) {
      const int yy = c0[x], cb = c1[x], cr = c2[x];
      o[3 * x] = clamp255(yy + tables.crR[cr]);
      o[3 * x + 1] = clamp255(yy + ((tables.cbG[cb] + tables.crG[cr]) >> 16));
      o[3 * x + 2] = clamp255(yy + tables.cbB[cb]);
    }
  }
}

}  // namespace craftgrad
