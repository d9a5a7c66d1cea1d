// VLA-Adapter's entry points (binding.d.ts), every length, token id and the config checked,
// errors naming the field, before any kernel runs:
//   vlaStep({ config, mode, params, anchor?, gAct?, gRet?, frozen, pixels, inputIds, proprio?,
//             actions, noise?, batch, accumulate, scale }) -> { actionLoss, retentionLoss };
//   vlaStepAsync the same. config: RawVlaConfig; params, anchor, gAct, gRet: TensorSets of one
//   device; frozen: the groups of core/vla_desc.h (vlaFrozenGroups) as an Array of
//   Float32Array (host backends) or one TensorSet in the backend's memory; the rest host arrays.
//   vlaTensors(config) -> { trainable: [{ name, shape }], anchorTensors, frozen: [{ name, shape }] }:
//   the layouts of core/vla_desc.h (their one definition); the anchor is the first anchorTensors.
#pragma once
#include <napi.h>

namespace craftgrad {

void registerVlaExports(Napi::Env env, Napi::Object exports);

}  // namespace craftgrad
