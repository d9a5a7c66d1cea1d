// Tiny Hugging Face Qwen2 model directories for tests: config.json plus model.safetensors
// (or shards and model.safetensors.index.json), with seeded weights stored as F32, BF16 or
// F16. The tensor names and shapes are written out here by hand, from transformers'
// Qwen2ForCausalLM, independently of src/model/qwen2, so the loader is checked against
// them. `expected` holds the float32 value of every stored tensor, decoded by a path that
// shares no code with the loader (bf16 through a DataView, fp16 by arithmetic).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSafetensors } from '../../dist/formats/index.js';
import { randn, rng } from './random.mjs';

/** D=64, 4 layers, 4 query heads, 2 KV heads, MLP 128, vocabulary 128 (as transformers writes it). */
export const TINY_QWEN2_CONFIG = Object.freeze({
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 64,
  initializer_range: 0.02,
  intermediate_size: 128,
  max_position_embeddings: 512,
  max_window_layers: 4,
  model_type: 'qwen2',
  num_attention_heads: 4,
  num_hidden_layers: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 10000.0,
  sliding_window: 512,
  tie_word_embeddings: true,
  torch_dtype: 'float32',
  transformers_version: '4.45.0',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 128,
});

/** name -> shape of every tensor a Qwen2ForCausalLM checkpoint holds (lm_head only when untied). */
export function qwen2TensorShapes(cfg) {
  const D = cfg.hidden_size, H = cfg.num_attention_heads, KV = cfg.num_key_value_heads ?? H;
  const hd = D / H, I = cfg.intermediate_size, V = cfg.vocab_size;
  const out = new Map([['model.embed_tokens.weight', [V, D]]]);
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    out.set(`${p}.input_layernorm.weight`, [D]);
    out.set(`${p}.self_attn.q_proj.weight`, [H * hd, D]);
    out.set(`${p}.self_attn.q_proj.bias`, [H * hd]);
    out.set(`${p}.self_attn.k_proj.weight`, [KV * hd, D]);
    out.set(`${p}.self_attn.k_proj.bias`, [KV * hd]);
    out.set(`${p}.self_attn.v_proj.weight`, [KV * hd, D]);
    out.set(`${p}.self_attn.v_proj.bias`, [KV * hd]);
    out.set(`${p}.self_attn.o_proj.weight`, [D, H * hd]);
    out.set(`${p}.post_attention_layernorm.weight`, [D]);
    out.set(`${p}.mlp.gate_proj.weight`, [I, D]);
    out.set(`${p}.mlp.up_proj.weight`, [I, D]);
    out.set(`${p}.mlp.down_proj.weight`, [D, I]);
  }
  out.set('model.norm.weight', [D]);
  if (!cfg.tie_word_embeddings) out.set('lm_head.weight', [V, D]);
  return out;
}

const numel = (shape) => shape.reduce((a, b) => a * b, 1);

/** bf16 bits of a float32 (truncation: the upper half) and the float32 they decode to. */
export function toBF16(values) {
  const dv = new DataView(new ArrayBuffer(4));
  const bits = new Uint16Array(values.length), back = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    dv.setFloat32(0, values[i], true);
    bits[i] = dv.getUint32(0, true) >>> 16;
    dv.setUint32(0, bits[i] << 16, true);
    back[i] = dv.getFloat32(0, true);
  }
  return { bits, back };
}

/** fp16 bits of finite values (rounded to the nearest fp16, subnormals included) and their exact values. */
export function toF16(values) {
  const bits = new Uint16Array(values.length), back = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i], a = Math.abs(x), sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
    let q, b;
    if (a < 2 ** -14) {
      const k = Math.round(a / 2 ** -24); // subnormal grid (k = 1024 is the smallest normal: same bits)
      q = k * 2 ** -24;
      b = k;
    } else {
      let e = Math.floor(Math.log2(a));
      let m = Math.round(a / 2 ** (e - 10));
      if (m === 2048) { m = 1024; e++; }
      if (e > 15) throw new RangeError(`toF16: ${x} overflows fp16`);
      q = m * 2 ** (e - 10);
      b = ((e + 15) << 10) | (m - 1024);
    }
    bits[i] = sign | b;
    back[i] = sign ? -q : q;
  }
  return { bits, back };
}

/** Seeded float32 values for every tensor: norms near 1, biases and weights small. */
export function tinyQwen2Values(cfg, seed = 1) {
  const rand = rng(seed);
  const out = new Map();
  for (const [name, shape] of qwen2TensorShapes(cfg)) {
    const v = randn(numel(shape), rand, name.endsWith('norm.weight') ? 0.1 : 0.05);
    if (name.endsWith('norm.weight')) for (let i = 0; i < v.length; i++) v[i] += 1;
    out.set(name, v);
  }
  return out;
}

function stored(dtype, values) {
  if (dtype === 'F32') return { data: Float32Array.from(values), back: Float32Array.from(values) };
  const { bits, back } = dtype === 'BF16' ? toBF16(values) : toF16(values);
  return { data: bits, back };
}

/**
 * Writes a tiny Qwen2 directory at `dir` (created). Options: config (fields merged over
 * TINY_QWEN2_CONFIG; a field set to undefined is removed), dtype 'F32'|'BF16'|'F16',
 * shards (1 = model.safetensors; n > 1 = n shards and an index), seed, editTensors(map of
 * name -> {dtype, shape, data}) and editIndex(index object) to break things on purpose.
 * Returns { dir, config, expected: Map name -> Float32Array, tensors, files }.
 */
export function writeTinyHfModel(dir, options = {}) {
  const dtype = options.dtype ?? 'F32';
  const config = { ...TINY_QWEN2_CONFIG, torch_dtype: { F32: 'float32', BF16: 'bfloat16', F16: 'float16' }[dtype], ...(options.config ?? {}) };
  for (const k of Object.keys(config)) if (config[k] === undefined) delete config[k];
  const values = tinyQwen2Values({ ...TINY_QWEN2_CONFIG, ...config }, options.seed ?? 1);
  const tensors = {}, expected = new Map();
  for (const [name, shape] of qwen2TensorShapes({ ...TINY_QWEN2_CONFIG, ...config })) {
    const { data, back } = stored(dtype, values.get(name));
    tensors[name] = { dtype, shape, data };
    expected.set(name, back);
  }
  options.editTensors?.(tensors);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const shards = options.shards ?? 1;
  const files = [];
  if (shards === 1) {
    writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
    files.push('model.safetensors');
  } else {
    const names = Object.keys(tensors);
    const per = Math.ceil(names.length / shards);
    const index = { metadata: { total_size: 0 }, weight_map: {} };
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = {};
      for (const n of names.slice(s * per, (s + 1) * per)) {
        part[n] = tensors[n];
        index.weight_map[n] = file;
        index.metadata.total_size += tensors[n].data.byteLength;
      }
      writeFileSync(join(dir, file), encodeSafetensors(part, { format: 'pt' }));
      files.push(file);
    }
    options.editIndex?.(index);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2));
  }
  return { dir, config, expected, tensors, files };
}
