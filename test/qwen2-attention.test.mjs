// Grouped-query attention: a model with 2 KV heads for 4 query heads computes exactly what
// the plain multi-head model computes whose k/v projections (weights, biases, LoRA B rows)
// repeat each KV head for the query heads of its group (transformers' repeat_kv).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SMALL, tinyDir, tinyPolicy, offsets } from './helpers/qwen2-setup.mjs';
import { qwen2ReferenceLosses } from './helpers/qwen2-reference.mjs';
import { f64Map } from './helpers/qwen2-setup.mjs';

const H = 4, KV = 2, hd = SMALL.hidden_size / H, group = H / KV;

/** Rows (out dimension) of a (KV·hd, cols) tensor repeated per query head: (H·hd, cols). */
function repeatKv(src, cols) {
  const out = new Float32Array(H * hd * cols);
  for (let h = 0; h < H; h++) out.set(src.subarray(Math.floor(h / group) * hd * cols, (Math.floor(h / group) + 1) * hd * cols), h * hd * cols);
  return out;
}

test('num_key_value_heads = num_attention_heads with repeated k/v equals grouped-query attention', async () => {
  const gqaDir = tinyDir({ ...SMALL, num_key_value_heads: KV });
  const mhaDir = tinyDir({ ...SMALL, num_key_value_heads: H }, {
    editTensors(t) {
      for (const [name, entry] of Object.entries(t)) {
        const src = gqaDir.expected.get(name);
        const kv = /\.(k|v)_proj\./.test(name);
        entry.data = kv ? repeatKv(src, name.endsWith('.bias') ? 1 : SMALL.hidden_size) : Float32Array.from(src);
        entry.shape = kv ? [H * hd, ...entry.shape.slice(1)] : entry.shape;
      }
    },
  });
  const gqa = await tinyPolicy(gqaDir, {}, { seed: 3 });
  const mha = await tinyPolicy(mhaDir, {}, { seed: 3, randomize: false });
  // The same trainable values, k/v LoRA B rows repeated; the anchor likewise.
  for (const [dst, src] of [[mha.params, gqa.params], [mha.anchor, gqa.anchor]])
    for (const [name, v] of dst) {
      const s = src.get(name);
      v.set(/\.(k|v)_proj\.lora_B/.test(name) ? repeatKv(s, mha.pol.rank) : s);
    }
  const g = { act: gqa.policy.newGradSet(), ret: gqa.policy.newGradSet() };
  const m = { act: mha.policy.newGradSet(), ret: mha.policy.newGradSet() };
  const lg = gqa.policy.craftStep(gqa.batch, g.act, g.ret);
  const lm = mha.policy.craftStep(gqa.batch, m.act, m.ret);
  const close = (a, b, what) => assert.ok(Math.abs(a - b) <= 1e-5 * Math.abs(b) + 1e-7, `${what}: GQA ${a}, MHA ${b}`);
  close(lg.actionLoss, lm.actionLoss, 'action loss');
  close(lg.retentionLoss, lm.retentionLoss, 'retention loss');
  // The multi-head model is plain attention: the float64 reference with KV = H agrees.
  const mhaWeights = new Map(Object.entries(mhaDir.tensors).map(([n, t]) => [n, t.data]));  // as edited and written
  const ref = qwen2ReferenceLosses({ cfg: mhaDir.config, weights: mhaWeights }, mha.pol, f64Map(mha.params), f64Map(mha.anchor), gqa.batch);
  close(lm.actionLoss, ref.actionLoss, 'MHA vs reference action loss');
  close(lm.retentionLoss, ref.retentionLoss, 'MHA vs reference retention loss');
  // Gradients: every tensor the same, except k/v LoRA B, whose GQA rows are the sums of
  // the repeated MHA rows of their group.
  const og = offsets(gqa.policy), om = offsets(mha.policy);
  for (const s of gqa.policy.trainableSpecs) {
    for (const k of ['act', 'ret']) {
      const a = g[k].data.subarray(og.get(s.name), og.get(s.name) + s.size);
      const bFull = m[k].data.subarray(om.get(s.name), om.get(s.name) + mha.policy.trainableSpecs.find((t) => t.name === s.name).size);
      let b = bFull;
      if (/\.(k|v)_proj\.lora_B/.test(s.name)) {
        const r = gqa.pol.rank;
        b = new Float32Array(s.size);
        for (let h = 0; h < H; h++)
          for (let i = 0; i < hd * r; i++) b[Math.floor(h / group) * hd * r + i] += bFull[h * hd * r + i];
      }
      let scale = 0;
      for (const v of b) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < s.size; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * scale + 1e-7, `${k} ${s.name}[${i}]: GQA ${a[i]}, MHA ${b[i]}`);
    }
  }
});
