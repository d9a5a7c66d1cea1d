#include "image_call.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../data/image_augment.h"
#include "../data/image_normalize.h"
#include "../data/image_resize.h"
#include "arg_error.h"
#include "js_values.h"
#include "options.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

// The largest side an image call takes: sides and their products stay exact in float32
// (augment.ts multiplies float32 coordinates by height − 1), and no count overflows.
constexpr int64_t kMaxSide = 16384;
// The most values one image (or the resize's intermediate) may hold: 2^31 − 1.
constexpr int64_t kMaxValues = 2147483647;

struct ByteRange {
  const char* name;
  const void* begin;
  size_t bytes;
};

bool isTypedArrayOf(napi_env env, napi_value value, napi_typedarray_type want) {
  bool typed = false;
  checkStatus(env, napi_is_typedarray(env, value, &typed));
  if (!typed) return false;
  napi_typedarray_type type;
  checkStatus(env, napi_get_typedarray_info(env, value, &type, nullptr, nullptr, nullptr, nullptr));
  return type == want;
}

std::string num(int64_t v) { return std::to_string(v); }

// Scratch floats for one call (the resize's intermediate rows, the augmentation's float
// images). Up to kKeepScratch they are the calling thread's, kept between calls, so a frame's
// calls touch no fresh pages (each thread, the main one and each frame worker, has its own);
// a larger call has its own, freed when it returns.
constexpr size_t kKeepScratch = size_t{16} << 20;  // floats: 64 MiB
class Scratch {
 public:
  explicit Scratch(size_t floats) {
    thread_local std::vector<float> kept;
    if (floats > kKeepScratch) {
      own_.resize(floats);
      data_ = own_.data();
      return;
    }
    if (kept.size() < floats) kept.resize(floats);
    data_ = kept.data();
  }
  float* data() const { return data_; }

 private:
  std::vector<float> own_;
  float* data_ = nullptr;
};

void requireLength(const char* name, int64_t have, int64_t want, const std::string& what) {
  if (have != want)
    throw rangeError(std::string(name) + " has " + num(have) + " values, not " + num(want) + " (" + what + ")");
}

// `out` may not share a byte with any input.
void requireDisjoint(const ByteRange& out, std::initializer_list<ByteRange> inputs) {
  const auto* o = static_cast<const char*>(out.begin);
  for (const ByteRange& in : inputs) {
    const auto* i = static_cast<const char*>(in.begin);
    if (out.bytes && in.bytes && o < i + in.bytes && i < o + out.bytes)
      throw rangeError(std::string(out.name) + " and " + in.name + " overlap in memory; give " + out.name + " its own buffer");
  }
}

