// Backbone datasets: `prefix` (N, P, D) and/or `input_ids` (N, S), `actions`, optional
// task/episode; .npz and .safetensors; every error names the file and the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  loadSequenceDatasetFile, saveSequenceDatasetFile, checkSequenceDatasetFits, gatherSequenceBatch, subsetSequenceDataset,
  nShotSequence, splitSequenceByEpisode, nShot, splitByEpisode, syntheticDataset,
} from '../dist/data/index.js';
import { FormatError, writeNpzFile, writeSafetensorsFile } from '../dist/formats/index.js';
import { randn, rng } from './helpers/random.mjs';
import { withTempDir } from './helpers/temp-dir.mjs';

const LIMITS = { hiddenSize: 8, vocabSize: 50 };

function fields({ N = 6, P = 3, D = 8, S = 4, KA = 14, prefix = true, ids = true, seed = 1 } = {}) {
  const rand = rng(seed);
  const t = {};
  if (prefix) t.prefix = { dtype: 'F32', shape: [N, P, D], data: randn(N * P * D, rand) };
  if (ids) t.input_ids = { dtype: 'I32', shape: [N, S], data: Int32Array.from({ length: N * S }, () => Math.floor(rand() * 50)) };
  t.actions = { dtype: 'F32', shape: [N, KA], data: randn(N * KA, rand) };
  t.task = { dtype: 'I32', shape: [N], data: Int32Array.from({ length: N }, (_, i) => i % 2) };
  t.episode = { dtype: 'I32', shape: [N], data: Int32Array.from({ length: N }, (_, i) => (i % 2) * 10 + Math.floor(i / 4)) };
  return t;
}

test('sequence dataset: prefix + input_ids, prefix only and input_ids only, in .npz and .safetensors, round trip', () => withTempDir('craftgrad-seq-', async (dir) => {
  for (const [prefix, ids] of [[true, true], [true, false], [false, true]]) {
    for (const ext of ['npz', 'safetensors']) {
      const t = fields({ prefix, ids });
      const path = join(dir, `d-${prefix}-${ids}.${ext}`);
      await (ext === 'npz' ? writeNpzFile(path, t) : writeSafetensorsFile(path, t));
      const ds = await loadSequenceDatasetFile(path, LIMITS);
      assert.equal(ds.size, 6);
      assert.equal(ds.prefixTokens, prefix ? 3 : 0);
      assert.equal(ds.promptTokens, ids ? 4 : 0);
      assert.equal(ds.width, prefix ? 8 : 0);
      assert.equal(ds.actionSize, 14);
      assert.deepEqual(ds.prefix, prefix ? t.prefix.data : null);
      assert.deepEqual(ds.inputIds, ids ? t.input_ids.data : null);
      assert.deepEqual(ds.actions, t.actions.data);
      assert.deepEqual(ds.episode, t.episode.data);
      assert.equal(ds.source, path);
      const again = join(dir, `again.${ext}`);
      await saveSequenceDatasetFile(again, ds);
      const ds2 = await loadSequenceDatasetFile(again);
      assert.deepEqual({ ...ds2, source: '' }, { ...ds, source: '' });
    }
  }
}));

test('sequence dataset: batches and subsets copy the right samples', () => withTempDir('craftgrad-seq-', async (dir) => {
  const path = join(dir, 'd.safetensors');
  const t = fields();
  await writeSafetensorsFile(path, t);
  const ds = await loadSequenceDatasetFile(path);
  const b = gatherSequenceBatch(ds, [4, 1]);
  assert.deepEqual(b.prefix, Float32Array.from([...t.prefix.data.subarray(96, 120), ...t.prefix.data.subarray(24, 48)]));
  assert.deepEqual(b.inputIds, Int32Array.from([...t.input_ids.data.subarray(16, 20), ...t.input_ids.data.subarray(4, 8)]));
  assert.deepEqual(b.actions, Float32Array.from([...t.actions.data.subarray(56, 70), ...t.actions.data.subarray(14, 28)]));
  const again = gatherSequenceBatch(ds, [0], b);
  assert.equal(again.prefix.buffer, b.prefix.buffer, 'a large enough batch is reused');
  const sub = subsetSequenceDataset(ds, [5, 0], 'sub');
  assert.equal(sub.size, 2);
  assert.deepEqual(sub.task, Int32Array.of(1, 0));
  assert.deepEqual(sub.episode, Int32Array.of(11, 0));
  assert.throws(() => gatherSequenceBatch(ds, [6]), /indices\[0\] must be an integer from 0 to 5/);
}));

