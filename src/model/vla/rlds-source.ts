// VLA-Adapter trained straight from an RLDS/TFDS directory (issue #28; README "Fine-tuning
// VLA-Adapter"): one pass over the episodes keeps their numbers (state, action, instruction)
// and each record's place (src/data/rlds), the samples are formed as OpenVLA-OFT forms them
// (chunks, BOUNDS_Q99 with the given or computed statistics), and each drawn batch reads its
// episodes' images back by record offset, decodes, resizes and augments them
// (src/data/images) while the previous batch's step runs (the native step runs on the worker
// pool). The per-frame work runs on worker threads
// (FramePool; `frameThreads: 0` keeps it on the main thread, the same bits) and the next
// `prefetch` draws are prepared ahead, so a step waits on data only when the pipeline is slower
// than the step.
//
// The order of the samples: by default the tensor datasets' Sampler, a seeded uniform
// permutation of the training samples per epoch. Upstream draws otherwise: it repeats the
// dataset, flattens trajectories to frames in stream order and shuffles them with
// `tf.data.Dataset.shuffle(shuffle_buffer_size)` (VLA-Adapter 838a36d
// prismatic/vla/datasets/rlds/dataset.py:552-569; its vla-scripts/finetune.py:78 sets 100_000
// frames), a buffer of N frames from which each output is a uniform pick. That is not a
// uniform permutation: the k-th output is one of the first N + k − 1 frames of the stream and a
// frame stays in the buffer for N outputs on average, so while N is below the training set
// the outputs drift through the stream in its order (episodes in record order) with a spread
// of about N, and consecutive epochs overlap at their seam.
// `shuffleBuffer: N` (--shuffle-buffer) draws so: ShuffleBuffer (src/data/shuffle-buffer.ts),
// tf.data's slot order over the training samples in record order, steps ascending, repeated.
// Two differences from upstream remain: upstream reads shards in a shuffled file order,
// interleaved (dataset.py:236, `shuffle=True`, num_parallel_reads), where the stream here is
// record order; and TF's Philox draws cannot be reproduced (ShuffleBuffer uses the run's Rng).
// Either order is seeded and in the checkpoint: a resumed run draws the same samples and
// the same augmentation, which is a function of (seed, draw, sample) alone. With several
// ranks every rank runs the same sampler or buffer and takes its share of each draw (shareOf).
//
// Prompts differ in length and the model takes one length per call: a batch is computed as
// sub-batches of equal prompt length, each weighted by its share (upstream right-pads, and a
// causal model's outputs before the padding do not depend on it: the same losses and
// gradients up to the order of the sums).
import { argRangeError, argTypeError } from '../../errors.js';
import type { GradSet } from '../../gradset.js';
import { Sampler, type SamplerState } from '../../data/sampler.js';
import { MAX_SHUFFLE_BUFFER, ShuffleBuffer, type ShuffleBufferState } from '../../data/shuffle-buffer.js';
import { shareOf, type Shard } from '../../data/shard.js';
import type { PixelNormalization, VlaBatch } from '../../data/vla-dataset.js';
import type { FrameAugment } from '../../data/images/index.js';
import { FramePool, defaultFrameThreads, prepareNormalizedFrame, type FrameJob } from '../../data/images/frame-pool.js';
import {
  type RldsEpisodeArrays, type RldsSamples, type TfdsDataset, type DatasetStatistics, buildRldsSamples, openTfdsDataset,
  promptInputIds, type PromptTokenizer,
} from '../../data/rlds/index.js';
import type { VlaPolicy } from './vla-policy.js';

/** Where an episode's record is, to read its images back. */
export interface EpisodePlace {
  split: string;
  shard: string;
  shardIndex: number;
  record: number;
  offset: number;
  episode: number;
  /** Steps of the episode. */
  steps: number;
}

export interface RldsVlaData {
  dataset: TfdsDataset;
  /** Every sample of the split, before the validation split. */
  samples: RldsSamples;
  /** By episode index (record order over the split). */
  places: EpisodePlace[];
  /** The image features: [primary, wrist]. */
  imageKeys: readonly string[];
  source: string;
}

