// The Qwen2 and VLA-Adapter steps with their frozen weights stored in bf16 on cuda:0
// (Qwen2Policy / VlaPolicy { precision: 'bf16' }) against the same step with an fp32 frozen set, shared by frozen-bf16-cuda.test.mjs
// (in process: no cuBLASLt on the emulator, so the products run on the fp32 kernels with the
// bf16 weights widened) and frozen-bf16-child.mjs (with the cuBLASLt stand-in or a GPU's
// cuBLASLt: the products in bf16). Throws an assertion error on a mismatch.
//
// The frozen weights are first rounded to bf16 values (as a bf16 checkpoint's are), so the
// fp32 and the bf16 frozen sets hold the same numbers. Then:
// - bf16 frozen + precision bf16 == fp32 frozen + precision bf16, bit for bit (the products
//   round their fp32 operands to bf16 with the same rounding the upload used, and the vectors
//   widen exactly): with cuBLASLt or without;
// - against the fp32 step (fp32 frozen, precision fp32): within BOUNDS.lt (VLA: vlaLt), with
//   cuBLASLt or without (without it the products are the fp32 kernels on the same values, but
//   the attention is the fused bf16 one, which needs no cuBLASLt);
// - with the original (unrounded) weights against the fp32 step: within the same bound
//   (BOUNDS.weights is what the weights' rounding alone gave, measured before the fused
//   attention; kept as a record, no longer asserted);
// - the frozen set's device bytes halved; two calls give the same bits.
// The bounds are measured, not derived: relative errors of 2^-9 per rounded input pass
// through 4 layers, the head and LoRA gradients that are sums with cancellation, so no
// useful a-priori bound holds element by element. They are the largest ratios seen on this
// tiny model (emulator, 2026-12-08) times about 3: losses relative, each gradient tensor as
// ‖got − want‖₂ / ‖want‖₂.
//   weights rounded to bf16, products fp32:  loss 1.1e-3, gradient 0.047 (VLA: 1.0e-3, 0.045)
//   products in bf16 (cuBLASLt stand-in):    loss 1.9e-2, gradient 0.143
//   VLA, products in bf16:                   loss 3.1e-3; gradients no bound: the towers'
//     LoRA gradients, at the far end of head, decoder and projector, are small sums that the
//     bf16 products change by up to 4× their norm on this random model (products' precision,
//     not the frozen weights': those are pinned bit for bit against the fp32 frozen set).
export const BOUNDS = { weights: { loss: 5e-3, grad: 0.15 }, lt: { loss: 6e-2, grad: 0.4 }, vlaLt: { loss: 1e-2, grad: null } };
import assert from 'node:assert/strict';
import { binding } from '../../dist/native.js';
import { GradSet, gradSetInternals } from '../../dist/gradset.js';
import { Qwen2Policy } from '../../dist/model/qwen2/index.js';
import { VlaPolicy } from '../../dist/model/vla/vla-policy.js';
import { SMALL, tinyDir, tinyPolicy } from './qwen2-setup.mjs';
import { tinyVlaPolicy } from './vla-random.mjs';

/** bf16 of an fp32 value as an fp32 number, round to nearest even (NaN stays NaN). */
export function bf16(x) {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setFloat32(0, x);
  const u = buf.getUint32(0);
  if ((u & 0x7fffffff) > 0x7f800000) return Number.NaN;
  const r = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  buf.setUint32(0, r >>> 0);
  return buf.getFloat32(0);
}

function step(policy, batch) {
  const gA = policy.newGradSet(), gR = policy.newGradSet();
  gA.set(new Float32Array(gA.numElements).fill(Number.NaN));  // every element must be written
  gR.set(new Float32Array(gR.numElements).fill(Number.NaN));
  const l = policy.craftStep(batch, gA, gR);
  const out = { actionLoss: l.actionLoss, retentionLoss: l.retentionLoss, gAct: gA.toFlat(), gRet: gR.toFlat() };
  gA.dispose();
  gR.dispose();
  return out;
}

