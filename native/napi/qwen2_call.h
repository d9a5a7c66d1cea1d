// The Qwen2 policy's entry points (binding.d.ts), every length, token id and the config
// checked, errors naming the field, before any kernel runs:
//   qwen2Step({ config, mode, params, anchor?, gAct?, gRet?, frozen: { embedTokens, layers,
//               finalNorm }, prefix?, inputIds?, actions, batch, accumulate, scale })
//     -> { actionLoss, retentionLoss }; qwen2StepAsync the same
//     config: RawQwen2Config; mode 'craft'|'baseline'|'eval'|'evalRetention'; params,
//     anchor, gAct, gRet: TensorSets of one device; the rest host arrays
//   qwen2Tensors(config) -> { trainable: [{ name, shape }], anchorTensors }: the layout of
//     core/qwen2_desc.h (its one definition); the anchor is the first anchorTensors
#pragma once
#include <napi.h>

namespace craftgrad {

void registerQwen2Exports(Napi::Env env, Napi::Object exports);

}  // namespace craftgrad