test('sequence dataset: every shape disagreement, bad id and model mismatch names the file and the field', () => withTempDir('craftgrad-seq-', async (dir) => {
  const path = join(dir, 'bad.safetensors');
  const cases = [
    [(t) => { delete t.prefix; delete t.input_ids; }, 'prefix', /needs 'prefix'.*'input_ids'/],
    [(t) => { delete t.prefix; delete t.input_ids; t.tokens = { dtype: 'F32', shape: [6, 2, 8], data: new Float32Array(96) }; }, 'tokens', /built-in model/],
    [(t) => { t.prefix = { dtype: 'F64', shape: [6, 3, 8], data: new Float64Array(144) }; }, 'prefix', /must be float32, got F64/],
    [(t) => { t.prefix = { ...t.prefix, shape: [6, 24] }; }, 'prefix', /must have 3 dimensions/],
    [(t) => { t.input_ids = { dtype: 'I64', shape: [6, 4], data: new BigInt64Array(24) }; }, 'input_ids', /must be int32, got I64/],
    [(t) => { t.input_ids = { ...t.input_ids, shape: [4, 6] }; }, 'input_ids', /has 4 rows but prefix has 6 samples/],
    [(t) => { t.input_ids.data[7] = -3; }, 'input_ids', /negative token id \(-3\) at flat index 7/],
    [(t) => { t.input_ids.data[9] = 50; }, 'input_ids', /token id 50 at flat index 9, outside the model's vocabulary \(vocab_size 50\)/],
    [(t) => { t.prefix = { dtype: 'F32', shape: [6, 3, 16], data: new Float32Array(288) }; }, 'prefix', /width 16 but the model's hidden_size is 8/],
    [(t) => { t.prefix.data[2] = NaN; }, 'prefix', /non-finite/],
    [(t) => { t.actions = { ...t.actions, shape: [7, 12] }; }, 'actions', /has 7 rows but prefix has 6 samples/],
    [(t) => { delete t.actions; }, 'actions', /missing field 'actions'/],
    [(t) => { t.task = { dtype: 'I32', shape: [5], data: new Int32Array(5) }; }, 'task', /has 5 entries but prefix has 6 samples/],
    [(t) => { t.episode = { dtype: 'I32', shape: [6], data: new Int32Array(6) }; }, 'episode', /appears under tasks 0 and 1/],
  ];
  for (const [edit, field, re] of cases) {
    const t = fields();
    edit(t);
    await writeSafetensorsFile(path, t);
    await assert.rejects(loadSequenceDatasetFile(path, LIMITS),
      (e) => e instanceof FormatError && e.file === path && e.field === field && re.test(e.message) && e.message.includes(path), `${field} ${re}`);
  }
  // Without limits the model checks wait for checkSequenceDatasetFits, which names the file and the field too.
  const t = fields();
  t.input_ids.data[0] = 77;
  await writeSafetensorsFile(path, t);
  const ds = await loadSequenceDatasetFile(path);
  assert.throws(() => checkSequenceDatasetFits(ds, { ...LIMITS, chunk: 2, actionDims: 7 }), (e) => e instanceof FormatError && e.file === path && e.field === 'input_ids');
  const ok = await loadSequenceDatasetFile(path, { hiddenSize: 8, vocabSize: 100 });
  assert.throws(() => checkSequenceDatasetFits(ok, { hiddenSize: 8, vocabSize: 100, chunk: 3, actionDims: 7 }), (e) => e instanceof FormatError && e.field === 'actions' && /needs chunk 3 × action dims 7 = 21/.test(e.message));
  checkSequenceDatasetFits(ok, { hiddenSize: 8, vocabSize: 100, chunk: 2, actionDims: 7 });
  await assert.rejects(loadSequenceDatasetFile(join(dir, 'x.csv')), (e) => e instanceof FormatError && /unknown dataset file type/.test(e.message));
}));

test('sequence dataset: N-shot and the episode split pick the same samples as for the built-in datasets', () => {
  const syn = syntheticDataset({ tasks: 3, episodesPerTask: 5, stepsPerEpisode: 4, tokens: 2, width: 4, chunk: 2, actionDims: 7, seed: 3 });
  const N = syn.size;
  // A sequence dataset whose actions are the sample index, so the chosen samples can be read back.
  const seq = {
    size: N, prefixTokens: 0, promptTokens: 1, width: 0, actionSize: 1, prefix: null,
    inputIds: Int32Array.from({ length: N }, (_, i) => i % 50), actions: Float32Array.from({ length: N }, (_, i) => i),
    task: syn.task, episode: syn.episode, source: 'seq',
  };
  const ids = (ds) => Array.from(ds.actions);
  const synIds = (ds) => Array.from(ds.episode, (e, i) => [e, ds.task[i]]);
  const two = nShotSequence(seq, 2);
  assert.deepEqual(Array.from(two.episode, (e, i) => [e, two.task[i]]), synIds(nShot(syn, 2)));
  assert.equal(two.source, 'seq [2-shot]');
  assert.deepEqual(ids(two).map((i) => seq.inputIds[i]), Array.from(two.inputIds));
  const a = splitSequenceByEpisode(seq, { valFraction: 0.4, seed: 7 }), b = splitByEpisode(syn, { valFraction: 0.4, seed: 7 });
  assert.deepEqual(Array.from(a.val.episode), Array.from(b.val.episode));
  assert.deepEqual(Array.from(a.train.episode), Array.from(b.train.episode));
  assert.ok(a.val.size > 0 && a.train.size > 0);
  assert.equal(a.val.size + a.train.size, N);
  for (const e of a.val.episode) assert.ok(!a.train.episode.includes(e), 'no episode on both sides');
});
