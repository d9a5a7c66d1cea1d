// The fixed tensor order of the built-in model (mirrors native/core/model_desc.h): names
// as they appear in checkpoints, shapes and element counts.
import { featureWidth, type AdapterPolicyConfig } from './config.js';

/** One named tensor of a layout. */
export interface TensorSpec {
  name: string;
  shape: number[];
  size: number;
}

const spec = (name: string, shape: number[]): TensorSpec => ({ name, shape, size: shape.reduce((a, b) => a * b, 1) });

/**
 * Trainable tensors, in order: `blocks.{l}.lora_A` (r×D), `blocks.{l}.lora_B` (D×r) for
 * l = 0..L-1, then `head.fc1.weight` (H×F), `head.fc1.bias` (H), `head.fc2.weight`
 * (K·A×H), `head.fc2.bias` (K·A). Gradient sets use the same order.
 */
export function trainableLayout(c: AdapterPolicyConfig): TensorSpec[] {
  const out: TensorSpec[] = [];
  for (let l = 0; l < c.blocks; l++) {
    out.push(spec(`blocks.${l}.lora_A`, [c.rank, c.width]), spec(`blocks.${l}.lora_B`, [c.width, c.rank]));
  }
  const KA = c.chunk * c.actionDims;
  out.push(spec('head.fc1.weight', [c.headWidth, featureWidth(c)]), spec('head.fc1.bias', [c.headWidth]),
    spec('head.fc2.weight', [KA, c.headWidth]), spec('head.fc2.bias', [KA]));
  return out;
}

/** Frozen base tensors, in order: `blocks.{l}.weight` (D×D, applied as W·h), `blocks.{l}.bias` (D). */
export function frozenLayout(c: AdapterPolicyConfig): TensorSpec[] {
  const out: TensorSpec[] = [];
  for (let l = 0; l < c.blocks; l++) out.push(spec(`blocks.${l}.weight`, [c.width, c.width]), spec(`blocks.${l}.bias`, [c.width]));
  return out;
}

/** Anchor tensors: the first 2L entries of the trainable layout (initial LoRA A and B). */
export function anchorLayout(c: AdapterPolicyConfig): TensorSpec[] {
  return trainableLayout(c).slice(0, 2 * c.blocks);
}
