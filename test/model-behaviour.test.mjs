// AdapterPolicy behaviour: B = 0 gives retention loss exactly 0, determinism across
// thread counts, accumulate/scale semantics, the native matrix product, bad arguments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdapterPolicy, GradSet, setThreads, backendInfo } from '../dist/index.js';
import { binding } from '../dist/native.js';
import { Rng } from '../dist/data/rng.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

function batchFor(model, n, seed = 7) {
  const rng = new Rng(seed);
  const c = model.config;
  return {
    tokens: Float32Array.from({ length: n * c.tokens * c.width }, () => rng.normal()),
    actions: Float32Array.from({ length: n * c.chunk * c.actionDims }, () => rng.range(-1, 1)),
    size: n,
  };
}

test('B = 0 gives retention loss exactly 0 (and g_ret exactly 0), whatever A is', () => {
  for (const anchorType of ['concat', 'aq_only', 'raw_only']) for (const pooling of ['mean', 'max']) {
    const model = AdapterPolicy.create({ tokens: 8, width: 40, blocks: 3, rank: 4, anchorType, pooling }, { seed: 5 });
    // Train-like drift of A and the head only: B stays 0.
    const rng = new Rng(1);
    for (let l = 0; l < 3; l++) { const a = model.params.view(2 * l); for (let i = 0; i < a.length; i++) a[i] += rng.normal(); }
    const gAct = model.newGradSet(), gRet = model.newGradSet();
    const out = model.craftStep(batchFor(model, 5), gAct, gRet);
    assert.equal(out.retentionLoss, 0);
    assert.ok(gRet.data.every((x) => x === 0));
    assert.ok(out.actionLoss > 0);
  }
});

test('results are bit-identical for 1, 2 and 3 threads', () => {
  const model = AdapterPolicy.create({ tokens: 16, width: 96, blocks: 4, rank: 8, headWidth: 64 }, { seed: 2 });
  const rng = new Rng(3);
  for (let l = 0; l < 4; l++) { const b = model.params.view(2 * l + 1); for (let i = 0; i < b.length; i++) b[i] = 0.05 * rng.normal(); }
  const batch = batchFor(model, 13);
  const runs = [];
  const before = backendInfo().cpu.threads;
  try {
    for (const threads of [1, 2, 3]) {
      setThreads(threads);
      const gAct = model.newGradSet(), gRet = model.newGradSet();
      const out = model.craftStep(batch, gAct, gRet);
      runs.push({ out, gAct: gAct.toFlat(), gRet: gRet.toFlat() });
    }
  } finally {
    setThreads(before);
  }
  assert.ok(runs[0].out.retentionLoss > 0);
  for (const r of runs.slice(1)) {
    assert.deepEqual(r.out, runs[0].out);
    assert.deepEqual(r.gAct, runs[0].gAct);
    assert.deepEqual(r.gRet, runs[0].gRet);
  }
});

test('accumulate adds scale·grad; overwrite replaces', () => {
  const model = AdapterPolicy.create({ tokens: 4, width: 24, blocks: 2, rank: 3 }, { seed: 9 });
  const b = model.params.view(1);
  b.fill(0.1);
  const batch = batchFor(model, 3);
  const g1 = model.newGradSet(), r1 = model.newGradSet();
  model.craftStep(batch, g1, r1, { scale: 2 });
  const g2 = model.newGradSet(), r2 = model.newGradSet();
  g2.fill(Number.NaN); // overwrite must not read the old contents
  r2.fill(Number.NaN);
  model.craftStep(batch, g2, r2);
  model.craftStep(batch, g2, r2, { accumulate: true });
  assert.deepEqual(g2.data, g1.data);
  assert.deepEqual(r2.data, r1.data);
  // Baseline accumulate with a scale of 0.5 twice equals one plain call.
  const g3 = model.newGradSet();
  model.baselineStep(batch, g3, { accumulate: true, scale: 0.5 });
  model.baselineStep(batch, g3, { accumulate: true, scale: 0.5 });
  const g4 = model.newGradSet();
  model.baselineStep(batch, g4);
  assert.deepEqual(g3.data, g4.data);
});

test('the anchor is read in place: resetAnchor makes retention 0, editing the anchor changes it', () => {
  const model = AdapterPolicy.create({ tokens: 4, width: 16, blocks: 2, rank: 2 }, { seed: 4 });
  model.params.view(1).fill(0.2);
  const batch = batchFor(model, 2);
  const g = model.newGradSet(), r = model.newGradSet();
  assert.ok(model.craftStep(batch, g, r).retentionLoss > 0);
  model.resetAnchor();
  assert.equal(model.craftStep(batch, g, r).retentionLoss, 0);
  model.anchor.view(0)[0] += 1;
  assert.ok(model.craftStep(batch, g, r).retentionLoss > 0);
});

