// Tiny VLA-Adapter checkpoint directories for tests, in upstream's layout (docs/VLA-ADAPTER.md
// "Files"): config.json (VLA-Adapter's, plus `craftgrad_tiny_towers` giving the tiny towers'
// shapes), model.safetensors with AutoModelForVision2Seq's state-dict names,
// preprocessor_config.json and dataset_statistics.json; and a dataset file in the layout
// `--data` reads. The names and shapes are written out here by hand from timm v0.9.10, the
// Prismatic projector and transformers' Qwen2, independently of src/model/vla, so the loader
// is checked against them. Small widths (the head needs hidden % 16 == 0), real structure:
// registers and LayerScale in the first tower, none in the second, a MAP head in the second.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSafetensors } from '../../dist/formats/index.js';
import { randn, rng } from './random.mjs';

/** The default tiny shapes. */
export const TINY_VLA = Object.freeze({
  towers: [
    { embed_dim: 32, depth: 3, num_heads: 4, mlp_hidden: 64, patch_size: 14, reg_tokens: 4, class_token: true, layer_scale: true },
    { embed_dim: 48, depth: 3, num_heads: 4, mlp_hidden: 80, patch_size: 14, reg_tokens: 0, class_token: false, layer_scale: false, attn_pool: true },
  ],
  image: 28,
  hidden: 64, layers: 3, heads: 4, kvHeads: 2, intermediate: 96, vocab: 64,
  queries: 4,
});

const numel = (shape) => shape.reduce((a, b) => a * b, 1);

/** name -> shape of every tensor the model file holds. */
export function vlaTensorShapes(spec = TINY_VLA) {
  const out = new Map();
  const names = ['featurizer', 'fused_featurizer'];
  spec.towers.forEach((t, k) => {
    const p = `vision_backbone.${names[k]}`, D = t.embed_dim, H = t.mlp_hidden, g = spec.image / t.patch_size;
    if (t.class_token) out.set(`${p}.cls_token`, [1, 1, D]);
    if (t.reg_tokens) out.set(`${p}.reg_token`, [1, t.reg_tokens, D]);
    out.set(`${p}.pos_embed`, [1, g * g, D]);
    out.set(`${p}.patch_embed.proj.weight`, [D, 3, t.patch_size, t.patch_size]);
    out.set(`${p}.patch_embed.proj.bias`, [D]);
    for (let b = 0; b < t.depth; b++) {
      const q = `${p}.blocks.${b}`;
      out.set(`${q}.norm1.weight`, [D]);
      out.set(`${q}.norm1.bias`, [D]);
      out.set(`${q}.attn.qkv.weight`, [3 * D, D]);
      out.set(`${q}.attn.qkv.bias`, [3 * D]);
      out.set(`${q}.attn.proj.weight`, [D, D]);
      out.set(`${q}.attn.proj.bias`, [D]);
      if (t.layer_scale) out.set(`${q}.ls1.scale_factor`, [D]);
      out.set(`${q}.norm2.weight`, [D]);
      out.set(`${q}.norm2.bias`, [D]);
      out.set(`${q}.mlp.fc1.weight`, [H, D]);
      out.set(`${q}.mlp.fc1.bias`, [H]);
      out.set(`${q}.mlp.fc2.weight`, [D, H]);
      out.set(`${q}.mlp.fc2.bias`, [D]);
      if (t.layer_scale) out.set(`${q}.ls2.scale_factor`, [D]);
    }
    out.set(`${p}.norm.weight`, [D]);
    out.set(`${p}.norm.bias`, [D]);
    if (k === 1) {
      // timm's AttentionPoolLatent ('map' global pool): never computed by VLA-Adapter.
      out.set(`${p}.attn_pool.latent`, [1, 1, D]);
      out.set(`${p}.attn_pool.q.weight`, [D, D]);
      out.set(`${p}.attn_pool.q.bias`, [D]);
      out.set(`${p}.attn_pool.kv.weight`, [2 * D, D]);
      out.set(`${p}.attn_pool.kv.bias`, [2 * D]);
      out.set(`${p}.attn_pool.proj.weight`, [D, D]);
      out.set(`${p}.attn_pool.proj.bias`, [D]);
      out.set(`${p}.attn_pool.norm.weight`, [D]);
      out.set(`${p}.attn_pool.norm.bias`, [D]);
      out.set(`${p}.attn_pool.mlp.fc1.weight`, [H, D]);
      out.set(`${p}.attn_pool.mlp.fc1.bias`, [H]);
      out.set(`${p}.attn_pool.mlp.fc2.weight`, [D, H]);
      out.set(`${p}.attn_pool.mlp.fc2.bias`, [D]);
    }
  });
  const vd = spec.towers[0].embed_dim + spec.towers[1].embed_dim, Dm = spec.hidden;
  out.set('projector.fc1.weight', [4 * vd, vd]);
  out.set('projector.fc1.bias', [4 * vd]);
  out.set('projector.fc2.weight', [Dm, 4 * vd]);
  out.set('projector.fc2.bias', [Dm]);
  out.set('projector.fc3.weight', [Dm, Dm]);
  out.set('projector.fc3.bias', [Dm]);
  const hd = Dm / spec.heads, kv = spec.kvHeads * hd, I = spec.intermediate;
  out.set('language_model.model.embed_tokens.weight', [spec.vocab, Dm]);
  for (let l = 0; l < spec.layers; l++) {
    const p = `language_model.model.layers.${l}`;
    out.set(`${p}.input_layernorm.weight`, [Dm]);
    out.set(`${p}.self_attn.q_proj.weight`, [Dm, Dm]);
    out.set(`${p}.self_attn.q_proj.bias`, [Dm]);
    out.set(`${p}.self_attn.k_proj.weight`, [kv, Dm]);
    out.set(`${p}.self_attn.k_proj.bias`, [kv]);
    out.set(`${p}.self_attn.v_proj.weight`, [kv, Dm]);
    out.set(`${p}.self_attn.v_proj.bias`, [kv]);
    out.set(`${p}.self_attn.o_proj.weight`, [Dm, Dm]);
    out.set(`${p}.post_attention_layernorm.weight`, [Dm]);
    out.set(`${p}.mlp.gate_proj.weight`, [I, Dm]);
    out.set(`${p}.mlp.up_proj.weight`, [I, Dm]);
    out.set(`${p}.mlp.down_proj.weight`, [Dm, I]);
  }
  out.set('language_model.model.norm.weight', [Dm]);
  out.set('action_queries.weight', [spec.queries, Dm]);
  return out;
}

