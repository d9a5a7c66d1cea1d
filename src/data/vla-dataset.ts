// Datasets for VLA-Adapter (issue #27's tensor file; RLDS comes with #28): per sample V camera
// views as uint8 images at the model's image size, the normalised proprio state, the
// normalised action chunk and the prompt's token ids as VLA-Adapter lays them out (BOS
// first, the action placeholders last: docs/VLA-ADAPTER.md §4). Files are .npz or
// .safetensors with `images` (N, V, H, W, 3) uint8, `actions` (N, chunk·A) float32,
// `input_ids` (N, S) int32, optional `proprio` (N, P8) float32 and `task`, `episode` (N)
// int32. Batches carry the pixels as upstream's processor makes them (6 channels per view).
import { extname } from 'node:path';
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import { FormatError } from '../formats/errors.js';
import { readNpzFile, writeNpzFile } from '../formats/npz.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../formats/safetensors.js';
import type { Tensor } from '../formats/tensor.js';
import { type SplitOptions, nShotIndices, splitIndicesByEpisode } from './dataset.js';
import { failer, needTensor, requireFinite, taskAndEpisode } from './fields.js';

export interface VlaDataset {
  readonly size: number;
  readonly views: number;
  /** Image height and width (square, the model's image size). */
  readonly imageSize: number;
  /** S, input ids per sample. */
  readonly inputIds: number;
  readonly actionSize: number;
  /** Proprio values per sample (0 when the file has none). */
  readonly proprioDim: number;
  /** (N, V, H, W, 3) row-major. */
  readonly images: Uint8Array;
  readonly ids: Int32Array;
  readonly proprio: Float32Array | null;
  readonly actions: Float32Array;
  readonly task: Int32Array;
  readonly episode: Int32Array;
  readonly source: string;
}

