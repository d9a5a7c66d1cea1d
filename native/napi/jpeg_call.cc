#include "jpeg_call.h"

#include <memory>

#include "../data/jpeg_decoder.h"
#include "arg_error.h"
#include "js_values.h"
#include "op_call.h"

namespace craftgrad {
namespace {

struct JpegDecodeOp {
  static constexpr const char* kName = "craftgrad:decodeJpeg";
  JsHold hold;
  std::unique_ptr<JpegDecoder> decoder;  // the headers, read in parse()
  uint8_t* out = nullptr;                // the result's bytes
  size_t outIndex = 0;                   // the result's ArrayBuffer in hold.values

  // Reads the headers (a malformed header throws here, before any allocation of pixels) and
  // allocates the result.
  static JpegDecodeOp parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const Napi::Value v = info[0];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw typeError("bytes must be a Uint8Array, got " + describeValue(env, v));
    const Napi::Uint8Array bytes = v.As<Napi::Uint8Array>();
    JpegDecodeOp op;
    op.decoder = std::make_unique<JpegDecoder>(bytes.Data(), bytes.ByteLength());
    const JpegInfo& i = op.decoder->info();
    const size_t n = static_cast<size_t>(i.width) * static_cast<size_t>(i.height) * static_cast<size_t>(i.channels);
    Napi::ArrayBuffer result = Napi::ArrayBuffer::New(env, n);
    op.out = static_cast<uint8_t*>(result.Data());
    op.outIndex = op.hold.keep(result);
    return op;
  }
  void compute() { decoder->decode(out); }
  Napi::Value result(Napi::Env env) {
    const JpegInfo& i = decoder->info();
    Napi::ArrayBuffer buffer(env, hold.values[outIndex]);
    Napi::Object r = Napi::Object::New(env);
    r.Set("width", Napi::Number::New(env, i.width));
    r.Set("height", Napi::Number::New(env, i.height));
    r.Set("channels", Napi::Number::New(env, i.channels));
    r.Set("data", Napi::Uint8Array::New(env, buffer.ByteLength(), buffer, 0));
    return r;
  }
};

}  // namespace

void registerJpegExports(Napi::Env env, Napi::Object exports) {
  // Synchronous only: a frame takes about a millisecond and the callers run it on their own
  // worker threads (FramePool).
  exports.Set("decodeJpeg", Napi::Function::New(env, callSync<JpegDecodeOp>, "decodeJpeg"));
}

}  // namespace craftgrad
