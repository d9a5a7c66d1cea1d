// The Qwen2 policy step on CUDA (native/models/qwen2_policy.cc over native/cuda's
// CudaLayers) against the CPU backend: Qwen2Policy({ device: 'cuda:0' }) on the same tiny
// model, parameters and anchor as a CPU policy; losses and both gradient sets within 1e-4
// (relative), every mode, anchor type, pooling and bridge span, prefix-only and prompt-only
// data; accumulate/scale; bit-identical run to run; the binding's checks of the frozen
// weights. Runs where a GPU (or the CUDA emulator: npm run test:cuda-emulator) is present;
// elsewhere each test skips with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binding } from '../dist/native.js';
import { GradSet, gradSetInternals } from '../dist/gradset.js';
import { Qwen2Policy } from '../dist/model/qwen2/index.js';
import { SMALL, tinyDir, tinyPolicy } from './helpers/qwen2-setup.mjs';
import { announceGpu, gpuTest } from './helpers/gpu.mjs';
import { closeGrads, closeLoss } from './helpers/cuda-compare.mjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.mjs';
import { randn, rng } from './helpers/random.mjs';
import { saveSequenceDatasetFile } from '../dist/data/sequence-dataset.js';

announceGpu(import.meta.url);

const written = tinyDir(SMALL);
const writtenWide = tinyDir({ hidden_size: 64, intermediate_size: 96, vocab_size: 80 });

/** A CPU policy with random parameters and anchor, and the same policy on cuda:0. */
async function pair(options, { dir = written, batchSize = 2, seed = 5 } = {}) {
  const t = await tinyPolicy(dir, options, { seed, batchSize });
  const gpu = Qwen2Policy.fromHfModel(t.policy.hf, { ...t.policy.options, device: 'cuda:0' });
  gpu.params.set(t.policy.params.toFlat());
  gpu.anchor.set(t.policy.anchor.toFlat());
  return { ...t, cpu: t.policy, gpu };
}

/** Craft, baseline, eval and evalRetention on both devices. */
function compareModes(t, { scale = 0.5 } = {}) {
  const { cpu, gpu, batch } = t;
  const cA = cpu.newGradSet(), cR = cpu.newGradSet(), gA = gpu.newGradSet(), gR = gpu.newGradSet();
  gA.set(new Float32Array(gA.numElements).fill(Number.NaN));  // every element must be written
  gR.set(new Float32Array(gR.numElements).fill(Number.NaN));
  const want = cpu.craftStep(batch, cA, cR, { scale });
  const got = gpu.craftStep(batch, gA, gR, { scale });
  closeLoss(got.actionLoss, want.actionLoss, 'craft actionLoss');
  closeLoss(got.retentionLoss, want.retentionLoss, 'craft retentionLoss');
  closeGrads(cpu, gA, cA, 'craft gAct');
  closeGrads(cpu, gR, cR, 'craft gRet');

  const wb = cpu.baselineStep(batch, cA, { scale });
  const gb = gpu.baselineStep(batch, gA, { scale });
  closeLoss(gb.actionLoss, wb.actionLoss, 'baseline actionLoss');
  closeGrads(cpu, gA, cA, 'baseline gAct');

  const we = cpu.evaluate(batch), ge = gpu.evaluate(batch);
  closeLoss(ge.actionLoss, we.actionLoss, 'eval actionLoss');
  assert.ok(Number.isNaN(ge.retentionLoss));
  const wr = cpu.evaluate(batch, { retention: true }), gr = gpu.evaluate(batch, { retention: true });
  closeLoss(gr.actionLoss, wr.actionLoss, 'evalRetention actionLoss');
  closeLoss(gr.retentionLoss, wr.retentionLoss, 'evalRetention retentionLoss');
  closeLoss(gr.retentionLoss, got.retentionLoss, 'evalRetention = craft retention (cuda)');
}

