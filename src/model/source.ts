// AdapterPolicySource: the built-in model plus its training data, in the shape of the
// Trainer's GradientSource (src/train; ARCHITECTURE.md §5): it owns its sampler, draws micro-batches,
// writes g_act / g_ret into the trainer's accumulators and reports validation loss.
// Declared structurally (no import of src/train) so that the model layer stays below it.
import { argRangeError, argTypeError, checkKnownKeys, describeValue } from '../errors.js';
import type { GradSet } from '../gradset.js';
import { checkDatasetFits, gatherBatch, type Dataset, type DatasetBatch } from '../data/dataset.js';
import { Sampler, type SamplerState } from '../data/sampler.js';
import type { AdapterPolicy } from './adapter-policy.js';

export interface AdapterPolicySourceOptions {
  /** Samples per micro-batch. */
  batchSize: number;
  /** Sampler seed. Default 0. */
  seed?: number;
  /** Validation split (for validate()). */
  val?: Dataset;
  /** Samples per validation batch. Default batchSize. */
  valBatchSize?: number;
}

/** What saveState() returns: plain JSON. */
export type AdapterPolicySourceState = {
  sampler: SamplerState;
};

export class AdapterPolicySource {
  readonly model: AdapterPolicy;
  readonly train: Dataset;
  readonly val: Dataset | undefined;
  /** First micro-batch of a step may overwrite the accumulators (no zeroing pass). */
  readonly supportsOverwrite = true;
  #sampler: Sampler;
  #batch: DatasetBatch | undefined;
  readonly #valBatchSize: number;

  constructor(model: AdapterPolicy, train: Dataset, options: AdapterPolicySourceOptions) {
    if (options === null || typeof options !== 'object') throw argTypeError(`options must be an object, got ${describeValue(options)}`);
    checkKnownKeys(options, ['batchSize', 'seed', 'val', 'valBatchSize'], 'options');
    checkDatasetFits(train, model.config);
    if (options.val !== undefined) checkDatasetFits(options.val, model.config);
    this.model = model;
    this.train = train;
    this.val = options.val;
    // Equal-size micro-batches: the trainer's mean over micro-batches is then the mean over samples.
    this.#sampler = new Sampler(train.size, { batchSize: options.batchSize, seed: options.seed ?? 0, dropLast: options.batchSize <= train.size });
    const vb = options.valBatchSize ?? options.batchSize;
    if (!Number.isSafeInteger(vb) || vb < 1) throw argRangeError(`options.valBatchSize must be a positive integer, got ${describeValue(vb)}`);
    this.#valBatchSize = vb;
  }

  /** The trainable parameters (updated in place by the trainer). */
  get params(): GradSet {
    return this.model.params;
  }

  /** Checkpoint names of the trainable tensors, in GradSet order. */
  get paramNames(): readonly string[] {
    return this.model.trainableNames;
  }

  /** Real shapes of the trainable tensors (layout.ts), so checkpoints store them shaped. */
  get paramShapes(): readonly (readonly number[])[] {
    return this.model.trainableSpecs.map((t) => t.shape);
  }

  /**
   * Draws the next micro-batch and adds scale·g_act into gAct and, when gRet is given
   * (CRaFT), scale·g_ret into gRet; `overwrite` writes instead of adding.
   */
  accumulate(gAct: GradSet, gRet: GradSet | undefined, scale: number, overwrite = false): { actionLoss: number; retentionLoss?: number; samples: number; epoch: number } {
    const indices = this.#sampler.next();
    const epoch = this.#sampler.epoch;
    this.#batch = gatherBatch(this.train, indices, this.#batch);
    const opts = { accumulate: !overwrite, scale };
    if (gRet === undefined) {
      const { actionLoss } = this.model.baselineStep(this.#batch, gAct, opts);
      return { actionLoss, samples: indices.length, epoch };
    }
    const r = this.model.craftStep(this.#batch, gAct, gRet, opts);
    return { actionLoss: r.actionLoss, retentionLoss: r.retentionLoss, samples: indices.length, epoch };
  }

  /**
   * Mean action and retention loss over the validation split, stopping after `timeLimitMs`.
   * The retention loss comes from a no-gradient anchor forward, in baseline runs too: it
   * is how far the features drifted, whether or not training held them.
   */
  validate(options: { timeLimitMs: number }): { actionLoss: number; retentionLoss: number; samples: number; truncated?: boolean } {
    if (!this.val) throw new Error('AdapterPolicySource.validate: no validation split was given (options.val)');
    const start = performance.now();
    let act = 0, ret = 0, samples = 0, batch: DatasetBatch | undefined;
    const mean = (sum: number) => (samples ? sum / samples : Number.NaN);
    for (let i = 0; i < this.val.size; i += this.#valBatchSize) {
      if (samples > 0 && performance.now() - start > options.timeLimitMs) {
        return { actionLoss: mean(act), retentionLoss: mean(ret), samples, truncated: true };
      }
      const idx = Array.from({ length: Math.min(this.#valBatchSize, this.val.size - i) }, (_, k) => i + k);
      batch = gatherBatch(this.val, idx, batch);
      const r = this.model.evaluate(batch, { retention: true });
      act += r.actionLoss * idx.length;
      ret += r.retentionLoss * idx.length;
      samples += idx.length;
    }
    return { actionLoss: mean(act), retentionLoss: mean(ret), samples };
  }

  /** The sampler's position and RNG state (JSON). */
  saveState(): AdapterPolicySourceState {
    return { sampler: this.#sampler.state() };
  }

  /** Continues exactly from saveState()'s value. */
  restoreState(state: unknown): void {
    const s = state as AdapterPolicySourceState | null;
    if (s === null || typeof s !== 'object' || typeof s.sampler !== 'object') throw argTypeError('state must be what saveState() returned');
    if (s.sampler.size !== this.train.size) throw argRangeError(`state is for a training split of ${s.sampler.size} samples, this one has ${this.train.size}`);
    this.#sampler = Sampler.fromState(s.sampler);
  }
}
