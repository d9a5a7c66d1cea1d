// Registers `binding.bench` (bench_natives.cc). Called by native/napi/addon.cc only in a
// build with CRAFTGRAD_BENCH (a repository checkout; CMakeLists.txt).
#pragma once
#include <napi.h>

namespace craftgrad {

void registerBenchNatives(Napi::Env env, Napi::Object exports);

}  // namespace craftgrad
