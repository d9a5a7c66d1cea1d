// The surgery primitive on the CPU against a float64 reference, and its edge cases.
import test from 'node:test';
import assert from 'node:assert/strict';
import { surgery, surgeryAsync, surgeryFlat, GradSet } from '../dist/index.js';
import { gradPairs, randn, rng } from './helpers/random.mjs';
import { sameBits } from './helpers/same-bits.mjs';
import { referenceSurgery, relError, dotScale } from './helpers/reference.mjs';

const SIZES = [0, 1, 3, 15, 16, 17, 1000, 1023, 1024, 1025, 4096, 65535, 65536, 65537, 200003];

function checkAgainstReference(act, ret, opts, result) {
  const ref = referenceSurgery(act, ret, opts);
  assert.equal(result.numTensors, act.length);
  for (let i = 0; i < act.length; ++i) {
    const err = relError(result.out[i], ref.out[i], act[i], ret[i], ref.coefficients[i]);
    assert.ok(err <= 1e-6, `out[${i}] (n=${act[i].length}) rel err ${err}`);
    const tol = 1e-6 * dotScale(act[i], ret[i]);
    assert.ok(Math.abs(result.dots[i] - ref.dots[i]) <= tol + 1e-30, `dots[${i}]`);
    if (Math.abs(ref.dots[i]) > tol) assert.equal(result.conflicts[i], ref.conflicts[i], `conflicts[${i}]`);
  }
  const relNorm = Math.abs(result.gradNorm - ref.gradNorm) / Math.max(ref.gradNorm, 1e-30);
  assert.ok(relNorm <= 1e-6, `gradNorm rel err ${relNorm}`);
  const numConflicts = result.conflicts.reduce((s, c) => s + c, 0);
  assert.equal(result.numConflicts, numConflicts);
  assert.equal(result.conflictRatio, act.length ? numConflicts / act.length : 0);
}

test('matches the float64 reference on every size class', () => {
  for (const [seed, lambda] of [[1, 0.05], [2, 0], [3, 1.7]]) {
    const { act, ret } = gradPairs(SIZES, seed);
    const r = surgery(act, ret, { lambda });
    checkAgainstReference(act, ret, { lambda }, r);
    assert.ok(r.numConflicts > 0 && r.numConflicts < act.length, 'the data mixes conflicting and aligned tensors');
  }
});

test('projection off never projects but still adds λ·r', () => {
  const { act, ret } = gradPairs(SIZES, 4);
  const r = surgery(act, ret, { lambda: 0.3, projection: false });
  assert.equal(r.numConflicts, 0);
  checkAgainstReference(act, ret, { lambda: 0.3, projection: false }, r);
});

test('λ = 0 without conflict returns a unchanged', () => {
  const a = randn(1000, rng(5));
  const r = surgery([a], [a.map((x) => 2 * x)], { lambda: 0 });
  assert.equal(r.numConflicts, 0);
  assert.ok(sameBits(r.out[0], a));
});

test('no tensors', () => {
  const r = surgery([], [], { lambda: 0.1 });
  assert.deepEqual(r.out, []);
  assert.equal(r.numTensors, 0);
  assert.equal(r.conflictRatio, 0);
  assert.equal(r.gradNorm, 0);
  assert.equal(r.nonFinite, 0);
});

test('zero-length tensors count as tensors and never conflict', () => {
  const r = surgery([new Float32Array(0), new Float32Array([1, -1])], [new Float32Array(0), new Float32Array([-1, 1])], { lambda: 0.5 });
  assert.equal(r.numTensors, 2);
  assert.deepEqual([...r.conflicts], [0, 1]);
  assert.equal(r.out[0].length, 0);
  assert.equal(r.conflictRatio, 0.5);
});

test('r = 0: no conflict, out = a', () => {
  const a = randn(777, rng(6));
  const r = surgery([a], [new Float32Array(777)], { lambda: 3 });
  assert.equal(r.numConflicts, 0);
  assert.ok(sameBits(r.out[0], a));
});

test('r = −a: the projection removes a entirely', () => {
  const a = randn(5000, rng(7));
  const neg = a.map((x) => -x);
  const r = surgery([a], [neg], { lambda: 0 });
  assert.equal(r.numConflicts, 1);
  const maxAbs = r.out[0].reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const scale = a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  assert.ok(maxAbs <= 1e-6 * scale, `residual ${maxAbs}`);
  assert.ok(r.gradNorm <= 1e-5 * Math.sqrt(5000) * scale);
});

