// The fixed tensor order of the built-in model: names as they appear in checkpoints, shapes
// and element counts, as native/core/model_desc.cc defines them (its one definition).
import * as native from '../native-calls.js';
import type { AdapterPolicyConfig } from './config.js';
import type { TensorSpec } from './policy-types.js';


const spec = (name: string, shape: number[]): TensorSpec => ({ name, shape, size: shape.reduce((a, b) => a * b, 1) });

/**
 * Trainable tensors, in order: `blocks.{l}.lora_A` (r×D), `blocks.{l}.lora_B` (D×r) for
 * l = 0..L-1, then `head.fc1.weight` (H×F), `head.fc1.bias` (H), `head.fc2.weight`
 * (K·A×H), `head.fc2.bias` (K·A). Gradient sets use the same order.
 */
export function trainableLayout(c: AdapterPolicyConfig): TensorSpec[] {
  return native.modelTensors(c).trainable.map((t) => spec(t.name, t.shape));
}

/** Frozen base tensors, in order: `blocks.{l}.weight` (D×D, applied as W·h), `blocks.{l}.bias` (D). */
export function frozenLayout(c: AdapterPolicyConfig): TensorSpec[] {
  return native.modelTensors(c).frozen.map((t) => spec(t.name, t.shape));
}

/** Anchor tensors: the first 2L entries of the trainable layout (initial LoRA A and B). */
export function anchorLayout(c: AdapterPolicyConfig): TensorSpec[] {
  return native.modelTensors(c).anchor.map((t) => spec(t.name, t.shape));
}
