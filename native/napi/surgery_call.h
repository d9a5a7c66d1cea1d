// One parsed, validated surgery call: the tensors as raw spans, the parameters, and the
// JS values the result refers to. Parsing does every check before any kernel runs.
#pragma once
#include <napi.h>

#include <vector>

#include "../core/numerics.h"
#include "../core/tensor_span.h"

namespace craftgrad {

struct SurgeryCall {
  bool flat = false;
  bool cosines = false;
  SurgeryParams params;
  int cudaDevice = -1;                      // >= 0: compute() stages through this GPU (cuda_calls.cc)
  std::vector<HostTensor> tensors;
  std::vector<TensorStats> stats;
  napi_value out = nullptr;                 // out list / flat array, given or allocated
  std::vector<napi_value> keepAlive;        // backing buffers an async call must hold

  // surgery(act, ret, out?, lambda, eps, projection, cosines)
  static SurgeryCall parseList(const Napi::CallbackInfo& info);
  // surgeryFlat(actFlat, retFlat, sizes, out?, lambda, eps, projection, cosines)
  static SurgeryCall parseFlat(const Napi::CallbackInfo& info);

  void compute();                             // any thread (CPU, or CUDA when cudaDevice >= 0)
  Napi::Object result(Napi::Env env) const;   // main thread
};

// lambda, eps, projection, cosines at info[first..first+3], checked as every surgery call does.
SurgeryParams readSurgeryParams(const Napi::CallbackInfo& info, size_t first, bool* cosines);

}  // namespace craftgrad