const STATE_KEY = 'steps/observation/state', ACTION_KEY = 'steps/action', LANGUAGE_KEY = 'steps/language_instruction';
const IMAGE_KEYS = ['steps/observation/image', 'steps/observation/wrist_image'];

/** Reads `dir`'s split once, keeping the numbers; the samples as upstream forms them. */
export async function loadRldsForVla(dir: string, options: { split?: string; statistics?: DatasetStatistics; statisticsFile?: string } = {}): Promise<RldsVlaData> {
  const dataset = await openTfdsDataset(dir);
  const split = options.split ?? 'train';
  const keys = new Set(dataset.features.map((f) => f.key));
  for (const k of [STATE_KEY, ACTION_KEY, LANGUAGE_KEY, IMAGE_KEYS[0]!]) {
    if (!keys.has(k)) throw argRangeError(`${dataset.dir}/features.json: feature '${k}' missing (a LIBERO-format RLDS dataset has ${[STATE_KEY, ACTION_KEY, LANGUAGE_KEY, ...IMAGE_KEYS].join(', ')})`);
  }
  const places: EpisodePlace[] = [], episodes: RldsEpisodeArrays[] = [];
  for await (const ep of dataset.readEpisodes(split)) {
    places.push({ split: ep.split, shard: ep.shard, shardIndex: ep.shardIndex, record: ep.record, offset: ep.offset, episode: ep.episode, steps: ep.steps });
    const state = ep.features.get(STATE_KEY) as Float32Array, action = ep.features.get(ACTION_KEY) as Float32Array;
    episodes.push({
      steps: ep.steps, state, stateDim: state.length / ep.steps, action, actionDim: action.length / ep.steps,
      language: ep.features.get(LANGUAGE_KEY) as string[], where: `shard ${ep.shard}, record ${ep.record}`,
    });
  }
  const samples = buildRldsSamples(episodes, {
    ...(options.statistics ? { statistics: options.statistics } : {}), ...(options.statisticsFile ? { statisticsFile: options.statisticsFile } : {}),
  });
  if (samples.size === 0) throw argRangeError(`${dataset.dir}: split '${split}' gives no training sample (${samples.episodes} episodes, ${samples.skippedShort} too short for a chunk of ${samples.chunk})`);
  return { dataset, samples, places, imageKeys: IMAGE_KEYS.filter((k) => keys.has(k)), source: dataset.dir };
}

export interface RldsVlaSourceOptions {
  batchSize: number;
  seed?: number;
  /** The training samples (indices into data.samples), and the validation ones. */
  train: readonly number[];
  val?: readonly number[];
  valBatchSize?: number;
  normalization: readonly [PixelNormalization, PixelNormalization];
  tokenizer: PromptTokenizer;
  /** Augment training frames as upstream (default true); validation takes the center crop. */
  augment?: boolean;
  shard?: Shard;
  /** Decoded episodes kept for the next draws (default 16). */
  cacheEpisodes?: number;
  /**
   * Worker threads for decode, resize, augmentation and normalisation (default
   * availableParallelism() − 1, at least 1); 0: on the main thread. The pixels are the same.
   */
  frameThreads?: number;
  /** Training draws prepared ahead of the one being computed (default 2); 0: none. */
  prefetch?: number;
  /**
   * Draw training samples through a tf.data-style shuffle buffer of this many samples over
   * the repeated stream of training samples in record order (ShuffleBuffer), as upstream
   * does; 0 (default): a uniform permutation per epoch (Sampler).
   */
  shuffleBuffer?: number;
}

/** The draw order: a per-epoch permutation or a shuffle buffer (the same interface). */
type Order = Sampler | ShuffleBuffer;
/** `sampler` is a ShuffleBufferState (its `kind`) or a SamplerState (states written before the buffer have only these). */
type SourceState = { sampler: SamplerState | ShuffleBufferState; ranks?: number };

function orderFromState(state: SamplerState | ShuffleBufferState): Order {
  return 'kind' in state && state.kind === 'shuffle-buffer' ? ShuffleBuffer.fromState(state) : Sampler.fromState(state as SamplerState);
}

