// File datasets: .npz or .safetensors with `tokens` (N,T,D) float32, `actions` (N,K·A)
// float32 and optional `task`, `episode` (N) int32. Every malformed or inconsistent field
// is a FormatError naming the file and the field.
import { extname } from 'node:path';
import { FormatError } from '../formats/errors.js';
import { readNpzFile, writeNpzFile } from '../formats/npz.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../formats/safetensors.js';
import type { Tensor } from '../formats/tensor.js';
import type { Dataset } from './dataset.js';

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
  const fail = (field: string, detail: string): never => {
    throw new FormatError(format, detail, { file, field });
  };
  const need = (name: string, dtype: string, rank: number): Tensor => {
    const t = tensors[name];
    if (t === undefined) return fail(name, `missing field '${name}'`);
    if (t.dtype !== dtype) fail(name, `must be ${dtype === 'F32' ? 'float32' : 'int32'}, got ${t.dtype}`);
    if (t.shape.length !== rank) fail(name, `must have ${rank} dimensions, got shape [${t.shape.join(', ')}]`);
    return t;
  };
  const tok = need('tokens', 'F32', 3);
  const act = need('actions', 'F32', 2);
  const [N, T, D] = tok.shape as [number, number, number];
  if (N < 1 || T < 1 || D < 1) fail('tokens', `shape [${tok.shape.join(', ')}] has an empty dimension`);
  if (act.shape[0] !== N) fail('actions', `has ${act.shape[0]} rows but tokens has ${N} samples`);
  if (act.shape[1]! < 1) fail('actions', 'has zero values per sample');
  for (const [name, t] of [['tokens', tok], ['actions', act]] as const) {
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) fail(name, `has a non-finite value (${d[i]}) at flat index ${i}`);
  }
  const ids = (name: string): Int32Array | undefined => {
    if (tensors[name] === undefined) return undefined;
    const t = need(name, 'I32', 1);
    if (t.shape[0] !== N) fail(name, `has ${t.shape[0]} entries but tokens has ${N} samples`);
    const d = t.data as Int32Array;
    for (let i = 0; i < N; i++) if (d[i]! < 0) fail(name, `has a negative id (${d[i]}) at index ${i}`);
    return Int32Array.from(d);
  };
  const task = ids('task') ?? new Int32Array(N);
  const episode = ids('episode') ?? Int32Array.from({ length: N }, (_, i) => i);
  // An episode belongs to one task.
  const taskOf = new Map<number, number>();
  for (let i = 0; i < N; i++) {
    const prev = taskOf.get(episode[i]!);
    if (prev === undefined) taskOf.set(episode[i]!, task[i]!);
    else if (prev !== task[i]) fail('episode', `episode ${episode[i]} appears under tasks ${prev} and ${task[i]} (index ${i})`);
  }
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
