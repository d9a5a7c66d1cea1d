// A GradientSource for any Node code that can compute gradients itself and hand them in
// as Float32Arrays: the callback gets live views of the parameters and returns losses and
// gradients; this class folds them into the trainer's accumulators.
import { GradSet } from '../gradset.js';
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import { checkObject } from '../validate.js';
import type { GradientSource, JsonValue, MicroBatchResult, ValidationResult } from './source.js';

/** What the host callback returns for one micro-batch. */
export interface HostBatch {
  /** Mean action loss over the micro-batch. */
  actionLoss: number;
  /** Mean retention loss (required when `wantRetention`). */
  retentionLoss?: number | undefined;
  /** ∂L_act/∂θ, one array per parameter tensor (or one flat array in the parameters' layout). */
  gAct: readonly Float32Array[] | Float32Array;
  /** ∂L_ret/∂θ (required when `wantRetention`). */
  gRet?: readonly Float32Array[] | Float32Array | undefined;
  /** Samples in the micro-batch (default 1). */
  samples?: number | undefined;
  /** The epoch the samples came from. */
  epoch?: number | undefined;
}

/** Options of HostGradientSource. */
export interface HostGradientSourceOptions {
  /** The trainable parameters: a CPU GradSet (used as is) or arrays (copied into one). */
  params: GradSet | readonly Float32Array[];
  /** One name per tensor (default 'param.0', 'param.1', ...). */
  names?: readonly string[] | undefined;
  /**
   * Computes one micro-batch: `params` are live views of the current parameters (do not
   * modify them); `wantRetention` is false in baseline mode (skip the anchor forward).
   */
  compute(params: readonly Float32Array[], wantRetention: boolean): HostBatch | Promise<HostBatch>;
  /** Optional validation (action loss on held-out data, and optionally its retention loss, within `timeLimitMs`). */
  validate?: ((params: readonly Float32Array[], options: { timeLimitMs: number }) => ValidationResult | Promise<ValidationResult>) | undefined;
  /** The host's own resumable state (sampler position, RNG). Default: null. */
  saveState?: (() => JsonValue) | undefined;
  /** Restores what saveState returned. */
  restoreState?: ((state: JsonValue) => void) | undefined;
}

/** Trains host-computed gradients with CRaFT: see HostGradientSourceOptions. */
export class HostGradientSource implements GradientSource {
  readonly params: GradSet;
  readonly paramNames: readonly string[];
  /** Honours `overwrite` (see GradientSource). */
  readonly supportsOverwrite = true;
  readonly #options: HostGradientSourceOptions;
  readonly #views: Float32Array[];

  constructor(options: HostGradientSourceOptions) {
    checkObject(options, 'options');
    if (typeof options.compute !== 'function') throw argTypeError(`options.compute must be a function, got ${describeValue(options.compute)}`);
    this.params = options.params instanceof GradSet ? options.params : GradSet.fromArrays(options.params as Float32Array[]);
    if (this.params.device !== 'cpu') throw argRangeError('HostGradientSource needs CPU parameters');
    const names = options.names ?? this.params.sizes.map((_, i) => `param.${i}`);
    if (names.length !== this.params.numTensors) {
      throw argRangeError(`options.names has ${names.length} entries but there are ${this.params.numTensors} tensors`);
    }
    this.paramNames = Object.freeze([...names]);
    this.#options = options;
    this.#views = this.params.sizes.map((_, i) => this.params.view(i));
  }

  /** Calls `compute` and folds its gradients in: acc += scale·g (acc = scale·g when `overwrite`). */
  async accumulate(gAct: GradSet, gRet: GradSet | undefined, scale: number, overwrite = false): Promise<MicroBatchResult> {
    const batch = await this.#options.compute(this.#views, gRet !== undefined);
    if (batch === null || typeof batch !== 'object') throw argTypeError(`compute() must return an object, got ${describeValue(batch)}`);
    addScaled(gAct, batch.gAct, scale, overwrite, 'gAct');
    if (gRet !== undefined) {
      if (batch.gRet === undefined) throw argTypeError('compute() returned no gRet in CRaFT mode (wantRetention was true)');
      if (typeof batch.retentionLoss !== 'number') throw argTypeError('compute() returned no retentionLoss in CRaFT mode');
      addScaled(gRet, batch.gRet, scale, overwrite, 'gRet');
    }
    const result: MicroBatchResult = { actionLoss: batch.actionLoss, samples: batch.samples ?? 1 };
    if (gRet !== undefined) result.retentionLoss = batch.retentionLoss;
    if (batch.epoch !== undefined) result.epoch = batch.epoch;
    return result;
  }

  get validate(): GradientSource['validate'] {
    const v = this.#options.validate;
    return v ? (o) => v(this.#views, o) : undefined;
  }

  saveState(): JsonValue {
    return this.#options.saveState ? this.#options.saveState() : null;
  }

  restoreState(state: JsonValue): void {
    this.#options.restoreState?.(state);
  }
}

// acc += scale·g, each element rounded to fp32 once (the double sum acc + scale·g), or
// acc = scale·g when overwriting (the same bits as adding into zeros).
function addScaled(acc: GradSet, g: readonly Float32Array[] | Float32Array, scale: number, overwrite: boolean, name: string): void {
  const data = acc.data;
  if (g instanceof Float32Array) {
    if (g.length !== data.length) throw argRangeError(`${name} has ${g.length} elements but the parameters have ${data.length}`);
    if (overwrite) for (let j = 0; j < g.length; j++) data[j] = scale * g[j]!;
    else for (let j = 0; j < g.length; j++) data[j] += scale * g[j]!;
    return;
  }
  if (!Array.isArray(g) || g.length !== acc.numTensors) {
    throw argRangeError(`${name} must be a Float32Array or ${acc.numTensors} Float32Arrays, got ${describeValue(g)}`);
  }
  g.forEach((t, i) => {
    if (!(t instanceof Float32Array) || t.length !== acc.sizes[i]) {
      throw argRangeError(`${name}[${i}] must be a Float32Array of ${acc.sizes[i]} elements, got ${describeValue(t)}`);
    }
    const o = acc.offsets[i]!;
    if (overwrite) for (let j = 0; j < t.length; j++) data[o + j] = scale * t[j]!;
    else for (let j = 0; j < t.length; j++) data[o + j] += scale * t[j]!;
  });
}
