// AdamW against a float64 re-implementation of torch.optim.AdamW; fused (surgery pass 2 +
// AdamW) against surgery then AdamW; determinism over thread counts and instruction sets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AdamW, craftReduce, surgery, setThreads, backendInfo, GradSet } from '../dist/index.js';
import { adamwReference, maxRelErr } from './helpers/train-task.mjs';
import { randomArrays } from './helpers/random.mjs';
import { sameBits } from './helpers/same-bits.mjs';

const SIZES = [5, 1024 + 17, 3000, 70000];

function setsFor(seed) {
  const params = GradSet.fromArrays(randomArrays(SIZES, seed));
  const act = GradSet.fromArrays(randomArrays(SIZES, seed + 1));
  const ret = GradSet.fromArrays(randomArrays(SIZES, seed + 2));
  return { params, act, ret };
}

test('AdamW matches torch.optim.AdamW math (float64 reference) over several steps', () => {
  const { params, act } = setsFor(10);
  const opt = new AdamW(params, { lr: 1e-2, weightDecay: 0.05, betas: [0.8, 0.99], eps: 1e-6 });
  const p = Float64Array.from(params.data), m = new Float64Array(p.length), v = new Float64Array(p.length);
  for (let step = 1; step <= 5; step++) {
    const g = GradSet.fromArrays(randomArrays(SIZES, 100 + step));
    const lr = 1e-2 / step;
    opt.step(g, { lr, gradScale: 0.5 });
    adamwReference(p, g.data.map((x) => x * 0.5), m, v, { lr, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.05, step });
    assert.equal(opt.stepCount, step);
    assert.ok(maxRelErr(params.data, p) < 2e-5, `params step ${step}: ${maxRelErr(params.data, p)}`);
    assert.ok(maxRelErr(opt.m.data, m) < 2e-5);
    assert.ok(maxRelErr(opt.v.data, v) < 2e-5);
  }
  void act;
});

test("defaults are PyTorch AdamW with craftgrad's lr 1e-3", () => {
  const opt = new AdamW(GradSet.zeros([3]));
  assert.deepEqual([opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weightDecay], [1e-3, 0.9, 0.999, 1e-8, 0.01]);
});

test('fused surgery+AdamW is bit-identical to surgery then AdamW', () => {
  for (const projection of [true, false]) {
    const a = setsFor(20), b = setsFor(20);
    const oa = new AdamW(a.params), ob = new AdamW(b.params);
    for (let step = 0; step < 3; step++) {
      const red = craftReduce(a.act, a.ret, { lambda: 0.3, projection });
      oa.stepFused(a.act, a.ret, red.coefficients, { lr: 1e-3, gradScale: 0.75 });
      const s = surgery(b.act, b.ret, { lambda: 0.3, projection });
      ob.step(s.out, { lr: 1e-3, gradScale: 0.75 });
      assert.deepEqual(red.conflicts, s.conflicts);
      assert.deepEqual(red.dots, s.dots);
      assert.ok(Math.abs(red.gradNorm - s.gradNorm) <= 1e-6 * s.gradNorm, `${red.gradNorm} vs ${s.gradNorm}`);
    }
    assert.ok(sameBits(a.params.data, b.params.data));
    assert.ok(sameBits(oa.m.data, ob.m.data));
    assert.ok(sameBits(oa.v.data, ob.v.data));
  }
});

test('the fused step and AdamW give the same bits for any thread count', () => {
  const threads = backendInfo().cpu.threads;
  const big = [300000, 5, 2 ** 20 + 3, 4096];
  const run = (n) => {
    setThreads(n);
    const params = GradSet.fromArrays(randomArrays(big, 1));
    const act = GradSet.fromArrays(randomArrays(big, 2)), ret = GradSet.fromArrays(randomArrays(big, 3));
    const opt = new AdamW(params);
    const red = craftReduce(act, ret, { lambda: 0.1 });
    opt.stepFused(act, ret, red.coefficients, { gradScale: 0.9 });
    opt.step(act);
    return { p: params.data, red };
  };
  try {
    const one = run(1), four = run(4);
    assert.ok(sameBits(one.p, four.p));
    assert.deepEqual(one.red.dots, four.red.dots);
    assert.equal(one.red.gradNorm, four.red.gradNorm);
  } finally {
    setThreads(threads);
  }
});

