// N-API entry points of the built-in model: argument parsing and validation (every
// length and the config checked, errors naming the argument) before any kernel runs.
#pragma once
#include <napi.h>

namespace craftgrad {

// modelStep(config, params, frozen, anchor, tokens, actions, batch, gAct, gRet, mode, accumulate, scale)
//   -> { actionLoss, retentionLoss }
Napi::Value ModelStep(const Napi::CallbackInfo& info);
// modelStepAsync(same arguments) -> Promise of the same result, computed on a worker thread
Napi::Value ModelStepAsync(const Napi::CallbackInfo& info);
// modelGemm(M, N, K, alpha, a, transA, b, transB, beta, c): c = beta·c + alpha·op(a)·op(b) (tests, bench)
Napi::Value ModelGemm(const Napi::CallbackInfo& info);
// fmaPeakGflops(seconds): measured fp32 FMA throughput of the pool's threads (bench)
Napi::Value FmaPeakGflops(const Napi::CallbackInfo& info);

// Registers the functions above on `exports` (and, in CUDA builds, cudaModelStep: the
// same call with DeviceBuffers for params, frozen, anchor, gAct and gRet).
void registerModelExports(Napi::Env env, Napi::Object exports);

}  // namespace craftgrad
