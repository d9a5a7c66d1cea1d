// Datasets: the synthetic default, file datasets (.npz, .safetensors) and their errors,
// N-shot, the validation split, checkDatasetFits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  syntheticDataset, taskInstruction, loadDatasetFile, saveDatasetFile, nShot, splitByEpisode, gatherBatch,
  checkDatasetFits, AdapterPolicy,
} from '../dist/index.js';
import { FormatError, writeNpzFile, writeSafetensorsFile } from '../dist/formats/index.js';

const SMALL = { tasks: 3, episodesPerTask: 4, stepsPerEpisode: 5, tokens: 4, width: 8, chunk: 3, actionDims: 7 };

test('synthetic dataset: deterministic per seed, shapes, tasks and episodes', () => {
  const a = syntheticDataset({ ...SMALL, seed: 1 }), b = syntheticDataset({ ...SMALL, seed: 1 }), c = syntheticDataset({ ...SMALL, seed: 2 });
  assert.equal(a.size, 3 * 4 * 5);
  assert.equal(a.tokens.length, a.size * 4 * 8);
  assert.equal(a.actions.length, a.size * 21);
  assert.deepEqual(a.tokens, b.tokens);
  assert.deepEqual(a.actions, b.actions);
  assert.notDeepEqual(a.tokens, c.tokens);
  assert.ok(a.tokens.every(Number.isFinite) && a.actions.every(Number.isFinite));
  assert.deepEqual([...new Set(a.task)], [0, 1, 2]);
  assert.equal(new Set(a.episode).size, 12);
  for (let i = 0; i < a.size; i++) assert.equal(a.episode[i], a.task[i] * 4 + Math.floor((i % 20) / 5));
  assert.equal(taskInstruction(0), 'pick the red block and place it in the left bin');
  assert.equal(taskInstruction(5), 'pick the blue cup and place it in the right bin');
  // The gripper closes during the episode and opens at its end.
  const grip = [];
  for (let s = 0; s < 5; s++) grip.push(a.actions[s * 21 + 6]);
  assert.ok(grip.includes(1) && grip[4] === 0);
  assert.throws(() => syntheticDataset({ tasks: 17 }), /options\.tasks/);
  assert.throws(() => syntheticDataset({ taks: 1 }), /unknown option 'taks'/);
});

test('the synthetic expert actions are learnable: plain SGD lowers the action loss', () => {
  const ds = syntheticDataset({ tasks: 4, episodesPerTask: 4, stepsPerEpisode: 8, tokens: 4, width: 32, chunk: 2, actionDims: 7, seed: 3 });
  const model = AdapterPolicy.create({ tokens: 4, width: 32, blocks: 2, rank: 4, headWidth: 64, chunk: 2, actionDims: 7 }, { seed: 1 });
  checkDatasetFits(ds, model.config);
  const all = gatherBatch(ds, Array.from({ length: ds.size }, (_, i) => i));
  const first = model.evaluate(all).actionLoss;
  const g = model.newGradSet();
  for (let step = 0; step < 300; step++) {
    model.baselineStep(all, g);
    const p = model.params.data;
    for (let i = 0; i < p.length; i++) p[i] -= 0.5 * g.data[i];
  }
  const last = model.evaluate(all).actionLoss;
  assert.ok(last < 0.6 * first, `action loss ${first} -> ${last}`);
});

