// Datasets for a pretrained backbone (a Qwen2 model): per sample a sequence of `prefix`
// vectors (P, D) from a frozen encoder and/or prompt `input_ids` (S) to embed with the
// model's table, and the expert action chunk (K·A). Files are .npz or .safetensors with
// `prefix` (N, P, D) float32 and/or `input_ids` (N, S) int32 (at least one), `actions`
// (N, K·A) float32 and optional `task`, `episode` (N) int32. Errors name the file and field.
import { extname } from 'node:path';
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import { checkInteger, checkObject } from '../validate.js';
import { FormatError } from '../formats/errors.js';
import { readNpzFile, writeNpzFile } from '../formats/npz.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../formats/safetensors.js';
import type { Tensor } from '../formats/tensor.js';
import { type SplitOptions, nShotIndices, splitIndicesByEpisode } from './dataset.js';
import { type Fail, failer, needTensor, requireFinite, taskAndEpisode } from './fields.js';

export interface SequenceDataset {
  /** Sample count N. */
  readonly size: number;
  /** Prefix vectors per sample P (0 when the file has no `prefix`). */
  readonly prefixTokens: number;
  /** Prompt tokens per sample S (0 when the file has no `input_ids`). */
  readonly promptTokens: number;
  /** Prefix width D (0 when there is no prefix: the width is then the model's). */
  readonly width: number;
  /** Values per action chunk, K·A. */
  readonly actionSize: number;
  /** (N, P, D) row-major, or null. */
  readonly prefix: Float32Array | null;
  /** (N, S) row-major, or null. */
  readonly inputIds: Int32Array | null;
  /** (N, K·A) row-major. */
  readonly actions: Float32Array;
  readonly task: Int32Array;
  readonly episode: Int32Array;
  /** A file path, or what the dataset was cut from. */
  readonly source: string;
}

/** What the model fixes: the prefix width must be hiddenSize, token ids below vocabSize. */
export interface SequenceModelLimits {
  hiddenSize: number;
  vocabSize: number;
}

export interface SequenceBatch {
  prefix: Float32Array | null;
  inputIds: Int32Array | null;
  actions: Float32Array;
  size: number;
}

function kindOf(path: string): 'npz' | 'safetensors' {
  const ext = extname(path).toLowerCase();
  if (ext === '.npz') return 'npz';
  if (ext === '.safetensors') return 'safetensors';
  throw new FormatError('dataset', `unknown dataset file type '${ext}' (use .npz or .safetensors)`, { file: path });
}

function checkLimits(limits: SequenceModelLimits, what: string): void {
  checkObject(limits, what);
  for (const k of ['hiddenSize', 'vocabSize'] as const) checkInteger(limits[k], `${what}.${k}`, 1);
}

function checkAgainstModel(width: number, prefix: boolean, ids: Int32Array | null, limits: SequenceModelLimits, fail: Fail): void {
  if (prefix && width !== limits.hiddenSize) fail('prefix', `has width ${width} but the model's hidden_size is ${limits.hiddenSize}`);
  if (ids !== null) {
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! >= limits.vocabSize) fail('input_ids', `has token id ${ids[i]} at flat index ${i}, outside the model's vocabulary (vocab_size ${limits.vocabSize})`);
    }
  }
}

/**
 * Builds a sequence dataset from named tensors (as read from `file`), checking every
 * field; with `limits`, also the prefix width and the token ids against the model.
 */
