#pragma once
#include <napi.h>

namespace craftgrad {
// What this build and machine offer: compiled backends, CPU kernel variant, threads,
// and (when compiled) the CUDA devices seen.
Napi::Object backendInfo(Napi::Env env);
}  // namespace craftgrad
