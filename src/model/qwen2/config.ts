// A Hugging Face Qwen2 config.json, read strictly. Where transformers' Qwen2Config has a
// default (rms_norm_eps 1e-6, rope_theta 10000, tie_word_embeddings false, hidden_act
// silu, max_position_embeddings 32768, num_key_value_heads = num_attention_heads) we use
// it; the five sizes have no default here (a config without them is not a real model,
// and transformers' 7B-sized defaults would only surface later as shape errors). Options
// craftgrad does not implement are refused by name rather than silently ignored.
import { FormatError } from '../../formats/errors.js';

export interface Qwen2Config {
  /** D */
  hiddenSize: number;
  /** L */
  numLayers: number;
  /** H, query heads */
  numHeads: number;
  /** KV heads (groups of H/KV query heads share one) */
  numKvHeads: number;
  /** hd = D / H */
  headDim: number;
  /** MLP width I */
  intermediateSize: number;
  /** V */
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  /** Always 'silu' (anything else is refused). */
  hiddenAct: 'silu';
  /** The checkpoint's storage dtype as config.json states it (torch_dtype or dtype), or null. */
  torchDtype: string | null;
}

const FORMAT = 'qwen2 config';

type Json = Record<string, unknown>;

/** Checks a parsed config.json object; `file` names it in errors. */
export function parseQwen2Config(raw: unknown, file: string): Qwen2Config {
  const fail = (field: string, detail: string): never => {
    throw new FormatError(FORMAT, detail, { file, field });
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('config', 'must be a JSON object');
  const c = raw as Json;
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(c, k) && c[k] !== undefined;

  if (c.model_type !== 'qwen2') fail('model_type', `is ${JSON.stringify(c.model_type)}; craftgrad loads only "qwen2" models`);
  if (has('architectures') && c.architectures !== null) {
    const a = c.architectures;
    if (!Array.isArray(a) || a.length !== 1 || a[0] !== 'Qwen2ForCausalLM') {
      fail('architectures', `is ${JSON.stringify(a)}; craftgrad loads only ["Qwen2ForCausalLM"] (its tensors are named model.*)`);
    }
  }

  const int = (k: string, fallback?: number): number => {
    if (!has(k) || c[k] === null) {
      if (fallback !== undefined) return fallback;
      return fail(k, 'is missing (craftgrad does not guess model sizes)');
    }
    const v = c[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) fail(k, `must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const positive = (k: string, fallback: number): number => {
    if (!has(k) || c[k] === null) return fallback;
    const v = c[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(k, `must be a finite number > 0, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const bool = (k: string, fallback: boolean): boolean => {
    if (!has(k) || c[k] === null) return fallback;
    if (typeof c[k] !== 'boolean') fail(k, `must be true or false, got ${JSON.stringify(c[k])}`);
    return c[k] as boolean;
  };

  const hiddenSize = int('hidden_size');
  const numLayers = int('num_hidden_layers');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  const intermediateSize = int('intermediate_size');
  const vocabSize = int('vocab_size');
  const maxPositionEmbeddings = int('max_position_embeddings', 32768);
  const rmsNormEps = positive('rms_norm_eps', 1e-6);
  const tieWordEmbeddings = bool('tie_word_embeddings', false);

  if (hiddenSize % numHeads !== 0) fail('hidden_size', `${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  if (numHeads % numKvHeads !== 0) fail('num_key_value_heads', `${numKvHeads} does not divide num_attention_heads ${numHeads}`);
  const headDim = hiddenSize / numHeads;
  if (has('head_dim') && c.head_dim !== null && c.head_dim !== headDim) {
    fail('head_dim', `is ${JSON.stringify(c.head_dim)}; craftgrad needs hidden_size / num_attention_heads = ${headDim}`);
  }
  if (headDim % 2 !== 0) fail('hidden_size', `head dimension ${headDim} (hidden_size / num_attention_heads) must be even for rotary embeddings`);

  const act = has('hidden_act') ? c.hidden_act : 'silu';
  if (act !== 'silu') fail('hidden_act', `is ${JSON.stringify(act)}; craftgrad implements only "silu"`);

  // Sliding windows: transformers applies one only when use_sliding_window is true (or a
  // layer_types entry says so); `sliding_window` alone is inert, as in Qwen2.5's configs.
  if (bool('use_sliding_window', false)) fail('use_sliding_window', 'is true; craftgrad implements full causal attention only');
  if (has('layer_types') && c.layer_types !== null) {
    const lt = c.layer_types;
    if (!Array.isArray(lt) || lt.length !== numLayers) fail('layer_types', `must be a list of ${numLayers} entries, got ${JSON.stringify(lt)}`);
    (lt as unknown[]).forEach((t, i) => {
      if (t !== 'full_attention') fail(`layer_types[${i}]`, `is ${JSON.stringify(t)}; craftgrad implements "full_attention" only`);
    });
  }
  if (bool('use_mrope', false)) fail('use_mrope', 'is true; multimodal rotary embeddings are not supported');
  if (has('attention_dropout') && c.attention_dropout !== null && c.attention_dropout !== 0) {
    fail('attention_dropout', `is ${JSON.stringify(c.attention_dropout)}; craftgrad trains without dropout (0 only)`);
  }
  if (has('quantization_config') && c.quantization_config !== null) fail('quantization_config', 'is set; quantized checkpoints are not supported');

  const ropeTheta = readRope(c, has, positive, fail);
  const dt = has('torch_dtype') ? c.torch_dtype : has('dtype') ? c.dtype : null;
  if (dt !== null && typeof dt !== 'string') fail(has('torch_dtype') ? 'torch_dtype' : 'dtype', `must be a string, got ${JSON.stringify(dt)}`);

  return Object.freeze({
    hiddenSize, numLayers, numHeads, numKvHeads, headDim, intermediateSize, vocabSize,
    rmsNormEps, ropeTheta, tieWordEmbeddings, maxPositionEmbeddings, hiddenAct: 'silu' as const,
    torchDtype: dt as string | null,
  });
}

/**
 * rope_theta, from the top level (transformers 4) or from rope_parameters / rope_scaling
 * (transformers 5 writes {"rope_type": "default", "rope_theta": …}). Only the default
 * rope type is implemented; any scaling (linear, dynamic, yarn, …) is refused.
 */
function readRope(
  c: Json,
  has: (k: string) => boolean,
  positive: (k: string, fallback: number) => number,
  fail: (field: string, detail: string) => never,
): number {
  const top = has('rope_theta') && c.rope_theta !== null ? positive('rope_theta', 10000) : undefined;
  let inner: number | undefined;
  for (const key of ['rope_scaling', 'rope_parameters']) {
    if (!has(key) || c[key] === null) continue;
    const r = c[key];
    if (typeof r !== 'object' || Array.isArray(r)) fail(key, `must be an object or null, got ${JSON.stringify(r)}`);
    const p = r as Json;
    const type = p.rope_type ?? p.type ?? 'default';
    if (type !== 'default') fail(key, `rope type ${JSON.stringify(type)} is not supported (rope scaling is not implemented; only "default")`);
    for (const k of Object.keys(p)) {
      if (!['rope_type', 'type', 'rope_theta'].includes(k)) fail(`${key}.${k}`, 'is not supported (only rope_type "default" and rope_theta)');
    }
    if (p.rope_theta !== undefined && p.rope_theta !== null) {
      const t = p.rope_theta;
      if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) fail(`${key}.rope_theta`, `must be a finite number > 0, got ${JSON.stringify(t)}`);
      if (inner !== undefined && inner !== t) fail(`${key}.rope_theta`, `${t} disagrees with the other rope_theta ${inner}`);
      inner = t as number;
    }
  }
  if (top !== undefined && inner !== undefined && top !== inner) fail('rope_theta', `${top} disagrees with rope_parameters.rope_theta ${inner}`);
  return inner ?? top ?? 10000;
}

/** The config.json fields (transformers' spelling) of a config, for records and test files. */
export function qwen2ConfigToJson(c: Qwen2Config): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    intermediate_size: c.intermediateSize,
    vocab_size: c.vocabSize,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tieWordEmbeddings,
    max_position_embeddings: c.maxPositionEmbeddings,
    hidden_act: c.hiddenAct,
    use_sliding_window: false,
    rope_scaling: null,
    ...(c.torchDtype !== null ? { torch_dtype: c.torchDtype } : {}),
  };
}
