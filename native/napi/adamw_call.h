// The optimizer-step entry points (parse + validate + run): craftReduce (surgery pass 1
// for the trainer, no writes), adamwFused (surgery pass 2 fused with AdamW) and adamw
// (AdamW alone). Every check happens before any kernel runs, so a bad call changes nothing.
#pragma once
#include <napi.h>

#include <vector>

#include "../core/adamw_params.h"
#include "../core/numerics.h"

namespace craftgrad {

// Adds craftReduce, adamwFused and adamw to the module's exports.
void registerAdamW(Napi::Env env, Napi::Object exports);

// Shared with the CUDA entry points (native/napi/cuda_adamw.cc): the same checks and the
// same result on both backends.
// A number that must be finite and in the given range (RangeError naming it otherwise).
double readRange(napi_env env, napi_value v, const char* name, double lo, bool loInclusive, double hi, bool hiInclusive);
// lr, beta1, beta2, eps, weightDecay, step, gradScale from info[first ...].
AdamWParams readAdamW(const Napi::CallbackInfo& info, size_t first);
// A Float64Array of `expected` finite entries (the per-tensor coefficients).
const double* readFloat64(napi_env env, napi_value value, const char* name, int64_t expected);
// lambda, eps, projection from info[first ...].
SurgeryParams readReduceParams(const Napi::CallbackInfo& info, size_t first);
// craftReduce's result from the pass-1 sums: coefficients, conflicts and the norm are
// computed here, on the host, in double, for both backends.
Napi::Object craftReduceResult(Napi::Env env, const std::vector<ReduceSums>& sums, const SurgeryParams& sp);

}  // namespace craftgrad
