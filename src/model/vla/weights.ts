// VLA-Adapter's frozen weights as craftgrad keeps them: one float32 buffer per group, in
// the order and with the internal offsets of native/core/vla_desc.cc (vlaFrozenGroups,
// vitStemOffsets, vitBlockOffsets, projectorOffsets) and qwen2_desc.cc (qwen2LayerOffsets):
//   per tower t (featurizer, fused_featurizer):
//     "t.stem": patch_embed.proj.weight as (D × 3p²) (the Conv2d weight (D,3,p,p) row-major),
//               patch_embed.proj.bias (D), pos_embed (N × D), cls_token (D) if any, reg_token (R × D) if any
//     "t.blocks.b" for b in 0..depth−2: norm1.{weight,bias}, attn.qkv.{weight (3D×D),bias},
//               attn.proj.{weight,bias}, ls1.scale_factor (with LayerScale), norm2.{weight,bias},
//               mlp.fc1.{weight (mlp×D),bias}, mlp.fc2.{weight (D×mlp),bias}, ls2.scale_factor
//   "projector": fc1.{weight (H × Dv), bias}, fc2.{weight (D × H), bias}, fc3.{weight, bias}
//   "embed_tokens" (V × D); "layers.l" (qwen2LayerLayout order); "norm" (D)
// State-dict names are upstream's (modeling_prismatic.py; docs/VLA-ADAPTER.md "Files").
// Tensors the model holds but never computes (each tower's last block and final norm,
// SigLIP's attn_pool, lm_head) are listed with their shapes so loaders check them, and are
// not kept.
import type { Qwen2Config } from '../qwen2/config.js';
import { qwen2LayerLayout } from '../qwen2/weights.js';
import { type VitTowerConfig, type VlaModelConfig, towerPatches } from './config.js';

export const VLA_TOWERS = ['featurizer', 'fused_featurizer'] as const;
export type VlaTowerName = (typeof VLA_TOWERS)[number];

/** One tensor inside a group: its state-dict name, shape as stored, and place in the group. */
export interface FrozenTensorSpec {
  name: string;
  shape: readonly number[];
  offset: number;
  size: number;
}

/** One frozen group: vlaFrozenGroups' name and length, and the tensors it holds. */
export interface FrozenGroupSpec {
  name: string;
  floats: number;
  tensors: readonly FrozenTensorSpec[];
}

/** A loaded group. */
export interface FrozenGroup {
  name: string;
  data: Float32Array;
}

const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

function group(name: string, list: [string, number[]][]): FrozenGroupSpec {
  let offset = 0;
  const tensors = list.map(([n, shape]) => {
    const size = prod(shape);
    const t = { name: n, shape, offset, size };
    offset += size;
    return t;
  });
  return { name, floats: offset, tensors };
}

export function towerPrefix(k: 0 | 1): string {
  return `vision_backbone.${VLA_TOWERS[k]}`;
}

/** A tower block's tensors, in VitBlockOffsets order. */
export function vitBlockTensors(t: VitTowerConfig, prefix: string): [string, number[]][] {
  const D = t.embedDim, M = t.mlpHidden;
  const out: [string, number[]][] = [
    [`${prefix}.norm1.weight`, [D]], [`${prefix}.norm1.bias`, [D]],
    [`${prefix}.attn.qkv.weight`, [3 * D, D]], [`${prefix}.attn.qkv.bias`, [3 * D]],
    [`${prefix}.attn.proj.weight`, [D, D]], [`${prefix}.attn.proj.bias`, [D]],
  ];
  if (t.layerScale) out.push([`${prefix}.ls1.scale_factor`, [D]]);
  out.push(
    [`${prefix}.norm2.weight`, [D]], [`${prefix}.norm2.bias`, [D]],
    [`${prefix}.mlp.fc1.weight`, [M, D]], [`${prefix}.mlp.fc1.bias`, [M]],
    [`${prefix}.mlp.fc2.weight`, [D, M]], [`${prefix}.mlp.fc2.bias`, [D]],
  );
  if (t.layerScale) out.push([`${prefix}.ls2.scale_factor`, [D]]);
  return out;
}

