// The trainer's state as named tensors, grouped the way the run layer writes checkpoint
// files (ARCHITECTURE.md §6: model.safetensors, optimizer.safetensors), and back. Names: the
// source's parameter names for `model`; `<name>.exp_avg` and `<name>.exp_avg_sq`
// (torch.optim.AdamW's state names) for `optimizer`.
import { GradSet } from '../gradset.js';
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import type { TrainerState, TrainerStateJson } from './trainer.js';

/** A tensor as a Float32Array, or as read back from a file ({ data: Float32Array, ... }). */
export type TrainerTensorInput = Float32Array | { data: unknown };

/** Tensors of a checkpoint, by file (group) and tensor name. */
export interface TrainerTensorGroups {
  /** The trainable parameters, by parameter name. */
  model: Record<string, Float32Array>;
  /** AdamW moments: `<name>.exp_avg` and `<name>.exp_avg_sq`. */
  optimizer: Record<string, Float32Array>;
}

function checkNames(names: readonly string[], count: number): void {
  if (!Array.isArray(names) || names.length !== count) {
    throw argRangeError(`names must list ${count} parameter names, got ${describeValue(names)}`);
  }
  if (new Set(names).size !== names.length) throw argRangeError('names must be unique');
}

// Tensor views of a CPU set; host copies (one download) of a device set.
function hostTensors(set: GradSet): Float32Array[] {
  return set.device === 'cpu' ? set.sizes.map((_, i) => set.view(i)) : set.toArrays();
}

/** A tensor with its real shape, as checkpoint files store it. */
export interface ShapedTensor {
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

/** {@link TrainerTensorGroups} with every tensor shaped (parameters and their moments alike). */
export interface ShapedTrainerTensorGroups {
  model: Record<string, ShapedTensor>;
  optimizer: Record<string, ShapedTensor>;
}

function checkShapes(shapes: readonly (readonly number[])[], sizes: readonly number[], names: readonly string[]): void {
  if (!Array.isArray(shapes) || shapes.length !== sizes.length) {
    throw argRangeError(`shapes must list ${sizes.length} shapes (one per parameter), got ${describeValue(shapes)}`);
  }
  shapes.forEach((s, i) => {
    const ok = Array.isArray(s) && s.every((d) => Number.isSafeInteger(d) && d >= 0);
    if (!ok || s.reduce((a, b) => a * b, 1) !== sizes[i]) {
      throw argRangeError(`shapes[${i}] (${names[i]}) must be dimensions whose product is ${sizes[i]}, got ${describeValue(s)}`);
    }
  });
}

/**
 * The tensors of `state` grouped by checkpoint file: views of its GradSets (no copies) for
 * CPU sets, host copies downloaded once per set for sets on a GPU. With `shapes` (one per
 * parameter, e.g. a GradientSource's `paramShapes`), each tensor comes as
 * { dtype: 'F32', shape, data }, the AdamW moments with their parameter's shape.
 */
export function trainerTensorGroups(state: TrainerState, names: readonly string[]): TrainerTensorGroups;
export function trainerTensorGroups(state: TrainerState, names: readonly string[], shapes: readonly (readonly number[])[]): ShapedTrainerTensorGroups;
export function trainerTensorGroups(
  state: TrainerState, names: readonly string[], shapes?: readonly (readonly number[])[],
): TrainerTensorGroups | ShapedTrainerTensorGroups {
  checkNames(names, state.params.numTensors);
  if (shapes !== undefined) checkShapes(shapes, state.params.sizes, names);
  const wrap = (t: Float32Array, i: number): Float32Array | ShapedTensor =>
    shapes === undefined ? t : { dtype: 'F32', shape: [...shapes[i]!], data: t };
  const model: Record<string, Float32Array | ShapedTensor> = {};
  const optimizer: Record<string, Float32Array | ShapedTensor> = {};
  const [p, m, v] = [hostTensors(state.params), hostTensors(state.m), hostTensors(state.v)];
  names.forEach((n, i) => {
    model[n] = wrap(p[i]!, i);
    optimizer[`${n}.exp_avg`] = wrap(m[i]!, i);
    optimizer[`${n}.exp_avg_sq`] = wrap(v[i]!, i);
  });
  return { model, optimizer } as TrainerTensorGroups | ShapedTrainerTensorGroups;
}

/**
 * A TrainerState from state.json's trainer part and the checkpoint's tensors (Float32Arrays
 * or tensors as read back, e.g. RunDirectory's `resumed.tensors`), copied into fresh
 * CPU GradSets with the sizes of `like` (normally the source's params, on any device:
 * Trainer.restoreState uploads them, one copy per set). Only element counts are checked:
 * checkpoints store shaped tensors, older ones stored them 1-D, both resume. Errors name
 * the missing or mis-sized tensor.
 */
export function trainerStateFromGroups(
  json: TrainerStateJson,
  groups: { model?: Record<string, TrainerTensorInput>; optimizer?: Record<string, TrainerTensorInput> },
  names: readonly string[],
  like: GradSet,
): TrainerState {
  checkNames(names, like.numTensors);
  const take = (group: Record<string, TrainerTensorInput> | undefined, groupName: string, key: string, i: number): Float32Array => {
    const entry = group?.[key];
    const t = entry instanceof Float32Array ? entry : (entry as { data?: unknown } | undefined)?.data;
    if (!(t instanceof Float32Array)) throw argTypeError(`${groupName} has no float32 tensor '${key}'`);
    if (t.length !== like.sizes[i]) throw argRangeError(`${groupName} tensor '${key}' has ${t.length} elements, expected ${like.sizes[i]}`);
    return t;
  };
  const params = GradSet.fromArrays(names.map((n, i) => take(groups.model, 'model', n, i)));
  const m = GradSet.fromArrays(names.map((n, i) => take(groups.optimizer, 'optimizer', `${n}.exp_avg`, i)));
  const v = GradSet.fromArrays(names.map((n, i) => take(groups.optimizer, 'optimizer', `${n}.exp_avg_sq`, i)));
  return { json, params, m, v };
}