const VARIANTS = [
  { name: 'concat, mean, prefix span', options: { anchorType: 'concat', pooling: 'mean', bridgeSpan: 'prefix' } },
  { name: 'concat, max, prefix+prompt span', options: { anchorType: 'concat', pooling: 'max', bridgeSpan: 'prefix+prompt' } },
  { name: 'aq_only, mean', options: { anchorType: 'aq_only', pooling: 'mean' } },
  { name: 'aq_only, max', options: { anchorType: 'aq_only', pooling: 'max' } },
  { name: 'raw_only, mean, bridge layer 1', options: { anchorType: 'raw_only', pooling: 'mean', bridgeLayer: 1 } },
  { name: 'raw_only, max, bridge layer 0, prefix+prompt', options: { anchorType: 'raw_only', pooling: 'max', bridgeLayer: 0, bridgeSpan: 'prefix+prompt' } },
  { name: 'concat, bridge layer L (after the final norm)', options: { bridgeLayer: 4 } },
  { name: 'prefix-only data (no prompt), some targets', options: { promptTokens: 0, targets: ['q_proj', 'v_proj', 'down_proj'] } },
  { name: 'prompt-only data (no prefix), prefix+prompt span', options: { prefixTokens: 0, promptTokens: 4, bridgeSpan: 'prefix+prompt' } },
];

for (const v of VARIANTS) {
  gpuTest(`CUDA qwen2Step matches the CPU (${v.name})`, async () => {
    const t = await pair(v.options);
    try {
      compareModes(t);
    } finally {
      t.gpu.dispose();
    }
  });
}

gpuTest('CUDA qwen2Step matches the CPU on D=64 (hd 16), batch 3', async () => {
  const t = await pair({ rank: 8, alpha: 16, prefixTokens: 5, promptTokens: 3, chunk: 2, actionDims: 3, headWidth: 12 },
    { dir: writtenWide, batchSize: 3, seed: 9 });
  try {
    compareModes(t, { scale: 1 });
  } finally {
    t.gpu.dispose();
  }
});

gpuTest('CUDA qwen2Step: accumulate adds scale·grad; two calls are bit-identical', async () => {
  const t = await pair({ pooling: 'max' });
  const { cpu, gpu, batch } = t;
  try {
    const cA = cpu.newGradSet(), cR = cpu.newGradSet(), gA = gpu.newGradSet(), gR = gpu.newGradSet();
    cpu.craftStep(batch, cA, cR, { scale: 0.25 });
    cpu.craftStep(batch, cA, cR, { scale: 0.75, accumulate: true });
    const first = gpu.craftStep(batch, gA, gR, { scale: 0.25 });
    const once = { a: gA.toFlat(), r: gR.toFlat() };
    const second = gpu.craftStep(batch, gA, gR, { scale: 0.75, accumulate: true });
    assert.deepEqual(second, first, 'the losses do not depend on accumulate or scale');
    closeGrads(cpu, gA, cA, 'accumulated gAct');
    closeGrads(cpu, gR, cR, 'accumulated gRet');
    // The same call again: the same bits.
    const again = gpu.craftStep(batch, gA, gR, { scale: 0.25 });
    assert.deepEqual(again, first);
    assert.deepEqual(gA.toFlat(), once.a);
    assert.deepEqual(gR.toFlat(), once.r);
    // Async and sync agree bit for bit.
    const asy = await gpu.craftStepAsync(batch, gA, gR, { scale: 0.25 });
    assert.deepEqual(asy, first);
    assert.deepEqual(gA.toFlat(), once.a);
    const base = await gpu.baselineStepAsync(batch, gA, { scale: 0.25 });
    assert.equal(base.actionLoss, first.actionLoss);
    assert.deepEqual(gA.toFlat(), once.a);
  } finally {
    gpu.dispose();
  }
});

gpuTest('a CUDA policy keeps its sets on the device and refuses sets of another device', async () => {
  const t = await pair({});
  const { cpu, gpu, batch } = t;
  try {
    assert.equal(gpu.device, 'cuda:0');
    assert.equal(cpu.device, 'cpu');
    assert.equal(gpu.params.device, 'cuda:0');
    assert.equal(gpu.newGradSet().device, 'cuda:0');
    assert.equal(gpu.options.device, undefined, 'the device is not part of the recorded options');
    assert.throws(() => gpu.baselineStep(batch, cpu.newGradSet()), /gAct is on cpu; the policy is on cuda:0/);
    assert.throws(() => cpu.baselineStep(batch, gpu.newGradSet()), /gAct is on cuda:0; the policy is on cpu/);
    // Trainable tensors read back from the device.
    assert.deepEqual(gpu.trainableTensors()['action_queries'].data, cpu.trainableTensors()['action_queries'].data);
  } finally {
    gpu.dispose();
  }
});

