// Episodes to training samples as OpenVLA-OFT / VLA-Adapter form them: the per-dataset
// transform, the statistics (given or computed), BOUNDS_Q99 normalisation with the mask, the
// chunk of future actions, the prompt's ids. Images are the image pipeline's: a sample names
// its episode and step, and that frame's views are its images.
import { FormatError } from '../../formats/errors.js';
import { type SplitOptions, nShotIndices, splitIndicesByEpisode } from '../dataset.js';
import { chunkActObsIndices, gatherRows } from './chunks.js';
import { type PromptTokenizer, promptInputIds } from './prompt.js';
import { type DatasetStatistics, StatisticsAccumulator, normalizeBoundsQ99 } from './statistics.js';
import { LIBERO, type RldsDatasetSpec, type RldsEpisode, type StandardEpisode, standardizeEpisode } from './transforms.js';

export interface RldsSampleOptions {
  /** The dataset's upstream configuration. Default LIBERO. */
  spec?: RldsDatasetSpec;
  /** Statistics to normalise with (a --stats file, parsed); computed from the episodes when absent. */
  statistics?: DatasetStatistics;
  /** The statistics' file, for errors. */
  statisticsFile?: string;
}

/** Every training sample of a dataset, in the dataset's record order, steps ascending. */
export interface RldsSamples {
  readonly size: number;
  readonly chunk: number;
  readonly actionDim: number;
  readonly proprioDim: number;
  /** N × (chunk · actionDim) float32: the normalised chunk (steps t … t + chunk − 1), row-major (chunk, A). */
  readonly actions: Float32Array;
  /** N × proprioDim float32: the normalised proprio at step t. */
  readonly proprio: Float32Array;
  /** The episode's index in the dataset's record order (every episode counts, skipped ones too). */
  readonly episode: Int32Array;
  /** The step t the sample starts at (its observation's step). */
  readonly t: Int32Array;
  /** Index into `instructions` of the episode's task: its first non-empty instruction. */
  readonly task: Int32Array;
  /** Index into `instructions` of step t's own instruction (the prompt's). */
  readonly prompt: Int32Array;
  /** Distinct instructions as stored, in order of first appearance. */
  readonly instructions: readonly string[];
  /** The statistics used, with the action mask upstream normalised with. */
  readonly statistics: DatasetStatistics;
  /** Whether `statistics` were computed here (then they belong in the run's dataset_statistics.json). */
  readonly statisticsComputed: boolean;
  /** Episodes read; skipped: with no instruction at all (skip_unlabeled), or too short for one chunk. */
  readonly episodes: number;
  readonly skippedUnlabeled: number;
  readonly skippedShort: number;
}

