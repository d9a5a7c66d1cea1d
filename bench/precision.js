// How the GPU step benchmarks ask a policy for bf16 (issue #29), and what they say about it.
//
// The model classes' `precision` option (Qwen2Policy.fromHfDirectory / VlaPolicy.create
// options, with bf16 frozen weights) is being added on another branch. Until it is in the
// build, the policy refuses the unknown option; then the benchmark makes the policy without
// it and adds `precision: 'bf16'` to every step call's arguments (the native step calls read
// options.precision since #29's 'layers' commit: every product and, once the fused kernels are
// in, the attention in bf16), with the frozen weights still fp32. The record names which way
// was used, so a figure is never credited to the option that was not there.
import { backendInfo } from '../dist/index.js';

/** The device memory in use on `index` now (cudaMemGetInfo: total - free), in bytes. */
export function deviceBytesInUse(bench, index) {
  const m = bench.cudaMemInfo(index);
  return m.totalBytes - m.freeBytes;
}

/** A one-line reason why bf16 cannot be measured here, or null. */
export function bf16Refusal() {
  const c = backendInfo().cublasLt;
  return c?.available ? null : `cuBLASLt is not available (${c?.reason ?? 'this build reports no cuBLASLt'}): no bf16 products`;
}

/**
 * `make(extraOptions)` → a policy (sync or async). For 'fp32': make({}). For 'bf16': make({
 * precision: 'bf16' }), or, when the build's policy refuses that option, make({}) with every
 * step call's arguments given precision 'bf16'. Returns { policy, via } (via: how bf16 was asked for).
 */
export async function policyWithPrecision(make, precision) {
  if (precision === 'fp32') return { policy: await make({}), via: 'fp32 (the default)' };
  try {
    return { policy: await make({ precision }), via: `the policy's option precision: '${precision}' (bf16 frozen weights where the build has them)` };
  } catch (e) {
    if (!/precision/.test(String(e?.message))) throw e;
  }
  const policy = await make({});
  const stepArgs = policy.stepArgs;
  if (typeof stepArgs !== 'function') throw new Error('the policy has no stepArgs to give precision to');
  policy.stepArgs = function (...xs) {
    return { ...stepArgs.apply(this, xs), precision };
  };
  return {
    policy,
    via: `step-call arguments (precision: '${precision}' added to each step call by the benchmark: this build's policy has no precision option yet, #29's other branch; frozen weights fp32)`,
  };
}
