// VLA-Adapter's step on CUDA (native/models/vla_policy.cc over CudaLayers) against the CPU
// backend: VlaPolicy({ device: 'cuda:0' }) on the same tiny random model, parameters, anchor
// and batch as a CPU policy; losses and both gradient sets within 1e-4 (relative to each
// tensor's largest CPU value), in every mode and with accumulate/scale; bit-identical run
// to run. Runs where a GPU (or the CUDA emulator: npm run test:cuda-emulator) is present;
// elsewhere each test skips with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VlaPolicy } from '../dist/model/vla/vla-policy.js';
import { announceGpu, gpuTest } from './helpers/gpu.mjs';
import { closeGrads, closeLoss } from './helpers/cuda-compare.mjs';
import { tinyVlaPolicy } from './helpers/vla-random.mjs';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { writeTinyVla, writeTinyVlaDataset } from './helpers/vla-tiny.mjs';

announceGpu(import.meta.url);

function pair(opts = {}) {
  const t = tinyVlaPolicy({ seed: 6, batch: 2, ...opts });
  const gpu = VlaPolicy.create(t.policy.parts, { ...t.policy.options, device: 'cuda:0' });
  gpu.params.set(t.policy.params.toFlat());
  gpu.anchor.set(t.policy.anchor.toFlat());
  return { cpu: t.policy, gpu, batch: t.batch };
}

for (const opts of [{}, { pooling: 'max', bridgeSpan: 'vision+prompt', anchorType: 'raw_only', bridgeLayer: 1 }, { useProprio: false, anchorType: 'aq_only' }]) {
  gpuTest(`the VLA step on CUDA matches the CPU in every mode (${JSON.stringify(opts)})`, () => {
    const { cpu, gpu, batch } = pair(opts);
    const cA = cpu.newGradSet(), cR = cpu.newGradSet(), gA = gpu.newGradSet(), gR = gpu.newGradSet();
    gA.set(new Float32Array(gA.numElements).fill(Number.NaN));  // every element must be written
    gR.set(new Float32Array(gR.numElements).fill(Number.NaN));
    const want = cpu.craftStep(batch, cA, cR, { scale: 0.5 });
    const got = gpu.craftStep(batch, gA, gR, { scale: 0.5 });
    closeLoss(got.actionLoss, want.actionLoss, 'craft actionLoss');
    closeLoss(got.retentionLoss, want.retentionLoss, 'craft retentionLoss');
    closeGrads(cpu, gA, cA, 'craft gAct');
    closeGrads(cpu, gR, cR, 'craft gRet');
    // accumulate: g += 0.5·grad on top of the craft step's values
    cpu.baselineStep(batch, cA, { scale: 0.5, accumulate: true });
    gpu.baselineStep(batch, gA, { scale: 0.5, accumulate: true });
    closeGrads(cpu, gA, cA, 'accumulated baseline gAct');
    const we = cpu.evaluate(batch, { retention: true }), ge = gpu.evaluate(batch, { retention: true });
    closeLoss(ge.actionLoss, we.actionLoss, 'evalRetention actionLoss');
    closeLoss(ge.retentionLoss, we.retentionLoss, 'evalRetention retentionLoss');
    closeLoss(gpu.evaluate(batch).actionLoss, we.actionLoss, 'eval actionLoss');
    cpu.dispose();
    gpu.dispose();
  });
}

gpuTest('the VLA step on CUDA is bit-identical run to run', () => {
  const { gpu, batch } = pair();
  const runs = [0, 1].map(() => {
    const a = gpu.newGradSet(), r = gpu.newGradSet();
    const l = gpu.craftStep(batch, a, r);
    return { l, a: a.toFlat(), r: r.toFlat() };
  });
  assert.deepEqual(runs[1].l, runs[0].l);
  assert.deepEqual(runs[1].a, runs[0].a);
  assert.deepEqual(runs[1].r, runs[0].r);
  gpu.dispose();
});

// The CLI on a device: CRaFT and the baseline on a tiny VLA-Adapter directory, 3 steps on
// cuda:0 against the same run on the CPU (losses within 1e-4 relative), checkpoints with
// upstream's files.
for (const mode of [[], ['--no-craft']]) {
  gpuTest(`craftgrad train --device cuda trains a VLA-Adapter directory as the CPU does (${mode.length ? 'baseline' : 'CRaFT'})`, (t) => {
    const root = tempDir(t, 'craftgrad-vla-cuda-');
    const model = writeTinyVla(join(root, 'model')).dir;
    const data = writeTinyVlaDataset(join(root, 'data.safetensors'), { samples: 8 });
    const run = (device) => {
      const r = runCli(['train', '--model', model, '--data', data, '--out', join(root, 'runs'), '--name', device, '--device', device, '--precision', 'fp32', '--steps', '3',
        '--batch-size', '2', '--rank', '2', '--alpha', '4', '--quiet', '--val-every', '0', '--save-every', '3', ...mode]);
      assert.equal(r.code, 0, r.stderr);
      return readFileSync(join(root, 'runs', device, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    };
    const cpu = run('cpu'), gpu = run('cuda:0');
    assert.equal(gpu.length, 3);
    cpu.forEach((c, i) => {
      closeLoss(gpu[i].action_loss, c.action_loss, `step ${i + 1} action loss`);
      if (!mode.length) closeLoss(gpu[i].retention_loss, c.retention_loss, `step ${i + 1} retention loss`);
    });
    assert.ok(existsSync(join(root, 'runs', 'cuda:0', 'checkpoints', 'step-000003', 'action_head--3_checkpoint.pt')));
  });
}