test('a exactly orthogonal to r: d = 0 is not a conflict', () => {
  const a = new Float32Array([1, 0, 2, 0]);
  const r = new Float32Array([0, 3, 0, -4]);
  const res = surgery([a], [r], { lambda: 0.5 });
  assert.equal(res.dots[0], 0);
  assert.equal(res.numConflicts, 0);
  assert.deepEqual([...res.out[0]], [1, 1.5, 2, -2]);
});

test('one element, conflicting, by hand', () => {
  // d = -6, q = 9: ã = 2 - (-6/9)(-3) = 0; out = 0 + 0.5·(-3) = -1.5
  const res = surgery([new Float32Array([2])], [new Float32Array([-3])], { lambda: 0.5, eps: 1e-30 });
  assert.equal(res.numConflicts, 1);
  assert.ok(Math.abs(res.out[0][0] + 1.5) < 1e-6);
  assert.ok(Math.abs(res.gradNorm - 1.5) < 1e-6);
});

test('cosines', () => {
  const a = new Float32Array([1, 0]), r = new Float32Array([1, 1]);
  const res = surgery([a, new Float32Array(2)], [r, r], { lambda: 0, cosines: true });
  assert.ok(Math.abs(res.cosines[0] - Math.SQRT1_2) < 1e-12);
  assert.equal(res.cosines[1], 0);
  assert.equal(surgery([a], [r], { lambda: 0 }).cosines, undefined);
});

test('in place: out = act gives the same bits as a fresh output', () => {
  const { act, ret } = gradPairs(SIZES, 8);
  const fresh = surgery(act, ret, { lambda: 0.2 });
  const copy = act.map((a) => a.slice());
  const inPlace = surgery(copy, ret, { lambda: 0.2, out: copy });
  assert.equal(inPlace.out, copy);
  copy.forEach((a, i) => assert.ok(sameBits(a, fresh.out[i]), `tensor ${i}`));
  assert.equal(inPlace.gradNorm, fresh.gradNorm);
});

test('out = ret and a preallocated out also give the same bits', () => {
  const { act, ret } = gradPairs(SIZES, 9);
  const fresh = surgery(act, ret, { lambda: 0.2 });
  const retCopy = ret.map((r) => r.slice());
  surgery(act, retCopy, { lambda: 0.2, out: retCopy });
  retCopy.forEach((r, i) => assert.ok(sameBits(r, fresh.out[i])));
  const out = act.map((a) => new Float32Array(a.length).fill(NaN));
  surgery(act, ret, { lambda: 0.2, out });
  out.forEach((o, i) => assert.ok(sameBits(o, fresh.out[i]), 'every element written'));
});

test('NaN and Inf are counted, not thrown, and the rest is computed', () => {
  const { act, ret } = gradPairs([100, 100, 100, 100], 10);
  act[1][5] = NaN;
  ret[2][7] = Infinity;
  act[2][9] = -Infinity;
  const r = surgery(act, ret, { lambda: 0.1 });
  assert.equal(r.nonFinite, 2);
  assert.ok(Number.isNaN(r.out[1][5]));
  const clean = surgery([act[0], act[3]], [ret[0], ret[3]], { lambda: 0.1 });
  assert.ok(sameBits(r.out[0], clean.out[0]) && sameBits(r.out[3], clean.out[1]));
  assert.ok(!Number.isFinite(r.gradNorm));
});

test('finite values whose fp32 products overflow still give finite statistics', () => {
  const a = new Float32Array([3e20, 1]), r = new Float32Array([-2e20, 1]);
  const res = surgery([a], [r], { lambda: 0 });
  assert.equal(res.nonFinite, 0);
  assert.ok(Number.isFinite(res.dots[0]) && res.dots[0] < 0);
  assert.equal(res.numConflicts, 1);
});

test('async resolves to the same bits as sync', async () => {
  const { act, ret } = gradPairs(SIZES, 11);
  const s = surgery(act, ret, { lambda: 0.05, cosines: true });
  const a = await surgeryAsync(act, ret, { lambda: 0.05, cosines: true });
  s.out.forEach((o, i) => assert.ok(sameBits(o, a.out[i])));
  assert.ok(sameBits(s.dots, a.dots) && sameBits(s.cosines, a.cosines) && sameBits(s.conflicts, a.conflicts));
  assert.equal(s.gradNorm, a.gradNorm);
  // Several in flight at once, one of them running inline because the pool is busy.
  const all = await Promise.all([0, 1, 2, 3].map(() => surgeryAsync(act, ret, { lambda: 0.05 })));
  for (const r of all) r.out.forEach((o, i) => assert.ok(sameBits(o, s.out[i])));
});

