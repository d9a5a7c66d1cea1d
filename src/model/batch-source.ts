// What every model's training source shares (the Trainer's GradientSource, ARCHITECTURE.md
// §5): a seeded sampler over the training split, this rank's contiguous share of each drawn
// batch (multi-process training), one model call per micro-batch writing g_act / g_ret into
// the trainer's accumulators, validation over the rank's share of the split, and the
// sampler's state for exact resume. A model's source states its dataset type: how a split is
// checked against the model and how samples are gathered into a batch.
// Declared structurally (no import of src/train) so that the model layer stays below it.
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import type { GradSet } from '../gradset.js';
import { Sampler, type SamplerState } from '../data/sampler.js';
import { checkShard, shareOf, type Shard } from '../data/shard.js';
import type { GradWriteOptions, ModelLosses } from './policy-types.js';

/** The calls of a model the source drives, for batches of type B. */
export interface SteppableModel<B> {
  readonly params: GradSet;
  readonly trainableNames: readonly string[];
  readonly trainableSpecs: readonly { readonly shape: readonly number[] }[];
  craftStep(batch: B, gAct: GradSet, gRet: GradSet, options: GradWriteOptions): ModelLosses;
  baselineStep(batch: B, gAct: GradSet, options: GradWriteOptions): { actionLoss: number };
  evaluate(batch: B, options: { retention: boolean }): ModelLosses;
}

/** A split the source samples from: its size, and how to copy samples into a batch. */
interface BatchSplit<B> {
  readonly size: number;
  gather(indices: ArrayLike<number>, reuse: B | undefined, draw: string): B;
}

/** How a source reads its datasets (of type D, with batches of type B). */
export interface DatasetAccess<D, B> {
  /** Throws what does not fit the model (naming the file and field). */
  fits(ds: D): void;
  /**
   * Copies samples `indices` of `ds` into a batch (`reuse`'s arrays when they fit). `draw`
   * names the draw ("train:<epoch>:<position>" or "val:<first index>"): the same on a resumed
   * run, for what a batch draws at random besides its samples (VLA-Adapter's head noise).
   */
  gather(ds: D, indices: ArrayLike<number>, reuse: B | undefined, draw: string): B;
}

export interface BatchSourceOptions {
  /** Samples per micro-batch. */
  batchSize: number;
  /** Sampler seed. Default 0. */
  seed?: number;
  /** Samples per validation batch. Default batchSize. */
  valBatchSize?: number;
  /**
   * Multi-process training: this rank's place. Every rank draws the same global batch of
   * `batchSize` and computes only its contiguous share, weighted by share/batchSize so that
   * the ranks' gradients sum to the batch mean; validation covers the rank's share of the
   * split. Default: one rank.
   */
  shard?: Shard;
}

/** What saveState() returns: plain JSON. */
export type BatchSourceState = {
  sampler: SamplerState;
  /** Ranks of the run that saved it, when more than one (absent: one). */
  ranks?: number;
};

const OPTION_KEYS = ['batchSize', 'seed', 'val', 'valBatchSize', 'shard'];

export class BatchSource<B, D extends { readonly size: number } = { readonly size: number }, M extends SteppableModel<B> = SteppableModel<B>> {
  /** First micro-batch of a step may overwrite the accumulators (no zeroing pass). */
  readonly supportsOverwrite = true;
  readonly shard: Shard;
  /** The model whose steps the source runs. */
  readonly model: M;
  /** The training split. */
  readonly train: D;
  /** The validation split (for validate()), when one was given. */
  readonly val: D | undefined;
  readonly #trainSplit: BatchSplit<B>;
  readonly #valSplit: BatchSplit<B> | undefined;
  #sampler: Sampler;
  #batch: B | undefined;
  #valBatch: B | undefined;
  readonly #valBatchSize: number;

  /** Checks the options and that both splits fit the model, before anything else. */
  protected constructor(model: M, train: D, options: BatchSourceOptions & { val?: D | undefined }, access: DatasetAccess<D, B>) {
    checkOptions(options, OPTION_KEYS);
    access.fits(train);
    if (options.val !== undefined) access.fits(options.val);
    this.model = model;
    this.train = train;
    this.val = options.val;
    const split = (ds: D): BatchSplit<B> => ({ size: ds.size, gather: (idx, reuse, draw) => access.gather(ds, idx, reuse, draw) });
    this.shard = options.shard === undefined ? { rank: 0, ranks: 1 } : checkShard(options.shard, 'options.shard');
    if (this.shard.ranks > 1 && !(options.batchSize >= this.shard.ranks)) {
      throw argRangeError(`options.batchSize ${describeValue(options.batchSize)} must be at least the number of ranks (${this.shard.ranks}): every rank computes a share of each batch`);
    }
    this.#trainSplit = split(train);
    this.#valSplit = options.val === undefined ? undefined : split(options.val);
    // Equal-size micro-batches: the trainer's mean over micro-batches is then the mean over samples.
    this.#sampler = new Sampler(train.size, { batchSize: options.batchSize, seed: options.seed ?? 0, dropLast: options.batchSize <= train.size });
    this.#valBatchSize = checkInteger(options.valBatchSize ?? options.batchSize, 'options.valBatchSize', 1);
  }