test('every CPU instruction set gives the same bits', (t) => {
  const available = backendInfo().cpu.available;
  const script = `
    import { AdamW, craftReduce, GradSet } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
    import { randomArrays } from ${JSON.stringify(new URL('./helpers/random.mjs', import.meta.url).href)};
    import { createHash } from 'node:crypto';
    const sizes = [7, 1024 + 33, 70001];
    const params = GradSet.fromArrays(randomArrays(sizes, 1));
    const act = GradSet.fromArrays(randomArrays(sizes, 2)), ret = GradSet.fromArrays(randomArrays(sizes, 3));
    const opt = new AdamW(params, { weightDecay: 0.1 });
    for (let s = 0; s < 3; s++) {
      const red = craftReduce(act, ret, { lambda: 0.2 });
      opt.stepFused(act, ret, red.coefficients, { lr: 1e-2, gradScale: 0.8 });
      opt.step(ret, { lr: 1e-3 });
    }
    const h = createHash('sha256');
    for (const x of [params.data, opt.m.data, opt.v.data]) h.update(new Uint8Array(x.buffer));
    console.log(h.digest('hex'));`;
  const hashes = available.map((isa) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, CRAFTGRAD_CPU_ISA: isa }, encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  });
  t.diagnostic(`instruction sets: ${available.join(', ')}`);
  assert.equal(new Set(hashes).size, 1, hashes.join(' '));
});

test('bad arguments throw before anything is written', () => {
  const { params, act, ret } = setsFor(30);
  const opt = new AdamW(params);
  const before = params.data.slice();
  const red = craftReduce(act, ret, { lambda: 0.1 });
  assert.throws(() => opt.stepFused(act, ret, red.coefficients.subarray(1)), RangeError);
  const badCoef = red.coefficients.slice(); badCoef[2] = NaN;
  assert.throws(() => opt.stepFused(act, ret, badCoef), /coefficients\[2\] must be finite/);
  assert.throws(() => opt.step(act, { lr: NaN }), RangeError);
  assert.throws(() => opt.step(act, { gradScale: -1 }), RangeError);
  assert.throws(() => opt.step(GradSet.zeros([1, 2])), RangeError);
  assert.throws(() => opt.stepFused(act, params, red.coefficients), /overlap/);
  assert.throws(() => new AdamW(params, { betas: [1, 0.9] }), RangeError);
  // The peak lr is > 0, as the options table says; a step's own rate may be 0 (a cosine schedule's end).
  assert.throws(() => new AdamW(params, { lr: 0 }), /^RangeError: options\.lr must be a finite number > 0, got 0$/);
  assert.throws(() => new AdamW(params, { lr: 1, momentum: 0.9 }), TypeError);
  assert.ok(sameBits(params.data, before));
  assert.equal(opt.stepCount, 0);
  const zeroRate = new AdamW(params);
  zeroRate.step(act, { lr: 0 });
  assert.equal(zeroRate.stepCount, 1);
});

