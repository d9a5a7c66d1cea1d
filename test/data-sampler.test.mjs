// The sampler (epochs, exact save/restore through JSON) and frozen base weights from
// a seed or a safetensors file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sampler, Rng, AdapterPolicy } from '../dist/index.js';
import { FormatError, writeSafetensorsFile } from '../dist/formats/index.js';

test('every sample once per epoch; the last batch is smaller unless dropLast', () => {
  const s = new Sampler(10, { batchSize: 4, seed: 3 });
  const e0 = [...s.next(), ...s.next(), ...s.next()];
  assert.equal(s.epoch, 0);
  assert.deepEqual([...e0].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const b = s.next();
  assert.equal(s.epoch, 1);
  assert.equal(b.length, 4);
  const d = new Sampler(10, { batchSize: 4, dropLast: true, shuffle: false });
  assert.deepEqual([...d.next()], [0, 1, 2, 3]);
  d.next();
  assert.deepEqual([...d.next()], [0, 1, 2, 3]);
  assert.equal(d.epoch, 1);
  assert.throws(() => new Sampler(10, { batchSize: 0 }), /options\.batchSize/);
  assert.throws(() => new Sampler(0, { batchSize: 1 }), /size must be a positive integer/);
});

test('a sampler restored from its JSON state continues bit-identically, across epochs', () => {
  for (const at of [0, 1, 3, 7, 12]) {
    const a = new Sampler(23, { batchSize: 5, seed: 9 });
    for (let i = 0; i < at; i++) a.next();
    const saved = JSON.parse(JSON.stringify(a.state()));
    const b = Sampler.fromState(saved);
    for (let i = 0; i < 20; i++) assert.deepEqual(b.next(), a.next(), `after ${at} + ${i} batches`);
    assert.deepEqual(b.state(), a.state());
  }
  assert.throws(() => Sampler.fromState({ version: 2 }), /SamplerState/);
  const st = new Sampler(5, { batchSize: 2 }).state();
  assert.throws(() => Sampler.fromState({ ...st, position: 6 }), /state\.position/);
});

test('Rng state round-trips exactly', () => {
  const r = new Rng(42);
  for (let i = 0; i < 10; i++) r.nextU32();
  const copy = new Rng(JSON.parse(JSON.stringify(r.state())));
  for (let i = 0; i < 100; i++) assert.equal(copy.uniform(), r.uniform());
  assert.throws(() => new Rng([1, 2, 3]), /4 unsigned/);
});

test('frozen base weights: seeded by default, or read from a validated safetensors file', async () => {
  const cfg = { tokens: 2, width: 6, blocks: 2, rank: 2, headWidth: 4, chunk: 2, actionDims: 2 };
  const a = AdapterPolicy.create(cfg, { seed: 3 }), b = AdapterPolicy.create(cfg, { seed: 3 }), c = AdapterPolicy.create(cfg, { seed: 4 });
  assert.deepEqual(a.frozen.data, b.frozen.data);
  assert.deepEqual(a.params.data, b.params.data);
  assert.notDeepEqual(a.frozen.data, c.frozen.data);
  // B = 0 at initialisation and the anchor equals the initial LoRA weights.
  for (let l = 0; l < 2; l++) assert.ok(a.params.view(2 * l + 1).every((x) => x === 0));
  assert.deepEqual(a.anchor.data, a.params.data.subarray(0, a.anchor.numElements));
  assert.deepEqual(Object.keys(a.frozenTensors()), ['blocks.0.weight', 'blocks.0.bias', 'blocks.1.weight', 'blocks.1.bias']);

  const dir = mkdtempSync(join(tmpdir(), 'craftgrad-base-'));
  try {
    const path = join(dir, 'base.safetensors');
    await writeSafetensorsFile(path, c.frozenTensors());
    const d = await AdapterPolicy.fromBaseWeightsFile(path, cfg, { seed: 3 });
    assert.deepEqual(d.frozen.data, c.frozen.data);
    assert.deepEqual(d.params.data, a.params.data);
    const bad = join(dir, 'bad.safetensors');
    const t = c.frozenTensors();
    await writeSafetensorsFile(bad, { ...t, 'blocks.1.bias': { dtype: 'F32', shape: [5], data: new Float32Array(5) } });
    await assert.rejects(AdapterPolicy.fromBaseWeightsFile(bad, cfg), (e) => {
      assert.ok(e instanceof FormatError);
      assert.equal(e.file, bad);
      assert.equal(e.field, 'blocks.1.bias');
      assert.match(e.message, /shape \[5\], expected \[6\]/);
      return true;
    });
    const missing = join(dir, 'missing.safetensors');
    const { ['blocks.0.weight']: _, ...rest } = t;
    await writeSafetensorsFile(missing, rest);
    await assert.rejects(AdapterPolicy.fromBaseWeightsFile(missing, cfg), (e) => e instanceof FormatError && e.field === 'blocks.0.weight' && /missing/.test(e.message));
    const nan = join(dir, 'nan.safetensors');
    await writeSafetensorsFile(nan, { ...t, 'blocks.0.bias': { dtype: 'F32', shape: [6], data: Float32Array.of(0, 0, NaN, 0, 0, 0) } });
    await assert.rejects(AdapterPolicy.fromBaseWeightsFile(nan, cfg), (e) => e instanceof FormatError && e.field === 'blocks.0.bias' && /non-finite/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
