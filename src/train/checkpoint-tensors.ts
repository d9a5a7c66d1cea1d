// The trainer's state as named tensors, grouped the way the run layer writes checkpoint
// files (DESIGN.md §6: model.safetensors, optimizer.safetensors), and back. Names: the
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

/**
 * The tensors of `state` grouped by checkpoint file: views of its GradSets (no copies) for
 * CPU sets, host copies downloaded once per set for sets on a GPU.
 */
export function trainerTensorGroups(state: TrainerState, names: readonly string[]): TrainerTensorGroups {
  checkNames(names, state.params.numTensors);
  const model: Record<string, Float32Array> = {};
  const optimizer: Record<string, Float32Array> = {};
  const [p, m, v] = [hostTensors(state.params), hostTensors(state.m), hostTensors(state.v)];
  names.forEach((n, i) => {
    model[n] = p[i]!;
    optimizer[`${n}.exp_avg`] = m[i]!;
    optimizer[`${n}.exp_avg_sq`] = v[i]!;
  });
  return { model, optimizer };
}

/**
 * A TrainerState from state.json's trainer part and the checkpoint's tensors (Float32Arrays
 * or tensors as read back, e.g. RunDirectory's `resumed.tensors`), copied into fresh
 * CPU GradSets with the sizes of `like` (normally the source's params, on any device:
 * Trainer.restoreState uploads them, one copy per set). Errors name the missing or
 * mis-sized tensor.
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
