// A seeded batch sampler whose position can be saved and restored exactly: the state is
// the epoch, the position inside it and the RNG state at the epoch's start (from which
// the epoch's permutation is rebuilt), all plain JSON.
import { argRangeError, argTypeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import { Rng, type RngState } from './rng.js';

export interface SamplerOptions {
  /** Samples per batch. */
  batchSize: number;
  /** Seed of the shuffles. Default 0. */
  seed?: number;
  /** Reshuffle every epoch (default true); false visits samples in order. */
  shuffle?: boolean;
  /** Drop an epoch's last, smaller batch (default false). */
  dropLast?: boolean;
}

/**
 * Everything needed to continue sampling exactly where a sampler was. JSON-serializable
 * (a type alias, not an interface, so that it is assignable to a JSON value type).
 */
export type SamplerState = {
  version: 1;
  size: number;
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
  epoch: number;
  position: number;
  /** RNG state at the start of the current epoch (before its shuffle). */
  epochRng: RngState;
};

export class Sampler {
  readonly size: number;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  #epoch = 0;
  #position = 0;
  #epochRng: RngState;
  #rng: Rng;
  #order: Int32Array;

  constructor(size: number, options: SamplerOptions) {
    checkInteger(size, 'size', 1);
    checkOptions(options, ['batchSize', 'seed', 'shuffle', 'dropLast']);
    const { batchSize, seed = 0, shuffle = true, dropLast = false } = options;
    checkInteger(batchSize, 'options.batchSize', 1);
    if (dropLast && batchSize > size) throw argRangeError(`options.batchSize (${batchSize}) exceeds the dataset size (${size}) with dropLast`);
    checkInteger(seed, 'options.seed', 0);
    this.size = size;
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.dropLast = dropLast;
    this.#rng = new Rng(seed);
    this.#epochRng = this.#rng.state();
    this.#order = this.#makeOrder();
  }

  /** Completed epochs. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Samples already handed out in the current epoch. */
  get position(): number {
    return this.#position;
  }

  /** The next batch's sample indices. */
  next(): Int32Array {
    const remaining = this.size - this.#position;
    if (remaining === 0 || (this.dropLast && remaining < this.batchSize)) this.#newEpoch();
    const n = Math.min(this.batchSize, this.size - this.#position);
    const out = this.#order.slice(this.#position, this.#position + n);
    this.#position += n;
    return out;
  }

  /** A JSON-serializable snapshot of the position and RNG state. */
  state(): SamplerState {
    return {
      version: 1, size: this.size, batchSize: this.batchSize, shuffle: this.shuffle, dropLast: this.dropLast,
      epoch: this.#epoch, position: this.#position, epochRng: [...this.#epochRng] as RngState,
    };
  }

  /** A sampler that continues exactly from `state` (validated against itself). */
  static fromState(state: SamplerState): Sampler {
    if (state === null || typeof state !== 'object' || state.version !== 1) throw argTypeError('state must be a SamplerState of version 1');
    const s = new Sampler(state.size, { batchSize: state.batchSize, shuffle: state.shuffle, dropLast: state.dropLast });
    checkInteger(state.epoch, 'state.epoch', 0);
    checkInteger(state.position, 'state.position', 0, state.size);
    if (!Array.isArray(state.epochRng)) throw argTypeError('state.epochRng must be an Array of 4 integers');
    s.#epoch = state.epoch;
    s.#position = state.position;
    s.#rng = new Rng(state.epochRng);
    s.#epochRng = s.#rng.state();
    s.#order = s.#makeOrder();
    return s;
  }

  #newEpoch(): void {
    this.#epoch++;
    this.#position = 0;
    this.#epochRng = this.#rng.state();
    this.#order = this.#makeOrder();
  }

  #makeOrder(): Int32Array {
    const order = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) order[i] = i;
    return this.shuffle ? this.#rng.shuffle(order) : order;
  }
}
