// A tiny Qwen2 policy for tests: a Hugging Face directory written by hf-tiny.mjs, loaded
// by Qwen2Policy, every trainable value random (LoRA B ≠ 0) and an anchor that differs,
// with a random batch; plus the float64 view of the same for qwen2-reference.mjs.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Qwen2Policy } from '../../dist/model/qwen2/index.js';
import { writeTinyHfModel } from './hf-tiny.mjs';
import { randn, rng } from './random.mjs';

export const SMALL = { hidden_size: 32, intermediate_size: 48, vocab_size: 64 };

/** Writes a tiny model directory (config fields over hf-tiny's D=64/4 layers/4:2 heads). */
export function tinyDir(config = {}, options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'craftgrad-qwen2-'));
  return writeTinyHfModel(dir, { config, ...options });
}

/**
 * { policy, model (reference form), pol (reference options), batch, params, anchor (Maps
 * name -> Float32Array views of the policy's sets) }.
 */
export async function tinyPolicy(written, options = {}, { seed = 7, batchSize = 2, randomize = true } = {}) {
  const opts = { rank: 4, alpha: 6, prefixTokens: 3, promptTokens: 2, chunk: 3, actionDims: 2, headWidth: 8, seed, ...options };
  const policy = await Qwen2Policy.fromHfDirectory(written.dir, opts);
  const rand = rng(seed + 1000);
  const pdata = policy.params.data, adata = policy.anchor.data;
  if (randomize) {
    pdata.set(randn(pdata.length, rand, 0.25));
    for (let i = 0; i < adata.length; i++) adata[i] = Math.fround(pdata[i] + 0.1 * (rand() - 0.5));
  }
  const params = new Map(), anchor = new Map();
  let o = 0;
  policy.trainableSpecs.forEach((s, i) => {
    params.set(s.name, pdata.subarray(o, o + s.size));
    if (o < adata.length) anchor.set(s.name, adata.subarray(o, o + s.size));
    o += s.size;
  });
  const c = policy.config, B = batchSize;
  const batch = {
    size: B,
    prefix: c.prefixTokens ? randn(B * c.prefixTokens * c.hiddenSize, rand, 1) : undefined,
    inputIds: c.promptTokens ? Int32Array.from({ length: B * c.promptTokens }, () => Math.floor(rand() * c.vocabSize)) : undefined,
    actions: randn(B * c.queries * c.actionDims, rand, 0.5),
  };
  const pol = {
    rank: c.rank, alpha: c.alpha, targets: c.targets, P: c.prefixTokens, S: c.promptTokens, Q: c.queries, A: c.actionDims,
    headWidth: c.headWidth, bridgeLayer: c.bridgeLayer, bridgeSpan: c.bridgeSpan, pooling: c.pooling, anchorType: c.anchorType,
  };
  return { policy, model: { cfg: written.config, weights: written.expected }, pol, batch, params, anchor };
}

/** name -> Float64Array copies (the reference's float64 parameters). */
export function f64Map(m) {
  return new Map([...m].map(([k, v]) => [k, Float64Array.from(v)]));
}

/** The flat offset of each trainable tensor. */
export function offsets(policy) {
  const out = new Map();
  let o = 0;
  for (const s of policy.trainableSpecs) { out.set(s.name, o); o += s.size; }
  return out;
}
