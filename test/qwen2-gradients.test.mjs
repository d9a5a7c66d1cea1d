// The Qwen2 policy's native step against an independent float64 reference
// (helpers/qwen2-reference.mjs): both losses, then g_act and g_ret of every trainable
// tensor kind (sampled elements) against central differences of the reference's losses,
// for both poolings, all three anchor types, both bridge spans and several bridge layers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { qwen2ReferenceLosses } from './helpers/qwen2-reference.mjs';
import { SMALL, tinyDir, tinyPolicy, f64Map, offsets } from './helpers/qwen2-setup.mjs';
import { rng } from './helpers/random.mjs';

const written = tinyDir(SMALL);

/** One element per tensor kind (LoRA A/B of each linear at a random layer, queries, head). */
function sampleElements(policy, rand) {
  const kinds = new Map();
  for (const s of policy.trainableSpecs) {
    const kind = s.name.replace(/layers\.\d+\./, 'layers.N.');
    (kinds.get(kind) ?? kinds.set(kind, []).get(kind)).push(s);
  }
  return [...kinds.values()].map((list) => {
    const s = list[Math.floor(rand() * list.length)];
    return { name: s.name, index: Math.floor(rand() * s.size), size: s.size };
  });
}

function relClose(got, want, what, rel = 1e-5) {
  assert.ok(Math.abs(got - want) <= rel * Math.abs(want) + 1e-12, `${what}: native ${got}, reference ${want}`);
}

/**
 * Central differences of both reference losses at one element. Max pooling and the L1 loss
 * have kinks: where the one-sided differences disagree the step crossed one, so the step
 * shrinks (1e-4, 1e-5, 1e-6) until both losses are smooth across it.
 */
function centralDifference(model, pol, p64, a64, batch, base, e) {
  const arr = p64.get(e.name), old = arr[e.index];
  for (const h of [1e-4, 1e-5, 1e-6]) {
    arr[e.index] = old + h;
    const up = qwen2ReferenceLosses(model, pol, p64, a64, batch);
    arr[e.index] = old - h;
    const dn = qwen2ReferenceLosses(model, pol, p64, a64, batch);
    arr[e.index] = old;
    const smooth = ['actionLoss', 'retentionLoss'].every((k) => {
      const f = (up[k] - base[k]) / h, b = (base[k] - dn[k]) / h;
      return Math.abs(f - b) <= 0.02 * Math.max(Math.abs(f), Math.abs(b)) + 1e-6;
    });
    if (smooth) return { act: (up.actionLoss - dn.actionLoss) / (2 * h), ret: (up.retentionLoss - dn.retentionLoss) / (2 * h), h };
  }
  throw new Error(`${e.name}[${e.index}]: the reference losses have a kink within 1e-6 (no usable central difference)`);
}

async function checkVariant(options, seed, dir = written) {
  const { policy, model, pol, batch, params, anchor } = await tinyPolicy(dir, options, { seed });
  const gAct = policy.newGradSet(), gRet = policy.newGradSet();
  const native = policy.craftStep(batch, gAct, gRet);
  const p64 = f64Map(params), a64 = f64Map(anchor);
  const ref = qwen2ReferenceLosses(model, pol, p64, a64, batch);
  relClose(native.actionLoss, ref.actionLoss, 'action loss');
  relClose(native.retentionLoss, ref.retentionLoss, 'retention loss');
  assert.ok(ref.retentionLoss > 0, 'the anchor differs, so the retention loss is not 0');
  const off = offsets(policy), rand = rng(seed);
  for (const e of sampleElements(policy, rand)) {
    const fd = centralDifference(model, pol, p64, a64, batch, ref, e);
    const o = off.get(e.name);
    for (const [which, set, want] of [['g_act', gAct, fd.act], ['g_ret', gRet, fd.ret]]) {
      const g = set.data, got = g[o + e.index];
      let gmax = 0;
      for (let i = o; i < o + e.size; i++) gmax = Math.max(gmax, Math.abs(g[i]));
      const tol = 2e-3 * Math.abs(want) + 1e-4 * gmax + 1e-7;
      assert.ok(Math.abs(got - want) <= tol, `${which} ${e.name}[${e.index}] ${JSON.stringify(options)}: native ${got}, central difference ${want} (h ${fd.h})`);
    }
  }
  return { policy, batch, native };
}

