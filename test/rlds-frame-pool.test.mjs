// The RLDS source's frame workers (src/data/images/frame-pool.ts): the pixels a worker makes
// equal the main thread's to the bit (same functions, same draws), through the source too
// (batches with and without workers, after a resume), a bad JPEG read on a worker is still
// one line naming shard, record, step and feature, and idle workers never keep a process alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FramePool, prepareNormalizedFrame } from '../dist/data/images/frame-pool.js';
import { loadRldsForVla, RldsVlaSource } from '../dist/model/vla/rlds-source.js';
import { loadPromptTokenizer } from '../dist/data/rlds/index.js';
import { tempDir } from './helpers/temp-dir.mjs';
import { writeTinyQwen2 } from './helpers/tiny-qwen2-tokenizer.mjs';
import { encodeJpeg, liberoEpisode, liberoSpec, syntheticFrame, writeTfdsDataset } from './helpers/rlds-writer.mjs';

const NORM = [
  { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
];

const same = (a, b, what) => assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), what);

test('a worker gives the main thread\'s pixels to the bit: random draws, centre crop, none', async (t) => {
  const views = [await encodeJpeg(syntheticFrame(64, 3), 64), await encodeJpeg(syntheticFrame(64, 9), 64)];
  const pool = new FramePool({ threads: 2, normalization: NORM });
  t.after(() => pool.close());
  const jobs = [
    { size: 56, augment: 'none' }, { size: 56, augment: 'center' },
    ...[0, 1, 7, 123456].map((s) => ({ size: 56, augment: 'random', draw: [5, s, s * 3 + 1] })),
  ];
  const inThread = await Promise.all(jobs.map((j) => prepareNormalizedFrame(views, j, NORM)));
  const onWorkers = await Promise.all(jobs.map((j) => pool.prepare(views, j)));
  for (const [k, j] of jobs.entries()) {
    assert.equal(onWorkers[k].length, 2 * 6 * 56 * 56);
    same(onWorkers[k], inThread[k], `${j.augment} ${j.draw ?? ''}`);
  }
  assert.notDeepEqual(inThread[2], inThread[3], 'other draws, other pixels');
  // The caller's bytes are copied, not transferred away.
  assert.equal(views[0].length > 0 && views[1].length > 0, true);
  await assert.rejects(pool.prepare([new Uint8Array([1, 2, 3])], { size: 8, augment: 'none' }), /view 0: not a decodable image/);
});

/** A model stand-in: the source's calls, recording every batch it is given. */
function recorder(views = 2, imageSize = 28) {
  const seen = [];
  const model = {
    config: { chunk: 8, actionDims: 7, proprioDim: 8, views, queries: 4, vocabSize: 320, towers: [{ imageSize }, { imageSize }] },
    params: null, trainableNames: [], trainableSpecs: [],
    headNoise: () => null,
    baselineStepAsync: async (b) => { seen.push(b); return { actionLoss: 0 }; },
    evaluate: (b) => { seen.push(b); return { actionLoss: 0, retentionLoss: 0 }; },
  };
  return { model, seen };
}

async function dataset(t, { bad } = {}) {
  const root = tempDir(t, 'craftgrad-frame-pool-');
  const eps = [];
  for (let e = 0; e < 3; e++) eps.push(await liberoEpisode({ steps: 10, seed: e + 1, instruction: ['pick up the bowl', 'open the drawer'][e % 2], imageSize: 32 }));
  if (bad) eps[bad.episode].steps[bad.step].observation.image = new Uint8Array(500).fill(7);
  const { dir } = await writeTfdsDataset(root, { name: 'libero_tiny', spec: liberoSpec({ imageSize: 32 }), splits: { train: eps } });
  const tokDir = join(root, 'tok');
  mkdirSync(tokDir);
  writeTinyQwen2(tokDir);
  return { data: await loadRldsForVla(dir), tokenizer: await loadPromptTokenizer(tokDir) };
}

