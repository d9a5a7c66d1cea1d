// The in-memory dataset every source turns into: N samples of tokens (N,T,D) and expert
// action chunks (N,K·A), each with a task id and an episode id; and the views taken of it
// (N-shot per task, validation split by episode, batches).
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import { checkFiniteNumber, checkInteger } from '../validate.js';
import { Rng } from './rng.js';

export interface Dataset {
  /** Sample count N. */
  readonly size: number;
  /** Tokens per sample T. */
  readonly tokensPerSample: number;
  /** Token width D. */
  readonly width: number;
  /** Values per action chunk, K·A. */
  readonly actionSize: number;
  /** (N, T, D) row-major. */
  readonly tokens: Float32Array;
  /** (N, K·A) row-major. */
  readonly actions: Float32Array;
  /** Task id of each sample. */
  readonly task: Int32Array;
  /** Episode id of each sample (unique across tasks). */
  readonly episode: Int32Array;
  /** Where it came from: 'synthetic(seed=…)' or a file path. */
  readonly source: string;
}

/** A batch in the form the model takes. */
export interface DatasetBatch {
  tokens: Float32Array;
  actions: Float32Array;
  size: number;
}

/** A new dataset holding only the samples at `indices` (copied, in that order). */
export function subsetDataset(ds: Dataset, indices: ArrayLike<number>, source = ds.source): Dataset {
  const n = indices.length, td = ds.tokensPerSample * ds.width, ka = ds.actionSize;
  const tokens = new Float32Array(n * td), actions = new Float32Array(n * ka);
  const task = new Int32Array(n), episode = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = indices[i]!;
    if (!Number.isInteger(j) || j < 0 || j >= ds.size) throw argRangeError(`indices[${i}] must be an integer from 0 to ${ds.size - 1}, got ${describeValue(j)}`);
    tokens.set(ds.tokens.subarray(j * td, (j + 1) * td), i * td);
    actions.set(ds.actions.subarray(j * ka, (j + 1) * ka), i * ka);
    task[i] = ds.task[j]!;
    episode[i] = ds.episode[j]!;
  }
  return { size: n, tokensPerSample: ds.tokensPerSample, width: ds.width, actionSize: ka, tokens, actions, task, episode, source };
}

/** Episode ids in order of first appearance, grouped by task (tasks in order of first appearance). */
/** What the episode-level views read of a dataset (both dataset kinds have it). */
export type EpisodeIndex = Pick<Dataset, 'size' | 'task' | 'episode'>;

function episodesByTask(ds: EpisodeIndex): Map<number, number[]> {
  const byTask = new Map<number, number[]>();
  const seen = new Set<number>();
  for (let i = 0; i < ds.size; i++) {
    const e = ds.episode[i]!;
    if (seen.has(e)) continue;
    seen.add(e);
    const t = ds.task[i]!;
    if (!byTask.has(t)) byTask.set(t, []);
    byTask.get(t)!.push(e);
  }
  return byTask;
}

/** N-shot: keeps the first `n` episodes (in order of appearance) of each task. */
export function nShot(ds: Dataset, n: number): Dataset {
  return subsetDataset(ds, nShotIndices(ds, n), `${ds.source} [${n}-shot]`);
}

/** The sample indices nShot keeps, in order. */
export function nShotIndices(ds: EpisodeIndex, n: number): number[] {
  checkInteger(n, 'n', 1);
  const keep = new Set<number>();
  for (const eps of episodesByTask(ds).values()) eps.slice(0, n).forEach((e) => keep.add(e));
  const idx: number[] = [];
  for (let i = 0; i < ds.size; i++) if (keep.has(ds.episode[i]!)) idx.push(i);
  return idx;
}

export interface SplitOptions {
  /** Fraction of each task's episodes held out for validation (0..1). Default 0.1. */
  valFraction?: number;
  /** Seed of the episode choice. Default 0. */
  seed?: number;
}

/**
 * Splits by episode, never inside one: per task, a seeded choice of round(valFraction ×
 * episodes) episodes (at least one when the task has two or more and valFraction > 0)
 * goes to validation.
 */
export function splitByEpisode(ds: Dataset, options: SplitOptions = {}): { train: Dataset; val: Dataset } {
  const { train, val } = splitIndicesByEpisode(ds, options);
  return { train: subsetDataset(ds, train, `${ds.source} [train]`), val: subsetDataset(ds, val, `${ds.source} [val]`) };
}

/** The sample indices splitByEpisode puts in each part, in order. */
export function splitIndicesByEpisode(ds: EpisodeIndex, options: SplitOptions = {}): { train: number[]; val: number[] } {
  const frac = checkFiniteNumber(options.valFraction ?? 0.1, 'options.valFraction', { min: 0, below: 1 });
  const seed = checkInteger(options.seed ?? 0, 'options.seed', 0);
  const rng = new Rng(seed);
  const valEpisodes = new Set<number>();
  for (const eps of episodesByTask(ds).values()) {
    let k = Math.round(frac * eps.length);
    if (frac > 0 && eps.length >= 2) k = Math.min(eps.length - 1, Math.max(1, k));
    const order = rng.shuffle(eps.slice());
    order.slice(0, k).forEach((e) => valEpisodes.add(e));
  }
  const train: number[] = [], val: number[] = [];
  for (let i = 0; i < ds.size; i++) (valEpisodes.has(ds.episode[i]!) ? val : train).push(i);
  return { train, val };
}

/** Copies the samples at `indices` into a batch (reusing `out` when it is large enough). */
export function gatherBatch(ds: Dataset, indices: ArrayLike<number>, out?: DatasetBatch): DatasetBatch {
  const n = indices.length, td = ds.tokensPerSample * ds.width, ka = ds.actionSize;
  const tokens = out && out.tokens.length >= n * td ? out.tokens.subarray(0, n * td) : new Float32Array(n * td);
  const actions = out && out.actions.length >= n * ka ? out.actions.subarray(0, n * ka) : new Float32Array(n * ka);
  for (let i = 0; i < n; i++) {
    const j = indices[i]!;
    if (!Number.isInteger(j) || j < 0 || j >= ds.size) throw argRangeError(`indices[${i}] must be an integer from 0 to ${ds.size - 1}, got ${describeValue(j)}`);
    tokens.set(ds.tokens.subarray(j * td, (j + 1) * td), i * td);
    actions.set(ds.actions.subarray(j * ka, (j + 1) * ka), i * ka);
  }
  return { tokens, actions, size: n };
}

/** Throws when the dataset's T, D or K·A do not match a model configuration, naming the field. */
export function checkDatasetFits(ds: Dataset, config: { tokens: number; width: number; chunk: number; actionDims: number }): void {
  if (ds === null || typeof ds !== 'object') throw argTypeError(`dataset must be a Dataset, got ${describeValue(ds)}`);
  const want: [string, number, number][] = [
    ['tokens per sample (T)', ds.tokensPerSample, config.tokens],
    ['token width (D)', ds.width, config.width],
    ['action chunk size (K·A)', ds.actionSize, config.chunk * config.actionDims],
  ];
  for (const [what, got, need] of want) {
    if (got !== need) throw argRangeError(`dataset ${ds.source}: ${what} is ${got} but the model needs ${need}`);
  }
}
