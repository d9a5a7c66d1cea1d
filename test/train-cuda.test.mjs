// The trainer's optimizer step on CUDA GradSets (native/cuda/adamw_kernels.cu,
// native/napi/adamw_call.cc). With a GPU: craftReduce, AdamW.step and AdamW.stepFused on
// the device against the CPU (1e-6 relative; both follow the same operation order, so
// they are expected to agree bit for bit) and bit-identical run to run; a Trainer driving
// a device-resident GradientSource against the same trainer on the CPU over 10 steps; the
// non-finite skip writes nothing on the device; checkpoint tensors come back from the
// device. Without a GPU every such test is skipped with the reason, and what can be
// checked without a device runs: the raw bindings exist in a CUDA build and reject bad
// arguments with TypeError/RangeError before touching the device.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { AdamW, GradSet, Trainer, backendInfo, craftReduce, surgery, trainerTensorGroups } from '../dist/index.js';
import { gradSetInternals } from '../dist/gradset.js';
import { maxRelErr } from './helpers/train-task.mjs';
import { randomArrays, rng } from './helpers/random.mjs';
import { sameBits } from './helpers/same-bits.mjs';
import { announceGpu, gpuTest } from './helpers/gpu.mjs';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const binding = require('node-gyp-build')(root);

const info = backendInfo().cuda;
announceGpu(import.meta.url);
const DEV = 'cuda:0';

// Odd sizes, empty tensors, block (1024) and chunk (65536) boundaries: most tensors start
// unaligned in the flat buffers, so both the vector and the scalar paths run.
const SIZES = [0, 1, 3, 15, 16, 17, 1023, 1024, 1025, 4096, 65535, 65536, 65537, 0, 200003, 5, 131072];