function sameMask(a: readonly boolean[], b: readonly boolean[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Builds every sample (make_dataset_from_rlds + apply_trajectory_transforms, window 1):
 * 1. each episode is checked (empty, lengths, NaN/inf actions and states: one line naming the
 *    episode, the step and the feature) and standardised (LIBERO: liberoDatasetTransform);
 * 2. statistics: the given ones (their widths checked by parseDatasetStatistics), else computed
 *    over every episode (dataset.py:208-221); the action mask is the spec's, as upstream sets
 *    it over whatever the file holds (dataset.py:224-231): a file whose mask differs is refused;
 * 3. actions and proprio normalised (BOUNDS_Q99, data_utils.py:67-90), proprio with the file's
 *    proprio mask if it has one, else all dims;
 * 4. episodes whose every instruction is empty are dropped (skip_unlabeled=True,
 *    dataset.py:298-302; they still count in the statistics);
 * 5. chunk_act_obs: sample s = step s for s < T − (chunk − 1), actions s … s + chunk − 1
 *    (traj_transforms.py:14-57).
 */
export function buildRldsSamples(episodes: Iterable<RldsEpisode>, options: RldsSampleOptions = {}): RldsSamples {
  const spec = options.spec ?? LIBERO;
  const std: StandardEpisode[] = [];
  const acc = options.statistics === undefined ? new StatisticsAccumulator() : null;
  let index = 0;
  for (const ep of episodes) {
    const s = standardizeEpisode(spec, ep, index++);
    if (s.actionDim !== spec.actionDim || s.proprioDim !== spec.proprioDim) {
      throw new FormatError('rlds', `episode ${index - 1}${ep.where !== undefined ? ` (${ep.where})` : ''}: gives ${s.actionDim} action and ${s.proprioDim} proprio dims after the ${spec.kind} transform, the model's data needs ${spec.actionDim} and ${spec.proprioDim}`,
        { field: s.actionDim !== spec.actionDim ? 'steps/action' : 'steps/observation/state' });
    }
    std.push(s);
    acc?.add(s);
  }
  if (std.length === 0) throw new FormatError('rlds', 'the dataset holds no episode', { field: 'episodes' });
  const statsFile = options.statisticsFile ?? 'dataset_statistics';
  let base: DatasetStatistics;
  if (options.statistics !== undefined) {
    base = options.statistics;
    for (const [key, dim] of [['action', spec.actionDim], ['proprio', spec.proprioDim]] as const) {
      for (const k of ['q01', 'q99', 'min', 'max'] as const) {
        if (base[key][k].length !== dim) {
          throw new FormatError('dataset_statistics', `has ${base[key][k].length} values but the ${key} has ${dim} dims: statistics for other dimensions`, { file: statsFile, field: `${key}.${k}` });
        }
      }
    }
    const fileMask = base.action.mask;
    if (fileMask !== undefined && !sameMask(fileMask, spec.actionMask)) {
      throw new FormatError('dataset_statistics', `action mask [${fileMask.join(', ')}] differs from the ${spec.kind} dataset's [${spec.actionMask.join(', ')}] (upstream normalises with the dataset's)`, { file: statsFile, field: 'action.mask' });
    }
  } else {
    base = acc!.finish();
  }
  const statistics: DatasetStatistics = { ...base, action: { ...base.action, mask: [...spec.actionMask] } };

  const instructions: string[] = [];
  const idOf = new Map<string, number>();
  const instructionId = (s: string): number => {
    let id = idOf.get(s);
    if (id === undefined) { id = instructions.length; instructions.push(s); idOf.set(s, id); }
    return id;
  };
  const A = spec.actionDim, P = spec.proprioDim, C = spec.chunk, wa = spec.windowSize + spec.futureWindow;
  if (spec.windowSize !== 1 || wa !== C) throw new RangeError(`only window 1 with chunk = 1 + future window is supported (spec: window ${spec.windowSize}, future ${spec.futureWindow}, chunk ${C})`);
  const kept: { e: number; s: StandardEpisode; starts: Int32Array; act: Int32Array; task: number }[] = [];
  let skippedUnlabeled = 0, skippedShort = 0, N = 0;
  std.forEach((s, e) => {
    const first = s.language.find((l) => l !== '');
    if (first === undefined) { skippedUnlabeled++; return; }
    const idx = chunkActObsIndices(s.steps, spec.windowSize, spec.futureWindow);
    if (idx.starts === 0) { skippedShort++; return; }
    kept.push({ e, s, starts: idx.observation, act: idx.action, task: instructionId(first) });
    N += idx.starts;
  });
  const actions = new Float32Array(N * C * A), proprio = new Float32Array(N * P);
  const episode = new Int32Array(N), t = new Int32Array(N), task = new Int32Array(N), prompt = new Int32Array(N);
  let n = 0;
  for (const k of kept) {
    const a = normalizeBoundsQ99(Float32Array.from(k.s.action), A, statistics.action, statistics.action.mask);
    const p = normalizeBoundsQ99(Float32Array.from(k.s.proprio), P, statistics.proprio, statistics.proprio.mask);
    for (let i = 0; i < k.starts.length; i++, n++) {
      const step = k.starts[i]!;
      gatherRows(a, A, k.act.subarray(i * wa, (i + 1) * wa), actions, n * C * A);
      proprio.set(p.subarray(step * P, (step + 1) * P), n * P);
      episode[n] = k.e;
      t[n] = step;
      task[n] = k.task;
      prompt[n] = instructionId(k.s.language[step]!);
    }
  }
  return {
    size: N, chunk: C, actionDim: A, proprioDim: P, actions, proprio, episode, t, task, prompt, instructions,
    statistics, statisticsComputed: options.statistics === undefined, episodes: std.length, skippedUnlabeled, skippedShort,
  };
}

/** The samples at `indices`, in that order (statistics and instructions shared). */
export function subsetRldsSamples(s: RldsSamples, indices: ArrayLike<number>): RldsSamples {
  const n = indices.length, ca = s.chunk * s.actionDim, P = s.proprioDim;
  const actions = new Float32Array(n * ca), proprio = new Float32Array(n * P);
  const episode = new Int32Array(n), t = new Int32Array(n), task = new Int32Array(n), prompt = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = indices[i]!;
    if (!Number.isInteger(j) || j < 0 || j >= s.size) throw new RangeError(`indices[${i}] must be an integer from 0 to ${s.size - 1}, got ${String(j)}`);
    actions.set(s.actions.subarray(j * ca, (j + 1) * ca), i * ca);
    proprio.set(s.proprio.subarray(j * P, (j + 1) * P), i * P);
    episode[i] = s.episode[j]!; t[i] = s.t[j]!; task[i] = s.task[j]!; prompt[i] = s.prompt[j]!;
  }
  return { ...s, size: n, actions, proprio, episode, t, task, prompt };
}

/**
 * Validation by held-out episodes: splitIndicesByEpisode's seeded choice per task (task = the
 * episode's instruction), as the tensor datasets split (src/data/dataset.ts).
 */
export function splitRldsSamples(s: RldsSamples, options: SplitOptions = {}): { train: RldsSamples; val: RldsSamples } {
  const { train, val } = splitIndicesByEpisode(s, options);
  return { train: subsetRldsSamples(s, train), val: subsetRldsSamples(s, val) };
}

/** --shots-per-task: the first `n` episodes (record order) of each language instruction. */
export function shotsPerTask(s: RldsSamples, n: number): RldsSamples {
  return subsetRldsSamples(s, nShotIndices(s, n));
}

export interface InputIdLayout {
  /** N × S int32 (row-major). */
  ids: Int32Array;
  /** S. */
  length: number;
  /** Per instruction (index as in `instructions`): its ids, unpadded. */
  byInstruction: Int32Array[];
}

/**
 * input_ids for every sample (promptInputIds of its step's instruction) laid out N × S as the
 * VLA tensor file has them (docs/VLA-ADAPTER.md §4: the first id — <|im_start|> for Qwen2 —
 * then the rest of the prompt, then 64 placeholders last). Every sample needs the same S: the
 * model takes no padding. When instructions tokenize to different lengths this refuses in one
 * line naming two of them, unless `padId` is given: then shorter rows are padded on the right
 * with it, after the placeholders, as upstream's collator pads (prismatic/util/data_utils.py:
 * 96-120, pad_token_id, attention mask = ids ≠ pad), for a consumer that masks padding.
 * `placeholders`: the action placeholders' count (the model's action_queries rows; default 64).
 */
export function layoutInputIds(s: RldsSamples, tok: PromptTokenizer, options: { padId?: number; placeholders?: number } = {}): InputIdLayout {
  const byInstruction = s.instructions.map((text) => promptInputIds(tok, text, options.placeholders));
  const used = new Set(Array.from(s.prompt));
  let S = 0, shortest: number | null = null, longest: number | null = null;
  for (const i of used) {
    const L = byInstruction[i]!.length;
    if (L > S) { S = L; longest = i; }
    if (shortest === null || L < byInstruction[shortest]!.length) shortest = i;
  }
  if (shortest !== null && longest !== null && byInstruction[shortest]!.length !== S && options.padId === undefined) {
    throw new RangeError(`prompts tokenize to different lengths (${byInstruction[shortest]!.length} ids for '${s.instructions[shortest]}', ${S} for '${s.instructions[longest]}'): input_ids need one length per file and the model takes no padding`);
  }
  const ids = new Int32Array(s.size * S);
  if (options.padId !== undefined) ids.fill(options.padId);
  for (let n = 0; n < s.size; n++) ids.set(byInstruction[s.prompt[n]!]!, n * S);
  return { ids, length: S, byInstruction };
}