/** Seeded values: norms and LayerScale near their usual values, the rest small. */
export function tinyVlaValues(spec = TINY_VLA, seed = 7) {
  const rand = rng(seed);
  const out = new Map();
  for (const [name, shape] of vlaTensorShapes(spec)) {
    const normW = /(norm\d?|layernorm|norm)\.weight$/.test(name);
    const scale = normW ? 0.1 : name.endsWith('scale_factor') ? 0.1 : name.includes('pos_embed') || name.includes('_token') ? 0.5 : 0.08;
    const v = randn(numel(shape), rand, scale);
    if (normW) for (let i = 0; i < v.length; i++) v[i] += 1;
    if (name.endsWith('scale_factor')) for (let i = 0; i < v.length; i++) v[i] = 0.5 + v[i];
    out.set(name, v);
  }
  return out;
}

/** The VLA-Adapter config.json of a tiny directory. */
export function tinyVlaConfig(spec = TINY_VLA) {
  return {
    arch_specifier: 'no-align+fused-gelu-mlp',
    architectures: ['OpenVLAForActionPrediction'],
    image_sizes: [spec.image, spec.image],
    llm_backbone_id: 'qwen25-0_5b-extra',
    model_type: 'openvla',
    text_config: {
      hidden_act: 'silu', hidden_size: spec.hidden, intermediate_size: spec.intermediate, max_position_embeddings: 4096,
      model_type: 'qwen2', num_attention_heads: spec.heads, num_hidden_layers: spec.layers, num_key_value_heads: spec.kvHeads,
      rms_norm_eps: 1e-6, rope_theta: 1000000.0, tie_word_embeddings: true, vocab_size: spec.vocab, bos_token_id: 1, eos_token_id: 2,
    },
    timm_model_ids: ['vit_large_patch14_reg4_dinov2.lvd142m', 'vit_so400m_patch14_siglip_224'],
    timm_override_act_layers: [null, null],
    use_fused_vision_backbone: true,
    vision_backbone_id: 'dinosiglip-vit-so-224px',
    craftgrad_tiny_towers: spec.towers,
  };
}

