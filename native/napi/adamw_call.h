// The optimizer step over TensorSets of one device (binding.d.ts):
//   craftReduce(act, ret, { lambda, eps, projection })  surgery pass 1, nothing written
//   adamwFused(params, m, v, act, ret, { coefficients, lr, beta1, beta2, eps, weightDecay, step, gradScale })
//   adamw(params, m, v, grad, { lr, beta1, beta2, eps, weightDecay, step, gradScale })
// Checks, all before anything runs: the options first (RangeError/TypeError naming the
// field), then the handles (TypeError unless live TensorSets), then every set against the
// first one (same device, same sizes: RangeError), then aliasing (params, m, v written:
// none may overlap another operand: RangeError). craftReduce's coefficients, conflicts and
// norm are computed on the host, in double, from the backend's pass-1 sums.
#pragma once
#include <napi.h>

namespace craftgrad {

// Adds craftReduce, adamwFused and adamw to the module's exports.
void registerAdamW(Napi::Env env, Napi::Object exports);

}  // namespace craftgrad