  /** The trainable parameters (updated in place by the trainer). */
  get params(): GradSet {
    return this.model.params;
  }

  /** Checkpoint names of the trainable tensors, in GradSet order. */
  get paramNames(): readonly string[] {
    return this.model.trainableNames;
  }

  /** Real shapes of the trainable tensors, so checkpoints store them shaped. */
  get paramShapes(): readonly (readonly number[])[] {
    return this.model.trainableSpecs.map((t) => t.shape);
  }

  /**
   * Draws the next micro-batch and adds scale·g_act into gAct and, when gRet is given
   * (CRaFT), scale·g_ret into gRet; `overwrite` writes instead of adding.
   */
  accumulate(gAct: GradSet, gRet: GradSet | undefined, scale: number, overwrite = false): { actionLoss: number; retentionLoss?: number; samples: number; epoch: number } {
    const draw = `train:${this.#sampler.epoch}:${this.#sampler.position}`;
    const drawn = this.#sampler.next();
    const epoch = this.#sampler.epoch;
    const { start, end } = shareOf(drawn.length, this.shard);
    const indices = this.shard.ranks > 1 ? drawn.slice(start, end) : drawn;
    this.#batch = this.#trainSplit.gather(indices, this.#batch, draw);
    // Weighted by the share of the batch: the ranks' gradients then sum to the batch mean.
    const opts = { accumulate: !overwrite, scale: this.shard.ranks > 1 ? scale * (indices.length / drawn.length) : scale };
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
    if (!this.#valSplit) throw new Error(`${this.constructor.name}.validate: no validation split was given (options.val)`);
    const start = performance.now();
    let act = 0, ret = 0, samples = 0;
    const mean = (sum: number) => (samples ? sum / samples : Number.NaN);
    const share = shareOf(this.#valSplit.size, this.shard);
    for (let i = share.start; i < share.end; i += this.#valBatchSize) {
      if (samples > 0 && performance.now() - start > options.timeLimitMs) {
        return { actionLoss: mean(act), retentionLoss: mean(ret), samples, truncated: true };
      }
      const idx = Array.from({ length: Math.min(this.#valBatchSize, share.end - i) }, (_, k) => i + k);
      this.#valBatch = this.#valSplit.gather(idx, this.#valBatch, `val:${i}`);
      const r = this.model.evaluate(this.#valBatch, { retention: true });
      act += r.actionLoss * idx.length;
      ret += r.retentionLoss * idx.length;
      samples += idx.length;
    }
    return { actionLoss: mean(act), retentionLoss: mean(ret), samples };
  }

  /** The sampler's position and RNG state (JSON). */
  saveState(): BatchSourceState {
    return { sampler: this.#sampler.state(), ...(this.shard.ranks > 1 ? { ranks: this.shard.ranks } : {}) };
  }

  /** Continues exactly from saveState()'s value. */
  restoreState(state: unknown): void {
    const s = state as BatchSourceState | null;
    if (s === null || typeof s !== 'object' || typeof s.sampler !== 'object') throw argTypeError('state must be what saveState() returned');
    // Another number of ranks sums each gradient in another order: the run would not continue exactly.
    const ranks = s.ranks ?? 1;
    if (ranks !== this.shard.ranks) {
      throw argRangeError(`state was saved by a run of ${ranks} process${ranks === 1 ? '' : 'es'} (ranks), this one has ${this.shard.ranks}: ` +
        `resume it with ${ranks === 1 ? 'no launcher (or mpirun -np 1)' : `mpirun -np ${ranks}`}, since another number of ranks would not continue it exactly`);
    }
    if (s.sampler.size !== this.#trainSplit.size) throw argRangeError(`state is for a training split of ${s.sampler.size} samples, this one has ${this.#trainSplit.size}`);
    this.#sampler = Sampler.fromState(s.sampler);
  }
}