/** Upstream's preprocessor_config.json at the tiny image size (bf16-rounded constants, as the released one). */
export function tinyPreprocessorConfig(spec = TINY_VLA) {
  const size = { antialias: true, interpolation: 3, max_size: null, size: [spec.image, spec.image] };
  return {
    image_processor_type: 'PrismaticImageProcessor', image_resize_strategy: 'resize-naive', use_fused_vision_backbone: true,
    means: [[0.485, 0.456, 0.406], [0.5, 0.5, 0.5]], stds: [[0.229, 0.224, 0.225], [0.5, 0.5, 0.5]],
    tvf_resize_params: [size, size],
    tvf_crop_params: [{ output_size: [spec.image, spec.image] }, { output_size: [spec.image, spec.image] }],
    tvf_normalize_params: [
      { inplace: false, mean: [0.484375, 0.455078125, 0.40625], std: [0.228515625, 0.2236328125, 0.224609375] },
      { inplace: false, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    ],
    tvf_do_letterbox: false, tvf_letterbox_fill: null,
  };
}

/** Writes a tiny VLA-Adapter directory; returns { dir, values }. */
export function writeTinyVla(dir, { spec = TINY_VLA, seed = 7 } = {}) {
  mkdirSync(dir, { recursive: true });
  const values = tinyVlaValues(spec, seed);
  const shapes = vlaTensorShapes(spec);
  const tensors = {};
  for (const [name, shape] of shapes) tensors[name] = { dtype: 'F32', shape, data: values.get(name) };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(tinyVlaConfig(spec), null, 2));
  writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(tinyPreprocessorConfig(spec), null, 2));
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
  const stats = { tiny_dataset: { action: { q01: Array(7).fill(-1), q99: Array(7).fill(1), mask: [true, true, true, true, true, true, false] }, num_transitions: 16, num_trajectories: 4 } };
  writeFileSync(join(dir, 'dataset_statistics.json'), JSON.stringify(stats, null, 2));
  return { dir, values };
}

/** A dataset in `--data`'s VLA layout: images (N, V, H, W, 3) u8, proprio (N, 8), actions (N, 8·7), input_ids (N, S). */
export function tinyVlaDataset({ samples = 8, views = 2, spec = TINY_VLA, prompt = 3, seed = 11 } = {}) {
  const rand = rng(seed);
  const H = spec.image, S = 1 + prompt + spec.queries;
  const images = new Uint8Array(samples * views * H * H * 3);
  for (let i = 0; i < images.length; i++) images[i] = Math.floor(rand() * 256);
  const proprio = randn(samples * 8, rand, 0.5);
  const actions = new Float32Array(samples * 56);
  for (let i = 0; i < actions.length; i++) actions[i] = 2 * rand() - 1;
  const ids = new Int32Array(samples * S);
  for (let n = 0; n < samples; n++) {
    ids[n * S] = 1;  // BOS
    for (let j = 1; j < S; j++) ids[n * S + j] = j > prompt ? spec.vocab - 1 - (j - prompt - 1) : 3 + Math.floor(rand() * (spec.vocab - 8));
  }
  const episode = Int32Array.from({ length: samples }, (_, i) => Math.floor(i / 2));
  return {
    images: { dtype: 'U8', shape: [samples, views, H, H, 3], data: images },
    proprio: { dtype: 'F32', shape: [samples, 8], data: proprio },
    actions: { dtype: 'F32', shape: [samples, 56], data: actions },
    input_ids: { dtype: 'I32', shape: [samples, S], data: ids },
    episode: { dtype: 'I32', shape: [samples], data: episode },
  };
}

/** Writes tinyVlaDataset's tensors as a .safetensors file. */
export function writeTinyVlaDataset(path, options) {
  writeFileSync(path, encodeSafetensors(tinyVlaDataset(options)));
  return path;
}
