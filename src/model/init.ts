// Seeded initial weights. Frozen base: W ~ N(0, (0.5/√D)²) so the residual stack stays
// well-conditioned, b ~ N(0, 0.02²). LoRA as PEFT does it: A ~ U(±1/√D), B = 0. Head
// layers as torch.nn.Linear: weight and bias ~ U(±1/√fan_in).
import { Rng } from '../data/rng.js';
import type { AdapterPolicyConfig } from './config.js';
import type { TensorSpec } from './policy-types.js';

export function initFrozen(c: AdapterPolicyConfig, layout: TensorSpec[], flat: Float32Array, seed: number): void {
  const rng = new Rng(seed * 2 + 1);
  let o = 0;
  for (const t of layout) {
    const std = t.name.endsWith('.weight') ? 0.5 / Math.sqrt(c.width) : 0.02;
    for (let i = 0; i < t.size; i++) flat[o + i] = std * rng.normal();
    o += t.size;
  }
}

export function initTrainable(c: AdapterPolicyConfig, layout: TensorSpec[], flat: Float32Array, seed: number): void {
  const rng = new Rng(seed * 2 + 2);
  let o = 0;
  for (const t of layout) {
    let bound = 0;
    if (t.name.endsWith('lora_A')) bound = 1 / Math.sqrt(c.width);
    else if (t.name.startsWith('head.fc1')) bound = 1 / Math.sqrt(layout.find((s) => s.name === 'head.fc1.weight')!.shape[1]!);
    else if (t.name.startsWith('head.fc2')) bound = 1 / Math.sqrt(c.headWidth);
    for (let i = 0; i < t.size; i++) flat[o + i] = bound === 0 ? 0 : rng.range(-bound, bound);
    o += t.size;
  }
}