// Losses within `loss` relative; each gradient tensor within `grad` relative in the 2-norm
// (‖got − want‖ ≤ grad·‖want‖: single elements of the LoRA gradients are sums that cancel, so
// their own relative error is no measure). Returns the largest ratios seen.
function within(policy, got, want, { loss, grad }, what) {
  const seen = { loss: 0, grad: 0 };
  for (const k of ['actionLoss', 'retentionLoss']) {
    assert.ok(Number.isFinite(got[k]), `${what} ${k}: ${got[k]}`);
    seen.loss = Math.max(seen.loss, Math.abs(got[k] - want[k]) / Math.abs(want[k]));
    assert.ok(Math.abs(got[k] - want[k]) <= loss * Math.abs(want[k]) + 1e-9, `${what} ${k}: ${got[k]} vs ${want[k]}`);
  }
  for (const g of ['gAct', 'gRet']) {
    policy.trainableSpecs.forEach((s, i) => {
      const o = policy.params.offsets[i];
      let d = 0, n = 0;
      for (let k = o; k < o + s.size; k++) {
        assert.ok(Number.isFinite(got[g][k]), `${what} ${g} ${s.name}[${k - o}] = ${got[g][k]}`);
        d += (got[g][k] - want[g][k]) ** 2;
        n += want[g][k] ** 2;
      }
      const r = Math.sqrt(d) / Math.sqrt(n);
      if (n > 0) seen.grad = Math.max(seen.grad, r);
      if (grad !== null) assert.ok(Math.sqrt(d) <= grad * Math.sqrt(n) + 1e-12, `${what} ${g} ${s.name}: ‖Δ‖/‖g‖ = ${r}`);
    });
  }
  if (process.env.CGTEST_FROZEN_BF16_VERBOSE) console.log(`# ${what}: loss ${seen.loss}, grad ${seen.grad}`);
  return seen;
}

function same(got, want, what) {
  assert.equal(got.actionLoss, want.actionLoss, `${what}: actionLoss`);
  assert.equal(got.retentionLoss, want.retentionLoss, `${what}: retentionLoss`);
  assert.deepEqual(got.gAct, want.gAct, `${what}: gAct`);
  assert.deepEqual(got.gRet, want.gRet, `${what}: gRet`);
}

/** Runs the comparisons; `lt`: cuBLASLt computes the bf16 products in this process. */
export async function compareQwen2FrozenBf16({ lt }) {
  const written = tinyDir(SMALL);
  const t = await tinyPolicy(written, {}, { seed: 5 });
  const hf = t.policy.hf, w = hf.weights;
  const arrays = [w.embedTokens, ...w.layers.map((l) => l.data), w.finalNorm];
  const unrounded = arrays.map((a) => a.slice());
  for (const a of arrays) for (let i = 0; i < a.length; i++) a[i] = bf16(a[i]);
  const make = (precision) => {
    const p = Qwen2Policy.fromHfModel(hf, { ...t.policy.options, device: 'cuda:0', precision });
    p.params.set(t.policy.params.toFlat());
    p.anchor.set(t.policy.anchor.toFlat());
    return p;
  };
  const b16 = make('bf16'), f32 = make('fp32');
  try {
    // Device bytes of the frozen copy: half.
    const elements = arrays.reduce((s, a) => s + a.length, 0);
    assert.equal(f32.frozenDeviceBytes, 4 * elements);
    assert.equal(b16.frozenDeviceBytes, 2 * elements);
    assert.equal(t.policy.frozenDeviceBytes, 0);

    const got = step(b16, t.batch);
    same(step(b16, t.batch), got, 'bf16 frozen, run to run');

    // The same step through the binding with an fp32 frozen set and precision bf16.
    const fset = GradSet.fromArrays(arrays, { device: 'cuda:0' });
    const h = gradSetInternals;
    const gA = b16.newGradSet(), gR = b16.newGradSet();
    const raw = binding.qwen2Step({
      config: b16.config, mode: 'craft', params: h(b16.params), anchor: h(b16.anchor), gAct: h(gA), gRet: h(gR), frozen: h(fset),
      prefix: t.batch.prefix, inputIds: t.batch.inputIds, actions: t.batch.actions, batch: t.batch.size, accumulate: false, scale: 1,
      precision: 'bf16',
    });
    same(got, { ...raw, gAct: gA.toFlat(), gRet: gR.toFlat() }, 'bf16 frozen vs fp32 frozen, both precision bf16');
    fset.dispose();
    gA.dispose();
    gR.dispose();

    const want = step(f32, t.batch);
    // Without cuBLASLt the products run on the fp32 kernels (the weights bf16-exact here), but
    // the attention is still the fused bf16 one (it needs no cuBLASLt): within the same bound.
    within(b16, got, want, BOUNDS.lt, lt ? 'bf16 vs fp32 step' : 'bf16 frozen without cuBLASLt vs the fp32 step');
  } finally {
    b16.dispose();
    f32.dispose();
  }

  // Weights that bf16 does not hold exactly: the rounding of the weights adds its error.
  arrays.forEach((a, i) => a.set(unrounded[i]));
  const b16u = make('bf16'), f32u = make('fp32');
  try {
    // With or without cuBLASLt the attention rounds to bf16, so the bf16 bound holds either way.
    within(b16u, step(b16u, t.batch), step(f32u, t.batch), BOUNDS.lt, 'unrounded weights, bf16 vs fp32 step');
  } finally {
    b16u.dispose();
    f32u.dispose();
  }
}