gpuTest('the binding checks the frozen weights of a CUDA step (host arrays, size, device)', async () => {
  const t = await pair({});
  const { cpu, gpu, batch } = t;
  const w = cpu.hf.weights;
  const h = (g) => gradSetInternals(g);
  const raw = (frozen) => ({
    config: gpu.config, mode: 'craft', params: h(gpu.params), anchor: h(gpu.anchor), gAct: h(gpu.newGradSet()), gRet: h(gpu.newGradSet()),
    frozen, prefix: batch.prefix, inputIds: batch.inputIds, actions: batch.actions, batch: batch.size, accumulate: false, scale: 1,
  });
  try {
    const hostFrozen = { embedTokens: w.embedTokens, layers: w.layers.map((l) => l.data), finalNorm: w.finalNorm };
    assert.throws(() => binding.qwen2Step(raw(hostFrozen)), (e) => e instanceof TypeError && /frozen must be a TensorSet on cuda:0/.test(e.message));
    const arrays = [w.embedTokens, ...w.layers.map((l) => l.data), w.finalNorm];
    const onCpu = GradSet.fromArrays(arrays);
    assert.throws(() => binding.qwen2Step(raw(h(onCpu))), (e) => e instanceof RangeError && /frozen is on cpu, params on cuda:0/.test(e.message));
    const short = GradSet.fromArrays(arrays.slice(1), { device: 'cuda:0' });
    assert.throws(() => binding.qwen2Step(raw(h(short))), (e) => e instanceof RangeError && /frozen has 5 tensors/.test(e.message));
    short.dispose();
    // A correct set works, and a CPU step takes a CPU set as well as host arrays.
    const dev = GradSet.fromArrays(arrays, { device: 'cuda:0' });
    const got = binding.qwen2Step(raw(h(dev)));
    dev.dispose();
    const want = cpu.craftStep(batch, cpu.newGradSet(), cpu.newGradSet());
    closeLoss(got.actionLoss, want.actionLoss, 'raw actionLoss');
    const viaSet = binding.qwen2Step({ ...raw(h(onCpu)), params: h(cpu.params), anchor: h(cpu.anchor), gAct: h(cpu.newGradSet()), gRet: h(cpu.newGradSet()) });
    assert.deepEqual(viaSet, want);
    onCpu.dispose();
  } finally {
    gpu.dispose();
  }
});

gpuTest('craftgrad train --model DIR --device cuda:0 follows the CPU run', async () => {
  const N = 16, P = 3, S = 2, D = 32, K = 3, A = 2;
  const data = join(written.dir, 'data.npz');
  const r = rng(5);
  await saveSequenceDatasetFile(data, {
    size: N, prefixTokens: P, promptTokens: S, width: D, actionSize: K * A,
    prefix: randn(N * P * D, r, 1), inputIds: Int32Array.from({ length: N * S }, () => Math.floor(r() * SMALL.vocab_size)),
    actions: randn(N * K * A, r, 0.5), task: new Int32Array(N), episode: Int32Array.from({ length: N }, (_, i) => Math.floor(i / 2)), source: data,
  });
  const rows = {};
  for (const device of ['cpu', 'cuda:0']) {
    const name = device.replace(':', '');
    const args = ['train', '--model', written.dir, '--data', data, '--chunk', K, '--action-dims', A, '--rank', 4, '--alpha', 8,
      '--head-width', 8, '--batch-size', 4, '--steps', 3, '--warmup', 1, '--val-every', 0, '--save-every', 3, '--threads', 1,
      '--device', device, '--precision', 'fp32', '--out', written.dir, '--name', name, '--quiet'].map(String);
    const res = runCli(args);
    assert.equal(res.code, 0, `${device}:\n${res.stdout}\n${res.stderr}`);
    rows[device] = readFileSync(join(written.dir, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  }
  assert.equal(rows['cuda:0'].length, rows.cpu.length);
  rows.cpu.forEach((w, i) => {
    const g = rows['cuda:0'][i];
    for (const k of ['action_loss', 'retention_loss']) {
      assert.ok(Math.abs(g[k] - w[k]) <= 1e-3 * Math.abs(w[k]) + 1e-7, `step ${w.step} ${k}: cuda ${g[k]} vs cpu ${w[k]}`);
    }
  });
});

test('Qwen2Policy refuses a bad device', async () => {
  const t = await tinyPolicy(written, {}, { seed: 1 });
  assert.throws(() => Qwen2Policy.fromHfModel(t.policy.hf, { ...t.policy.options, device: 'gpu' }), /options.device must be 'auto', 'cpu', 'cuda' or 'cuda:N'/);
});