function source(model, data, tokenizer, extra) {
  const train = Array.from({ length: data.samples.size }, (_, i) => i);
  return new RldsVlaSource(model, data, { batchSize: 4, seed: 3, train, val: train.slice(0, 5), normalization: NORM, tokenizer, ...extra });
}

test('the source\'s batches are the same with workers and on the main thread, prefetched or not, and after a resume', async (t) => {
  const { data, tokenizer } = await dataset(t);
  const runs = [];
  for (const extra of [{ frameThreads: 0, prefetch: 0 }, { frameThreads: 2 }, { frameThreads: 1, prefetch: 5 }]) {
    const { model, seen } = recorder();
    const s = source(model, data, tokenizer, extra);
    t.after(() => s.close());
    for (let i = 0; i < 3; i++) await s.accumulate(null, undefined, 1);
    const state = JSON.parse(JSON.stringify(s.saveState()));
    for (let i = 0; i < 3; i++) await s.accumulate(null, undefined, 1);
    // Resume from after the third draw: the same three batches again.
    const { model: m2, seen: again } = recorder();
    const resumed = source(m2, data, tokenizer, extra);
    t.after(() => resumed.close());
    resumed.restoreState(state);
    for (let i = 0; i < 3; i++) await resumed.accumulate(null, undefined, 1);
    const cut = seen.length - again.length;
    for (const [k, b] of again.entries()) same(b.pixels, seen[cut + k].pixels, `resumed batch ${k} (${JSON.stringify(extra)})`);
    await s.validate({ timeLimitMs: 1e9 });
    assert.equal(s.dataWait.draws, 6);
    runs.push(seen);
  }
  for (const other of runs.slice(1)) {
    assert.equal(other.length, runs[0].length);
    for (const [k, b] of other.entries()) {
      assert.equal(b.size, runs[0][k].size);
      same(b.pixels, runs[0][k].pixels, `batch ${k}`);
      assert.deepEqual(b.inputIds, runs[0][k].inputIds);
      assert.deepEqual(b.actions, runs[0][k].actions);
    }
  }
});

test('a bad JPEG read on a worker is one line naming shard, record, step and feature, with the decoder\'s message', async (t) => {
  const { data, tokenizer } = await dataset(t, { bad: { episode: 1, step: 0 } });
  for (const frameThreads of [1, 0]) {
    const { model } = recorder();
    // Episode 1's step 0 is a sample of the split: the whole split drawn as validation reaches it.
    const all = Array.from({ length: data.samples.size }, (_, i) => i);
    const v = new RldsVlaSource(model, data, { batchSize: 4, seed: 3, train: all, val: all, normalization: NORM, tokenizer, frameThreads });
    t.after(() => v.close());
    const err = await v.validate({ timeLimitMs: 1e9 }).then(() => null, (e) => e);
    assert.ok(err, `frameThreads ${frameThreads}: the bad frame is refused`);
    assert.match(err.message, /libero_tiny-train\.tfrecord-00000-of-00001, record 1 \(episode 1\), step 0, feature 'steps\/observation\/image': view 0: not a decodable image/);
    assert.equal(err.message.split('\n').length, 1);
  }
});

test('workers never keep a process alive: one that never closes its pool exits, a pending job is still awaited', () => {
  const pool = fileURLToPath(new URL('../dist/data/images/frame-pool.js', import.meta.url));
  const script = `
    import { FramePool } from ${JSON.stringify(pool)};
    import sharp from 'sharp';
    const px = Buffer.alloc(32 * 32 * 3, 90);
    const jpeg = new Uint8Array(await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).jpeg().toBuffer());
    const p = new FramePool({ threads: 2, normalization: ${JSON.stringify(NORM)} });
    const a = await p.prepare([jpeg], { size: 28, augment: 'none' });
    p.prepare([jpeg], { size: 28, augment: 'center' }).then((b) => console.log('done', a.length, b.length));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, cwd: fileURLToPath(new URL('..', import.meta.url)) });
  assert.equal(r.signal, null, 'no hang');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), `done ${6 * 28 * 28} ${6 * 28 * 28}`);
});
