// AdamW with torch.optim.AdamW's semantics, over GradSets, in two forms: the standalone
// step (a materialised gradient) and the fused step that applies the surgery's pass 2 and
// AdamW in one pass (native/cpu/adamw_cpu.h). Plus the surgery's pass 1 (craftReduce),
// which the trainer runs first so that nothing is written before the step is known to be
// finite and the clipping factor is known.
//
// Every call runs on the GradSets' own backend (native/napi/adamw_call.cc takes it from
// their handles): native/cpu for CPU sets; native/cuda for sets on 'cuda:N' (pass 1 reusing
// the CUDA surgery's chunk table and partial sums with one copy of the statistics to the
// host, and one launch for the fused pass 2 + AdamW), never leaving the device. The
// coefficients, conflicts and norm are computed on the host from the pass-1 sums by the
// same code for every backend.
import * as native from '../native-calls.js';
import { GradSet, gradSetInternals } from '../gradset.js';
import type { RawAdamWOptions, TensorSet } from '../../binding.js';
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import { checkFiniteNumber, checkInteger, checkObject, checkOptions } from '../validate.js';
import { TRAINER_DEFAULTS as D } from './defaults.js';

/** AdamW hyper-parameters (defaults: TRAINER_DEFAULTS, PyTorch's except lr, which is craftgrad's 1e-3). */
export interface AdamWOptions {
  /** Default 1e-3; > 0, as the options table's lr (the schedule's peak; the trainer passes the step's rate to each step). */
  lr?: number | undefined;
  /** Default [0.9, 0.999]. */
  betas?: readonly [number, number] | undefined;
  /** Default 1e-8. */
  eps?: number | undefined;
  /** Decoupled weight decay (p ← p·(1 − lr·wd) before the Adam update). Default 0.01. */
  weightDecay?: number | undefined;
}

/** Per-step arguments of an AdamW step. */
export interface AdamWStepOptions {
  /** This step's learning rate, >= 0 (a cosine schedule may end at 0; default: the optimizer's lr). */
  lr?: number | undefined;
  /** Multiplies the gradient (the clipping factor). Default 1. */
  gradScale?: number | undefined;
}

/** The result of the surgery's pass 1 over two GradSets on one device (nothing is written). */
export interface CraftReduceResult {
  conflicts: Uint8Array;
  dots: Float64Array;
  /** c_i = λ − (conflict ? d_i/(q_i+eps) : 0): out_i = a_i + c_i·r_i. */
  coefficients: Float64Array;
  numConflicts: number;
  numTensors: number;
  conflictRatio: number;
  /**
   * ‖out‖ from d, q, ‖a‖² and c per tensor, without materialising out. Caveat: for a
   * tensor whose a is nearly anti-parallel to r the terms cancel and the tensor's ‖out‖² is
   * accurate only to about 1e-16·‖a‖² absolutely (the standalone surgery sums the written
   * values instead). Used for reporting and clipping only.
   */
  gradNorm: number;
  /** Tensors with any NaN/Inf in act or ret. */
  nonFinite: number;
  /** Per tensor q = <r, r>. */
  retNormsSq: Float64Array;
  /** Per tensor ‖a‖². */
  actNormsSq: Float64Array;
  /** Per tensor: 1 when its act or ret holds a NaN/Inf. */
  nonFiniteFlags: Uint8Array;
}

/** Per-tensor pass-1 sums (as craftReduce reports them), for {@link craftCombine}. */
export interface CraftSums {
  dots: Float64Array;
  retNormsSq: Float64Array;
  actNormsSq: Float64Array;
  nonFiniteFlags: Uint8Array;
}

function handleOf(set: unknown, name: string): TensorSet {
  if (!(set instanceof GradSet)) throw argTypeError(`${name} must be a GradSet, got ${describeValue(set)}`);
  return gradSetInternals(set);
}

function checkLayout(like: GradSet, other: GradSet, name: string, likeName: string): void {
  if (!like.sameLayout(other)) {
    throw argRangeError(`${name} (${other.numTensors} tensors, ${other.numElements} elements) does not have the layout of ${likeName} (${like.numTensors} tensors, ${like.numElements} elements)`);
  }
}

// Same tensor sizes, any device (state is copied across devices).
function checkSizes(like: GradSet, other: GradSet, name: string, likeName: string): void {
  if (!(other instanceof GradSet)) throw argTypeError(`${name} must be a GradSet, got ${describeValue(other)}`);
  if (other.sizes.length !== like.sizes.length || other.sizes.some((n, i) => n !== like.sizes[i])) {
    throw argRangeError(`${name} (${other.numTensors} tensors, ${other.numElements} elements) does not have the sizes of ${likeName} (${like.numTensors} tensors, ${like.numElements} elements)`);
  }
}

/**
 * The surgery's pass 1: per tensor d = <a,r>, q = <r,r>, ‖a‖², conflict flags, coefficients
 * and the global norm of out, reading act and ret once and writing nothing. `ret` may be
 * `act` itself (with lambda 0 and projection off: the norm of act).
 */
export function craftReduce(act: GradSet, ret: GradSet, options: { lambda: number; eps?: number; projection?: boolean }): CraftReduceResult {
  const a = handleOf(act, 'act');
  const r = handleOf(ret, 'ret');
  checkLayout(act, ret, 'ret', 'act');
  const lambda = checkFiniteNumber(options.lambda, 'options.lambda', { min: 0 });
  const eps = checkFiniteNumber(options.eps ?? 1e-8, 'options.eps', { min: 0, exclusive: true });
  const projection = options.projection ?? true;
  return native.craftReduce(a, r, { lambda, eps, projection });
}

