// A VLA-Adapter (OpenVLA-OFT layout) Hugging Face config.json and preprocessor_config.json,
// read strictly (docs/VLA-ADAPTER.md "Files"; prismatic/extern/hf/configuration_prismatic.py,
// modeling_prismatic.py:95-165, processing_prismatic.py:129-140).
//
// config.json: model_type "openvla", use_fused_vision_backbone true, two timm_model_ids
// (featurizer = DINOv2, fused_featurizer = SigLIP) whose shapes come from the table below
// (timm v0.9.10's definitions), image_sizes (one per tower, equal: the 6-channel image feeds
// both), timm_override_act_layers null (timm's erf GELU), and text_config, a Qwen2 config
// read by parseQwen2Config.
//
// Test models: a key `craftgrad_tiny_towers`, an array of two objects
//   {embed_dim, depth, num_heads, mlp_hidden, patch_size, reg_tokens, class_token (0|1),
//    layer_scale (bool), attn_pool (bool, optional, default false)}
// replaces the timm shapes (timm_model_ids are then not looked up; image_sizes still apply).
// `attn_pool` says the tower has SigLIP's MAP head (never computed; its tensors and PEFT's
// LoRA on it exist). upstream's code does not know this key: such a directory is craftgrad's
// own, for tests.
//
// preprocessor_config.json: `tvf_normalize_params`, two {mean: [3], std: [3]} (the
// bf16-rounded values upstream's processor applies after to_tensor).
//
// Every size read here is also checked against the weights' shapes when they are loaded.
import { FormatError } from '../../formats/errors.js';
import { type Qwen2Config, parseQwen2Config } from '../qwen2/config.js';

const FORMAT = 'vla config';

/** One timm VisionTransformer tower (the native VitConfig). */
export interface VitTowerConfig {
  /** The timm id of config.json (also under craftgrad_tiny_towers). */
  timmId: string;
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpHidden: number;
  patchSize: number;
  imageSize: number;
  classToken: 0 | 1;
  regTokens: number;
  layerScale: boolean;
  layerNormEps: number;
  /** SigLIP's attention-pooling (MAP) head: present in the weights, never computed. */
  attnPool: boolean;
}

export interface VlaModelConfig {
  /** [featurizer (DINOv2), fused_featurizer (SigLIP)]. */
  towers: readonly [VitTowerConfig, VitTowerConfig];
  /** The fused projector's fc1 width: 4 × (D0 + D1) (modeling_prismatic.py:253-257). */
  projectorHidden: number;
  /** text_config. */
  text: Qwen2Config;
  /** True when craftgrad_tiny_towers gave the tower shapes. */
  tinyTowers: boolean;
}