export function sequenceDatasetFromTensors(
  tensors: Record<string, Tensor>, file: string, limits?: SequenceModelLimits, format = 'dataset',
): SequenceDataset {
  if (limits !== undefined) checkLimits(limits, 'limits');
  const fail = failer(file, format);
  const has = (n: string): boolean => Object.prototype.hasOwnProperty.call(tensors, n);
  if (has('tokens') && !has('prefix') && !has('input_ids')) {
    fail('tokens', "is the built-in model's field; a backbone dataset has 'prefix' (N, P, D) and/or 'input_ids' (N, S)");
  }
  if (!has('prefix') && !has('input_ids')) fail('prefix', "missing: a backbone dataset needs 'prefix' (N, P, D) float32, 'input_ids' (N, S) int32, or both");
  const pre = has('prefix') ? needTensor(tensors, 'prefix', 'F32', 3, fail) : undefined;
  const ids = has('input_ids') ? needTensor(tensors, 'input_ids', 'I32', 2, fail) : undefined;
  const act = needTensor(tensors, 'actions', 'F32', 2, fail);
  const ref = pre !== undefined ? 'prefix' : 'input_ids';
  const N = (pre ?? ids)!.shape[0]!;
  if (N < 1) fail(ref, `has no samples (shape [${(pre ?? ids)!.shape.join(', ')}])`);
  if (pre !== undefined && (pre.shape[1]! < 1 || pre.shape[2]! < 1)) fail('prefix', `shape [${pre.shape.join(', ')}] has an empty dimension`);
  if (ids !== undefined) {
    if (ids.shape[0] !== N) fail('input_ids', `has ${ids.shape[0]} rows but prefix has ${N} samples`);
    if (ids.shape[1]! < 1) fail('input_ids', `shape [${ids.shape.join(', ')}] has no tokens per sample`);
    const d = ids.data as Int32Array;
    for (let i = 0; i < d.length; i++) if (d[i]! < 0) fail('input_ids', `has a negative token id (${d[i]}) at flat index ${i}`);
  }
  if (act.shape[0] !== N) fail('actions', `has ${act.shape[0]} rows but ${ref} has ${N} samples`);
  if (act.shape[1]! < 1) fail('actions', 'has zero values per sample');
  if (pre !== undefined) requireFinite('prefix', pre.data as Float32Array, fail);
  requireFinite('actions', act.data as Float32Array, fail);
  const { task, episode } = taskAndEpisode(tensors, N, ref, fail);
  const inputIds = ids !== undefined ? Int32Array.from(ids.data as Int32Array) : null;
  const width = pre?.shape[2] ?? 0;
  if (limits !== undefined) checkAgainstModel(width, pre !== undefined, inputIds, limits, fail);
  return {
    size: N, prefixTokens: pre?.shape[1] ?? 0, promptTokens: ids?.shape[1] ?? 0, width, actionSize: act.shape[1]!,
    prefix: pre !== undefined ? Float32Array.from(pre.data as Float32Array) : null, inputIds,
    actions: Float32Array.from(act.data as Float32Array), task, episode, source: file,
  };
}

/** Reads a backbone dataset file (.npz or .safetensors); with `limits`, checks it against the model. */
export async function loadSequenceDatasetFile(path: string, limits?: SequenceModelLimits): Promise<SequenceDataset> {
  const kind = kindOf(path);
  const tensors = kind === 'npz' ? await readNpzFile(path) : (await readSafetensorsFile(path)).tensors;
  return sequenceDatasetFromTensors(tensors, path, limits, kind);
}

/**
 * Checks a loaded dataset against a model and run: prefix width, token ids, and K·A.
 * Errors name the dataset's source and the field.
 */
export function checkSequenceDatasetFits(ds: SequenceDataset, run: SequenceModelLimits & { chunk: number; actionDims: number }): void {
  if (ds === null || typeof ds !== 'object') throw argTypeError(`dataset must be a SequenceDataset, got ${describeValue(ds)}`);
  checkLimits(run, 'run');
  const fail = failer(ds.source, 'dataset');
  checkAgainstModel(ds.width, ds.prefix !== null, ds.inputIds, run, fail);
  const need = run.chunk * run.actionDims;
  if (ds.actionSize !== need) fail('actions', `has ${ds.actionSize} values per sample but the run needs chunk ${run.chunk} × action dims ${run.actionDims} = ${need}`);
}

