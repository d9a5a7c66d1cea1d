// Random Qwen2 Hugging Face directories for the Qwen2 benchmarks (bench/qwen2.js): config.json
// and model.safetensors written one tensor at a time (the 0.5B model never sits in memory as
// a whole here), with seeded uniform weights of Qwen2-like scale. Only the shapes matter to a
// timing; the tests' own writer (test/helpers/hf-tiny.mjs) checks the loader's values.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Qwen2.5-0.5B's config.json, with `overrides` (e.g. num_hidden_layers, vocab_size). */
export function qwen25HalfBConfig(overrides = {}) {
  return {
    architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151643,
    hidden_act: 'silu', hidden_size: 896, initializer_range: 0.02, intermediate_size: 4864,
    max_position_embeddings: 32768, max_window_layers: 24, model_type: 'qwen2', num_attention_heads: 14,
    num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 1000000.0,
    sliding_window: 32768, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true,
    use_sliding_window: false, vocab_size: 151936, ...overrides,
  };
}

function tensorShapes(cfg) {
  const D = cfg.hidden_size, hd = D / cfg.num_attention_heads, q = cfg.num_attention_heads * hd;
  const kv = cfg.num_key_value_heads * hd, I = cfg.intermediate_size;
  const out = [['model.embed_tokens.weight', [cfg.vocab_size, D]]];
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    out.push([`${p}.input_layernorm.weight`, [D]], [`${p}.self_attn.q_proj.weight`, [q, D]], [`${p}.self_attn.q_proj.bias`, [q]],
      [`${p}.self_attn.k_proj.weight`, [kv, D]], [`${p}.self_attn.k_proj.bias`, [kv]], [`${p}.self_attn.v_proj.weight`, [kv, D]],
      [`${p}.self_attn.v_proj.bias`, [kv]], [`${p}.self_attn.o_proj.weight`, [D, q]], [`${p}.post_attention_layernorm.weight`, [D]],
      [`${p}.mlp.gate_proj.weight`, [I, D]], [`${p}.mlp.up_proj.weight`, [I, D]], [`${p}.mlp.down_proj.weight`, [D, I]]);
  }
  out.push(['model.norm.weight', [D]]);
  return out;
}

/**
 * Writes `dir` (created) with config `cfg`, weights stored as BF16 (as Qwen2.5 ships) or F32.
 * Norm weights are 1 + U(±0.05), biases U(±0.02), matrices U(±1/√in).
 */
export function writeRandomQwen2Dir(dir, cfg, { dtype = 'BF16', seed = 1 } = {}) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, torch_dtype: dtype === 'BF16' ? 'bfloat16' : 'float32' }, null, 2));
  const bytes = dtype === 'BF16' ? 2 : 4;
  const shapes = tensorShapes(cfg);
  const header = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype, shape, data_offsets: [off, off + n * bytes] };
    off += n * bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json, 'latin1'));
    let s = seed >>> 0 || 1;
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    for (const [name, shape] of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      const scale = name.endsWith('norm.weight') ? 0.05 : name.endsWith('.bias') ? 0.02 : 1 / Math.sqrt(shape[shape.length - 1]);
      const center = name.endsWith('norm.weight') ? 1 : 0;
      const chunk = 1 << 20;
      for (let i0 = 0; i0 < n; i0 += chunk) {
        const m = Math.min(chunk, n - i0);
        const buf = dtype === 'BF16' ? new Uint16Array(m) : new Float32Array(m);
        for (let i = 0; i < m; i++) {
          s ^= s << 13; s ^= s >>> 17; s ^= s << 5; s >>>= 0;  // xorshift32
          const v = center + scale * (2 * (s / 4294967296) - 1);
          if (dtype === 'BF16') { f32[0] = v; buf[i] = u32[0] >>> 16; } else buf[i] = v;
        }
        writeSync(fd, new Uint8Array(buf.buffer));
      }
    }
  } finally {
    closeSync(fd);
  }
  return dir;
}
