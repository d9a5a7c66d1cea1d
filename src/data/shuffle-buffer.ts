// A seeded, resumable shuffle buffer with tf.data's semantics (`Dataset.shuffle(N)` over a
// `.repeat()`ed stream, as OpenVLA-OFT / VLA-Adapter train: prismatic/vla/datasets/rlds/
// dataset.py:552-556 repeats then flattens trajectories to frames, :569 shuffles them), drawn
// as batches like Sampler so a source can use either.
//
// The stream is the training samples 0..size-1 in the dataset's order, repeated without end:
// element p is sample p mod size. The buffer holds N sample indices (4 bytes each: memory is
// bounded by N, whatever the images weigh) and crosses epoch boundaries as tf.data's does.
// Slot order as tensorflow/core/kernels/data/shuffle_dataset_op.cc
// (ShuffleDatasetBase::Iterator: GetNextInternal, FillBuffer, AddToShuffleBuffer) runs it on
// an endless input (one slice, never cleared): the buffer is a ring of N slots whose oldest
// element sits at `start % N`; filling writes the next stream element at `end % N`; an output
// takes `offset = Random() % (end - start)`, emits slot `(start + offset) % N`, moves the
// oldest element into that slot and advances `start`, and the freed slot is where the next
// stream element goes. Here the buffer is filled at construction (TF fills on the first
// GetNext; filling draws no random number, so the outputs are the same) and the refill follows
// each output at once, so between draws the ring is always full and start = stream − N.
//
// What is not TF's: the random numbers. TF draws from Philox (seeded by the op's seed pair, or
// at random: upstream passes none) and reduces a uint32 modulo the count; its stream cannot be
// reproduced here, so the draws are Rng's (xoshiro128**, src/data/rng.ts) and `Rng.int(N)`,
// which is uniform without the modulo's bias. The same seed gives the same order.
//
// State: the stream position, the ring's N slots and the RNG state, plain JSON, so a resumed
// run continues with the identical order (upstream's N = 100000 is about 0.6 MB of state.json
// per checkpoint; TF's iterator checkpoint likewise saves the buffer).
import { argRangeError, argTypeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import { Rng, type RngState } from './rng.js';

export interface ShuffleBufferOptions {
  /** Samples per batch (each batch takes this many outputs of the buffer). */
  batchSize: number;
  /** Slots of the buffer N (upstream's shuffle_buffer_size). */
  bufferSize: number;
  /** Seed of the draws. Default 0. */
  seed?: number;
}

/** The largest buffer (2^31 − 1 slots, 8 GiB of indices): a bound on a typo, not on use. */
export const MAX_SHUFFLE_BUFFER = 2 ** 31 - 1;

/**
 * Everything needed to continue exactly where a buffer was. JSON-serializable. `kind` tells
 * it from a SamplerState (which has none).
 */
export type ShuffleBufferState = {
  kind: 'shuffle-buffer';
  version: 1;
  size: number;
  batchSize: number;
  bufferSize: number;
  /** Stream elements read so far (the next one is sample `stream % size`). */
  stream: number;
  /** The ring's slots, by slot (the oldest element at `(stream − bufferSize) % bufferSize`). */
  buffer: number[];
  rng: RngState;
};

export class ShuffleBuffer {
  readonly size: number;
  readonly batchSize: number;
  readonly bufferSize: number;
  #stream = 0;
  #slots: Int32Array;
  #rng: Rng;

  constructor(size: number, options: ShuffleBufferOptions) {
    checkInteger(size, 'size', 1);
    checkOptions(options, ['batchSize', 'bufferSize', 'seed']);
    const { batchSize, bufferSize, seed = 0 } = options;
    checkInteger(batchSize, 'options.batchSize', 1);
    checkInteger(bufferSize, 'options.bufferSize', 1, MAX_SHUFFLE_BUFFER);
    checkInteger(seed, 'options.seed', 0);
    this.size = size;
    this.batchSize = batchSize;
    this.bufferSize = bufferSize;
    this.#rng = new Rng(seed);
    // FillBuffer: the first N stream elements, slot i holding element i.
    this.#slots = new Int32Array(bufferSize);
    for (let i = 0; i < bufferSize; i++) this.#slots[i] = i % size;
    this.#stream = bufferSize;
  }

  /** Samples handed out so far. */
  get drawn(): number {
    return this.#stream - this.bufferSize;
  }

  /** Samples handed out, in whole training sets (a Sampler's epoch, by count). */
  get epoch(): number {
    return Math.floor(this.drawn / this.size);
  }

  /** Samples handed out beyond the whole training sets (epoch · size + position = drawn). */
  get position(): number {
    return this.drawn % this.size;
  }

  /** One output: a uniformly random slot, replaced by the oldest, whose slot takes the next stream element. */
  nextSample(): number {
    const n = this.bufferSize, start = this.#stream - n;
    const head = start % n;
    const index = (start + this.#rng.int(n)) % n;
    const out = this.#slots[index]!;
    this.#slots[index] = this.#slots[head]!;
    this.#slots[head] = this.#stream % this.size;
    this.#stream++;
    return out;
  }

  /** The next batch's sample indices (batchSize outputs, in output order). */
  next(): Int32Array {
    const out = new Int32Array(this.batchSize);
    for (let i = 0; i < out.length; i++) out[i] = this.nextSample();
    return out;
  }

  /** An independent copy at the same place (cheaper than going through state()). */
  clone(): ShuffleBuffer {
    const b = new ShuffleBuffer(this.size, { batchSize: this.batchSize, bufferSize: this.bufferSize });
    b.#slots.set(this.#slots);
    b.#stream = this.#stream;
    b.#rng = new Rng(this.#rng.state());
    return b;
  }

  /** A JSON-serializable snapshot of the stream position, the buffer and the RNG state. */
  state(): ShuffleBufferState {
    return {
      kind: 'shuffle-buffer', version: 1, size: this.size, batchSize: this.batchSize, bufferSize: this.bufferSize,
      stream: this.#stream, buffer: Array.from(this.#slots), rng: this.#rng.state(),
    };
  }

  /** A buffer that continues exactly from `state` (validated against itself). */
  static fromState(state: ShuffleBufferState): ShuffleBuffer {
    if (state === null || typeof state !== 'object' || state.kind !== 'shuffle-buffer' || state.version !== 1) {
      throw argTypeError('state must be a ShuffleBufferState of version 1');
    }
    checkInteger(state.size, 'state.size', 1);
    checkInteger(state.bufferSize, 'state.bufferSize', 1, MAX_SHUFFLE_BUFFER);
    checkInteger(state.stream, 'state.stream', state.bufferSize);
    if (!Array.isArray(state.buffer) || state.buffer.length !== state.bufferSize) {
      throw argRangeError(`state.buffer must be an Array of ${state.bufferSize} sample indices`);
    }
    if (!Array.isArray(state.rng)) throw argTypeError('state.rng must be an Array of 4 integers');
    const b = new ShuffleBuffer(state.size, { batchSize: state.batchSize, bufferSize: state.bufferSize });
    state.buffer.forEach((v, i) => { b.#slots[i] = checkInteger(v, `state.buffer[${i}]`, 0, state.size - 1); });
    b.#stream = state.stream;
    b.#rng = new Rng(state.rng);
    return b;
  }
}