test('surgeryFlat and GradSets give the same bits as lists', async () => {
  const { act, ret } = gradPairs(SIZES, 12);
  const list = surgery(act, ret, { lambda: 0.07 });
  const sizes = act.map((a) => a.length);
  const A = GradSet.fromArrays(act), R = GradSet.fromArrays(ret);
  const flat = surgeryFlat(A.data, R.data, sizes, { lambda: 0.07 });
  assert.ok(sameBits(flat.out, GradSet.fromArrays(list.out).data));
  const viaSets = surgery(A, R, { lambda: 0.07 });
  assert.ok(viaSets.out instanceof GradSet);
  assert.deepEqual(viaSets.out.sizes, sizes);
  viaSets.out.toArrays().forEach((o, i) => assert.ok(sameBits(o, list.out[i])));
  const viaAsync = await surgeryAsync(A, R, { lambda: 0.07, out: A });
  assert.equal(viaAsync.out, A);
  A.toArrays().forEach((o, i) => assert.ok(sameBits(o, list.out[i])));
  assert.equal(viaSets.gradNorm, list.gradNorm);
});

test('large outputs at every alignment (the streaming-store path) get every element, same bits', () => {
  const n = 300001; // above the streaming threshold, with a scalar tail
  const { act, ret } = gradPairs([n], 13);
  const inPlace = act[0].slice();
  surgery([inPlace], ret, { lambda: 0.3, out: [inPlace] }); // aliased: ordinary stores
  const backing = new Float32Array(n + 64);
  for (let offset = 0; offset < 17; ++offset) {
    backing.fill(NaN);
    const out = backing.subarray(offset, offset + n);
    surgery(act, ret, { lambda: 0.3, out: [out] });
    assert.ok(sameBits(out, inPlace), `offset ${offset}`);
    assert.ok(Number.isNaN(backing[offset + n]), `nothing written past the end at offset ${offset}`);
    if (offset > 0) assert.ok(Number.isNaN(backing[offset - 1]), `nothing written before the start at offset ${offset}`);
  }
});

test('the raw result: its keys in order, fresh arrays every call, whatever the prototypes say later', async () => {
  const { binding } = await import('../dist/native.js');
  const options = { lambda: 0.5, eps: 1e-8, projection: true, cosines: true, out: undefined, sizes: undefined, device: 'cpu' };
  const a = [new Float32Array([1, 2]), new Float32Array([3])], r = [new Float32Array([-1, -1]), new Float32Array([1])];
  const first = binding.surgery(a, r, options);
  assert.deepEqual(Object.keys(first), ['out', 'conflicts', 'dots', 'cosines', 'numConflicts', 'numTensors', 'conflictRatio', 'gradNorm', 'nonFinite']);
  assert.deepEqual(Object.keys(binding.surgery(a, r, { ...options, cosines: false })),
    ['out', 'conflicts', 'dots', 'numConflicts', 'numTensors', 'conflictRatio', 'gradNorm', 'nonFinite']);
  assert.ok(first.conflicts instanceof Uint8Array && first.dots instanceof Float64Array && first.cosines instanceof Float64Array);
  assert.deepEqual([[...first.conflicts], [...first.dots], first.numConflicts, first.numTensors, first.conflictRatio], [[1, 0], [-3, 3], 1, 2, 0.5]);
  assert.equal(first.conflicts.buffer.byteLength, 2, 'its own buffer, not a view of another');
  const typedSlice = Object.getPrototypeOf(Uint8Array.prototype).slice;
  Uint8Array.prototype.slice = Object.getPrototypeOf(Uint8Array.prototype).slice = () => { throw new Error('patched'); };
  try {
    const second = binding.surgery([new Float32Array([1]), new Float32Array([1]), new Float32Array([1])], [new Float32Array([1]), new Float32Array([-1]), new Float32Array([1])], options);
    assert.deepEqual([...second.conflicts], [0, 1, 0]);
    assert.deepEqual([...second.dots], [1, -1, 1]);
  } finally {
    Object.getPrototypeOf(Uint8Array.prototype).slice = typedSlice;
    delete Uint8Array.prototype.slice;
  }
  assert.deepEqual([[...first.conflicts], [...first.dots], [...first.cosines].map((c) => Math.round(c * 1e6) / 1e6)], [[1, 0], [-3, 3], [-0.948683, 1]], 'unchanged by later calls');
});