const VARIANTS = [];
for (const pooling of ['mean', 'max'])
  for (const anchorType of ['concat', 'aq_only', 'raw_only'])
    for (const bridgeSpan of ['prefix', 'prefix+prompt']) VARIANTS.push({ pooling, anchorType, bridgeSpan });

VARIANTS.forEach((v, i) => {
  test(`losses and gradients match the float64 reference: ${JSON.stringify(v)}`, async () => {
    await checkVariant(v, 11 + i);
  });
});

for (const [bridgeLayer, anchorType] of [[4, 'raw_only'], [4, 'concat'], [1, 'raw_only'], [0, 'concat']]) {
  test(`bridge layer ${bridgeLayer} (${anchorType}): hidden_states[m], the last after the final norm`, async () => {
    await checkVariant({ bridgeLayer, anchorType, pooling: 'mean' }, 50 + bridgeLayer);
  });
}

test('LoRA on a subset of the linear layers; no prefix (prompt only) and no prompt (prefix only)', async () => {
  await checkVariant({ targets: ['v_proj', 'down_proj'], bridgeSpan: 'prefix+prompt' }, 61);
  await checkVariant({ prefixTokens: 0, bridgeSpan: 'prefix+prompt' }, 62);
  await checkVariant({ promptTokens: 0 }, 63);
});

test('a bf16 directory: the widened weights give the reference losses and gradients', async () => {
  await checkVariant({ pooling: 'max' }, 64, tinyDir(SMALL, { dtype: 'BF16', seed: 2 }));
});

test('baseline and eval forms: the same action loss and g_act as the CRaFT step, no anchor needed', async () => {
  const { policy, batch } = await tinyPolicy(written, {}, { seed: 70 });
  const gAct = policy.newGradSet(), gRet = policy.newGradSet(), gBase = policy.newGradSet();
  const craft = policy.craftStep(batch, gAct, gRet);
  const base = policy.baselineStep(batch, gBase);
  assert.equal(base.actionLoss, craft.actionLoss);
  assert.deepEqual(gBase.data, gAct.data);
  const ev = policy.evaluate(batch, { retention: true });
  assert.equal(ev.actionLoss, craft.actionLoss);
  assert.equal(ev.retentionLoss, craft.retentionLoss);
  assert.ok(Number.isNaN(policy.evaluate(batch).retentionLoss));
});

test('accumulate and scale: g += scale·grad', async () => {
  const { policy, batch } = await tinyPolicy(written, {}, { seed: 71 });
  const g1 = policy.newGradSet(), r1 = policy.newGradSet(), g2 = policy.newGradSet(), r2 = policy.newGradSet();
  policy.craftStep(batch, g1, r1);
  policy.craftStep(batch, g2, r2, { scale: 0.5 });
  policy.craftStep(batch, g2, r2, { scale: 0.5, accumulate: true });
  for (const [a, b] of [[g1, g2], [r1, r2]])
    for (let i = 0; i < a.data.length; i++) assert.ok(Math.abs(a.data[i] - b.data[i]) <= 1e-6 * Math.abs(a.data[i]) + 1e-9, `element ${i}`);
});

test('retention loss is exactly 0 when LoRA B is zero and the anchor queries equal the weights', async () => {
  const { policy, batch, params, anchor } = await tinyPolicy(written, {}, { seed: 72 });
  for (const [name, v] of params) if (name.endsWith('lora_B.weight')) { v.fill(0); anchor.get(name).fill(0); }
  anchor.get('action_queries').set(params.get('action_queries'));
  // The anchor's A factors still differ from the weights': with B = 0 they cannot matter.
  const r = policy.craftStep(batch, policy.newGradSet(), policy.newGradSet());
  assert.equal(r.retentionLoss, 0);
  assert.ok(r.actionLoss > 0);
});
