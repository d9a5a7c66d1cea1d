// A tiny VLA-Adapter directory written by test/helpers/make_tiny_vla.py (torch's own .pt files)
// turned into what binding.vlaStep takes, by code that shares nothing with src/model/vla: the
// config from tiny_spec.json, the frozen groups packed here from native/core/vla_desc.cc's
// offsets, the trainable set from the LoRA file, the .pt files and the model file. The
// reference (vla_reference.py) reads the same files.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeSafetensors, decodeTorchPt, torchStateDict } from '../../dist/formats/index.js';
import { normalizeImage } from '../../dist/data/vla-dataset.js';
import { binding } from '../../dist/native.js';

const HERE = new URL('.', import.meta.url).pathname;

/** Writes a tiny directory with the Python generator. */
export function makeTinyVla(python, dir, { seed = 3, spec, bf16 = false } = {}) {
  const args = [join(HERE, 'make_tiny_vla.py'), dir, '--seed', String(seed)];
  if (spec) args.push('--spec', JSON.stringify(spec));
  if (bf16) args.push('--bf16');
  execFileSync(python, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

const f32 = (t) => {
  if (t.dtype === 'F32') return t.data;
  if (t.dtype === 'BF16') {
    const out = new Float32Array(t.data.length), u = new Uint32Array(out.buffer);
    for (let i = 0; i < t.data.length; i++) u[i] = t.data[i] << 16;
    return out;
  }
  throw new Error(`unexpected dtype ${t.dtype}`);
};

/** The native config of a tiny directory (every option overridable). */
export function vlaConfigOf(dir, over = {}) {
  const s = JSON.parse(readFileSync(join(dir, 'tiny_spec.json'), 'utf8'));
  const towers = s.towers.map((t) => ({
    embedDim: t.embed_dim, depth: t.depth, numHeads: t.num_heads, mlpHidden: t.mlp_hidden, patchSize: t.patch_size,
    imageSize: s.image_size, classToken: t.class_token ? 1 : 0, regTokens: t.reg_tokens, layerScale: t.layer_scale, layerNormEps: 1e-6,
  }));
  const L = s.llm.layers;
  return {
    towers, views: s.batch.views, projectorHidden: 4 * (s.towers[0].embed_dim + s.towers[1].embed_dim),
    hiddenSize: s.llm.hidden, numLayers: L, numHeads: s.llm.heads, numKvHeads: s.llm.kv_heads, intermediateSize: s.llm.intermediate,
    vocabSize: s.llm.vocab, rmsNormEps: s.llm.rms_norm_eps, ropeTheta: s.llm.rope_theta, inputIds: 1 + s.batch.prompt + s.queries,
    queries: s.queries, rank: s.lora.rank, alpha: 2 * s.lora.rank, headBlocks: s.head_blocks, chunk: s.chunk, actionDims: s.action_dim,
    proprioDim: s.proprio_dim, bridgeLayer: Math.floor((L + 1) / 2), bridgeSpan: 'vision', pooling: 'mean', anchorType: 'concat', ...over,
  };
}

const read = (path) => decodeSafetensors(new Uint8Array(readFileSync(path)), { source: path }).tensors;
const pt = (path) => torchStateDict(decodeTorchPt(new Uint8Array(readFileSync(path)), { source: path }), { source: path, stripPrefix: 'module.' });

/** The frozen groups of vlaTensors(config).frozen, packed from model.safetensors. */
export function packFrozen(dir, config) {
  const w = read(join(dir, 'model.safetensors'));
  const get = (n) => {
    if (!w[n]) throw new Error(`model.safetensors lacks ${n}`);
    return f32(w[n]);
  };
  const groups = [];
  const cat = (names) => {
    const parts = names.filter((n) => n !== null).map(get);
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  };
  ['featurizer', 'fused_featurizer'].forEach((tw, k) => {
    const t = config.towers[k], p = `vision_backbone.${tw}`;
    groups.push(cat([`${p}.patch_embed.proj.weight`, `${p}.patch_embed.proj.bias`, `${p}.pos_embed`, t.classToken ? `${p}.cls_token` : null,
      t.regTokens ? `${p}.reg_token` : null]));
    for (let b = 0; b < t.depth - 1; b++) {
      const q = `${p}.blocks.${b}`, ls = (i) => (t.layerScale ? `${q}.ls${i}.scale_factor` : null);
      groups.push(cat([`${q}.norm1.weight`, `${q}.norm1.bias`, `${q}.attn.qkv.weight`, `${q}.attn.qkv.bias`, `${q}.attn.proj.weight`,
        `${q}.attn.proj.bias`, ls(1), `${q}.norm2.weight`, `${q}.norm2.bias`, `${q}.mlp.fc1.weight`, `${q}.mlp.fc1.bias`,
        `${q}.mlp.fc2.weight`, `${q}.mlp.fc2.bias`, ls(2)]));
    }
  });
  groups.push(cat(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias', 'fc3.weight', 'fc3.bias'].map((n) => `projector.${n}`)));
  groups.push(get('language_model.model.embed_tokens.weight'));
  for (let l = 0; l < config.numLayers; l++) {
    const p = `language_model.model.layers.${l}`;
    groups.push(cat([`${p}.input_layernorm.weight`, `${p}.self_attn.q_proj.weight`, `${p}.self_attn.q_proj.bias`, `${p}.self_attn.k_proj.weight`,
      `${p}.self_attn.k_proj.bias`, `${p}.self_attn.v_proj.weight`, `${p}.self_attn.v_proj.bias`, `${p}.self_attn.o_proj.weight`,
      `${p}.post_attention_layernorm.weight`, `${p}.mlp.gate_proj.weight`, `${p}.mlp.up_proj.weight`, `${p}.mlp.down_proj.weight`]));
  }
  groups.push(get('language_model.model.norm.weight'));
  return groups;
}

/** params and anchor (flat, vlaTensors order) from lora/anchor.safetensors, the .pt files and the model file. */
export function packTrainable(dir, config) {
  const t = binding.vlaTensors(config);
  const lora = read(join(dir, 'lora.safetensors')), anchorFile = read(join(dir, 'anchor.safetensors'));
  const model = read(join(dir, 'model.safetensors'));
  const head = pt(join(dir, 'action_head--0_checkpoint.pt')), proprio = pt(join(dir, 'proprio_projector--0_checkpoint.pt'));
  const size = (d) => d.shape.reduce((a, b) => a * b, 1);
  const value = (name, src) => {
    if (src[name]) return f32(src[name]);
    if (name === 'action_queries.weight') return f32(lora[name] ?? model[name]);
    if (name.startsWith('action_head.')) return f32(lora[name] ?? head.get(name.slice('action_head.'.length)));
    if (name.startsWith('proprio_projector.')) return f32(lora[name] ?? proprio.get(name.slice('proprio_projector.'.length)));
    throw new Error(`no value for ${name}`);
  };
  const flat = (specs, src) => {
    const out = new Float32Array(specs.reduce((a, d) => a + size(d), 0));
    let o = 0;
    for (const d of specs) {
      const v = value(d.name, src);
      if (v.length !== size(d)) throw new Error(`${d.name}: ${v.length} values, layout needs ${size(d)}`);
      out.set(v, o);
      o += v.length;
    }
    return out;
  };
  return { tensors: t, params: flat(t.trainable, lora), anchor: flat(t.trainable.slice(0, t.anchorTensors), anchorFile) };
}

/** The batch file's inputs as vlaStep takes them (pixels normalised with the directory's constants). */
export function packBatch(dir, config) {
  const b = read(join(dir, 'batch.safetensors'));
  const pre = JSON.parse(readFileSync(join(dir, 'preprocessor_config.json'), 'utf8')).tvf_normalize_params;
  const [N, V, H] = b.images.shape;
  const views = config.views, img = H * H * 3, px = 6 * H * H;
  const pixels = new Float32Array(N * views * px);
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < views; v++) {
      const k = n * V + v;
      normalizeImage(b.images.data.subarray(k * img, (k + 1) * img), H, pre, pixels.subarray((n * views + v) * px, (n * views + v + 1) * px));
    }
  }
  return { batch: N, pixels, inputIds: b.input_ids.data, proprio: b.proprio.data, actions: b.actions.data, noise: b.head_noise.data };
}

/** Runs the reference; returns its output tensors (float64) by name. */
export function runReference(python, dir, options, outPath) {
  execFileSync(python, [join(HERE, 'vla_reference.py'), '--model', dir, '--batch', join(dir, 'batch.safetensors'), '--lora', join(dir, 'lora.safetensors'),
    '--anchor', join(dir, 'anchor.safetensors'), '--options', JSON.stringify(options), '--out', outPath], { stdio: ['ignore', 'ignore', 'inherit'] });
  return read(outPath);
}