test('the raw binding validates every argument (TypeError/RangeError, never an abort)', async () => {
  const { binding } = await import('../dist/native.js');
  const n = 10, f = () => new Float32Array(n);
  // Host TensorSets of sizes [4, 6] wrapping their arrays (no copy).
  const set = (data = f(), sizes = [4, 6]) => new binding.TensorSet({ device: 'cpu', sizes, data });
  const hp = { coefficients: new Float64Array(2), lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1, gradScale: 1 };
  const good = () => [set(), set(), set(), set(), set(), { ...hp }];
  const call = (patch, options = {}) => {
    const a = good();
    for (const [i, v] of Object.entries(patch)) a[i] = v;
    Object.assign(a[5], options);
    return binding.adamwFused(...a);
  };
  assert.equal(call({}), undefined);
  const cases = [
    [{ 3: [1, 2] }, {}, TypeError, /act must be a TensorSet/],
    [{ 4: new Float64Array(n) }, {}, TypeError, /ret must be a TensorSet/],
    [{ 3: set(new Float32Array(9), [4, 5]) }, {}, RangeError, /act has 9 elements but params has 10/],
    [{ 3: set(f(), [5, 5]) }, {}, RangeError, /act does not have the tensor sizes of params/],
    [{}, { coefficients: [0, 0] }, TypeError, /coefficients must be a Float64Array/],
    [{}, { coefficients: new Float64Array(3) }, RangeError, /coefficients has 3 entries/],
    [{ 1: set(new Float32Array(n + 1), [4, 7]) }, {}, RangeError, /m has 11 elements/],
    [{}, { lr: NaN }, RangeError, /lr must be a finite number/],
    [{}, { lr: '1' }, TypeError, /lr must be a number/],
    [{}, { beta1: 1 }, RangeError, /beta1/],
    [{}, { beta2: -0.1 }, RangeError, /beta2/],
    [{}, { eps: 0 }, RangeError, /eps/],
    [{}, { weightDecay: Infinity }, RangeError, /weightDecay/],
    [{}, { step: 0 }, RangeError, /step/],
    [{}, { step: 1.5 }, RangeError, /step must be an integer/],
    [{}, { gradScale: -1 }, RangeError, /gradScale/],
    [{}, { gradScale: undefined }, TypeError, /gradScale must be a number/],
    [{ 5: 3 }, {}, TypeError, /options must be an object/],
  ];
  for (const [patch, options, type, re] of cases) {
    assert.throws(() => call(patch, options), (e) => e instanceof type && re.test(e.message), JSON.stringify([Object.keys(patch), options]));
  }
  const shared = f();
  assert.throws(() => call({ 0: set(shared), 2: set(shared) }), /params and v overlap/);
  assert.throws(() => call({ 3: set(shared), 1: set(shared) }), /m and act overlap/);
  // Partial overlaps (the operand reader's one rule: a written set overlaps no other operand),
  // between two written sets and between a written and a read one; reads may alias reads.
  const wide = new Float32Array(2 * n);
  assert.throws(() => call({ 0: set(wide.subarray(0, n)), 1: set(wide.subarray(5, 5 + n)) }),
    (e) => e instanceof RangeError && e.message === 'params and m overlap in memory');
  assert.throws(() => call({ 2: set(wide.subarray(0, n)), 4: set(wide.subarray(8, 8 + n)) }),
    (e) => e instanceof RangeError && e.message === 'v and ret overlap in memory');
  assert.equal(call({ 3: set(wide.subarray(0, n)), 4: set(wide.subarray(3, 3 + n)) }), undefined);
  assert.throws(() => binding.adamw(set(), set(wide.subarray(0, n)), set(), set(wide.subarray(9, 9 + n)), hp),
    (e) => e instanceof RangeError && e.message === 'm and grad overlap in memory');
  const disposed = set();
  disposed.dispose();
  assert.throws(() => call({ 3: disposed }), (e) => e instanceof TypeError && /act is a disposed TensorSet/.test(e.message));
  const moved = set();
  structuredClone(moved.data.buffer, { transfer: [moved.data.buffer] });
  assert.throws(() => call({ 4: moved }), (e) => e instanceof TypeError && e.message === 'ret is backed by a detached ArrayBuffer');
  assert.throws(() => binding.craftReduce(set(), set(f(), [5, 5]), { lambda: 0, eps: 1e-8, projection: true }),
    (e) => e instanceof RangeError && e.message === 'ret does not have the tensor sizes of act');
  const same = set();
  assert.equal(binding.craftReduce(same, same, { lambda: 0, eps: 1e-8, projection: true }).numTensors, 2, 'ret may be act');
  assert.throws(() => binding.adamw(set(), set(), set()), TypeError);
  assert.throws(() => binding.craftReduce(set(), set(), { lambda: -1, eps: 1e-8, projection: true }), /lambda/);
  assert.throws(() => binding.craftReduce(set(), set(), { lambda: 0, eps: 1e-8, projection: 1 }), /projection must be a boolean/);
});

// The sharded data-parallel step (src/train/sharded-step.ts): pass 1 on pieces of tensors,
// the pieces' sums added, craftCombine; pass 2 + AdamW on the pieces.
test('craftReduce reports per-tensor q, ‖a‖² and non-finite flags; craftCombine of them gives craftReduce\'s bits', async () => {
  const { craftCombine } = await import('../dist/train/optimizer.js');
  const A = randomArrays(SIZES, 31), R = randomArrays(SIZES, 32);
  R[1] = A[1].map((x) => -0.25 * x);  // a conflict
  A[2][7] = NaN;
  const act = GradSet.fromArrays(A), ret = GradSet.fromArrays(R);
  const red = craftReduce(act, ret, { lambda: 0.2 });
  SIZES.forEach((_, i) => {
    let q = 0, aa = 0;
    for (let j = 0; j < SIZES[i]; j++) q += R[i][j] * R[i][j], aa += A[i][j] * A[i][j];
    assert.ok(Math.abs(red.retNormsSq[i] - q) <= 1e-6 * q, `q[${i}]`);
    if (i !== 2) assert.ok(Math.abs(red.actNormsSq[i] - aa) <= 1e-6 * aa, `aa[${i}]`);
  });
  assert.deepEqual([...red.nonFiniteFlags], [0, 0, 1, 0]);
  const again = craftCombine(red, { lambda: 0.2 });
  for (const k of ['dots', 'coefficients', 'retNormsSq', 'actNormsSq']) assert.ok(sameBits(again[k], red[k]), k);
  assert.deepEqual(again.conflicts, red.conflicts);
  assert.deepEqual([again.gradNorm, again.nonFinite, again.numConflicts, again.numTensors], [red.gradNorm, red.nonFinite, red.numConflicts, red.numTensors]);
  const bad = (sums, o = { lambda: 0.1 }) => () => craftCombine(sums, o);
  assert.throws(bad({ ...red, dots: [1] }), { name: 'TypeError', message: /sums.dots must be a Float64Array/ });
  assert.throws(bad({ ...red, nonFiniteFlags: new Float64Array(4) }), { name: 'TypeError', message: /sums.nonFiniteFlags must be a Uint8Array/ });
  assert.throws(bad({ ...red, actNormsSq: new Float64Array(3) }), { name: 'RangeError', message: /one entry per tensor/ });
  assert.throws(bad(red, { lambda: -1 }), /lambda/);
});

