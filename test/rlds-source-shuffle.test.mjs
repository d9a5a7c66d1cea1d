// RldsVlaSource with `shuffleBuffer` (src/model/vla/rlds-source.ts): the drawn samples are
// ShuffleBuffer's outputs over the training samples in record order; prefetched draws and a
// resume give the same batches; with 2 ranks each takes its share of every draw, the shares
// together the one-process draw; a state saved before the buffer existed (a SamplerState)
// still restores a source without one, and a state of the other kind is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ShuffleBuffer, Sampler } from '../dist/index.js';
import { loadRldsForVla, RldsVlaSource } from '../dist/model/vla/rlds-source.js';
import { loadPromptTokenizer } from '../dist/data/rlds/index.js';
import { tempDir } from './helpers/temp-dir.mjs';
import { writeTinyQwen2 } from './helpers/tiny-qwen2-tokenizer.mjs';
import { liberoEpisode, liberoSpec, writeTfdsDataset } from './helpers/rlds-writer.mjs';

const NORM = [
  { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
];

/** A model stand-in recording every training batch (as test/rlds-frame-pool.test.mjs's). */
function recorder() {
  const seen = [];
  const model = {
    config: { chunk: 8, actionDims: 7, proprioDim: 8, views: 1, queries: 4, vocabSize: 320, towers: [{ imageSize: 28 }, { imageSize: 28 }] },
    params: null, trainableNames: [], trainableSpecs: [],
    headNoise: () => null,
    baselineStepAsync: async (b) => { seen.push(b); return { actionLoss: 0 }; },
    evaluate: () => ({ actionLoss: 0, retentionLoss: 0 }),
  };
  return { model, seen };
}

async function dataset(t) {
  const root = tempDir(t, 'craftgrad-rlds-shuffle-');
  const eps = [];
  for (let e = 0; e < 3; e++) eps.push(await liberoEpisode({ steps: 12, seed: e + 1, instruction: ['pick up the bowl', 'open the drawer'][e % 2], imageSize: 32 }));
  const { dir } = await writeTfdsDataset(root, { name: 'libero_tiny', spec: liberoSpec({ imageSize: 32 }), splits: { train: eps } });
  const tokDir = join(root, 'tok');
  mkdirSync(tokDir);
  writeTinyQwen2(tokDir);
  return { data: await loadRldsForVla(dir), tokenizer: await loadPromptTokenizer(tokDir) };
}

/** Sample indices of a draw's sub-batches, found by their action rows (distinct per sample here). */
function drawnSamples(data, batches) {
  const ka = data.samples.chunk * data.samples.actionDim, byRow = new Map();
  for (let i = 0; i < data.samples.size; i++) byRow.set(data.samples.actions.subarray(i * ka, (i + 1) * ka).join(','), i);
  assert.equal(byRow.size, data.samples.size, 'every sample has its own action rows');
  const out = [];
  for (const b of batches) for (let k = 0; k < b.size; k++) out.push(byRow.get(b.actions.subarray(k * ka, (k + 1) * ka).join(',')));
  return out.sort((a, b) => a - b);
}

async function draws(src, seen, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const before = seen.length;
    await src.accumulate(null, undefined, 1);
    out.push(seen.slice(before));
  }
  return out;
}

const sorted = (a) => [...a].sort((x, y) => x - y);

