// The CUDA model backend (native/cuda/model_kernels.cu) against the CPU backend. Runs only
// where a GPU is present; elsewhere the test is skipped and says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdapterPolicy, GradSet, backendInfo } from '../dist/index.js';
import { binding } from '../dist/native.js';
import { packModelConfig } from '../dist/model/config.js';
import { Rng } from '../dist/data/rng.js';

const cuda = backendInfo().cuda;
const skip = !cuda.available ? `no usable GPU (${cuda.compiled ? cuda.reason : 'CUDA backend not compiled'})` : false;

const onGpu = (set) => {
  const g = GradSet.zeros(set.sizes, { device: 'cuda:0' });
  g.set(set.toFlat());
  return g;
};
const buf = (set) => GradSet.internals(set).storage.buffer;

for (const variant of [
  { tokens: 5, width: 24, blocks: 3, rank: 4, headWidth: 16, chunk: 2, actionDims: 3, pooling: 'mean', anchorType: 'concat' },
  { tokens: 7, width: 70, blocks: 4, rank: 6, headWidth: 33, chunk: 3, actionDims: 5, pooling: 'max', anchorType: 'aq_only', bridgeBlock: 1 },
  { tokens: 16, width: 256, blocks: 4, rank: 16, pooling: 'mean', anchorType: 'raw_only' },
]) {
  test(`CUDA model matches the CPU backend (${variant.pooling}, ${variant.anchorType}, D=${variant.width})`, { skip }, () => {
    const model = AdapterPolicy.create(variant, { seed: 3 });
    const rng = new Rng(4);
    for (let l = 0; l < model.config.blocks; l++) { const b = model.params.view(2 * l + 1); for (let i = 0; i < b.length; i++) b[i] = 0.05 * rng.normal(); }
    const c = model.config, n = 9;
    const tokens = Float32Array.from({ length: n * c.tokens * c.width }, () => rng.normal());
    const actions = Float32Array.from({ length: n * c.chunk * c.actionDims }, () => rng.normal());
    const cpuA = model.newGradSet(), cpuR = model.newGradSet();
    const want = model.craftStep({ tokens, actions, size: n }, cpuA, cpuR, { scale: 0.5 });
    const P = onGpu(model.params), Fz = onGpu(model.frozen), An = onGpu(model.anchor);
    const gA = GradSet.zeros(model.params.sizes, { device: 'cuda:0' }), gR = GradSet.zeros(model.params.sizes, { device: 'cuda:0' });
    const cfg = packModelConfig(c);
    const runs = [];
    for (let rep = 0; rep < 2; rep++) {
      const got = binding.cudaModelStep(cfg, buf(P), buf(Fz), buf(An), tokens, actions, n, buf(gA), buf(gR), 0, false, 0.5);
      runs.push({ got, a: gA.toFlat(), r: gR.toFlat() });
    }
    assert.deepEqual(runs[1], runs[0], 'run-to-run determinism');
    const { got, a, r } = runs[0];
    assert.ok(Math.abs(got.actionLoss - want.actionLoss) <= 1e-6 * Math.max(1, want.actionLoss));
    assert.ok(Math.abs(got.retentionLoss - want.retentionLoss) <= 1e-6 * Math.max(1e-6, want.retentionLoss));
    let identical = true;
    for (const [name, g, w] of [['gAct', a, cpuA.data], ['gRet', r, cpuR.data]]) {
      let mx = 0;
      for (const x of w) mx = Math.max(mx, Math.abs(x));
      for (let i = 0; i < w.length; i++) {
        if (g[i] !== w[i]) identical = false;
        assert.ok(Math.abs(g[i] - w[i]) <= 1e-5 * mx + 1e-9, `${name}[${i}]: cuda ${g[i]} vs cpu ${w[i]}`);
      }
    }
    // Designed to be bit-identical (model_cuda.h); report rather than fail if it is not.
    if (!identical) console.log(`# note: CUDA and CPU gradients agree to 1e-5 but are not bit-identical (${variant.pooling}, ${variant.anchorType})`);
    // Baseline and evaluation modes.
    const base = binding.cudaModelStep(cfg, buf(P), buf(Fz), null, tokens, actions, n, buf(gA), null, 1, false, 0.5);
    assert.ok(Math.abs(base.actionLoss - want.actionLoss) <= 1e-6 * Math.max(1, want.actionLoss));
    assert.deepEqual(gA.toFlat(), a);
    const ev = binding.cudaModelStep(cfg, buf(P), buf(Fz), buf(An), tokens, actions, n, null, null, 3, false, 1);
    assert.ok(Math.abs(ev.retentionLoss - want.retentionLoss) <= 1e-6 * Math.max(1e-6, want.retentionLoss));
  });
}

test('cudaModelStep checks its arguments', { skip }, () => {
  const model = AdapterPolicy.create({ tokens: 2, width: 4, blocks: 2, rank: 2, headWidth: 3, chunk: 1, actionDims: 2 });
  const P = onGpu(model.params), Fz = onGpu(model.frozen), An = onGpu(model.anchor), g = onGpu(model.params);
  const cfg = packModelConfig(model.config);
  const tokens = new Float32Array(8), actions = new Float32Array(2);
  assert.throws(() => binding.cudaModelStep(cfg, buf(Fz), buf(Fz), buf(An), tokens, actions, 1, buf(g), null, 1, false, 1), /^RangeError: params has/);
  assert.throws(() => binding.cudaModelStep(cfg, buf(P), buf(Fz), buf(An), new Float32Array(3), actions, 1, buf(g), null, 1, false, 1), /tokens has 3/);
  assert.throws(() => binding.cudaModelStep(cfg, buf(P), buf(Fz), buf(An), tokens, actions, 1, buf(P), null, 1, false, 1), /input buffer/);
  assert.throws(() => binding.cudaModelStep(cfg, buf(P), buf(Fz), buf(An), tokens, actions, 1, new Float32Array(3), null, 1, false, 1), TypeError);
});