test('native matrix product matches a float64 product for every transpose', () => {
  const rng = new Rng(11);
  for (const [M, N, K] of [[1, 1, 1], [13, 33, 7], [50, 70, 129], [3, 100, 2], [50, 16, 129], [37, 5, 90], [16, 40, 64], [33, 16, 3], [32, 70, 40], [20, 90, 33]]) for (const ta of [false, true]) for (const tb of [false, true]) for (const beta of [0, 1]) {
    const a = Float32Array.from({ length: M * K }, () => rng.range(-1, 1));
    const b = Float32Array.from({ length: K * N }, () => rng.range(-1, 1));
    const c = Float32Array.from({ length: M * N }, () => rng.range(-1, 1));
    const want = new Float64Array(M * N);
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (ta ? a[k * M + i] : a[i * K + k]) * (tb ? b[j * K + k] : b[k * N + j]);
      want[i * N + j] = beta * c[i * N + j] + 0.5 * s;
    }
    binding.modelGemm({ M, N, K, alpha: 0.5, a, transA: ta, b, transB: tb, beta, c });
    for (let i = 0; i < M * N; i++) assert.ok(Math.abs(c[i] - want[i]) <= 1e-5 * (1 + K), `${M}x${N}x${K} ta=${ta} tb=${tb}: ${c[i]} vs ${want[i]}`);
  }
});