/** The same for VLA-Adapter's tiny model (towers, projector, decoder; VlaPolicy { precision }). */
export async function compareVlaFrozenBf16({ lt }) {
  const t = tinyVlaPolicy({ seed: 6, batch: 2 });
  const parts = t.policy.parts;
  const unrounded = parts.frozen.map((a) => a.slice());
  for (const a of parts.frozen) for (let i = 0; i < a.length; i++) a[i] = bf16(a[i]);
  const make = (precision) => {
    const p = VlaPolicy.create(parts, { ...t.policy.options, device: 'cuda:0', precision });
    p.params.set(t.policy.params.toFlat());
    p.anchor.set(t.policy.anchor.toFlat());
    return p;
  };
  const b16 = make('bf16'), f32 = make('fp32');
  try {
    const elements = parts.frozen.reduce((s, a) => s + a.length, 0);
    assert.equal(f32.frozenDeviceBytes, 4 * elements);
    assert.equal(b16.frozenDeviceBytes, 2 * elements);
    const got = step(b16, t.batch);
    same(step(b16, t.batch), got, 'VLA bf16 frozen, run to run');
    const fset = GradSet.fromArrays([...parts.frozen], { device: 'cuda:0' });
    const h = gradSetInternals;
    const gA = b16.newGradSet(), gR = b16.newGradSet();
    const b = t.batch;
    const raw = binding.vlaStep({
      config: b16.config, mode: 'craft', params: h(b16.params), anchor: h(b16.anchor), gAct: h(gA), gRet: h(gR), frozen: h(fset),
      pixels: b.pixels, inputIds: b.inputIds, proprio: b16.config.proprioDim > 0 ? b.proprio : null, actions: b.actions, noise: b.noise ?? null, batch: b.size,
      accumulate: false, scale: 1, precision: 'bf16',
    });
    same(got, { ...raw, gAct: gA.toFlat(), gRet: gR.toFlat() }, 'VLA bf16 frozen vs fp32 frozen, both precision bf16');
    fset.dispose();
    gA.dispose();
    gR.dispose();
    const want = step(f32, t.batch);
    within(b16, got, want, BOUNDS.vlaLt, lt ? 'VLA bf16 vs fp32 step' : 'VLA bf16 frozen without cuBLASLt vs the fp32 step');
  } finally {
    b16.dispose();
    f32.dispose();
  }
  parts.frozen.forEach((a, i) => a.set(unrounded[i]));
  const b16u = make('bf16'), f32u = make('fp32');
  try {
    within(b16u, step(b16u, t.batch), step(f32u, t.batch), BOUNDS.vlaLt, 'VLA unrounded weights, bf16 vs fp32 step');
  } finally {
    b16u.dispose();
    f32u.dispose();
  }
}
