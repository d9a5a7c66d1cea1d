// AdapterPolicySource: the model + data in the shape of the Trainer's GradientSource.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdapterPolicy, AdapterPolicySource, syntheticDataset, splitByEpisode, gatherBatch, Sampler } from '../dist/index.js';

const CFG = { tokens: 4, width: 16, blocks: 2, rank: 2, headWidth: 8, chunk: 2, actionDims: 3 };
const data = () => splitByEpisode(syntheticDataset({ tasks: 2, episodesPerTask: 5, stepsPerEpisode: 4, tokens: 4, width: 16, chunk: 2, actionDims: 3 }), { valFraction: 0.2 });

test('accumulate: overwrite then add gives the mean of the micro-batches; baseline without gRet', () => {
  const { train, val } = data();
  const model = AdapterPolicy.create(CFG, { seed: 1 });
  model.params.view(1).fill(0.05);
  const src = new AdapterPolicySource(model, train, { batchSize: 4, seed: 2, val });
  assert.deepEqual(src.paramNames, model.trainableNames);
  assert.equal(src.params, model.params);
  const gA = model.newGradSet(), gR = model.newGradSet();
  const r1 = src.accumulate(gA, gR, 0.5, true);
  const r2 = src.accumulate(gA, gR, 0.5, false);
  assert.equal(r1.samples, 4);
  assert.ok(r1.retentionLoss > 0 && r2.actionLoss > 0);
  // Same batches drawn by hand.
  const s = new Sampler(train.size, { batchSize: 4, seed: 2, dropLast: true });
  const eA = model.newGradSet(), eR = model.newGradSet();
  model.craftStep(gatherBatch(train, s.next()), eA, eR, { scale: 0.5 });
  model.craftStep(gatherBatch(train, s.next()), eA, eR, { scale: 0.5, accumulate: true });
  assert.deepEqual(gA.data, eA.data);
  assert.deepEqual(gR.data, eR.data);
  const b = src.accumulate(gA, undefined, 1, true);
  assert.equal(b.retentionLoss, undefined);
  const v = src.validate({ timeLimitMs: 10000 });
  assert.equal(v.samples, val.size);
  assert.ok(Number.isFinite(v.actionLoss));
});

test('saveState/restoreState continue the same micro-batches', () => {
  const { train } = data();
  const model = AdapterPolicy.create(CFG, { seed: 1 });
  const a = new AdapterPolicySource(model, train, { batchSize: 3, seed: 5 });
  const g = model.newGradSet();
  for (let i = 0; i < 7; i++) a.accumulate(g, undefined, 1, true);
  const state = JSON.parse(JSON.stringify(a.saveState()));
  const b = new AdapterPolicySource(model, train, { batchSize: 3, seed: 99 });
  b.restoreState(state);
  for (let i = 0; i < 10; i++) assert.deepEqual(b.accumulate(g, undefined, 1, true), a.accumulate(g, undefined, 1, true));
  assert.throws(() => b.restoreState({}), /saveState/);
  assert.throws(() => new AdapterPolicySource(AdapterPolicy.create({ ...CFG, width: 8 }), train, { batchSize: 2 }), /token width \(D\) is 16 but the model needs 8/);
});

test('the Trainer drives AdapterPolicySource end to end (CRaFT and baseline)', async () => {
  const { Trainer } = await import('../dist/index.js');
  const { train, val } = data();
  for (const mode of ['craft', 'baseline']) {
    const model = AdapterPolicy.create(CFG, { seed: 1 });
    const before = model.params.toFlat();
    const src = new AdapterPolicySource(model, train, { batchSize: 4, seed: 2, val });
    const trainer = new Trainer(src, { steps: 6, microBatches: 2, mode, lr: 1e-2, valEvery: 3, log: () => {} });
    const rows = [];
    let r;
    while ((r = await trainer.step())) {
      rows.push(r.row);
      if (trainer.done) break;
    }
    await trainer.close();
    assert.equal(rows.length, 6);
    for (const row of rows) assert.ok(Number.isFinite(row.action_loss));
    assert.ok(rows.some((row) => Number.isFinite(row.val_action_loss)));
    if (mode === 'craft') {
      assert.ok(rows.every((row) => Number.isFinite(row.retention_loss)));
      assert.ok(rows.at(-1).retention_loss > 0, 'B moved away from 0');
    } else {
      assert.equal(rows[0].retention_loss, undefined);
    }
    assert.notDeepEqual(model.params.toFlat(), before);
    // The anchor (initial LoRA weights) is untouched by training.
    assert.deepEqual(model.anchor.data, before.subarray(0, model.anchor.numElements));
  }
});
