// File datasets: .npz or .safetensors with `tokens` (N,T,D) float32, `actions` (N,K·A)
// float32 and optional `task`, `episode` (N) int32. Every malformed or inconsistent field
// is a FormatError naming the file and the field.
import { extname } from 'node:path';
import { FormatError } from '../formats/errors.js';
import { readNpzFile, writeNpzFile } from '../formats/npz.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../formats/safetensors.js';
import type { Tensor } from '../formats/tensor.js';
import type { Dataset } from './dataset.js';
import { failer, needTensor, requireFinite, taskAndEpisode } from './fields.js';

type Kind = 'npz' | 'safetensors';

function kindOf(path: string): Kind {
  const ext = extname(path).toLowerCase();
  if (ext === '.npz') return 'npz';
  if (ext === '.safetensors') return 'safetensors';
  throw new FormatError('dataset', `unknown dataset file type '${ext}' (use .npz or .safetensors)`, { file: path });
}

/** Reads a dataset file (.npz or .safetensors) and validates it. */
export async function loadDatasetFile(path: string): Promise<Dataset> {
  const kind = kindOf(path);
  const tensors: Record<string, Tensor> = kind === 'npz' ? await readNpzFile(path) : (await readSafetensorsFile(path)).tensors;
  return datasetFromTensors(tensors, path, kind);
}

/** Builds a dataset from named tensors (as read from a file), validating every field. */
export function datasetFromTensors(tensors: Record<string, Tensor>, file: string, format = 'dataset'): Dataset {
  const fail = failer(file, format);
  const tok = needTensor(tensors, 'tokens', 'F32', 3, fail);
  const act = needTensor(tensors, 'actions', 'F32', 2, fail);
  const [N, T, D] = tok.shape as [number, number, number];
  if (N < 1 || T < 1 || D < 1) fail('tokens', `shape [${tok.shape.join(', ')}] has an empty dimension`);
  if (act.shape[0] !== N) fail('actions', `has ${act.shape[0]} rows but tokens has ${N} samples`);
  if (act.shape[1]! < 1) fail('actions', 'has zero values per sample');
  requireFinite('tokens', tok.data as Float32Array, fail);
  requireFinite('actions', act.data as Float32Array, fail);
  const { task, episode } = taskAndEpisode(tensors, N, 'tokens', fail);
  return {
    size: N, tokensPerSample: T, width: D, actionSize: act.shape[1]!,
    tokens: Float32Array.from(tok.data as Float32Array), actions: Float32Array.from(act.data as Float32Array),
    task, episode, source: file,
  };
}

/** Writes a dataset as .npz or .safetensors (by extension), in the layout loadDatasetFile reads. */
export async function saveDatasetFile(path: string, ds: Dataset): Promise<void> {
  const tensors = {
    tokens: { dtype: 'F32' as const, shape: [ds.size, ds.tokensPerSample, ds.width], data: ds.tokens },
    actions: { dtype: 'F32' as const, shape: [ds.size, ds.actionSize], data: ds.actions },
    task: { dtype: 'I32' as const, shape: [ds.size], data: ds.task },
    episode: { dtype: 'I32' as const, shape: [ds.size], data: ds.episode },
  };
  if (kindOf(path) === 'npz') await writeNpzFile(path, tensors);
  else await writeSafetensorsFile(path, tensors);
}
