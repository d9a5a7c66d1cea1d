// Named views of a GradSet's tensors and loading named tensors into one, shared by the
// models (checkpoints, anchors, initial weights): every name of the layout is checked (F32,
// shape, finite) before anything is copied, so a bad file changes nothing.
import { GradSet, gradSetInternals } from '../gradset.js';
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import type { Tensor } from '../formats/tensor.js';

/** A named tensor of a layout. */
export interface NamedSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly size: number;
}

export function namedTensors(specs: readonly NamedSpec[], set: GradSet): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  // A CPU set's own array (live views), else one download (each tensor a view of the copy).
  const flat = gradSetInternals(set).data ?? set.toFlat();
  specs.forEach((t, i) => {
    out[t.name] = { dtype: 'F32', shape: [...t.shape], data: flat.subarray(set.offsets[i], set.offsets[i]! + set.sizes[i]!) };
  });
  return out;
}

export function loadNamedTensors(specs: readonly NamedSpec[], set: GradSet, tensors: Record<string, Tensor>, name: string): void {
  checkTensors(specs, tensors, name);
  // Every tensor of the layout is given: assemble on the host, copy in once.
  const flat = new Float32Array(set.numElements);
  copyIn(specs, flat, tensors);
  set.set(flat);
}

export function copyIn(specs: readonly NamedSpec[], flat: Float32Array, tensors: Record<string, Tensor>): void {
  let o = 0;
  for (const t of specs) {
    flat.set(tensors[t.name]!.data as Float32Array, o);
    o += t.size;
  }
}

/** `tensors` when it is an object (of tensors by name); TypeError naming it otherwise. */
export function checkTensorRecord(tensors: unknown, name: string): Record<string, Tensor> {
  if (tensors === null || typeof tensors !== 'object') throw argTypeError(`${name} must be an object of tensors, got ${describeValue(tensors)}`);
  return tensors as Record<string, Tensor>;
}

/** Checks every tensor of `specs` is in `tensors` (F32, the right shape, finite) before anything is copied. */
export function checkTensors(specs: readonly NamedSpec[], tensors: Record<string, Tensor>, name: string): Record<string, Tensor> {
  checkTensorRecord(tensors, name);
  // Check everything before copying anything: a bad file changes nothing.
  for (const t of specs) {
    const x = tensors[t.name];
    if (x === undefined) throw argRangeError(`tensor '${t.name}' is missing from ${name}`);
    if (x.dtype !== 'F32' || !(x.data instanceof Float32Array)) throw argTypeError(`tensor '${t.name}' in ${name} must be F32, got ${x.dtype}`);
    if (x.shape.length !== t.shape.length || x.shape.some((d, i) => d !== t.shape[i])) {
      throw argRangeError(`tensor '${t.name}' in ${name} has shape [${x.shape.join(', ')}], expected [${t.shape.join(', ')}]`);
    }
    for (let i = 0; i < x.data.length; i++) {
      if (!Number.isFinite(x.data[i]!)) throw argRangeError(`tensor '${t.name}' in ${name} has a non-finite value at index ${i}`);
    }
  }
  return tensors;
}
