// Shared checks for the small float tensor files (adapter, policy): a tensor read as
// float32 whatever its float dtype, with the file and tensor named in every error.
import { FormatError } from '../../formats/errors.js';
import { isFloatDType, widenToF32 } from '../../formats/float16.js';
import type { Tensor } from '../../formats/tensor.js';

/** The tensor `name` of `tensors` as a fresh float32 array, after checking its dtype, shape and values. */
export function floatTensor(
  tensors: Record<string, Tensor>, name: string, shape: readonly number[], file: string, format: string,
): Float32Array {
  const field = `tensors["${name}"]`;
  const fail = (f: string, detail: string): never => {
    throw new FormatError(format, detail, { file, field: f });
  };
  const t = Object.prototype.hasOwnProperty.call(tensors, name) ? tensors[name] : undefined;
  if (t === undefined) return fail(field, 'is missing');
  if (!isFloatDType(t.dtype)) fail(`${field}.dtype`, `is ${t.dtype}; must be F32, F16 or BF16`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    fail(field, `has shape [${t.shape.join(', ')}] but [${shape.join(', ')}] is needed`);
  }
  const out = new Float32Array(t.data.length);
  widenToF32(t.dtype as 'F32' | 'F16' | 'BF16', t.data as Float32Array | Uint16Array, out);
  for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i]!)) fail(field, `has a non-finite value (${out[i]}) at flat index ${i}`);
  return out;
}

/** Throws naming the first tensor of `tensors` that is not in `known`. */
export function refuseExtraTensors(tensors: Record<string, Tensor>, known: Set<string>, file: string, format: string, why: string): void {
  for (const name of Object.keys(tensors)) {
    if (!known.has(name)) throw new FormatError(format, `is not expected (extra tensor; ${why})`, { file, field: `tensors["${name}"]` });
  }
}
