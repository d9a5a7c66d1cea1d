// Field checks shared by the dataset file readers (files.ts for the built-in model's
// `tokens`, sequence-dataset.ts for a backbone's `prefix` / `input_ids`): each failure is
// a FormatError naming the file and the field.
import { FormatError } from '../formats/errors.js';
import type { Tensor } from '../formats/tensor.js';

export type Fail = (field: string, detail: string) => never;

export function failer(file: string, format: string): Fail {
  return (field: string, detail: string): never => {
    throw new FormatError(format, detail, { file, field });
  };
}

const DTYPE_WORD: Record<string, string> = { F32: 'float32', I32: 'int32', U8: 'uint8' };

/** The tensor `name` with the given dtype and rank; a missing one is an error. */
export function needTensor(tensors: Record<string, Tensor>, name: string, dtype: 'F32' | 'I32' | 'U8', rank: number, fail: Fail): Tensor {
  const t = Object.prototype.hasOwnProperty.call(tensors, name) ? tensors[name] : undefined;
  if (t === undefined) return fail(name, `missing field '${name}'`);
  if (t.dtype !== dtype) fail(name, `must be ${DTYPE_WORD[dtype]}, got ${t.dtype}`);
  if (t.shape.length !== rank) fail(name, `must have ${rank} dimensions, got shape [${t.shape.join(', ')}]`);
  return t;
}

/** Refuses NaN and ±inf, naming the field and the first bad index. */
export function requireFinite(name: string, d: Float32Array, fail: Fail): void {
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) fail(name, `has a non-finite value (${d[i]}) at flat index ${i}`);
}

/**
 * The optional `task` and `episode` (N) int32 fields (defaults: task 0, episode = index),
 * non-negative, each episode under one task. `ref` names the field that fixed N.
 */
export function taskAndEpisode(tensors: Record<string, Tensor>, N: number, ref: string, fail: Fail): { task: Int32Array; episode: Int32Array } {
  const ids = (name: string): Int32Array | undefined => {
    if (!Object.prototype.hasOwnProperty.call(tensors, name)) return undefined;
    const t = needTensor(tensors, name, 'I32', 1, fail);
    if (t.shape[0] !== N) fail(name, `has ${t.shape[0]} entries but ${ref} has ${N} samples`);
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
  return { task, episode };
}