/** Normalisation each tower's pixels get after to_tensor: (x − mean) / std per channel. */
export interface TowerNormalize {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

type Shape = Omit<VitTowerConfig, 'timmId' | 'imageSize'>;

/** timm v0.9.10's shapes of the ids VLA-Adapter uses (vision_transformer.py:2460-2463, :2547-2550). */
export const KNOWN_TIMM_TOWERS: Readonly<Record<string, Readonly<Shape>>> = Object.freeze({
  'vit_large_patch14_reg4_dinov2.lvd142m': Object.freeze({
    embedDim: 1024, depth: 24, numHeads: 16, mlpHidden: 4096, patchSize: 14, classToken: 1 as const, regTokens: 4,
    layerScale: true, layerNormEps: 1e-6, attnPool: false,
  }),
  'vit_so400m_patch14_siglip_224': Object.freeze({
    embedDim: 1152, depth: 27, numHeads: 16, mlpHidden: 4304, patchSize: 14, classToken: 0 as const, regTokens: 0,
    layerScale: false, layerNormEps: 1e-6, attnPool: true,
  }),
});

/** Checks a parsed config.json object; `file` names it in errors. */
export function parseVlaConfig(raw: unknown, file: string): VlaModelConfig {
  const fail = (field: string, detail: string): never => {
    throw new FormatError(FORMAT, detail, { file, field });
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('config', 'must be a JSON object');
  const c = raw as Record<string, unknown>;
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(c, k) && c[k] !== undefined && c[k] !== null;
  if (c.model_type !== 'openvla') fail('model_type', `is ${JSON.stringify(c.model_type)}; a VLA-Adapter directory has "openvla"`);
  if (c.use_fused_vision_backbone !== true) {
    fail('use_fused_vision_backbone', `is ${JSON.stringify(c.use_fused_vision_backbone)}; VLA-Adapter's fused DINOv2 + SigLIP backbone (true) is the only one craftgrad runs`);
  }
  const ids = c.timm_model_ids;
  if (!Array.isArray(ids) || ids.length !== 2 || ids.some((s) => typeof s !== 'string')) {
    fail('timm_model_ids', `must be the two timm ids [featurizer, fused_featurizer], got ${JSON.stringify(ids)}`);
  }
  const sizes = c.image_sizes;
  if (!Array.isArray(sizes) || sizes.length !== 2 || sizes.some((s) => typeof s !== 'number' || !Number.isSafeInteger(s) || s < 1)) {
    fail('image_sizes', `must be two positive integers, one per tower, got ${JSON.stringify(sizes)}`);
  }
  if ((sizes as number[])[0] !== (sizes as number[])[1]) fail('image_sizes', `are ${JSON.stringify(sizes)}; both towers read the same image, so they must be equal`);
  if (has('timm_override_act_layers')) {
    const a = c.timm_override_act_layers;
    if (!Array.isArray(a) || a.length !== 2 || a.some((x) => x !== null)) {
      fail('timm_override_act_layers', `is ${JSON.stringify(a)}; only [null, null] (timm's erf GELU) is implemented`);
    }
  }
  if (!has('text_config') || typeof c.text_config !== 'object' || Array.isArray(c.text_config)) {
    fail('text_config', 'must be the Qwen2 language model\'s config (an object)');
  }
  const text = parseQwen2Config(c.text_config, `${file} (text_config)`);

  // The ids name the towers' architecture (DINOv2's registers and LayerScale, SigLIP's MAP
  // head): an unknown one is refused even when craftgrad_tiny_towers gives smaller shapes.
  (ids as string[]).forEach((id, k) => {
    if (!Object.prototype.hasOwnProperty.call(KNOWN_TIMM_TOWERS, id)) {
      fail(`timm_model_ids[${k}]`, `is ${JSON.stringify(id)}, a timm model craftgrad does not know the shapes of (known: ${Object.keys(KNOWN_TIMM_TOWERS).join(', ')})`);
    }
  });
  let shapes: Shape[];
  const tiny = has('craftgrad_tiny_towers');
  if (tiny) {
    const t = c.craftgrad_tiny_towers;
    if (!Array.isArray(t) || t.length !== 2) fail('craftgrad_tiny_towers', `must be an array of the two towers' shapes, got ${JSON.stringify(t)}`);
    shapes = (t as unknown[]).map((v, k) => tinyTower(v, `craftgrad_tiny_towers[${k}]`, fail));
  } else {
    shapes = (ids as string[]).map((id) => ({ ...KNOWN_TIMM_TOWERS[id]! }));
  }
  const towers = shapes.map((s, k) => {
    const imageSize = (sizes as number[])[k]!;
    if (imageSize < s.patchSize || imageSize % s.patchSize !== 0) {
      fail(`image_sizes[${k}]`, `${imageSize} is not a positive multiple of the tower's patch size ${s.patchSize}`);
    }
    return Object.freeze({ timmId: (ids as string[])[k]!, ...s, imageSize });
  }) as [VitTowerConfig, VitTowerConfig];
  if (towers[0].patchSize !== towers[1].patchSize) {
    fail(tiny ? 'craftgrad_tiny_towers' : 'timm_model_ids', `the towers' patch sizes ${towers[0].patchSize} and ${towers[1].patchSize} differ; their patch tokens are fused one to one`);
  }
  return Object.freeze({
    towers: Object.freeze(towers) as readonly [VitTowerConfig, VitTowerConfig],
    projectorHidden: 4 * (towers[0].embedDim + towers[1].embedDim),
    text,
    tinyTowers: tiny,
  });
}

function tinyTower(v: unknown, at: string, fail: (field: string, detail: string) => never): Shape {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail(at, 'must be an object');
  const o = v as Record<string, unknown>;
  const known = ['embed_dim', 'depth', 'num_heads', 'mlp_hidden', 'patch_size', 'reg_tokens', 'class_token', 'layer_scale', 'attn_pool'];
  for (const k of Object.keys(o)) if (!known.includes(k)) fail(`${at}.${k}`, `is not a tower field (${known.join(', ')})`);
  const int = (k: string, lo: number): number => {
    const x = o[k];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < lo) fail(`${at}.${k}`, `must be an integer ≥ ${lo}, got ${JSON.stringify(x)}`);
    return x as number;
  };
  const bool = (k: string, fallback?: boolean): boolean => {
    const x = o[k];
    if (x === undefined && fallback !== undefined) return fallback;
    if (typeof x !== 'boolean') fail(`${at}.${k}`, `must be true or false, got ${JSON.stringify(x)}`);
    return x as boolean;
  };
  const embedDim = int('embed_dim', 1), numHeads = int('num_heads', 1);
  if (embedDim % numHeads !== 0) fail(`${at}.num_heads`, `${numHeads} does not divide embed_dim ${embedDim}`);
  // timm's class_token is a bool; 0/1 read the same.
  const ct = o.class_token;
  const classToken = typeof ct === 'boolean' ? Number(ct) : int('class_token', 0);
  if (classToken > 1) fail(`${at}.class_token`, `must be true/false (or 0/1), got ${classToken}`);
  return {
    embedDim, depth: int('depth', 2), numHeads, mlpHidden: int('mlp_hidden', 1), patchSize: int('patch_size', 1),
    classToken: classToken as 0 | 1, regTokens: int('reg_tokens', 0), layerScale: bool('layer_scale'), layerNormEps: 1e-6,
    attnPool: bool('attn_pool', false),
  };
}

/** preprocessor_config.json's tvf_normalize_params, one per tower; `file` names it in errors. */
export function parseVlaPreprocessor(raw: unknown, file: string): readonly [TowerNormalize, TowerNormalize] {
  const fail = (field: string, detail: string): never => {
    throw new FormatError(FORMAT, detail, { file, field });
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('config', 'must be a JSON object');
  const p = (raw as Record<string, unknown>).tvf_normalize_params;
  if (p === undefined) fail('tvf_normalize_params', 'is missing (upstream\'s processor normalises each tower\'s pixels with it)');
  if (!Array.isArray(p) || p.length !== 2) fail('tvf_normalize_params', `must be two {mean, std} objects, one per tower, got ${JSON.stringify(p)}`);
  const out = (p as unknown[]).map((v, k) => {
    const at = `tvf_normalize_params[${k}]`;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail(at, 'must be an object with mean and std');
    const three = (key: 'mean' | 'std'): [number, number, number] => {
      const x = (v as Record<string, unknown>)[key];
      if (!Array.isArray(x) || x.length !== 3 || x.some((e) => typeof e !== 'number' || !Number.isFinite(e))) {
        fail(`${at}.${key}`, `must be 3 finite numbers (one per RGB channel), got ${JSON.stringify(x)}`);
      }
      if (key === 'std' && (x as number[]).some((e) => e <= 0)) fail(`${at}.std`, `must be > 0, got ${JSON.stringify(x)}`);
      return [...(x as number[])] as [number, number, number];
    };
    return Object.freeze({ mean: Object.freeze(three('mean')), std: Object.freeze(three('std')) }) as TowerNormalize;
  });
  return Object.freeze(out) as readonly [TowerNormalize, TowerNormalize];
}

/** The model fields of the binding's RawVlaConfig (native/napi/vla_call.cc); run fields are the caller's. */
export function vlaRawModelConfig(c: VlaModelConfig): Record<string, unknown> {
  return {
    towers: c.towers.map((t) => ({
      embedDim: t.embedDim, depth: t.depth, numHeads: t.numHeads, mlpHidden: t.mlpHidden, patchSize: t.patchSize,
      imageSize: t.imageSize, classToken: t.classToken, regTokens: t.regTokens, layerScale: t.layerScale, layerNormEps: t.layerNormEps,
    })),
    projectorHidden: c.projectorHidden,
    hiddenSize: c.text.hiddenSize,
    numLayers: c.text.numLayers,
    numHeads: c.text.numHeads,
    numKvHeads: c.text.numKvHeads,
    intermediateSize: c.text.intermediateSize,
    vocabSize: c.text.vocabSize,
    rmsNormEps: c.text.rmsNormEps,
    ropeTheta: c.text.ropeTheta,
  };
}

/** Patch tokens per view: (imageSize / patchSize)². */
export function towerPatches(t: VitTowerConfig): number {
  const g = t.imageSize / t.patchSize;
  return g * g;
}
