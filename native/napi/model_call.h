// The built-in model's entry points (binding.d.ts), every length and the config checked,
// errors naming the field, before any kernel runs:
//   modelStep({ config, mode, params, frozen, anchor?, gAct?, gRet?, tokens, actions, batch,
//               accumulate, scale }) -> { actionLoss, retentionLoss }; modelStepAsync the same
//     config: AdapterPolicyConfig's fields (pooling 'mean'|'max', anchorType
//     'concat'|'aq_only'|'raw_only'); mode 'craft'|'baseline'|'eval'|'evalRetention';
//     params, frozen, anchor, gAct, gRet: TensorSets of one device; tokens, actions: host Float32Arrays
//   modelTensors(config) -> { trainable, frozen, anchor }: [{ name, shape }], the tensor
//     layouts of core/model_desc.h (their one definition)
//   copy({ dst, src, dstOffset?, srcOffset?, count }): within one device, no overlap
//   modelGemm({ M, N, K, alpha, a, transA, b, transB, beta, c, device?, variant? }): the
//     model's product on host arrays, computed on `device` (tests, benchmarks)
#pragma once
#include <napi.h>

namespace craftgrad {

void registerModelExports(Napi::Env env, Napi::Object exports);

}  // namespace craftgrad
