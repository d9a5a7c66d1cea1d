// AdapterPolicy gradients: the float64 reference (test/helpers) against central finite
// differences, then the native fp32 kernels against the reference, for both losses, both
// poolings and all three anchor types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdapterPolicy } from '../dist/index.js';
import { Rng } from '../dist/data/rng.js';
import { layout, referenceStep, referenceLosses } from './helpers/model-reference.mjs';

const TINY = { tokens: 3, width: 4, blocks: 3, rank: 2, alpha: 3, headWidth: 5, chunk: 2, actionDims: 2 };
const VARIANTS = [];
for (const pooling of ['mean', 'max']) for (const anchorType of ['concat', 'aq_only', 'raw_only']) VARIANTS.push({ pooling, anchorType });

/** A tiny model with every trainable value random (B ≠ 0) and an anchor that differs from it. */
function tinySetup(extra, seed = 1, n = 2) {
  const model = AdapterPolicy.create({ ...TINY, ...extra }, { seed });
  const rng = new Rng(seed + 100);
  const p = model.params.data;
  for (let i = 0; i < p.length; i++) p[i] = Math.fround(rng.range(-0.8, 0.8));
  const a = model.anchor.data;
  for (let i = 0; i < a.length; i++) a[i] = Math.fround(p[i] + rng.range(-0.3, 0.3));
  const c = model.config;
  const tokens = Float32Array.from({ length: n * c.tokens * c.width }, () => rng.range(-1, 1));
  const actions = Float32Array.from({ length: n * c.chunk * c.actionDims }, () => rng.range(-1, 1));
  return { model, c, tokens, actions, n };
}

function f64(x) { return Float64Array.from(x); }

for (const v of VARIANTS) {
  test(`reference gradients match central finite differences (${v.pooling}, ${v.anchorType})`, () => {
    const { model, c, tokens, actions, n } = tinySetup(v);
    const params = f64(model.params.data), frozen = f64(model.frozen.data), anchor = f64(model.anchor.data);
    const ref = referenceStep(c, params, frozen, anchor, tokens, actions, n);
    const h = 1e-6;
    for (const [loss, g] of [['actionLoss', ref.gAct], ['retentionLoss', ref.gRet]]) {
      let scaleMax = 0;
      for (const x of g) scaleMax = Math.max(scaleMax, Math.abs(x));
      for (let i = 0; i < params.length; i++) {
        const keep = params[i];
        params[i] = keep + h;
        const up = referenceLosses(c, params, frozen, anchor, tokens, actions, n)[loss];
        params[i] = keep - h;
        const down = referenceLosses(c, params, frozen, anchor, tokens, actions, n)[loss];
        params[i] = keep;
        const fd = (up - down) / (2 * h);
        assert.ok(Math.abs(fd - g[i]) <= 1e-6 * Math.max(1, scaleMax),
          `${loss} grad[${i}]: analytic ${g[i]} vs finite difference ${fd}`);
      }
      assert.ok(scaleMax > 0, `${loss} gradient is not all zero`);
    }
  });

  test(`native losses and gradients match the float64 reference (${v.pooling}, ${v.anchorType})`, () => {
    for (const bridgeBlock of [1, 2, 3]) {
      const { model, c, tokens, actions, n } = tinySetup({ ...v, bridgeBlock }, 3 + bridgeBlock, 3);
      const ref = referenceStep(c, f64(model.params.data), f64(model.frozen.data), f64(model.anchor.data), tokens, actions, n);
      const gAct = model.newGradSet(), gRet = model.newGradSet();
      const out = model.craftStep({ tokens, actions, size: n }, gAct, gRet);
      assert.ok(Math.abs(out.actionLoss - ref.actionLoss) <= 1e-5 * Math.max(1, ref.actionLoss));
      assert.ok(Math.abs(out.retentionLoss - ref.retentionLoss) <= 1e-5 * Math.max(1e-3, ref.retentionLoss),
        `retention ${out.retentionLoss} vs ${ref.retentionLoss}`);
      for (const [name, g, r] of [['gAct', gAct, ref.gAct], ['gRet', gRet, ref.gRet]]) {
        g.sizes.forEach((size, t) => {
          const off = g.offsets[t];
          let mx = 0;
          for (let i = 0; i < size; i++) mx = Math.max(mx, Math.abs(r[off + i]));
          for (let i = 0; i < size; i++) {
            assert.ok(Math.abs(g.data[off + i] - r[off + i]) <= 1e-5 * mx + 1e-7,
              `${name} ${model.trainableNames[t]}[${i}] (m=${bridgeBlock}): native ${g.data[off + i]} vs reference ${r[off + i]}`);
          }
        });
      }
      // The baseline call gives the same g_act bit for bit, and evaluation the same losses.
      const gBase = model.newGradSet();
      const base = model.baselineStep({ tokens, actions, size: n }, gBase);
      assert.equal(base.actionLoss, out.actionLoss);
      assert.deepEqual(gBase.data, gAct.data);
      const ev = model.evaluate({ tokens, actions, size: n }, { retention: true });
      assert.equal(ev.actionLoss, out.actionLoss);
      assert.equal(ev.retentionLoss, out.retentionLoss);
    }
  });
}

test('reference layout matches the model layout', () => {
  const model = AdapterPolicy.create({ ...TINY, anchorType: 'aq_only' });
  const lay = layout(model.config);
  assert.equal(lay.paramCount, model.params.numElements);
  assert.equal(lay.frozenCount, model.frozen.numElements);
  assert.equal(lay.anchorCount, model.anchor.numElements);
  assert.deepEqual(model.trainableNames.slice(0, 2), ['blocks.0.lora_A', 'blocks.0.lora_B']);
  assert.deepEqual(model.trainableNames.slice(-4), ['head.fc1.weight', 'head.fc1.bias', 'head.fc2.weight', 'head.fc2.bias']);
});
