// binding.decodeJpeg: native/data/jpeg_decoder.h on a Uint8Array of JPEG
// bytes (TensorFlow's decode_image: libjpeg-turbo IFAST, fancy upsampling). The result is
// { width, height, channels (1 or 3), data: Uint8Array (height × width × channels) }. Bytes
// that are not a JPEG it decodes throw an Error whose code is
// ERR_CRAFTGRAD_JPEG_INVALID (malformed: the message names the problem) or
// ERR_CRAFTGRAD_JPEG_UNSUPPORTED (progressive, arithmetic, lossless, 12-bit, CMYK, ...).
#pragma once
#include <napi.h>

namespace craftgrad {

void registerJpegExports(Napi::Env env, Napi::Object exports);

}  // namespace craftgrad
