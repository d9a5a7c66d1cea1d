// The errors a backend throws besides std::bad_alloc, backend-neutral so that the binding
// maps every backend's failures in one place (native/napi/arg_error.h: jsErrorFor) without
// including any backend's headers. A device backend derives its own (native/cuda: CudaError).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace craftgrad {

struct BackendError : std::runtime_error {
  std::string code;             // the JS error's `code`, e.g. ERR_CRAFTGRAD_CUDA
  int device = -1;              // out of memory: the device index
  int64_t requestedBytes = -1;  // out of memory: the allocation that failed (>= 0 only then)
  BackendError(const std::string& msg, std::string errorCode) : std::runtime_error(msg), code(std::move(errorCode)) {}
};

}  // namespace craftgrad