/**
 * craftReduce's result from per-tensor sums computed elsewhere (the sharded data-parallel
 * step adds each rank's pieces in rank order): the coefficients, conflict flags and norm
 * come from the same native code as craftReduce's, so equal sums give equal bits.
 */
export function craftCombine(sums: CraftSums, options: { lambda: number; eps?: number; projection?: boolean }): CraftReduceResult {
  checkObject(sums, 'sums');
  const lambda = checkFiniteNumber(options.lambda, 'options.lambda', { min: 0 });
  const eps = checkFiniteNumber(options.eps ?? 1e-8, 'options.eps', { min: 0, exclusive: true });
  const projection = options.projection ?? true;
  return native.craftCombine(sums, { lambda, eps, projection });
}

const OPTION_KEYS = ['lr', 'betas', 'eps', 'weightDecay'] as const;

/** The optimizer's state for checkpoints: step count and the moment estimates. */
export interface AdamWState {
  /** Optimizer steps taken (Adam's t). */
  step: number;
  m: GradSet;
  v: GradSet;
}

/**
 * AdamW over one GradSet of parameters (torch.optim.AdamW, amsgrad off): per element
 * p ← p·(1 − lr·wd); m ← m + (1−β1)(g − m); v ← β2·v + (1−β2)·g²;
 * p ← p − lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps). fp32 state, same bits on every
 * CPU instruction set and thread count.
 */
export class AdamW {
  /** First moments, in the parameters' layout. */
  readonly m: GradSet;
  /** Second moments, in the parameters' layout. */
  readonly v: GradSet;
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Optimizer steps taken so far (Adam's t before the next step). */
  stepCount = 0;
  readonly #params: GradSet;

  constructor(params: GradSet, options: AdamWOptions = {}) {
    handleOf(params, 'params');
    checkOptions(options, OPTION_KEYS);
    this.lr = checkFiniteNumber(options.lr ?? D.lr, 'options.lr', { min: 0, exclusive: true });
    const betas = options.betas ?? D.betas;
    if (!Array.isArray(betas) || betas.length !== 2) throw argTypeError(`options.betas must be [beta1, beta2], got ${describeValue(betas)}`);
    betas.forEach((b, i) => checkFiniteNumber(b, `options.betas[${i}]`, { min: 0, below: 1 }));
    [this.beta1, this.beta2] = betas;
    this.eps = checkFiniteNumber(options.eps ?? D.adamEps, 'options.eps', { min: 0, exclusive: true });
    this.weightDecay = checkFiniteNumber(options.weightDecay ?? D.weightDecay, 'options.weightDecay', { min: 0 });
    this.#params = params;
    this.m = params.zerosLike();
    this.v = params.zerosLike();
  }

  /** The parameters this optimizer updates. */
  get params(): GradSet {
    return this.#params;
  }

  // One object literal of fixed shape (a spread costs microseconds per call on the native side).
  #hyper(o: AdamWStepOptions, coefficients?: Float64Array): RawAdamWOptions & { coefficients?: Float64Array } {
    const lr = checkFiniteNumber(o.lr ?? this.lr, 'options.lr', { min: 0 });
    const gradScale = checkFiniteNumber(o.gradScale ?? 1, 'options.gradScale', { min: 0 });
    return { lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay, step: this.stepCount + 1, gradScale, coefficients };
  }

  /** One AdamW step with a materialised gradient (same layout as the parameters). */
  step(grad: GradSet, options: AdamWStepOptions = {}): void {
    const g = handleOf(grad, 'grad');
    checkLayout(this.#params, grad, 'grad', 'params');
    native.adamw(handleOf(this.#params, 'params'), handleOf(this.m, 'm'), handleOf(this.v, 'v'), g, this.#hyper(options));
    this.stepCount += 1;
  }

  /**
   * One fused step: g_i = (act_i + c_i·ret_i)·gradScale with c from craftReduce, then AdamW,
   * without materialising g. Bit-identical to surgery() into a buffer followed by step().
   * On CUDA GradSets: one launch over the set (a, r, p, m, v read once; p, m, v written once).
   */
  stepFused(act: GradSet, ret: GradSet, coefficients: Float64Array, options: AdamWStepOptions = {}): void {
    const a = handleOf(act, 'act');
    const r = handleOf(ret, 'ret');
    checkLayout(this.#params, act, 'act', 'params');
    checkLayout(this.#params, ret, 'ret', 'params');
    native.adamwFused(handleOf(this.#params, 'params'), handleOf(this.m, 'm'), handleOf(this.v, 'v'), a, r,
      this.#hyper(options, coefficients) as RawAdamWOptions & { coefficients: Float64Array });
    this.stepCount += 1;
  }

  /** The state (copies unless `copy` is false). */
  state(copy = true): AdamWState {
    return { step: this.stepCount, m: copy ? this.m.to('cpu') : this.m, v: copy ? this.v.to('cpu') : this.v };
  }

  /** Restores a state from state() (copied in; layouts must match). */
  loadState(state: AdamWState): void {
    checkInteger(state.step, 'state.step', 0);
    checkSizes(this.#params, state.m, 'state.m', 'params');
    checkSizes(this.#params, state.v, 'state.v', 'params');
    this.m.set(state.m.toFlat());
    this.v.set(state.v.toFlat());
    this.stepCount = state.step;
  }
}