// Every element within `rel` relative error (floored at 1e-30 absolute).
function assertClose(got, want, rel, what) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; ++i) {
    const tol = rel * Math.max(Math.abs(want[i]), 1e-30);
    if (!(Math.abs(got[i] - want[i]) <= tol)) assert.fail(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

function assertSameReduce(got, want, what) {
  assert.equal(got.numTensors, want.numTensors, `${what}: numTensors`);
  assert.equal(got.numConflicts, want.numConflicts, `${what}: numConflicts`);
  assert.equal(got.nonFinite, want.nonFinite, `${what}: nonFinite`);
  assert.equal(got.conflictRatio, want.conflictRatio, `${what}: conflictRatio`);
  assert.deepEqual([...got.conflicts], [...want.conflicts], `${what}: conflicts`);
  assertClose(got.dots, want.dots, 1e-6, `${what}: dots`);
  assertClose(got.coefficients, want.coefficients, 1e-6, `${what}: coefficients`);
  // The per-tensor q and ‖a‖² and flags (the sharded data-parallel step combines them across ranks).
  assertClose(got.retNormsSq, want.retNormsSq, 1e-6, `${what}: retNormsSq`);
  assertClose(got.actNormsSq, want.actNormsSq, 1e-6, `${what}: actNormsSq`);
  assert.deepEqual([...got.nonFiniteFlags], [...want.nonFiniteFlags], `${what}: nonFiniteFlags`);
  assert.ok(Math.abs(got.gradNorm - want.gradNorm) <= 1e-6 * want.gradNorm, `${what}: gradNorm ${got.gradNorm} vs ${want.gradNorm}`);
}

const sameReduceBits = (x, y) =>
  sameBits(x.dots, y.dots) && sameBits(x.coefficients, y.coefficients) && sameBits(x.retNormsSq, y.retNormsSq) &&
  sameBits(x.actNormsSq, y.actNormsSq) && sameBits(new Float64Array([x.gradNorm]), new Float64Array([y.gradNorm]));

// ---------------------------------------------------------------- without a device

test('the optimizer bindings take CUDA TensorSets in a CUDA build and reject bad arguments before touching the device', (t) => {
  for (const f of ['craftReduce', 'adamwFused', 'adamw']) assert.equal(typeof binding[f], 'function', f);
  if (!info.compiled) {
    assert.throws(() => new binding.TensorSet({ device: 'cuda:0', sizes: [1] }), (e) => e instanceof RangeError && /no CUDA backend/.test(e.message));
    t.skip('this build has no CUDA backend');
    return;
  }
  const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1, gradScale: 1 };
  const typeErr = (re) => (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE' && re.test(e.message);
  const rangeErr = (re) => (e) => e instanceof RangeError && e.code === 'ERR_INVALID_ARG_VALUE' && re.test(e.message);
  const reduce = (o) => () => binding.craftReduce({}, {}, { lambda: 0.1, eps: 1e-8, projection: true, ...o });

  // Options are checked first (no handle needed to see these).
  assert.throws(reduce({ lambda: -1 }), rangeErr(/lambda/));
  assert.throws(reduce({ eps: 0 }), rangeErr(/eps/));
  assert.throws(reduce({ lambda: NaN }), rangeErr(/lambda/));
  assert.throws(reduce({ projection: 'yes' }), TypeError);
  const fused = (over = {}, coef = new Float64Array(1)) => () => binding.adamwFused({}, {}, {}, {}, {}, { ...hp, coefficients: coef, ...over });
  assert.throws(fused({ lr: -1 }), rangeErr(/lr/));
  assert.throws(fused({ lr: Infinity }), rangeErr(/lr/));
  assert.throws(fused({ beta1: 1 }), rangeErr(/beta1/));
  assert.throws(fused({ beta2: -0.1 }), rangeErr(/beta2/));
  assert.throws(fused({ eps: 0 }), rangeErr(/eps/));
  assert.throws(fused({ weightDecay: -1 }), rangeErr(/weightDecay/));
  assert.throws(fused({ step: 0 }), rangeErr(/step/));
  assert.throws(fused({ step: 1.5 }), rangeErr(/step/));
  assert.throws(fused({ gradScale: NaN }), rangeErr(/gradScale/));
  assert.throws(fused({ lr: '1e-3' }), TypeError);
  assert.throws(fused({}, new Float32Array(1)), typeErr(/coefficients must be a Float64Array/));
  assert.throws(fused({}, [0.5]), typeErr(/coefficients must be a Float64Array/));
  const plain = (over = {}) => () => binding.adamw({}, {}, {}, {}, { ...hp, ...over });
  assert.throws(plain({ step: 0 }), rangeErr(/step/));
  assert.throws(plain({ beta1: 1.5 }), rangeErr(/beta1/));

  // Then the handles: anything but a live TensorSet is a TypeError.
  assert.throws(reduce(), typeErr(/act must be a TensorSet/));
  assert.throws(() => binding.craftReduce(new Float32Array(4), {}, { lambda: 0.1, eps: 1e-8, projection: true }), typeErr(/act must be a TensorSet, got Float32Array/));
  assert.throws(fused(), typeErr(/params must be a TensorSet/));
  assert.throws(plain(), typeErr(/params must be a TensorSet/));
  assert.throws(() => binding.adamw(null, null, null, null, hp), typeErr(/params must be a TensorSet, got null/));
});

test('CPU GradSets still take the CPU path of craftReduce/AdamW in a CUDA build', () => {
  const params = GradSet.fromArrays(randomArrays([5, 70], 1));
  const act = GradSet.fromArrays(randomArrays([5, 70], 2));
  const ret = GradSet.fromArrays(randomArrays([5, 70], 3));
  const s = craftReduce(act, ret, { lambda: 0.1 });
  const opt = new AdamW(params);
  opt.stepFused(act, ret, s.coefficients);
  opt.step(act);
  assert.equal(opt.stepCount, 2);
});

// ---------------------------------------------------------------- with a device

function cpuAndDevice(arrays) {
  return [GradSet.fromArrays(arrays), GradSet.fromArrays(arrays, { device: DEV })];
}

gpuTest('craftReduce on CUDA GradSets equals the CPU (and is bit-identical run to run)', () => {
  const seeds = [[1, 2], [3, 4]];
  for (const [sa, sr] of seeds) {
    const A = randomArrays(SIZES, sa), R = randomArrays(SIZES, sr);
    // Some tensors anti-parallel (conflicts), one exactly parallel, one all-zero r.
    for (let i = 0; i < SIZES.length; i += 3) R[i] = A[i].map((x) => -0.5 * x);
    R[4] = A[4].slice();
    R[5].fill(0);
    const [ca, ga] = cpuAndDevice(A), [cr, gr] = cpuAndDevice(R);
    for (const opts of [{ lambda: 0.3 }, { lambda: 0, projection: false }, { lambda: 2.5, eps: 1e-3 }]) {
      const want = craftReduce(ca, cr, opts);
      const got = craftReduce(ga, gr, opts);
      assertSameReduce(got, want, `seed ${sa} ${JSON.stringify(opts)}`);
      assert.ok(want.numConflicts > 0 || opts.projection === false);
      assert.ok(sameReduceBits(got, craftReduce(ga, gr, opts)), 'run to run');
    }
    // ret = act (the baseline's norm).
    const base = craftReduce(ga, ga, { lambda: 0, projection: false });
    assertSameReduce(base, craftReduce(ca, ca, { lambda: 0, projection: false }), 'ret = act');
  }
});

gpuTest('craftReduce on CUDA counts non-finite tensors like the CPU', () => {
  const A = randomArrays(SIZES, 5), R = randomArrays(SIZES, 6);
  A[2][1] = NaN;
  R[10][65534] = Infinity;
  A[14][123456] = -Infinity;
  const [ca, ga] = cpuAndDevice(A), [cr, gr] = cpuAndDevice(R);
  const want = craftReduce(ca, cr, { lambda: 0.1 });
  const got = craftReduce(ga, gr, { lambda: 0.1 });
  assert.equal(want.nonFinite, 3);
  assert.equal(got.nonFinite, 3);
});

function optimizerPair(seed, options) {
  const P = randomArrays(SIZES, seed);
  const [cp, gp] = cpuAndDevice(P);
  const cpu = new AdamW(cp, options), dev = new AdamW(gp, options);
  assert.equal(dev.m.device, DEV);
  return { cpu, dev };
}

function assertSameState(dev, cpu, what, rel = 1e-6) {
  assertClose(dev.params.toFlat(), cpu.params.toFlat(), rel, `${what}: params`);
  assertClose(dev.m.toFlat(), cpu.m.toFlat(), rel, `${what}: m`);
  assertClose(dev.v.toFlat(), cpu.v.toFlat(), rel, `${what}: v`);
  assert.equal(dev.stepCount, cpu.stepCount);
}

gpuTest('AdamW.step on CUDA GradSets equals the CPU over several steps', () => {
  const o = { lr: 1e-2, weightDecay: 0.05, betas: [0.8, 0.99], eps: 1e-6 };
  const { cpu, dev } = optimizerPair(10, o);
  for (let step = 1; step <= 4; step++) {
    const [cg, gg] = cpuAndDevice(randomArrays(SIZES, 100 + step));
    const opts = { lr: 1e-2 / step, gradScale: step === 3 ? 0.25 : 1 };
    cpu.step(cg, opts);
    dev.step(gg, opts);
    assertSameState(dev, cpu, `step ${step}`);
  }
});

gpuTest('AdamW.stepFused on CUDA GradSets equals the CPU; fused equals surgery then step on the device', async () => {
  const o = { lr: 3e-3, weightDecay: 0.01 };
  const { cpu, dev } = optimizerPair(20, o);
  const { dev: unfused } = optimizerPair(20, o);
  for (let step = 1; step <= 4; step++) {
    const A = randomArrays(SIZES, 200 + step), R = randomArrays(SIZES, 300 + step);
    for (let i = step % 2; i < SIZES.length; i += 2) R[i] = A[i].map((x, j) => -x + 0.1 * R[i][j]);
    const [ca, ga] = cpuAndDevice(A), [cr, gr] = cpuAndDevice(R);
    const red = { lambda: 0.2 * step, eps: 1e-8 };
    const sc = craftReduce(ca, cr, red), sg = craftReduce(ga, gr, red);
    assertSameReduce(sg, sc, `step ${step}`);
    const opts = { lr: 3e-3, gradScale: step === 2 ? 0.5 : 1 };
    cpu.stepFused(ca, cr, sc.coefficients, opts);
    dev.stepFused(ga, gr, sg.coefficients, opts);
    assertSameState(dev, cpu, `fused step ${step}`);
    // Unfused on the device: the surgery's out, then the standalone step.
    const out = ga.zerosLike();
    surgery(ga, gr, { ...red, out });
    unfused.step(out, opts);
    assertSameState(unfused, dev, `unfused step ${step}`);
  }
});

gpuTest('the CUDA optimizer step is bit-identical run to run', () => {
  const run = () => {
    const { dev } = optimizerPair(30, {});
    const A = randomArrays(SIZES, 31), R = randomArrays(SIZES, 32);
    const ga = GradSet.fromArrays(A, { device: DEV }), gr = GradSet.fromArrays(R, { device: DEV });
    for (let s = 0; s < 3; s++) {
      const red = craftReduce(ga, gr, { lambda: 0.1 });
      dev.stepFused(ga, gr, red.coefficients, { gradScale: 0.7 });
      dev.step(ga);
    }
    return [dev.params.toFlat(), dev.m.toFlat(), dev.v.toFlat()];
  };
  const x = run(), y = run();
  x.forEach((a, i) => assert.ok(sameBits(a, y[i]), `array ${i}`));
});

gpuTest('the CUDA bindings check buffers against the layout and aliasing (RangeError, nothing written)', () => {
  const sizes = [3, 7];
  const set = () => GradSet.fromArrays(randomArrays(sizes, 7), { device: DEV });
  const p = set(), m = set(), v = set(), a = set(), r = set();
  const h = (s) => gradSetInternals(s); // the native TensorSets
  const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1, gradScale: 1 };
  const before = p.toFlat();
  const short = new binding.TensorSet({ device: DEV, sizes: [9] });
  const other = new binding.TensorSet({ device: DEV, sizes: [7, 3] });
  assert.throws(() => binding.adamw(h(p), h(m), h(v), short, hp), (e) => e instanceof RangeError && /grad has 9 elements but params has 10/.test(e.message));
  assert.throws(() => binding.adamw(h(p), h(m), h(v), other, hp), (e) => e instanceof RangeError && /grad does not have the tensor sizes of params/.test(e.message));
  assert.throws(() => binding.adamw(h(p), h(p), h(v), h(a), hp), (e) => e instanceof RangeError && /params and m overlap in memory/.test(e.message));
  assert.throws(() => binding.adamw(h(p), h(m), h(v), h(v), hp), (e) => e instanceof RangeError && /v and grad overlap in memory/.test(e.message));
  assert.throws(() => binding.adamwFused(h(p), h(m), h(v), h(a), h(r), { ...hp, coefficients: new Float64Array(3) }),
    (e) => e instanceof RangeError && /coefficients has 3 entries but there are 2 tensors/.test(e.message));
  assert.throws(() => binding.adamwFused(h(p), h(m), h(v), h(a), h(r), { ...hp, coefficients: new Float64Array([0, NaN]) }),
    (e) => e instanceof RangeError && /coefficients\[1\] must be finite/.test(e.message));
  assert.throws(() => binding.adamwFused(h(p), h(m), h(v), h(p), h(r), { ...hp, coefficients: new Float64Array(2) }),
    (e) => e instanceof RangeError && /params and act overlap in memory/.test(e.message));
  assert.throws(() => binding.craftReduce(h(a), short, { lambda: 0.1, eps: 1e-8, projection: true }), (e) => e instanceof RangeError && /ret has 9/.test(e.message));
  // act = ret is allowed for the fused step (the baseline).
  binding.adamwFused(h(p), h(m), h(v), h(a), h(a), { ...hp, coefficients: new Float64Array(2) });
  assert.ok(!sameBits(p.toFlat(), before), 'the valid call wrote the parameters');
  // Mixed devices are rejected by the TypeScript layer, and again natively.
  const opt = new AdamW(p);
  assert.throws(() => opt.step(GradSet.fromArrays(randomArrays(sizes, 8))), RangeError);
  const host = GradSet.fromArrays(randomArrays(sizes, 9));
  assert.throws(() => binding.adamw(h(p), h(m), h(v), h(host), hp), (e) => e instanceof RangeError && /grad is on cpu but params is on cuda:0/.test(e.message));
  short.dispose();
  other.dispose();
});

// A GradientSource whose parameters live on the GPU: closed-form gradients of the
// quadratic task of helpers/train-task.mjs, computed on the host from downloaded
// parameters and uploaded into the trainer's (device) accumulators. The same class on
// 'cpu' is the reference: both feed the trainer bit-identical gradients.
class DeviceTaskSource {
  supportsOverwrite = true;
  constructor({ sizes, seed, device, batch = 2, poisonAt = -1 }) {
    this.sizes = sizes;
    this.theta0 = randomArrays(sizes, seed, 1);
    this.params = GradSet.fromArrays(this.theta0, { device });
    this.paramNames = sizes.map((_, i) => `t${i}`);
    this.seed = seed;
    this.batch = batch;
    this.next = 0;
    this.poisonAt = poisonAt;
    const total = sizes.reduce((a, b) => a + b, 0);
    this.accAct = new Float32Array(total);
    this.accRet = new Float32Array(total);
  }
  accumulate(gAct, gRet, scale, overwrite) {
    if (overwrite) {
      this.accAct.fill(0);
      this.accRet.fill(0);
    }
    const theta = this.params.toFlat();
    const theta0 = this.theta0;
    let actionLoss = 0, retentionLoss = 0;
    for (let b = 0; b < this.batch; b++) {
      const rand = rng(1000 + this.seed * 7919 + this.next++, { centered: true });
      let o = 0;
      this.sizes.forEach((n, i) => {
        for (let j = 0; j < n; j++, o++) {
          const e = theta[o] - (rand() - 0.5);
          this.accAct[o] += (scale * e) / this.batch;
          actionLoss += (0.5 * e * e) / this.batch;
          if (b === 0 && gRet) {
            const d = theta[o] - theta0[i][j];
            this.accRet[o] += scale * 4 * d;
            retentionLoss += 2 * d * d;
          }
        }
      });
    }
    if (this.next - this.batch === this.poisonAt) this.accAct[this.accAct.length - 1] = NaN;
    gAct.set(this.accAct);
    if (gRet) gRet.set(this.accRet);
    return { actionLoss, retentionLoss, samples: this.batch };
  }
  saveState() { return { next: this.next }; }
  restoreState(s) { this.next = s.next; }
}

const TRAIN_SIZES = [3, 40, 17, 1100, 65537, 0, 2048];

gpuTest('a Trainer on a device-resident source gives the CPU trainer\'s parameters over 10 steps', async () => {
  const variants = [
    { lr: 2e-2, lambda: 0.3, lambdaLr: 0.5, retentionBudget: 0.05, microBatches: 2 },
    { lr: 2e-2, lambda: 0.3, clipNorm: 0.5, microBatches: 1 },
    { lr: 1e-2, lambda: 0.1, fused: false, microBatches: 2 },
    { lr: 1e-2, mode: 'baseline', clipNorm: 1 },
    { lr: 1e-2, lambda: 0.2, projection: false, dual: false },
  ];
  for (const v of variants) {
    const cpuSrc = new DeviceTaskSource({ sizes: TRAIN_SIZES, seed: 3, device: 'cpu' });
    const devSrc = new DeviceTaskSource({ sizes: TRAIN_SIZES, seed: 3, device: DEV });
    const o = { steps: 10, log: () => {}, ...v };
    const tc = new Trainer(cpuSrc, o), td = new Trainer(devSrc, o);
    for (let s = 0; s < 10; s++) {
      const rc = (await tc.step()).row, rd = (await td.step()).row;
      const what = `${JSON.stringify(v)} step ${s + 1}`;
      assert.equal(rd.num_conflicts, rc.num_conflicts, `${what}: num_conflicts`);
      assert.ok(Math.abs(rd.grad_norm - rc.grad_norm) <= 1e-5 * rc.grad_norm, `${what}: grad_norm ${rd.grad_norm} vs ${rc.grad_norm}`);
      if (rc.lambda_after !== undefined) assert.ok(Math.abs(rd.lambda_after - rc.lambda_after) <= 1e-6 * Math.max(1e-3, rc.lambda_after), `${what}: λ`);
      assert.ok(maxRelErr(devSrc.params.toFlat(), Float64Array.from(cpuSrc.params.toFlat())) < 1e-5,
        `${what}: params ${maxRelErr(devSrc.params.toFlat(), Float64Array.from(cpuSrc.params.toFlat()))}`);
    }
    assert.ok(maxRelErr(td.optimizer.m.toFlat(), Float64Array.from(tc.optimizer.m.toFlat())) < 1e-5, `${JSON.stringify(v)}: m`);
    assert.equal(td.optimizer.stepCount, 10);
  }
});

gpuTest('a non-finite gradient on the device skips the step: params and moments untouched', async () => {
  const src = new DeviceTaskSource({ sizes: TRAIN_SIZES, seed: 4, device: DEV, batch: 1, poisonAt: 2 });
  const lines = [];
  const tr = new Trainer(src, { steps: 4, lr: 1e-2, lambda: 0.2, log: (l) => lines.push(l) });
  await tr.step();
  await tr.step();
  const before = [src.params.toFlat(), tr.optimizer.m.toFlat(), tr.optimizer.v.toFlat()];
  const lambda = tr.lambda, t = tr.optimizer.stepCount;
  const { row, detail } = await tr.step();  // micro-batch 2 is poisoned
  assert.ok(detail.skipped);
  assert.equal(row.nonfinite_skipped, 1);
  assert.equal(tr.lambda, lambda);
  assert.equal(tr.optimizer.stepCount, t);
  [src.params, tr.optimizer.m, tr.optimizer.v].forEach((s, i) => assert.ok(sameBits(s.toFlat(), before[i]), `set ${i} untouched`));
  assert.equal(lines.length, 1);
  const next = await tr.step();
  assert.ok(!next.detail.skipped);
  assert.ok(!sameBits(src.params.toFlat(), before[0]));
});

gpuTest('checkpoint tensors of a device trainer come back to the host, and a CPU copy restores it', async () => {
  const src = new DeviceTaskSource({ sizes: TRAIN_SIZES, seed: 5, device: DEV });
  const tr = new Trainer(src, { steps: 6, lr: 1e-2, lambda: 0.2, log: () => {} });
  for (let s = 0; s < 3; s++) await tr.step();
  const live = tr.state(false);
  const groups = trainerTensorGroups(live, src.paramNames);
  const p = src.params.toArrays();
  src.paramNames.forEach((n, i) => {
    assert.ok(groups.model[n] instanceof Float32Array);
    assert.ok(sameBits(groups.model[n], p[i]), n);
    assert.ok(sameBits(groups.optimizer[`${n}.exp_avg`], tr.optimizer.m.toArrays()[i]));
  });
  const saved = tr.state();  // host copies
  assert.equal(saved.params.device, 'cpu');
  const ref = [];
  for (let s = 0; s < 3; s++) ref.push((await tr.step()).row.grad_norm);
  const after = src.params.toFlat();
  const src2 = new DeviceTaskSource({ sizes: TRAIN_SIZES, seed: 5, device: DEV });
  const tr2 = new Trainer(src2, { steps: 6, lr: 1e-2, lambda: 0.2, log: () => {} });
  tr2.restoreState(saved);
  const got = [];
  for (let s = 0; s < 3; s++) got.push((await tr2.step()).row.grad_norm);
  assert.deepEqual(got, ref);
  assert.ok(sameBits(src2.params.toFlat(), after), 'resume is exact');
});