test('file datasets round-trip through .npz and .safetensors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'craftgrad-data-'));
  try {
    const ds = syntheticDataset({ ...SMALL, seed: 4 });
    for (const name of ['d.npz', 'd.safetensors']) {
      const path = join(dir, name);
      await saveDatasetFile(path, ds);
      const back = await loadDatasetFile(path);
      assert.equal(back.size, ds.size);
      assert.equal(back.tokensPerSample, 4);
      assert.equal(back.width, 8);
      assert.equal(back.actionSize, 21);
      assert.deepEqual(back.tokens, ds.tokens);
      assert.deepEqual(back.actions, ds.actions);
      assert.deepEqual(back.task, ds.task);
      assert.deepEqual(back.episode, ds.episode);
      assert.equal(back.source, path);
    }
    // task and episode are optional: one task, one episode per sample.
    const path = join(dir, 'min.npz');
    await writeNpzFile(path, {
      tokens: { dtype: 'F32', shape: [3, 2, 2], data: new Float32Array(12) },
      actions: { dtype: 'F32', shape: [3, 4], data: new Float32Array(12) },
    });
    const min = await loadDatasetFile(path);
    assert.deepEqual([...min.task], [0, 0, 0]);
    assert.deepEqual([...min.episode], [0, 1, 2]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed dataset files name the file and the field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'craftgrad-data-'));
  const tok = (n = 3) => ({ dtype: 'F32', shape: [n, 2, 2], data: new Float32Array(n * 4) });
  const act = (n = 3) => ({ dtype: 'F32', shape: [n, 4], data: new Float32Array(n * 4) });
  const cases = [
    ['no tokens', { actions: act() }, 'tokens', /missing field 'tokens'/],
    ['f64 tokens', { tokens: { dtype: 'F64', shape: [3, 2, 2], data: new Float64Array(12) }, actions: act() }, 'tokens', /float32, got F64/],
    ['rank-2 tokens', { tokens: { dtype: 'F32', shape: [3, 4], data: new Float32Array(12) }, actions: act() }, 'tokens', /3 dimensions/],
    ['row mismatch', { tokens: tok(3), actions: act(2) }, 'actions', /2 rows but tokens has 3/],
    ['NaN', { tokens: { dtype: 'F32', shape: [3, 2, 2], data: Float32Array.from({ length: 12 }, (_, i) => (i === 7 ? NaN : 0)) }, actions: act() }, 'tokens', /non-finite.*index 7/],
    ['task length', { tokens: tok(), actions: act(), task: { dtype: 'I32', shape: [2], data: new Int32Array(2) } }, 'task', /2 entries/],
    ['task dtype', { tokens: tok(), actions: act(), task: { dtype: 'I64', shape: [3], data: new BigInt64Array(3) } }, 'task', /int32, got I64/],
    ['episode across tasks', { tokens: tok(), actions: act(), task: { dtype: 'I32', shape: [3], data: Int32Array.of(0, 1, 1) }, episode: { dtype: 'I32', shape: [3], data: Int32Array.of(5, 5, 6) } }, 'episode', /episode 5 appears under tasks 0 and 1/],
  ];
  try {
    for (const [label, tensors, field, pattern] of cases) {
      for (const ext of ['npz', 'safetensors']) {
        const path = join(dir, `${label.replace(/ /g, '_')}.${ext}`);
        if (ext === 'npz') await writeNpzFile(path, tensors); else await writeSafetensorsFile(path, tensors);
        await assert.rejects(loadDatasetFile(path), (e) => {
          assert.ok(e instanceof FormatError, `${label}: ${e}`);
          assert.equal(e.file, path);
          assert.equal(e.field, field);
          assert.match(e.message, pattern);
          assert.ok(e.message.includes(path));
          return true;
        });
      }
    }
    await assert.rejects(loadDatasetFile(join(dir, 'x.csv')), /unknown dataset file type '\.csv'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('N-shot keeps the first N episodes of each task', () => {
  const ds = syntheticDataset({ ...SMALL, seed: 5 });
  const two = nShot(ds, 2);
  assert.equal(two.size, 3 * 2 * 5);
  assert.deepEqual([...new Set(two.episode)], [0, 1, 4, 5, 8, 9]);
  assert.equal(nShot(ds, 10).size, ds.size);
  assert.throws(() => nShot(ds, 0), /n must be a positive integer/);
});

test('validation split is by episode, per task, seeded', () => {
  const ds = syntheticDataset({ ...SMALL, episodesPerTask: 10, seed: 6 });
  const { train, val } = splitByEpisode(ds, { valFraction: 0.2, seed: 1 });
  assert.equal(train.size + val.size, ds.size);
  const tr = new Set(train.episode), va = new Set(val.episode);
  assert.equal(va.size, 6); // 2 of 10 per task
  for (const e of va) assert.ok(!tr.has(e));
  for (const t of [0, 1, 2]) assert.equal([...va].filter((e) => Math.floor(e / 10) === t).length, 2);
  const again = splitByEpisode(ds, { valFraction: 0.2, seed: 1 });
  assert.deepEqual(again.val.episode, val.episode);
  const other = splitByEpisode(ds, { valFraction: 0.2, seed: 2 });
  assert.notDeepEqual([...new Set(other.val.episode)], [...va]);
  assert.equal(splitByEpisode(ds, { valFraction: 0 }).val.size, 0);
  assert.throws(() => splitByEpisode(ds, { valFraction: 1 }), /valFraction/);
});

test('checkDatasetFits names the mismatching dimension', () => {
  const ds = syntheticDataset({ ...SMALL });
  assert.throws(() => checkDatasetFits(ds, { tokens: 4, width: 16, chunk: 3, actionDims: 7 }), /token width \(D\) is 8 but the model needs 16/);
  assert.throws(() => checkDatasetFits(ds, { tokens: 4, width: 8, chunk: 2, actionDims: 7 }), /K·A\) is 21 but the model needs 14/);
});
