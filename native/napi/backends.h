// The one place the binding maps a device name to a backend ("cpu", "cuda:N"; resolving
// 'auto' and 'cuda' is src/device.ts's job) and describes what the build offers.
#pragma once
#include <napi.h>

#include <string>

#include "../core/backend.h"

namespace craftgrad {

// The backend of a canonical device name. Argument errors (RangeError naming `name`) come
// from the name; a CUDA device that is unusable throws the backend's error (code
// ERR_CRAFTGRAD_CUDA), a device index past the visible ones a RangeError.
Backend& backendNamed(const std::string& device, const std::string& name);
// The same from a JS value: a string (TypeError otherwise).
Backend& readBackend(Napi::Env env, Napi::Value v, const std::string& name);
// Where host arrays are computed when a call names no device: the CPU.
Backend& defaultHostBackend();

// backendInfo(): { backends, napiVersion, cpu: {...}, cuda: {...} }.
Napi::Object backendInfo(Napi::Env env);

}  // namespace craftgrad