/** The frozen groups in vlaFrozenGroups order, each with its tensors (state-dict names). */
export function vlaFrozenLayout(c: VlaModelConfig): FrozenGroupSpec[] {
  const groups: FrozenGroupSpec[] = [];
  for (const k of [0, 1] as const) {
    const t = c.towers[k], p = towerPrefix(k), D = t.embedDim, P = t.patchSize;
    const stem: [string, number[]][] = [
      [`${p}.patch_embed.proj.weight`, [D, 3, P, P]],
      [`${p}.patch_embed.proj.bias`, [D]],
      [`${p}.pos_embed`, [1, towerPatches(t), D]],
    ];
    if (t.classToken) stem.push([`${p}.cls_token`, [1, 1, D]]);
    if (t.regTokens > 0) stem.push([`${p}.reg_token`, [1, t.regTokens, D]]);
    groups.push(group(`${VLA_TOWERS[k]}.stem`, stem));
    for (let b = 0; b < t.depth - 1; b++) groups.push(group(`${VLA_TOWERS[k]}.blocks.${b}`, vitBlockTensors(t, `${p}.blocks.${b}`)));
  }
  const Dv = c.towers[0].embedDim + c.towers[1].embedDim, H = c.projectorHidden, D = c.text.hiddenSize;
  groups.push(group('projector', [
    ['projector.fc1.weight', [H, Dv]], ['projector.fc1.bias', [H]],
    ['projector.fc2.weight', [D, H]], ['projector.fc2.bias', [D]],
    ['projector.fc3.weight', [D, D]], ['projector.fc3.bias', [D]],
  ]));
  groups.push(group('embed_tokens', [['language_model.model.embed_tokens.weight', [c.text.vocabSize, D]]]));
  const layer = qwen2LayerLayout(c.text);
  for (let l = 0; l < c.text.numLayers; l++) {
    groups.push(group(`layers.${l}`, layer.tensors.map((t) => [`language_model.model.layers.${l}.${t.suffix}`, [...t.shape]])));
  }
  groups.push(group('norm', [['language_model.model.norm.weight', [D]]]));
  return groups;
}

/** lm_head's name and shape (absent from the files when tied to embed_tokens). */
export function vlaLmHead(text: Qwen2Config): [string, number[]] {
  return ['language_model.lm_head.weight', [text.vocabSize, text.hiddenSize]];
}

/** SigLIP's MAP head (timm AttentionPoolLatent): name suffix -> shape. */
export function attnPoolTensors(t: VitTowerConfig, prefix: string): [string, number[]][] {
  const D = t.embedDim, M = t.mlpHidden;
  return [
    [`${prefix}.attn_pool.latent`, [1, 1, D]],
    [`${prefix}.attn_pool.q.weight`, [D, D]], [`${prefix}.attn_pool.q.bias`, [D]],
    [`${prefix}.attn_pool.kv.weight`, [2 * D, D]], [`${prefix}.attn_pool.kv.bias`, [2 * D]],
    [`${prefix}.attn_pool.proj.weight`, [D, D]], [`${prefix}.attn_pool.proj.bias`, [D]],
    [`${prefix}.attn_pool.norm.weight`, [D]], [`${prefix}.attn_pool.norm.bias`, [D]],
    [`${prefix}.attn_pool.mlp.fc1.weight`, [M, D]], [`${prefix}.attn_pool.mlp.fc1.bias`, [M]],
    [`${prefix}.attn_pool.mlp.fc2.weight`, [D, M]], [`${prefix}.attn_pool.mlp.fc2.bias`, [D]],
  ];
}

/**
 * Tensors every checkpoint holds that craftgrad never computes: each tower's last block and
 * final norm, SigLIP's attn_pool. Shape-checked by the loaders, not kept. (lm_head: vlaLmHead.)
 */
export function vlaUncomputedTensors(c: VlaModelConfig): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const k of [0, 1] as const) {
    const t = c.towers[k], p = towerPrefix(k);
    for (const [n, s] of vitBlockTensors(t, `${p}.blocks.${t.depth - 1}`)) out.set(n, s);
    out.set(`${p}.norm.weight`, [t.embedDim]);
    out.set(`${p}.norm.bias`, [t.embedDim]);
    if (t.attnPool) for (const [n, s] of attnPoolTensors(t, p)) out.set(n, s);
  }
  return out;
}

/** action_queries.weight (Q × D): trainable, loaded separately when a file holds it. */
export const ACTION_QUERIES = 'action_queries.weight';

/** Zero-filled groups of the layout, and a name -> (shape, view) map into them. */
export function allocateVlaFrozen(layout: readonly FrozenGroupSpec[]): {
  groups: FrozenGroup[];
  views: Map<string, { shape: readonly number[]; dest: Float32Array }>;
} {
  const groups: FrozenGroup[] = [];
  const views = new Map<string, { shape: readonly number[]; dest: Float32Array }>();
  for (const g of layout) {
    const data = new Float32Array(g.floats);
    groups.push({ name: g.name, data });
    for (const t of g.tensors) views.set(t.name, { shape: t.shape, dest: data.subarray(t.offset, t.offset + t.size) });
  }
  return { groups, views };
}