test('the drawn samples are the buffer\'s outputs; prefetched, resumed and sharded draws agree', async (t) => {
  const { data, tokenizer } = await dataset(t);
  const size = data.samples.size;  // 3 episodes of 12 steps: 5 samples each
  assert.equal(size, 15);
  const train = Array.from({ length: size }, (_, i) => i);
  const make = (extra) => {
    const { model, seen } = recorder();
    const s = new RldsVlaSource(model, data, { batchSize: 4, seed: 5, train, normalization: NORM, tokenizer, frameThreads: 0, shuffleBuffer: 6, ...extra });
    t.after(() => s.close());
    return { s, seen };
  };
  const ref = new ShuffleBuffer(size, { batchSize: 4, bufferSize: 6, seed: 5 });
  const expected = Array.from({ length: 10 }, () => sorted(ref.next()));
  // Not the permutation the default draws: the check can fail.
  const perm = new Sampler(size, { batchSize: 4, seed: 5, dropLast: true });
  assert.notDeepEqual(Array.from({ length: 10 }, () => sorted(perm.next())), expected);

  const a = make({ prefetch: 0 });
  const got = (await draws(a.s, a.seen, 10)).map((d) => drawnSamples(data, d));
  assert.deepEqual(got, expected);
  const b = make({ prefetch: 3 });
  const first = await draws(b.s, b.seen, 4);
  const state = JSON.parse(JSON.stringify(b.s.saveState()));
  assert.equal(state.sampler.kind, 'shuffle-buffer');
  const rest = await draws(b.s, b.seen, 6);
  assert.deepEqual([...first, ...rest].map((d) => drawnSamples(data, d)), expected, 'prefetched');
  const c = make({ prefetch: 2 });
  c.s.restoreState(state);
  const resumed = await draws(c.s, c.seen, 6);
  for (const [k, d] of resumed.entries()) {
    assert.equal(d.length, rest[k].length);
    for (const [j, batch] of d.entries()) assert.deepEqual(batch.pixels, rest[k][j].pixels, `resumed draw ${k}: the same samples and augmentation`);
  }
  // Two ranks: each its share of every draw, together the one-process draw.
  const r0 = make({ shard: { rank: 0, ranks: 2 } }), r1 = make({ shard: { rank: 1, ranks: 2 } });
  const d0 = await draws(r0.s, r0.seen, 10), d1 = await draws(r1.s, r1.seen, 10);
  for (let k = 0; k < 10; k++) {
    const s0 = drawnSamples(data, d0[k]), s1 = drawnSamples(data, d1[k]);
    assert.deepEqual([s0.length, s1.length], [2, 2]);
    assert.deepEqual(sorted([...s0, ...s1]), expected[k], `draw ${k}`);
  }
});

test('a SamplerState (as saved before the buffer) restores a source without one; the other kind is refused', async (t) => {
  const { data, tokenizer } = await dataset(t);
  const train = Array.from({ length: data.samples.size }, (_, i) => i);
  const make = (shuffleBuffer) => {
    const { model, seen } = recorder();
    const s = new RldsVlaSource(model, data, { batchSize: 4, seed: 5, train, normalization: NORM, tokenizer, frameThreads: 0, ...(shuffleBuffer === undefined ? {} : { shuffleBuffer }) });
    t.after(() => s.close());
    return { s, seen };
  };
  // What a source saved before this change: { sampler: SamplerState }, no kind.
  const old = new Sampler(train.length, { batchSize: 4, seed: 5, dropLast: true });
  old.next();
  const oldState = JSON.parse(JSON.stringify({ sampler: old.state() }));
  const plain = make();
  plain.s.restoreState(oldState);
  const after = await draws(plain.s, plain.seen, 3);
  assert.deepEqual(after.map((d) => drawnSamples(data, d)), [0, 1, 2].map(() => sorted(old.next())));
  const zero = make(0);
  zero.s.restoreState(oldState);
  assert.throws(() => make(8).s.restoreState(oldState), /state was saved drawing with a permutation per epoch \(no shuffle buffer\); this source draws with a shuffle buffer of 8/);
  const buffered = make(8);
  await draws(buffered.s, buffered.seen, 1);
  const bufState = buffered.s.saveState();
  assert.throws(() => make(0).s.restoreState(bufState), /saved drawing with a shuffle buffer of 8; this source draws with a permutation per epoch/);
  assert.throws(() => make(7).s.restoreState(bufState), /a shuffle buffer of 8; this source draws with a shuffle buffer of 7/);
  for (const bad of [-1, 1.5, 2 ** 31]) assert.throws(() => make(bad), /shuffleBuffer must be an integer from 0/);
});
