// The one error type of the JPEG decoder (jpeg_decoder.h). Two kinds: the bytes are not a
// well-formed JPEG (Invalid), or they are one this decoder does not decode (Unsupported:
// progressive, arithmetic-coded, lossless, hierarchical, 12-bit, CMYK...), which the caller
// may hand to another decoder. It is a BackendError only so that the binding maps it as it
// maps every coded error (native/napi/arg_error.h: an Error with this `code`).
#pragma once
#include <string>

#include "../core/backend_error.h"

namespace craftgrad {

struct JpegError : BackendError {
  enum class Kind { Invalid, Unsupported };
  Kind kind;
  JpegError(Kind k, const std::string& msg)
      : BackendError(msg, k == Kind::Invalid ? "ERR_CRAFTGRAD_JPEG_INVALID" : "ERR_CRAFTGRAD_JPEG_UNSUPPORTED"), kind(k) {}
};

[[noreturn]] inline void jpegInvalid(const std::string& msg) { throw JpegError(JpegError::Kind::Invalid, msg); }
[[noreturn]] inline void jpegUnsupported(const std::string& msg) { throw JpegError(JpegError::Kind::Unsupported, msg); }

}  // namespace craftgrad