// A finite number from lo to hi, as float32.
float readParam(const Options& o, const char* key, double lo, double hi) {
  const double v = o.number(key);
  if (!(v >= lo && v <= hi))
    throw rangeError(std::string(key) + " must be a finite number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                     ", got " + std::to_string(v));
  return static_cast<float>(v);
}

// An Array of exactly n numbers, each finite in [lo, hi], as float32.
std::vector<float> readParams(napi_env env, napi_value value, const char* name, uint32_t n, double lo, double hi) {
  bool isArray = false;
  checkStatus(env, napi_is_array(env, value, &isArray));
  uint32_t length = 0;
  if (isArray) checkStatus(env, napi_get_array_length(env, value, &length));
  if (!isArray || length != n)
    throw typeError(std::string(name) + " must be an Array of " + std::to_string(n) + " numbers, got " +
                    (isArray ? "an Array of " + std::to_string(length) : describeValue(env, value)));
  std::vector<float> out(n);
  for (uint32_t i = 0; i < n; ++i) {
    napi_value e;
    checkStatus(env, napi_get_element(env, value, i, &e));
    const std::string label = std::string(name) + "[" + std::to_string(i) + "]";
    const double v = readNumber(env, e, label.c_str());
    if (!(v >= lo && v <= hi))
      throw rangeError(label + " must be a finite number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                       std::to_string(v));
    out[i] = static_cast<float>(v);
  }
  return out;
}

struct SpansArg {
  image::Spans spans;
  ByteRange startsRange, weightsRange;
};

// { spanSize, starts: Int32Array(outSize), weights: Float32Array(outSize · spanSize) } for an
// axis of inSize inputs: spanSize from 1 to inSize, every start from 0 to inSize − 1.
SpansArg readSpans(napi_env env, napi_value value, const char* name, int64_t outSize, int64_t inSize) {
  const std::string n(name);
  const Options o(env, value, name);
  const std::string sizeKey = n + ".spanSize", startsKey = n + ".starts", weightsKey = n + ".weights";
  const int64_t spanSize = readInteger(env, o.get("spanSize"), sizeKey.c_str(), 1, inSize);
  const I32View starts = readInt32Array(env, o.get("starts"), startsKey.c_str());
  const F32View weights = readFloat32Array(env, o.get("weights"), weightsKey.c_str());
  requireLength(startsKey.c_str(), starts.length, outSize, "one per output");
  requireLength(weightsKey.c_str(), weights.length, outSize * spanSize, "spanSize per output");
  for (int64_t i = 0; i < outSize; ++i) {
    if (starts.data[i] < 0 || starts.data[i] >= inSize)
      throw rangeError(startsKey + "[" + num(i) + "] must be an input index from 0 to " + num(inSize - 1) + ", got " +
                       num(starts.data[i]));
  }
  // Bounded so that no sum overflows: no infinity or NaN (whose bits a JS store may change) can arise.
  for (int64_t i = 0; i < weights.length; ++i) {
    if (!(std::fabs(weights.data[i]) <= 1e6f))
      throw rangeError(weightsKey + "[" + num(i) + "] must be a finite number from -1e6 to 1e6, got " +
                       std::to_string(weights.data[i]));
  }
  SpansArg a;
  a.spans = {spanSize, starts.data, weights.data};
  a.startsRange = {name, starts.data, static_cast<size_t>(starts.length) * sizeof(int32_t)};
  a.weightsRange = {name, weights.data, static_cast<size_t>(weights.length) * sizeof(float)};
  return a;
}

int64_t readSide(const Options& o, const char* key) { return o.integer(key, 1, kMaxSide); }

// height × width × channels, checked against kMaxValues.
int64_t imageValues(int64_t h, int64_t w, int64_t c, const char* what) {
  const int64_t v = h * w * c;  // each factor <= 16384: no overflow
  if (v > kMaxValues) throw rangeError(std::string(what) + " of " + num(h) + "×" + num(w) + "×" + num(c) + " holds more than 2^31 − 1 values");
  return v;
}

Napi::Value ImageResize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    napi_env env = info.Env();
    const U8View src = readUint8Array(env, info[0], "src");
    const Options o(env, info[2], "options");
    image::ResizeShape s;
    s.height = readSide(o, "height");
    s.width = readSide(o, "width");
    s.channels = o.integer("channels", 1, 16);
    s.outHeight = readSide(o, "outHeight");
    s.outWidth = readSide(o, "outWidth");
    const int64_t inValues = imageValues(s.height, s.width, s.channels, "the image");
    const int64_t outValues = imageValues(s.outHeight, s.outWidth, s.channels, "the output");
    const int64_t midValues = imageValues(s.outHeight, s.width, s.channels, "the intermediate image");
    requireLength("src", src.length, inValues, "height × width × channels");
    const SpansArg rows = readSpans(env, o.get("rowSpans"), "rowSpans", s.outHeight, s.height);
    const SpansArg cols = readSpans(env, o.get("colSpans"), "colSpans", s.outWidth, s.width);
    napi_value outValue = info[1];
    const bool rounded = isTypedArrayOf(env, outValue, napi_uint8_array);
    ByteRange outRange{"out", nullptr, 0};
    U8View outU8;
    F32View outF32;
    if (rounded) {
      outU8 = readUint8Array(env, outValue, "out");
      requireLength("out", outU8.length, outValues, "outHeight × outWidth × channels");
      outRange = {"out", outU8.data, static_cast<size_t>(outU8.length)};
    } else {
      if (!isTypedArrayOf(env, outValue, napi_float32_array))
        throw typeError("out must be a Float32Array (TF's float result) or a Uint8Array (rounded as dlimp), got " +
                        describeValue(env, outValue));
      outF32 = readFloat32Array(env, outValue, "out");
      requireLength("out", outF32.length, outValues, "outHeight × outWidth × channels");
      outRange = {"out", outF32.data, static_cast<size_t>(outF32.length) * sizeof(float)};
    }
    requireDisjoint(outRange, {{"src", src.data, static_cast<size_t>(src.length)}, rows.startsRange, rows.weightsRange,
                               cols.startsRange, cols.weightsRange});
    const Scratch scratch(static_cast<size_t>(midValues));
    float* mid = scratch.data();
    if (rounded)
      image::resizeLanczos3Uint8(src.data, s, rows.spans, cols.spans, mid, outU8.data);
    else
      image::resizeLanczos3(src.data, s, rows.spans, cols.spans, mid, outF32.data);
    return info.Env().Undefined();
  });
}

