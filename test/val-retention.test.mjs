// val_retention_loss: every validation step, baseline included, measures the retention loss
// on the validation split (a no-gradient anchor forward); a metrics.csv written before the
// key existed is widened on resume so its header stays true for every row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AdapterPolicy, AdapterPolicySource, Trainer, syntheticDataset, splitByEpisode, gatherBatch, CsvSink, METRIC_KEYS, RunError, HostGradientSource,
} from '../dist/index.js';
import { CSV_HEADER, truncateCsv } from '../dist/run/csv-sink.js';
import { CRAFT_METRIC_KEYS } from '../dist/train/index.js';
import { tempDir } from './helpers/temp-dir.mjs';

const CFG = { tokens: 4, width: 16, blocks: 2, rank: 2, headWidth: 8, chunk: 2, actionDims: 3 };
const data = () => splitByEpisode(syntheticDataset({ tasks: 2, episodesPerTask: 5, stepsPerEpisode: 4, tokens: 4, width: 16, chunk: 2, actionDims: 3 }), { valFraction: 0.2 });

test('AdapterPolicySource.validate: the mean action and retention loss of the split, as evaluate() gives them', () => {
  const { train, val } = data();
  const model = AdapterPolicy.create(CFG, { seed: 1 });
  model.params.view(1).fill(0.05); // move B off its initial 0: a non-zero drift
  const src = new AdapterPolicySource(model, train, { batchSize: 4, seed: 2, val, valBatchSize: 3 });
  const v = src.validate({ timeLimitMs: 60_000 });
  let act = 0, ret = 0;
  for (let i = 0; i < val.size; i += 3) {
    const idx = Array.from({ length: Math.min(3, val.size - i) }, (_, k) => i + k);
    const r = model.evaluate(gatherBatch(val, idx), { retention: true });
    act += r.actionLoss * idx.length;
    ret += r.retentionLoss * idx.length;
    // The anchor forward does not change the action loss.
    assert.equal(model.evaluate(gatherBatch(val, idx)).actionLoss, r.actionLoss);
  }
  assert.equal(v.samples, val.size);
  assert.equal(v.actionLoss, act / val.size);
  assert.equal(v.retentionLoss, ret / val.size);
  assert.ok(v.retentionLoss > 0);
});

test('baseline and CRaFT runs log val_retention_loss on validation steps only; training rows keep their keys', async () => {
  const { train, val } = data();
  const rowsOf = async (mode) => {
    const model = AdapterPolicy.create(CFG, { seed: 1 });
    const src = new AdapterPolicySource(model, train, { batchSize: 4, seed: 2, val });
    const trainer = new Trainer(src, { steps: 4, mode, lr: 1e-2, valEvery: 2, log: () => {} });
    const rows = [];
    for (let s = 0; s < 4; s++) rows.push((await trainer.step()).row);
    return rows;
  };
  for (const mode of ['baseline', 'craft']) {
    const rows = await rowsOf(mode);
    assert.deepEqual(rows.map((r) => 'val_retention_loss' in r), [false, true, false, true], mode);
    assert.deepEqual(rows.map((r) => 'val_action_loss' in r), [false, true, false, true], mode);
    assert.ok(rows[3].val_retention_loss > 0, `${mode}: the adapters drifted from their initial values`);
    const training = METRIC_KEYS.filter((k) => k !== 'val_action_loss' && k !== 'val_retention_loss' && (mode === 'craft' || !CRAFT_METRIC_KEYS.includes(k)));
    assert.deepEqual(Object.keys(rows[0]).sort(), [...training].sort(), mode);
    if (mode === 'baseline') for (const k of CRAFT_METRIC_KEYS) assert.ok(!(k in rows[3]), `baseline validation row has no ${k}`);
  }
});

function tmp(t) {
  const dir = tempDir(t, 'craftgrad-valret-');
  return dir;
}

test('resume of a metrics.csv written before val_retention_loss: the header is widened and every row padded', (t) => {
  const dir = tmp(t);
  const path = join(dir, 'metrics.csv');
  const oldKeys = METRIC_KEYS.filter((k) => k !== 'val_retention_loss');
  assert.equal(oldKeys.length, METRIC_KEYS.length - 1);
  const oldRow = (s) => oldKeys.map((k) => (k === 'step' ? s : k === 'val_action_loss' ? (s === 2 ? 0.5 : '') : 1)).join(',');
  writeFileSync(path, [oldKeys.join(','), oldRow(1), oldRow(2), oldRow(3)].join('\n') + '\n');
  const sink = new CsvSink(path, { resumeStep: 2 });
  sink.write({ step: 3, action_loss: 0.25, val_action_loss: 0.4, val_retention_loss: 0.003 });
  sink.close();
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  assert.equal(lines[0], CSV_HEADER);
  assert.equal(lines.length, 4);
  for (const l of lines) assert.equal(l.split(',').length, METRIC_KEYS.length, l);
  const col = (l, k) => l.split(',')[METRIC_KEYS.indexOf(k)];
  assert.deepEqual(lines.slice(1).map((l) => col(l, 'step')), ['1', '2', '3']);
  assert.equal(col(lines[2], 'val_action_loss'), '0.5');
  assert.equal(col(lines[2], 'val_retention_loss'), '');
  assert.equal(col(lines[3], 'val_retention_loss'), '0.003');
  // A header that is not an older prefix of this one is still refused, and the file is left alone.
  const other = 'step,epoch,loss\n1,0,2\n';
  writeFileSync(path, other);
  assert.throws(() => truncateCsv(path, 1), (e) => e instanceof RunError && e.field === 'header');
  assert.equal(readFileSync(path, 'utf8'), other);
});

test('HostGradientSource: a validate() that returns retentionLoss is logged; one that does not leaves the key out', async () => {
  for (const withRetention of [true, false]) {
    const source = new HostGradientSource({
      params: [new Float32Array([1, 2])],
      compute: () => ({ actionLoss: 1, gAct: new Float32Array([0.1, 0.1]) }),
      validate: () => (withRetention ? { actionLoss: 0.5, retentionLoss: 0.25, samples: 2 } : { actionLoss: 0.5, samples: 2 }),
    });
    const trainer = new Trainer(source, { steps: 1, mode: 'baseline', valEvery: 1, log: () => {} });
    const { row } = await trainer.step();
    assert.equal(row.val_action_loss, 0.5);
    if (withRetention) assert.equal(row.val_retention_loss, 0.25);
    else assert.ok(!('val_retention_loss' in row));
  }
});
