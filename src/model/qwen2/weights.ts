// The frozen weights of a Qwen2 model in float32, grouped for the native layer: the
// embedding table, one contiguous Float32Array per decoder layer (its twelve tensors
// back to back, in LAYER_TENSORS order, each also exposed as a named view) and the final
// norm. Names and shapes are Hugging Face's (nn.Linear weights are (out, in)).
import type { Qwen2Config } from './config.js';

/** The seven linear layers of a decoder layer, in the order LoRA targets are listed. */
export const QWEN2_LINEARS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type Qwen2Linear = (typeof QWEN2_LINEARS)[number];

export function isQwen2Linear(s: unknown): s is Qwen2Linear {
  return typeof s === 'string' && (QWEN2_LINEARS as readonly string[]).includes(s);
}

/** The module path of a linear layer inside the model, e.g. model.layers.3.self_attn.q_proj. */
export function linearModulePath(layer: number, linear: Qwen2Linear): string {
  const group = linear === 'gate_proj' || linear === 'up_proj' || linear === 'down_proj' ? 'mlp' : 'self_attn';
  return `model.layers.${layer}.${group}.${linear}`;
}

/** (out, in) of a linear layer. */
export function linearShape(c: Qwen2Config, linear: Qwen2Linear): { out: number; in: number } {
  const D = c.hiddenSize, q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim, I = c.intermediateSize;
  switch (linear) {
    case 'q_proj': return { out: q, in: D };
    case 'k_proj': case 'v_proj': return { out: kv, in: D };
    case 'o_proj': return { out: D, in: q };
    case 'gate_proj': case 'up_proj': return { out: I, in: D };
    case 'down_proj': return { out: D, in: I };
  }
}

/** The views of one decoder layer's buffer. */
export interface Qwen2LayerWeights {
  /** All of the layer's tensors, contiguous, in LAYER_TENSORS order. */
  readonly data: Float32Array;
  readonly inputNorm: Float32Array;
  readonly qWeight: Float32Array;
  readonly qBias: Float32Array;
  readonly kWeight: Float32Array;
  readonly kBias: Float32Array;
  readonly vWeight: Float32Array;
  readonly vBias: Float32Array;
  readonly oWeight: Float32Array;
  readonly postAttentionNorm: Float32Array;
  readonly gateWeight: Float32Array;
  readonly upWeight: Float32Array;
  readonly downWeight: Float32Array;
}

export interface Qwen2Weights {
  /** (V, D) */
  readonly embedTokens: Float32Array;
  readonly layers: readonly Qwen2LayerWeights[];
  /** (D) */
  readonly finalNorm: Float32Array;
}

type LayerField = Exclude<keyof Qwen2LayerWeights, 'data'>;

/** One tensor of a layer: its name after `model.layers.N.`, view name, shape and offset in the layer buffer. */
export interface LayerTensorSpec {
  suffix: string;
  field: LayerField;
  shape: number[];
  offset: number;
  size: number;
}

/** The layer buffer's layout (the same for every layer) and its length in floats. */
export function qwen2LayerLayout(c: Qwen2Config): { tensors: LayerTensorSpec[]; floats: number } {
  const lin = (l: Qwen2Linear): number[] => { const s = linearShape(c, l); return [s.out, s.in]; };
  const D = c.hiddenSize;
  const list: [string, LayerField, number[]][] = [
    ['input_layernorm.weight', 'inputNorm', [D]],
    ['self_attn.q_proj.weight', 'qWeight', lin('q_proj')],
    ['self_attn.q_proj.bias', 'qBias', [linearShape(c, 'q_proj').out]],
    ['self_attn.k_proj.weight', 'kWeight', lin('k_proj')],
    ['self_attn.k_proj.bias', 'kBias', [linearShape(c, 'k_proj').out]],
    ['self_attn.v_proj.weight', 'vWeight', lin('v_proj')],
    ['self_attn.v_proj.bias', 'vBias', [linearShape(c, 'v_proj').out]],
    ['self_attn.o_proj.weight', 'oWeight', lin('o_proj')],
    ['post_attention_layernorm.weight', 'postAttentionNorm', [D]],
    ['mlp.gate_proj.weight', 'gateWeight', lin('gate_proj')],
    ['mlp.up_proj.weight', 'upWeight', lin('up_proj')],
    ['mlp.down_proj.weight', 'downWeight', lin('down_proj')],
  ];
  let offset = 0;
  const tensors = list.map(([suffix, field, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const spec = { suffix, field, shape, offset, size };
    offset += size;
    return spec;
  });
  return { tensors, floats: offset };
}

/** Zero-filled weights of the config's shapes (the loader fills them). */
export function allocateQwen2Weights(c: Qwen2Config): Qwen2Weights {
  const { tensors, floats } = qwen2LayerLayout(c);
  const layers: Qwen2LayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const data = new Float32Array(floats);
    const views = { data } as Record<string, Float32Array>;
    for (const t of tensors) views[t.field] = data.subarray(t.offset, t.offset + t.size);
    layers.push(Object.freeze(views) as unknown as Qwen2LayerWeights);
  }
  return Object.freeze({
    embedTokens: new Float32Array(c.vocabSize * c.hiddenSize),
    layers: Object.freeze(layers),
    finalNorm: new Float32Array(c.hiddenSize),
  });
}

/** Every tensor the model needs: HF name -> shape and the float32 array it loads into. */
export function qwen2TensorTargets(c: Qwen2Config, w: Qwen2Weights): Map<string, { shape: number[]; dest: Float32Array }> {
  const out = new Map<string, { shape: number[]; dest: Float32Array }>();
  out.set('model.embed_tokens.weight', { shape: [c.vocabSize, c.hiddenSize], dest: w.embedTokens });
  const { tensors } = qwen2LayerLayout(c);
  w.layers.forEach((layer, l) => {
    for (const t of tensors) out.set(`model.layers.${l}.${t.suffix}`, { shape: t.shape, dest: layer[t.field] });
  });
  out.set('model.norm.weight', { shape: [c.hiddenSize], dest: w.finalNorm });
  return out;
}

/** Tensors a file may hold that training does not use: read past (shape-checked), not kept. */
export function qwen2IgnoredTensors(c: Qwen2Config): Map<string, number[]> {
  // lm_head is tied to the embedding in Qwen2.5-0.5B (absent from the file); untied models
  // store it. Either way the action head replaces it, so it is allowed and skipped.
  return new Map([['lm_head.weight', [c.vocabSize, c.hiddenSize]]]);
}

/** Parameter count of the frozen weights craftgrad keeps (without lm_head). */
export function qwen2ParameterCount(c: Qwen2Config): number {
  return c.vocabSize * c.hiddenSize + c.numLayers * qwen2LayerLayout(c).floats + c.hiddenSize;
}