Napi::Value ImageAugment(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    napi_env env = info.Env();
    const U8View src = readUint8Array(env, info[0], "src");
    napi_value outValue = info[1];
    const bool rounded = isTypedArrayOf(env, outValue, napi_uint8_array);
    if (!rounded && !isTypedArrayOf(env, outValue, napi_float32_array))
      throw typeError("out must be a Uint8Array (converted as dlimp) or a Float32Array (the float image after the last clip), got " +
                      describeValue(env, outValue));
    U8View outU8;
    F32View outF32;
    if (rounded)
      outU8 = readUint8Array(env, outValue, "out");
    else
      outF32 = readFloat32Array(env, outValue, "out");
    const Options o(env, info[2], "options");
    const int64_t height = readSide(o, "height"), width = readSide(o, "width");
    const int64_t n = imageValues(height, width, 3, "the image");
    requireLength("src", src.length, n, "height × width × 3");
    requireLength("out", rounded ? outU8.length : outF32.length, n, "height × width × 3");
    // TF takes any box (outside [0, 1] it extrapolates with 0); bounded so no coordinate overflows.
    const std::vector<float> b = readParams(env, o.get("box"), "box", 4, -1e6, 1e6);
    const image::Box box{b[0], b[1], b[2], b[3]};
    image::ColorParams color{};
    const napi_value colorValue = o.optional("color");
    if (colorValue) {
      const Options c(env, colorValue, "color");
      color.brightness = readParam(c, "brightness", -1e6, 1e6);
      color.contrast = readParam(c, "contrast", -1e6, 1e6);
      color.saturation = readParam(c, "saturation", -1e6, 1e6);
      color.hue = readParam(c, "hue", -1, 1);  // tf.image.adjust_hue: delta in [-1, 1]
    }
    // The augmentation reads all of src before it writes anything, so a uint8 out may be src
    // itself; a float out is 4 bytes a value and may not overlap it.
    if (!rounded)
      requireDisjoint({"out", outF32.data, static_cast<size_t>(n) * sizeof(float)}, {{"src", src.data, static_cast<size_t>(n)}});
    const Scratch scratch(static_cast<size_t>(n) * (colorValue ? 3 : 2));
    float* work = scratch.data();
    const image::AugmentScratch s{work, work + n, colorValue ? work + 2 * n : nullptr};
    const float* img = image::augmentImageFloat(src.data, height, width, box, colorValue ? &color : nullptr, s);
    if (rounded)
      image::floatToUint8(img, n, outU8.data);
    else
      std::copy(img, img + n, outF32.data);
    return info.Env().Undefined();
  });
}

Napi::Value ImageNormalize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    napi_env env = info.Env();
    const U8View rgb = readUint8Array(env, info[0], "rgb");
    const F32View out = readFloat32Array(env, info[1], "out");
    const Options o(env, info[2], "options");
    const int64_t height = readSide(o, "height"), width = readSide(o, "width");
    requireLength("rgb", rgb.length, imageValues(height, width, 3, "the image"), "height × width × 3");
    requireLength("out", out.length, imageValues(height, width, 6, "the output"), "6 × height × width");
    const std::vector<float> mean = readParams(env, o.get("mean"), "mean", 6, -1e6, 1e6);
    const std::vector<float> std = readParams(env, o.get("std"), "std", 6, -1e6, 1e6);
    for (int i = 0; i < 6; ++i)
      if (std[i] == 0.0f) throw rangeError("std[" + std::to_string(i) + "] must not be 0 (as float32)");
    requireDisjoint({"out", out.data, static_cast<size_t>(out.length) * sizeof(float)},
                    {{"rgb", rgb.data, static_cast<size_t>(rgb.length)}});
    image::normalizeImage(rgb.data, height, width, mean.data(), std.data(), out.data);
    return info.Env().Undefined();
  });
}

}  // namespace

void registerImageExports(Napi::Env env, Napi::Object exports) {
  exports.Set("imageResize", Napi::Function::New(env, ImageResize, "imageResize"));
  exports.Set("imageAugment", Napi::Function::New(env, ImageAugment, "imageAugment"));
  exports.Set("imageNormalize", Napi::Function::New(env, ImageNormalize, "imageNormalize"));
}

}  // namespace craftgrad