/** The per-channel mean and std of each tower's normalisation (preprocessor_config.json's tvf_normalize_params). */
export interface PixelNormalization {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** What the model fixes. */
export interface VlaDataLimits {
  views: number;
  imageSize: number;
  inputIds: number;
  vocabSize: number;
  chunk: number;
  actionDims: number;
  /** 0: the model takes no proprio (the field is then ignored). */
  proprioDim: number;
}

export interface VlaBatch {
  /** size × views × 6 × H × W: channels 0-2 normalised for the featurizer, 3-5 for the fused featurizer. */
  pixels: Float32Array;
  inputIds: Int32Array;
  proprio: Float32Array | null;
  actions: Float32Array;
  /** chunk × A·D: the head's input perturbation, or null (zeros). */
  noise: Float32Array | null;
  size: number;
}

function kindOf(path: string): 'npz' | 'safetensors' {
  const ext = extname(path).toLowerCase();
  if (ext === '.npz') return 'npz';
  if (ext === '.safetensors') return 'safetensors';
  throw new FormatError('dataset', `unknown dataset file type '${ext}' (use .npz or .safetensors)`, { file: path });
}

/** Builds a VLA dataset from named tensors (as read from `file`), checking every field. */
export function vlaDatasetFromTensors(tensors: Record<string, Tensor>, file: string, format = 'dataset'): VlaDataset {
  const fail = failer(file, format);
  const has = (n: string): boolean => Object.prototype.hasOwnProperty.call(tensors, n);
  const img = needTensor(tensors, 'images', 'U8', 5, fail);
  const [N, V, H, W, C] = img.shape as [number, number, number, number, number];
  if (N < 1) fail('images', `has no samples (shape [${img.shape.join(', ')}])`);
  if (C !== 3) fail('images', `must be (N, views, H, W, 3) RGB, got shape [${img.shape.join(', ')}]`);
  if (V < 1 || H < 1 || H !== W) fail('images', `must hold square images of at least one view, got shape [${img.shape.join(', ')}]`);
  const ids = needTensor(tensors, 'input_ids', 'I32', 2, fail);
  if (ids.shape[0] !== N) fail('input_ids', `has ${ids.shape[0]} rows but images has ${N} samples`);
  const idData = ids.data as Int32Array;
  for (let i = 0; i < idData.length; i++) if (idData[i]! < 0) fail('input_ids', `has a negative token id (${idData[i]}) at flat index ${i}`);
  const act = needTensor(tensors, 'actions', 'F32', 2, fail);
  if (act.shape[0] !== N) fail('actions', `has ${act.shape[0]} rows but images has ${N} samples`);
  requireFinite('actions', act.data as Float32Array, fail);
  let proprio: Float32Array | null = null, proprioDim = 0;
  if (has('proprio')) {
    const p = needTensor(tensors, 'proprio', 'F32', 2, fail);
    if (p.shape[0] !== N) fail('proprio', `has ${p.shape[0]} rows but images has ${N} samples`);
    requireFinite('proprio', p.data as Float32Array, fail);
    proprio = Float32Array.from(p.data as Float32Array);
    proprioDim = p.shape[1]!;
  }
  const { task, episode } = taskAndEpisode(tensors, N, 'images', fail);
  return {
    size: N, views: V, imageSize: H, inputIds: ids.shape[1]!, actionSize: act.shape[1]!, proprioDim,
    images: Uint8Array.from(img.data as Uint8Array), ids: Int32Array.from(idData), proprio,
    actions: Float32Array.from(act.data as Float32Array), task, episode, source: file,
  };
}

/** Reads a VLA dataset file (.npz or .safetensors). */
export async function loadVlaDatasetFile(path: string): Promise<VlaDataset> {
  const kind = kindOf(path);
  const tensors = kind === 'npz' ? await readNpzFile(path) : (await readSafetensorsFile(path)).tensors;
  return vlaDatasetFromTensors(tensors, path, kind);
}

/** Writes a VLA dataset as .npz or .safetensors (by extension), in the layout the loader reads. */
export async function saveVlaDatasetFile(path: string, ds: VlaDataset): Promise<void> {
  const t: Record<string, Tensor> = {
    images: { dtype: 'U8', shape: [ds.size, ds.views, ds.imageSize, ds.imageSize, 3], data: ds.images },
    input_ids: { dtype: 'I32', shape: [ds.size, ds.inputIds], data: ds.ids },
    actions: { dtype: 'F32', shape: [ds.size, ds.actionSize], data: ds.actions },
    task: { dtype: 'I32', shape: [ds.size], data: ds.task },
    episode: { dtype: 'I32', shape: [ds.size], data: ds.episode },
  };
  if (ds.proprio !== null) t.proprio = { dtype: 'F32', shape: [ds.size, ds.proprioDim], data: ds.proprio };
  if (kindOf(path) === 'npz') await writeNpzFile(path, t);
  else await writeSafetensorsFile(path, t);
}

/** Checks a dataset against the model, each error naming the dataset's source and the field. */
export function checkVlaDatasetFits(ds: VlaDataset, m: VlaDataLimits): void {
  if (ds === null || typeof ds !== 'object') throw argTypeError(`dataset must be a VlaDataset, got ${describeValue(ds)}`);
  const fail = failer(ds.source, 'dataset');
  if (ds.views !== m.views) fail('images', `has ${ds.views} camera views per sample but the run uses ${m.views} (--views)`);
  if (ds.imageSize !== m.imageSize) fail('images', `has ${ds.imageSize}×${ds.imageSize} images but the model's image size is ${m.imageSize} (config.json image_sizes)`);
  if (ds.inputIds !== m.inputIds) fail('input_ids', `has ${ds.inputIds} ids per sample but the model was made for ${m.inputIds}`);
  for (let i = 0; i < ds.ids.length; i++) {
    if (ds.ids[i]! >= m.vocabSize) fail('input_ids', `has token id ${ds.ids[i]} at flat index ${i}, outside the model's vocabulary (vocab_size ${m.vocabSize})`);
  }
  const need = m.chunk * m.actionDims;
  if (ds.actionSize !== need) fail('actions', `has ${ds.actionSize} values per sample but the model's head predicts chunk ${m.chunk} × ${m.actionDims} action dims = ${need}`);
  if (m.proprioDim > 0 && ds.proprioDim !== m.proprioDim) {
    fail('proprio', ds.proprio === null ? `missing: the model's proprio projector takes ${m.proprioDim} values per sample`
      : `has ${ds.proprioDim} values per sample but the proprio projector takes ${m.proprioDim}`);
  }
}

function checkIndex(j: number, i: number, size: number): void {
  if (!Number.isInteger(j) || j < 0 || j >= size) throw argRangeError(`indices[${i}] must be an integer from 0 to ${size - 1}, got ${describeValue(j)}`);
}

/**
 * One image's pixels as upstream's processor makes them (processing_prismatic.py:129-140):
 * TVF.to_tensor (u8 / 255 in fp32), then TVF.normalize per tower ((x − mean) / std in fp32),
 * written as 6 channels (CHW) at `out`.
 */
export function normalizeImage(rgb: Uint8Array, H: number, norm: readonly [PixelNormalization, PixelNormalization], out: Float32Array): void {
  const f = Math.fround, HW = H * H;
  for (let g = 0; g < 2; g++) {
    for (let c = 0; c < 3; c++) {
      const mean = f(norm[g]!.mean[c]!), std = f(norm[g]!.std[c]!);
      const plane = out.subarray((3 * g + c) * HW, (3 * g + c + 1) * HW);
      for (let p = 0; p < HW; p++) plane[p] = f(f(f(rgb[p * 3 + c]! / 255) - mean) / std);
    }
  }
}

/** Copies the samples at `indices` into a batch (reusing `out`'s arrays when large enough); noise is the caller's. */
export function gatherVlaBatch(ds: VlaDataset, norm: readonly [PixelNormalization, PixelNormalization], indices: ArrayLike<number>,
  out?: VlaBatch): VlaBatch {
  const n = indices.length, H = ds.imageSize, img = H * H * 3, px = 6 * H * H, s = ds.inputIds, ka = ds.actionSize, pd = ds.proprioDim;
  const reuse = <T extends Float32Array | Int32Array>(have: T | null | undefined, len: number, make: (l: number) => T): T =>
    have && have.length >= len ? (have.subarray(0, len) as T) : make(len);
  const pixels = reuse(out?.pixels, n * ds.views * px, (l) => new Float32Array(l));
  const inputIds = reuse(out?.inputIds, n * s, (l) => new Int32Array(l));
  const actions = reuse(out?.actions, n * ka, (l) => new Float32Array(l));
  const proprio = ds.proprio !== null ? reuse(out?.proprio, n * pd, (l) => new Float32Array(l)) : null;
  for (let i = 0; i < n; i++) {
    const j = indices[i]!;
    checkIndex(j, i, ds.size);
    for (let v = 0; v < ds.views; v++) {
      const k = j * ds.views + v;
      normalizeImage(ds.images.subarray(k * img, (k + 1) * img), H, norm, pixels.subarray((i * ds.views + v) * px, (i * ds.views + v + 1) * px));
    }
    inputIds.set(ds.ids.subarray(j * s, (j + 1) * s), i * s);
    actions.set(ds.actions.subarray(j * ka, (j + 1) * ka), i * ka);
    if (proprio !== null) proprio.set(ds.proprio!.subarray(j * pd, (j + 1) * pd), i * pd);
  }
  return { pixels, inputIds, proprio, actions, noise: out?.noise ?? null, size: n };
}

/** A new dataset holding only the samples at `indices` (copied, in that order). */
export function subsetVlaDataset(ds: VlaDataset, indices: ArrayLike<number>, source = ds.source): VlaDataset {
  const n = indices.length, img = ds.views * ds.imageSize * ds.imageSize * 3;
  const images = new Uint8Array(n * img), ids = new Int32Array(n * ds.inputIds), actions = new Float32Array(n * ds.actionSize);
  const proprio = ds.proprio !== null ? new Float32Array(n * ds.proprioDim) : null;
  const task = new Int32Array(n), episode = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = indices[i]!;
    checkIndex(j, i, ds.size);
    images.set(ds.images.subarray(j * img, (j + 1) * img), i * img);
    ids.set(ds.ids.subarray(j * ds.inputIds, (j + 1) * ds.inputIds), i * ds.inputIds);
    actions.set(ds.actions.subarray(j * ds.actionSize, (j + 1) * ds.actionSize), i * ds.actionSize);
    if (proprio !== null) proprio.set(ds.proprio!.subarray(j * ds.proprioDim, (j + 1) * ds.proprioDim), i * ds.proprioDim);
    task[i] = ds.task[j]!;
    episode[i] = ds.episode[j]!;
  }
  return { ...ds, size: n, images, ids, proprio, actions, task, episode, source };
}

/** N-shot, as nShot: the first `n` episodes of each task. */
export function nShotVla(ds: VlaDataset, n: number): VlaDataset {
  return subsetVlaDataset(ds, nShotIndices(ds, n), `${ds.source} [${n}-shot]`);
}

/** The validation split by episode, as splitByEpisode (the same seeded choice). */
export function splitVlaByEpisode(ds: VlaDataset, options: SplitOptions = {}): { train: VlaDataset; val: VlaDataset } {
  const { train, val } = splitIndicesByEpisode(ds, options);
  return { train: subsetVlaDataset(ds, train, `${ds.source} [train]`), val: subsetVlaDataset(ds, val, `${ds.source} [val]`) };
}