export class RldsVlaSource {
  readonly supportsOverwrite = true;
  readonly model: VlaPolicy;
  readonly data: RldsVlaData;
  readonly shard: Shard;
  readonly #train: readonly number[];
  readonly #val: readonly number[] | undefined;
  readonly #opts: RldsVlaSourceOptions;
  readonly #prompts: Int32Array[];
  #sampler: Order;
  readonly #cache = new Map<number, Promise<Uint8Array[][]>>();
  /** The next draws, prepared ahead (in draw order). */
  #queue: { key: string; batch: Promise<VlaBatch[]> }[] = [];
  readonly #depth: number;
  readonly #pool: FramePool | undefined;
  #wait = { draws: 0, ms: 0, lastMs: 0 };

  constructor(model: VlaPolicy, data: RldsVlaData, options: RldsVlaSourceOptions) {
    this.model = model;
    this.data = data;
    this.#opts = options;
    this.#train = options.train;
    this.#val = options.val && options.val.length > 0 ? options.val : undefined;
    this.shard = options.shard ?? { rank: 0, ranks: 1 };
    const c = model.config, s = data.samples;
    if (s.chunk !== c.chunk || s.actionDim !== c.actionDims) {
      throw argRangeError(`${data.source}: samples hold chunks of ${s.chunk}×${s.actionDim} but the model's head predicts ${c.chunk}×${c.actionDims}`);
    }
    if (c.proprioDim > 0 && s.proprioDim !== c.proprioDim) throw argRangeError(`${data.source}: proprio has ${s.proprioDim} values, the proprio projector takes ${c.proprioDim}`);
    if (data.imageKeys.length < c.views) throw argRangeError(`${data.source}: the dataset has ${data.imageKeys.length} camera view(s) (${data.imageKeys.join(', ')}); --views is ${c.views}`);
    this.#prompts = s.instructions.map((text) => promptInputIds(options.tokenizer, text, c.queries));
    for (const [i, ids] of this.#prompts.entries()) {
      for (const id of ids) if (id < 0 || id >= c.vocabSize) throw argRangeError(`the tokenizer gives id ${id} for instruction ${JSON.stringify(s.instructions[i])}, outside the model's vocabulary (${c.vocabSize})`);
    }
    if (this.#train.length === 0) throw argRangeError(`${data.source}: no training sample`);
    const buffer = options.shuffleBuffer ?? 0;
    if (!Number.isSafeInteger(buffer) || buffer < 0 || buffer > MAX_SHUFFLE_BUFFER) {
      throw argRangeError(`shuffleBuffer must be an integer from 0 (a permutation per epoch) to ${MAX_SHUFFLE_BUFFER}, got ${buffer}`);
    }
    this.#sampler = buffer > 0
      ? new ShuffleBuffer(this.#train.length, { batchSize: options.batchSize, bufferSize: buffer, seed: options.seed ?? 0 })
      : new Sampler(this.#train.length, { batchSize: options.batchSize, seed: options.seed ?? 0, dropLast: options.batchSize <= this.#train.length });
    const threads = options.frameThreads ?? defaultFrameThreads(), depth = options.prefetch ?? 2;
    if (!Number.isInteger(threads) || threads < 0 || threads > 256) throw argRangeError(`frameThreads must be an integer in [0, 256], got ${threads}`);
    if (!Number.isInteger(depth) || depth < 0 || depth > 64) throw argRangeError(`prefetch must be an integer in [0, 64], got ${depth}`);
    this.#depth = depth;
    this.#pool = threads > 0 ? new FramePool({ threads, normalization: options.normalization }) : undefined;
  }

  /** How long accumulate() waited for its batch (the draws counted, total and last milliseconds). */
  get dataWait(): { draws: number; ms: number; lastMs: number } {
    return { ...this.#wait };
  }

  /** Terminates the frame workers (idle ones never keep the process alive; this frees them sooner). */
  async close(): Promise<void> {
    this.#queue = [];
    await this.#pool?.close();
  }

  get params(): GradSet {
    return this.model.params;
  }
  get paramNames(): readonly string[] {
    return this.model.trainableNames;
  }
  get paramShapes(): readonly (readonly number[])[] {
    return this.model.trainableSpecs.map((t) => t.shape);
  }
  /** Training samples. */
  get size(): number {
    return this.#train.length;
  }

  /** The images (per view, per step) of episode `e`, read back by offset and kept for a few draws. */
  #images(e: number): Promise<Uint8Array[][]> {
    let p = this.#cache.get(e);
    if (p === undefined) {
      const keys = this.data.imageKeys.slice(0, this.model.config.views);
      p = this.data.dataset.readEpisodeAt(this.data.places[e]!).then((ep) => keys.map((k) => ep.features.get(k) as Uint8Array[]));
      this.#cache.set(e, p);
      const cap = this.#opts.cacheEpisodes ?? 16;
      while (this.#cache.size > cap) this.#cache.delete(this.#cache.keys().next().value!);
    }
    return p;
  }

  /** The samples `idx` (into data.samples) as batches of equal prompt length. */
  async #batches(idx: readonly number[], draw: string, drawNumber: number, augment: FrameAugment): Promise<VlaBatch[]> {
    const s = this.data.samples, c = this.model.config, H = c.towers[0].imageSize, V = c.views, px = 6 * H * H;
    const groups = new Map<number, number[]>();
    for (const i of idx) {
      const L = this.#prompts[s.prompt[i]!]!.length;
      if (!groups.has(L)) groups.set(L, []);
      groups.get(L)!.push(i);
    }
    const noise = this.model.headNoise(draw);
    const out: VlaBatch[] = [];
    for (const [L, members] of [...groups].sort(([a], [b]) => a - b)) {
      const n = members.length, ka = s.chunk * s.actionDim, pd = s.proprioDim;
      const batch: VlaBatch = {
        pixels: new Float32Array(n * V * px), inputIds: new Int32Array(n * L), proprio: c.proprioDim > 0 ? new Float32Array(n * pd) : null,
        actions: new Float32Array(n * ka), noise, size: n,
      };
      await Promise.all(members.map(async (i, k) => {
        const e = s.episode[i]!, t = s.t[i]!;
        const views = (await this.#images(e)).map((steps) => steps[t]!);
        const job: FrameJob = { size: H, augment, ...(augment === 'random' ? { draw: [this.#opts.seed ?? 0, drawNumber >>> 0, i] as const } : {}) };
        let pixels: Float32Array;
        try {
          pixels = await (this.#pool ? this.#pool.prepare(views, job) : prepareNormalizedFrame(views, job, this.#opts.normalization));
        } catch (err) {
          const p = this.data.places[e]!;
          throw argRangeError(`${p.shard}, record ${p.record} (episode ${e}), step ${t}, feature '${this.data.imageKeys[0]}': ${(err as Error).message}`);
        }
        batch.pixels.set(pixels, k * V * px);
        batch.inputIds.set(this.#prompts[s.prompt[i]!]!, k * L);
        batch.actions.set(s.actions.subarray(i * ka, (i + 1) * ka), k * ka);
        if (batch.proprio) batch.proprio.set(s.proprio.subarray(i * pd, (i + 1) * pd), k * pd);
      }));
      out.push(batch);
    }
    return out;
  }

  /**
   * The next draw's key, number and this rank's samples, from a sampler or buffer (advanced).
   * The number is the samples handed out before it (epoch · size + position).
   */
  #draw(sampler: Order): { key: string; number: number; idx: number[]; drawn: number } {
    const key = `train:${sampler.epoch}:${sampler.position}`;
    const number = sampler.epoch * this.#train.length + sampler.position;
    const drawn = sampler.next();
    const { start, end } = shareOf(drawn.length, this.shard);
    const mine = this.shard.ranks > 1 ? drawn.slice(start, end) : drawn;
    return { key, number, idx: Array.from(mine, (j) => this.#train[j]!), drawn: drawn.length };
  }

  async accumulate(gAct: GradSet, gRet: GradSet | undefined, scale: number, overwrite = false): Promise<{ actionLoss: number; retentionLoss?: number; samples: number; epoch: number }> {
    const d = this.#draw(this.#sampler);
    const epoch = this.#sampler.epoch;
    const augment = this.#opts.augment === false ? 'none' : 'random';
    const head = this.#queue.shift();
    if (head !== undefined && head.key !== d.key) this.#queue = [];
    const batches = head?.key === d.key ? head.batch : this.#batches(d.idx, d.key, d.number, augment);
    // The next draws' images while this one computes: the queue topped up to `prefetch` draws.
    const ahead = this.#sampler instanceof ShuffleBuffer ? this.#sampler.clone() : Sampler.fromState(this.#sampler.state());
    for (let q = 0; q < this.#depth; q++) {
      const n = this.#draw(ahead);
      if (q < this.#queue.length) {
        if (this.#queue[q]!.key === n.key) continue;
        this.#queue.length = q;
      }
      const batch = this.#batches(n.idx, n.key, n.number, augment);
      batch.catch(() => {});  // its error, if any, is raised when it is used
      this.#queue.push({ key: n.key, batch });
    }
    const t0 = performance.now();
    const list = await batches;
    const waited = performance.now() - t0;
    this.#wait = { draws: this.#wait.draws + 1, ms: this.#wait.ms + waited, lastMs: waited };
    const total = d.idx.length;
    let act = 0, ret = 0, first = true;
    for (const b of list) {
      const w = b.size / total;
      const opts = { accumulate: !(overwrite && first), scale: scale * w * (this.shard.ranks > 1 ? total / d.drawn : 1) };
      first = false;
      if (gRet === undefined) {
        act += w * (await this.model.baselineStepAsync(b, gAct, opts)).actionLoss;
      } else {
        const r = await this.model.craftStepAsync(b, gAct, gRet, opts);
        act += w * r.actionLoss;
        ret += w * r.retentionLoss;
      }
    }
    return { actionLoss: act, ...(gRet ? { retentionLoss: ret } : {}), samples: total, epoch };
  }

  async validate(options: { timeLimitMs: number }): Promise<{ actionLoss: number; retentionLoss: number; samples: number; truncated?: boolean }> {
    if (!this.#val) throw new Error('RldsVlaSource.validate: no validation split was given');
    const start = performance.now(), bs = this.#opts.valBatchSize ?? this.#opts.batchSize;
    const share = shareOf(this.#val.length, this.shard);
    let act = 0, ret = 0, samples = 0;
    const mean = (v: number) => (samples ? v / samples : Number.NaN);
    for (let i = share.start; i < share.end; i += bs) {
      if (samples > 0 && performance.now() - start > options.timeLimitMs) return { actionLoss: mean(act), retentionLoss: mean(ret), samples, truncated: true };
      const idx = this.#val.slice(i, Math.min(i + bs, share.end));
      for (const b of await this.#batches(idx, `val:${i}`, 0, 'center')) {
        const r = this.model.evaluate(b, { retention: true });
        act += r.actionLoss * b.size;
        ret += r.retentionLoss * b.size;
        samples += b.size;
      }
    }
    return { actionLoss: mean(act), retentionLoss: mean(ret), samples };
  }

  saveState(): SourceState {
    return { sampler: this.#sampler.state(), ...(this.shard.ranks > 1 ? { ranks: this.shard.ranks } : {}) };
  }

  restoreState(state: unknown): void {
    const s = state as SourceState | null;
    if (s === null || typeof s !== 'object' || typeof s.sampler !== 'object') throw argTypeError('state must be what saveState() returned');
    if ((s.ranks ?? 1) !== this.shard.ranks) throw argRangeError(`state was saved by a run of ${s.ranks ?? 1} rank(s), this one has ${this.shard.ranks}`);
    if (s.sampler.size !== this.#train.length) throw argRangeError(`state is for a training split of ${s.sampler.size} samples, this one has ${this.#train.length}`);
    const saved = 'kind' in s.sampler && s.sampler.kind === 'shuffle-buffer' ? s.sampler.bufferSize : 0;
    const mine = this.#sampler instanceof ShuffleBuffer ? this.#sampler.bufferSize : 0;
    if (saved !== mine) {
      const say = (n: number) => (n > 0 ? `a shuffle buffer of ${n}` : 'a permutation per epoch (no shuffle buffer)');
      throw argRangeError(`state was saved drawing with ${say(saved)}; this source draws with ${say(mine)}`);
    }
    this.#sampler = orderFromState(s.sampler);
    this.#queue = [];
  }
}
