// surgery(act, ret, options) and surgeryAsync: the CRaFT surgery (numerics.h) on
//   TensorSets: act, ret (and options.out) on one device with the same sizes; computed by
//     their backend; a new set (sharing act's layout) when there is no out;
//   host lists: act, ret Arrays of Float32Array (options.out an Array too);
//   host flat arrays: act, ret Float32Arrays split by options.sizes (options.out a Float32Array);
//     host operands are computed on options.device ('cpu' by default, or 'cuda:N': staged).
// options: { lambda, eps, projection, cosines, out?, sizes?, device? }.
// Result: { out, conflicts, dots, cosines?, numConflicts, numTensors, conflictRatio, gradNorm, nonFinite }.
#pragma once
#include <napi.h>

#include <memory>

#include "../core/backend.h"
#include "inline_vector.h"
#include "op_call.h"

namespace craftgrad {

struct SurgeryOp {
  static constexpr const char* kName = "craftgrad.surgery";
  Backend* backend = nullptr;
  SurgeryParams params;
  bool cosines = false;
  std::shared_ptr<Layout> layout;                    // TensorSets
  float *a = nullptr, *r = nullptr, *out = nullptr;  // TensorSets (their memory in hold)
  InlineVector<HostTensor, 2> tensors;               // host operands
  InlineVector<TensorStats, 2> stats;
  JsHold hold;
  size_t outIndex = 0;

  static SurgeryOp parse(const Napi::CallbackInfo& info);
  void compute();
  Napi::Value result(Napi::Env env);
};

// lambda (finite >= 0), eps (finite > 0), projection (boolean) of an options object.
class Options;
SurgeryParams readSurgeryParams(const Options& o);

// The totals every surgery-shaped result carries (craftReduce, craftCombine; surgery's own
// result, built in JavaScript by env_data.cc, has the same): numConflicts, numTensors,
// conflictRatio, gradNorm (sqrt of normSq) and nonFinite.
void setSurgeryTotals(Napi::Env env, Napi::Object& res, size_t numTensors, uint32_t numConflicts, double normSq,
                      uint32_t nonFinite);

}  // namespace craftgrad