/** Writes a sequence dataset as .npz or .safetensors (by extension), in the layout the loader reads. */
export async function saveSequenceDatasetFile(path: string, ds: SequenceDataset): Promise<void> {
  const tensors: Record<string, Tensor> = {};
  if (ds.prefix !== null) tensors.prefix = { dtype: 'F32', shape: [ds.size, ds.prefixTokens, ds.width], data: ds.prefix };
  if (ds.inputIds !== null) tensors.input_ids = { dtype: 'I32', shape: [ds.size, ds.promptTokens], data: ds.inputIds };
  tensors.actions = { dtype: 'F32', shape: [ds.size, ds.actionSize], data: ds.actions };
  tensors.task = { dtype: 'I32', shape: [ds.size], data: ds.task };
  tensors.episode = { dtype: 'I32', shape: [ds.size], data: ds.episode };
  if (kindOf(path) === 'npz') await writeNpzFile(path, tensors);
  else await writeSafetensorsFile(path, tensors);
}

function checkIndex(j: number, i: number, size: number): void {
  if (!Number.isInteger(j) || j < 0 || j >= size) throw argRangeError(`indices[${i}] must be an integer from 0 to ${size - 1}, got ${describeValue(j)}`);
}

/** Copies the samples at `indices` into a batch (reusing `out`'s arrays when large enough). */
export function gatherSequenceBatch(ds: SequenceDataset, indices: ArrayLike<number>, out?: SequenceBatch): SequenceBatch {
  const n = indices.length, pd = ds.prefixTokens * ds.width, s = ds.promptTokens, ka = ds.actionSize;
  const reuse = <T extends Float32Array | Int32Array>(have: T | null | undefined, len: number, make: (l: number) => T): T =>
    have && have.length >= len ? (have.subarray(0, len) as T) : make(len);
  const prefix = ds.prefix !== null ? reuse(out?.prefix, n * pd, (l) => new Float32Array(l)) : null;
  const inputIds = ds.inputIds !== null ? reuse(out?.inputIds, n * s, (l) => new Int32Array(l)) : null;
  const actions = reuse(out?.actions, n * ka, (l) => new Float32Array(l));
  for (let i = 0; i < n; i++) {
    const j = indices[i]!;
    checkIndex(j, i, ds.size);
    if (prefix !== null) prefix.set(ds.prefix!.subarray(j * pd, (j + 1) * pd), i * pd);
    if (inputIds !== null) inputIds.set(ds.inputIds!.subarray(j * s, (j + 1) * s), i * s);
    actions.set(ds.actions.subarray(j * ka, (j + 1) * ka), i * ka);
  }
  return { prefix, inputIds, actions, size: n };
}

/** A new dataset holding only the samples at `indices` (copied, in that order). */
export function subsetSequenceDataset(ds: SequenceDataset, indices: ArrayLike<number>, source = ds.source): SequenceDataset {
  const b = gatherSequenceBatch(ds, indices);
  const task = new Int32Array(b.size), episode = new Int32Array(b.size);
  for (let i = 0; i < b.size; i++) {
    task[i] = ds.task[indices[i]!]!;
    episode[i] = ds.episode[indices[i]!]!;
  }
  return { ...ds, size: b.size, prefix: b.prefix, inputIds: b.inputIds, actions: b.actions, task, episode, source };
}

/** N-shot, as nShot: the first `n` episodes of each task. */
export function nShotSequence(ds: SequenceDataset, n: number): SequenceDataset {
  return subsetSequenceDataset(ds, nShotIndices(ds, n), `${ds.source} [${n}-shot]`);
}

/** The validation split by episode, as splitByEpisode (the same seeded choice). */
export function splitSequenceByEpisode(ds: SequenceDataset, options: SplitOptions = {}): { train: SequenceDataset; val: SequenceDataset } {
  const { train, val } = splitIndicesByEpisode(ds, options);
  return { train: subsetSequenceDataset(ds, train, `${ds.source} [train]`), val: subsetSequenceDataset(ds, val, `${ds.source} [val]`) };
}