test('pass 1 on pieces of tensors adds up to the whole; pass 2 + AdamW on pieces gives the whole step\'s bits', async () => {
  const { craftCombine } = await import('../dist/train/optimizer.js');
  const total = SIZES.reduce((a, b) => a + b, 0);
  const whole = setsFor(40);
  const red = craftReduce(whole.act, whole.ret, { lambda: 0.3 });
  const opt = new AdamW(whole.params);
  // Cut the flat layout at two points inside tensors, as three ranks would.
  const cuts = [0, Math.floor(total / 3) + 11, Math.floor((2 * total) / 3) - 5, total];
  const piecesOf = (lo, hi) => {
    const out = [];
    let at = 0;
    SIZES.forEach((n, tensor) => {
      const a = Math.max(at, lo), b = Math.min(at + n, hi);
      if (b > a) out.push({ tensor, length: b - a });
      at += n;
    });
    return out;
  };
  const params = setsFor(40).params;
  const k = SIZES.length;
  const sums = { dots: new Float64Array(k), retNormsSq: new Float64Array(k), actNormsSq: new Float64Array(k), nonFiniteFlags: new Uint8Array(k) };
  const parts = [];
  for (let s = 0; s < 3; s++) {
    const pieces = piecesOf(cuts[s], cuts[s + 1]);
    const view = (set) => GradSet.wrap(set.data.subarray(cuts[s], cuts[s + 1]), pieces.map((p) => p.length));
    const r = craftReduce(view(whole.act), view(whole.ret), { lambda: 0.3 });
    pieces.forEach((p, j) => {
      sums.dots[p.tensor] += r.dots[j];
      sums.retNormsSq[p.tensor] += r.retNormsSq[j];
      sums.actNormsSq[p.tensor] += r.actNormsSq[j];
    });
    parts.push({ pieces, view });
  }
  const combined = craftCombine(sums, { lambda: 0.3 });
  // Another summation order (blocks start at the cuts): equal to fp32 block rounding, relative
  // to the scale Cauchy-Schwarz gives d.
  for (let i = 0; i < k; i++) {
    const scale = Math.sqrt(red.actNormsSq[i] * red.retNormsSq[i]);
    assert.ok(Math.abs(combined.dots[i] - red.dots[i]) <= 1e-6 * scale, `d[${i}]: ${combined.dots[i]} vs ${red.dots[i]}`);
    assert.ok(Math.abs(combined.retNormsSq[i] - red.retNormsSq[i]) <= 1e-6 * red.retNormsSq[i], `q[${i}]`);
    assert.ok(Math.abs(combined.coefficients[i] - red.coefficients[i]) <= 1e-6 * (Math.abs(red.coefficients[i]) + scale / red.retNormsSq[i]), `c[${i}]`);
    assert.equal(combined.conflicts[i], red.conflicts[i]);
  }
  assert.ok(Math.abs(combined.gradNorm - red.gradNorm) <= 1e-6 * red.gradNorm);
  // Pass 2 on each piece with the whole tensors' coefficients: the whole step's bits.
  opt.stepFused(whole.act, whole.ret, red.coefficients, { lr: 1e-3, gradScale: 0.5 });
  for (const { pieces, view } of parts) {
    const o = new AdamW(view(params));
    o.stepFused(view(whole.act), view(whole.ret), Float64Array.from(pieces, (p) => red.coefficients[p.tensor]), { lr: 1e-3, gradScale: 0.5 });
  }
  assert.ok(sameBits(params.data, whole.params.data));
});