test('bad arguments throw TypeError/RangeError naming the argument', () => {
  assert.throws(() => AdapterPolicy.create({ rank: 0 }), { name: 'RangeError', message: /config\.rank/ });
  assert.throws(() => AdapterPolicy.create({ blocks: 4, bridgeBlock: 5 }), /config\.bridgeBlock/);
  assert.throws(() => AdapterPolicy.create({ pooling: 'sum' }), /config\.pooling/);
  assert.throws(() => AdapterPolicy.create({ anchorType: 'both' }), /config\.anchorType/);
  assert.throws(() => AdapterPolicy.create({ widht: 3 }), { name: 'TypeError', message: /unknown option 'widht'/ });
  assert.throws(() => AdapterPolicy.create({}, { seed: -1 }), /options\.seed/);
  const model = AdapterPolicy.create({ tokens: 4, width: 8, blocks: 2, rank: 2 });
  const batch = batchFor(model, 2);
  const g = model.newGradSet(), r = model.newGradSet();
  assert.throws(() => model.craftStep(batch, g, GradSet.zeros([3])), { name: 'RangeError', message: /gRet does not have the model's trainable layout/ });
  assert.throws(() => model.craftStep(batch, g, g), /different GradSets/);
  assert.throws(() => model.craftStep(batch, new Float32Array(3), r), { name: 'TypeError', message: /gAct must be a GradSet/ });
  assert.throws(() => model.craftStep({ ...batch, size: 3 }, g, r), /batch\.tokens has 64 values but batch\.size×T×D/);
  assert.throws(() => model.craftStep({ ...batch, actions: new Float32Array(5) }, g, r), /batch\.actions/);
  assert.throws(() => model.craftStep({ ...batch, tokens: [] }, g, r), { name: 'TypeError', message: /batch\.tokens must be a Float32Array/ });
  assert.throws(() => model.baselineStep(batch, g, { scale: Infinity }), /options\.scale/);
  assert.throws(() => model.baselineStep(batch, g, { acumulate: true }), /unknown option 'acumulate'/);
  // The native boundary checks again, naming its arguments.
  // Host TensorSets wrapping the model's arrays (or parts of them) without a copy.
  const set = (data) => new binding.TensorSet({ device: 'cpu', sizes: [data.length], data });
  const p = model.params.data, f = set(model.frozen.data), a = set(model.anchor.data);
  const call = (o) => binding.modelStep({ config: model.config, mode: 'craft', params: set(p), frozen: f, anchor: a, gAct: set(g.data), gRet: set(r.data),
    tokens: batch.tokens, actions: batch.actions, batch: 2, accumulate: false, scale: 1, ...o });
  assert.throws(() => call({ params: set(p.subarray(1)) }), { name: 'RangeError', message: /^params has/ });
  assert.throws(() => call({ anchor: null }), { name: 'TypeError', message: /anchor/ });
  assert.throws(() => call({ gRet: set(g.data) }), /gAct and gRet overlap/);
  assert.throws(() => call({ gAct: set(p) }), /gAct and params overlap/);
  assert.throws(() => call({ config: { ...model.config, bridgeBlock: 3 } }), /config\.bridgeBlock/);
  assert.throws(() => call({ mode: 'train' }), /mode/);
  assert.throws(() => binding.modelGemm({ M: 2, N: 2, K: 2, alpha: 1, a: new Float32Array(3), transA: false, b: new Float32Array(4), transB: false, beta: 0, c: new Float32Array(4) }), /^RangeError: a has 3/);
  // Host arrays are operands too: a written set over the tokens, a detached array.
  const nt = batch.tokens.length, np = model.params.numElements;
  const wide = new Float32Array(nt + np);
  wide.set(batch.tokens);
  assert.throws(() => call({ tokens: wide.subarray(0, nt), gAct: set(wide.subarray(nt - 1, nt - 1 + np)) }),
    (e) => e instanceof RangeError && e.message === 'gAct and tokens overlap in memory');
  const moved = batch.actions.slice();
  structuredClone(moved.buffer, { transfer: [moved.buffer] });
  assert.throws(() => call({ actions: moved }), (e) => e instanceof TypeError && e.message === 'actions is backed by a detached ArrayBuffer');
  const c4 = new Float32Array(8);
  assert.throws(() => binding.modelGemm({ M: 2, N: 2, K: 2, alpha: 1, a: c4.subarray(0, 4), transA: false, b: new Float32Array(4), transB: false, beta: 0, c: c4.subarray(3, 7) }),
    (e) => e instanceof RangeError && e.message === 'c overlaps a or b in memory');
});

test('copy: within one device; dst may be src\'s very range (nothing to do), never part of it', () => {
  const set = (data) => new binding.TensorSet({ device: 'cpu', sizes: [data.length], data });
  const x = Float32Array.from({ length: 10 }, (_, i) => i), s = set(x);
  binding.copy({ dst: s, src: s, dstOffset: 6, srcOffset: 1, count: 3 });
  assert.deepEqual([...x], [0, 1, 2, 3, 4, 5, 1, 2, 3, 9]);
  binding.copy({ dst: s, src: set(x), dstOffset: 2, srcOffset: 2, count: 4 });
  assert.deepEqual([...x], [0, 1, 2, 3, 4, 5, 1, 2, 3, 9], 'the same range: unchanged');
  binding.copy({ dst: s, src: s, dstOffset: 0, srcOffset: 3, count: 0 });
  assert.throws(() => binding.copy({ dst: s, src: s, dstOffset: 0, srcOffset: 2, count: 3 }),
    (e) => e instanceof RangeError && e.message === 'dst and src ranges overlap');
  assert.throws(() => binding.copy({ dst: s, src: set(new Float32Array(4)), dstOffset: 8, count: 3 }),
    (e) => e instanceof RangeError && e.message === 'dstOffset + count (11) exceeds dst\'s 10 elements');
  assert.throws(() => binding.copy({ dst: s, src: new Float32Array(4), count: 1 }),
    (e) => e instanceof TypeError && e.message === 'src must be a TensorSet, got Float32Array');
  assert.deepEqual([...x], [0, 1, 2, 3, 4, 5, 1, 2, 3, 9], 'nothing written by a refused call');
});

test('same bits on every CPU kernel variant and thread count (child processes)', async () => {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const script = fileURLToPath(new URL('./fixtures/model-step-digest.mjs', import.meta.url));
  const variants = backendInfo().cpu.available;
  for (const pooling of ['mean', 'max']) {
    const results = [];
    for (const isa of variants) for (const threads of ['1', '3']) {
      const r = spawnSync(process.execPath, [script, pooling], { env: { ...process.env, CRAFTGRAD_CPU_ISA: isa, CRAFTGRAD_THREADS: threads }, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.isa, isa);
      results.push(out);
    }
    for (const r of results.slice(1)) {
      assert.equal(r.digest, results[0].digest, `${r.isa}/${r.threads} threads differs from ${results[0].isa}/${results[0].threads}`);
      assert.equal(r.actionLoss, results[0].actionLoss);
      assert.equal(r.retentionLoss, results[0].retentionLoss);
    }
  }
});

test('matrix products with few columns or rows give the same bits on every CPU kernel variant and thread count', () => {
  // Products big enough to be split across workers, through the narrow, column and
  // swapped paths (the LoRA shapes), each in its own process per variant and thread count.
  const script = fileURLToPath(new URL('./fixtures/gemm-digest.mjs', import.meta.url));
  const results = [];
  for (const isa of backendInfo().cpu.available) for (const threads of ['1', '2', '3']) {
    const r = spawnSync(process.execPath, [script], { env: { ...process.env, CRAFTGRAD_CPU_ISA: isa, CRAFTGRAD_THREADS: threads }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.isa, isa);
    assert.equal(out.threads, Number(threads));
    results.push(out);
  }
  for (const r of results.slice(1)) assert.equal(r.digest, results[0].digest, `${r.isa}/${r.threads} threads differs from ${results[0].isa}/${results[0].threads}`);
});

test('craftStepAsync / baselineStepAsync give the same bits off the main thread; bad calls reject', async () => {
  const model = AdapterPolicy.create({ tokens: 6, width: 40, blocks: 3, rank: 4, headWidth: 24 }, { seed: 6 });
  model.params.view(3).fill(0.03);
  const batch = batchFor(model, 5);
  const g1 = model.newGradSet(), r1 = model.newGradSet(), g2 = model.newGradSet(), r2 = model.newGradSet();
  const sync = model.craftStep(batch, g1, r1, { scale: 0.5 });
  const [asyncOut] = await Promise.all([model.craftStepAsync(batch, g2, r2, { scale: 0.5 }), Promise.resolve()]);
  assert.deepEqual(asyncOut, sync);
  assert.deepEqual(g2.data, g1.data);
  assert.deepEqual(r2.data, r1.data);
  const b = await model.baselineStepAsync(batch, g2);
  assert.equal(b.actionLoss, sync.actionLoss);
  await assert.rejects(model.craftStepAsync(batch, g2, g2), /different GradSets/);
  await assert.rejects(model.baselineStepAsync({ ...batch, size: 2 }, g2), /batch\.tokens/);
});
