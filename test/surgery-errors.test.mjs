// Bad input gets a TypeError or RangeError naming the argument (and the tensor index),
// thrown before anything is written.
import test from 'node:test';
import assert from 'node:assert/strict';
import { surgery, surgeryAsync, surgeryFlat, GradSet, backendInfo } from '../dist/index.js';

const f = (...xs) => new Float32Array(xs);

function detached() {
  const buf = new ArrayBuffer(8);
  const view = new Float32Array(buf);
  structuredClone(buf, { transfer: [buf] });
  return view;
}

const shared = new Float32Array(10).fill(1);
const A = [f(1, 2), f(3, 4, 5)];
const R = [f(1, 1), f(-1, 0, 2)];

// [description, thunk, error class, message pattern]
const CASES = [
  ['act not an array', () => surgery(5, R, { lambda: 0 }), TypeError, /^act must be an Array of Float32Array or a GradSet, got number 5$/],
  ['ret not an array', () => surgery(A, 'x', { lambda: 0 }), TypeError, /^ret must be an Array/],
  ['lists of different lengths', () => surgery(A, [R[0]], { lambda: 0 }), RangeError, /^ret has 1 tensors but act has 2$/],
  ['tensors of different sizes', () => surgery(A, [R[0], f(1, 2)], { lambda: 0 }), RangeError, /^ret\[1\] has 2 elements but act\[1\] has 3$/],
  ['a Float64Array', () => surgery([A[0], new Float64Array(3)], R, { lambda: 0 }), TypeError, /^act\[1\] must be a Float32Array, got Float64Array$/],
  ['a plain array', () => surgery(A, [[1, 1], R[1]], { lambda: 0 }), TypeError, /^ret\[0\] must be a Float32Array, got an Array$/],
  ['null in the list', () => surgery([null, A[1]], R, { lambda: 0 }), TypeError, /^act\[0\] must be a Float32Array, got null$/],
  ['a detached buffer', () => surgery([A[0], A[1], detached()], [R[0], R[1], f(1, 2)], { lambda: 0 }), TypeError, /^act\[2\] is backed by a detached ArrayBuffer$/],
  ['out partly overlapping an input', () => surgery([shared.subarray(0, 4)], [f(1, 1, 1, 1)], { lambda: 0, out: [shared.subarray(2, 6)] }), RangeError, /^act\[0\] and out\[0\] overlap in memory/],
  ['out aliasing another tensor\'s ret', () => { const v = f(1, 1); return surgery([f(1, 2), f(3, 4)], [f(1, 1), v], { lambda: 0, out: [v, f(0, 0)] }); }, RangeError, /^(out\[0\] and ret\[1\]|ret\[1\] and out\[0\]) overlap in memory/],
  ['out aliasing another tensor\'s act exactly', () => { const x = f(1, 2); return surgery([x, x], [f(1, 1), f(1, 1)], { lambda: 0, out: [x, f(0, 0)] }); }, RangeError, /overlap in memory/],
  ['two outs overlapping', () => surgery([f(1, 2), f(1, 2)], [f(1, 1), f(1, 1)], { lambda: 0, out: [shared.subarray(0, 2), shared.subarray(1, 3)] }), RangeError, /out\[0\] and out\[1\] overlap/],
  ['out of the wrong length', () => surgery(A, R, { lambda: 0, out: [f(0, 0), f(0)] }), RangeError, /^out\[1\] has 1 elements but act\[1\] has 3$/],
  ['out with too few tensors', () => surgery(A, R, { lambda: 0, out: [f(0, 0)] }), RangeError, /^out has 1 tensors but act has 2$/],
  ['options missing', () => surgery(A, R), TypeError, /^options must be an object with at least \{ lambda \}/],
  ['lambda missing', () => surgery(A, R, {}), TypeError, /^options\.lambda is required/],
  ['lambda NaN', () => surgery(A, R, { lambda: NaN }), RangeError, /^options\.lambda must be a finite number >= 0, got NaN$/],
  ['lambda negative', () => surgery(A, R, { lambda: -0.1 }), RangeError, /^options\.lambda must be a finite number >= 0, got -0\.1$/],
  ['lambda infinite', () => surgery(A, R, { lambda: Infinity }), RangeError, /^options\.lambda must be/],
  ['lambda a string', () => surgery(A, R, { lambda: '0.1' }), TypeError, /^options\.lambda must be a number, got string '0\.1'$/],
  ['eps zero', () => surgery(A, R, { lambda: 0, eps: 0 }), RangeError, /^options\.eps must be a finite number > 0, got 0$/],
  ['eps NaN', () => surgery(A, R, { lambda: 0, eps: NaN }), RangeError, /^options\.eps must be a finite number > 0/],
  ['projection not boolean', () => surgery(A, R, { lambda: 0, projection: 1 }), TypeError, /^options\.projection must be a boolean, got number 1$/],
  ['unknown option', () => surgery(A, R, { lambda: 0, lamda: 1 }), TypeError, /^options has an unknown option 'lamda'/],
  ['unknown device', () => surgery(A, R, { lambda: 0, device: 'gpu' }), RangeError, /^options\.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'$/],
  ['flat: sizes do not add up', () => surgeryFlat(f(1, 2, 3), f(1, 2, 3), [1, 1], { lambda: 0 }), RangeError, /^sizes add up to 2 elements but actFlat has 3$/],
  ['flat: negative size', () => surgeryFlat(f(1, 2, 3), f(1, 2, 3), [4, -1], { lambda: 0 }), RangeError, /^sizes\[1\] must be a non-negative integer/],
  ['flat: fractional size', () => surgeryFlat(f(1, 2, 3), f(1, 2, 3), [1.5, 1.5], { lambda: 0 }), RangeError, /^sizes\[0\] must be a non-negative integer/],
  ['flat: sizes a string', () => surgeryFlat(f(1), f(1), 'one', { lambda: 0 }), TypeError, /^sizes must be an Array of numbers/],
  ['flat: act not Float32Array', () => surgeryFlat([1], f(1), [1], { lambda: 0 }), TypeError, /^actFlat must be a Float32Array, got an Array$/],
  ['flat: lengths differ', () => surgeryFlat(f(1, 2), f(1), [2], { lambda: 0 }), RangeError, /^retFlat has 1 elements but actFlat has 2$/],
  ['flat: out overlapping', () => surgeryFlat(shared.subarray(0, 3), f(1, 2, 3), [3], { lambda: 0, out: shared.subarray(1, 4) }), RangeError, /^actFlat and out overlap in memory/],
  ['GradSet with an Array', () => surgery(GradSet.fromArrays(A), R, { lambda: 0 }), TypeError, /^ret must be a GradSet like act/],
  ['GradSets of different layouts', () => surgery(GradSet.fromArrays(A), GradSet.fromArrays([R[0], f(1, 2)]), { lambda: 0 }), RangeError, /^ret\[1\] has 2 elements but act\[1\] has 3$/],
  ['GradSets wrapping overlapping memory', () => surgery(GradSet.wrap(shared.subarray(0, 4), [4]), GradSet.wrap(f(1, 1, 1, 1), [4]), { lambda: 0, out: GradSet.wrap(shared.subarray(2, 6), [4]) }), RangeError, /^act and out overlap in memory/],
  ['a GradSet whose array was detached', () => { const g = GradSet.wrap(new Float32Array(2), [2]); structuredClone(g.data.buffer, { transfer: [g.data.buffer] }); return surgery(GradSet.wrap(f(1, 2), [2]), g, { lambda: 0 }); }, TypeError, /^ret is backed by a detached ArrayBuffer$/],
  ['a disposed GradSet', () => { const g = GradSet.fromArrays(R); g.dispose(); return surgery(GradSet.fromArrays(A), g, { lambda: 0 }); }, TypeError, /^ret is a disposed GradSet$/],
];

for (const [name, thunk, cls, pattern] of CASES) {
  test(`rejects ${name}`, () => {
    assert.throws(thunk, (e) => {
      assert.ok(e instanceof cls, `expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
      assert.match(e.message, pattern);
      assert.match(e.code, /^ERR_INVALID_ARG_(TYPE|VALUE)$/);
      return true;
    });
  });
}

test('surgeryAsync rejects (never throws synchronously) with the same errors', async () => {
  let promise;
  assert.doesNotThrow(() => { promise = surgeryAsync(A, [R[0]], { lambda: 0 }); });
  await assert.rejects(promise, { name: 'RangeError', message: 'ret has 1 tensors but act has 2' });
  await assert.rejects(surgeryAsync(A, R, { lambda: -1 }), RangeError);
});

test('a rejected call writes nothing', () => {
  const out = [f(7, 7), f(7, 7, 7)];
  assert.throws(() => surgery(A, [R[0], f(1, 2)], { lambda: 0, out }));
  assert.throws(() => surgery(A, R, { lambda: 0, out: [out[0], out[0]] }));
  assert.deepEqual([...out[0], ...out[1]], [7, 7, 7, 7, 7]);
});

test("device 'cuda' without a usable GPU is a clear error; 'auto' uses the CPU", () => {
  const cuda = backendInfo().cuda;
  if (cuda.available) {
    console.log('# a CUDA device is present: the no-GPU path is not exercised here');
    return;
  }
  assert.throws(() => surgery(A, R, { lambda: 0, device: 'cuda' }), /CUDA was requested but/);
  assert.equal(surgery(A, R, { lambda: 0, device: 'auto' }).numTensors, 2);
  assert.equal(surgery(A, R, { lambda: 0, device: 'cpu' }).numTensors, 2);
});

// The aliasing check of long lists (an address sweep over every tensor of act, ret and out):
// lists laid out in one buffer so that the addresses are known, in each order the sweep
// meets (each list in address order but the lists out of it; lists interleaved; a list
// not in address order), with exact in-place aliasing allowed and one partial overlap found.
test('long lists: every layout is checked tensor by tensor, in-place aliasing allowed', () => {
  const K = 40, L = 4;
  const layouts = {
    'lists out of address order': (buf) => {
      const at = (base) => Array.from({ length: K }, (_, i) => buf.subarray(base + i * L, base + (i + 1) * L));
      return { act: at(K * L), ret: at(2 * K * L), out: at(0) };
    },
    'lists interleaved': (buf) => {
      const at = (j) => Array.from({ length: K }, (_, i) => buf.subarray((3 * i + j) * L, (3 * i + j + 1) * L));
      return { act: at(0), ret: at(1), out: at(2) };
    },
    'a list not in address order': (buf) => {
      const at = (base) => Array.from({ length: K }, (_, i) => buf.subarray(base + (K - 1 - i) * L, base + (K - i) * L));
      return { act: at(0), ret: at(K * L), out: at(2 * K * L) };
    },
  };
  for (const [name, layout] of Object.entries(layouts)) {
    const buf = new Float32Array(3 * K * L).map((_, i) => Math.sin(i));
    const { act, ret, out } = layout(buf);
    const want = surgery(act.map((a) => a.slice()), ret.map((r) => r.slice()), { lambda: 0.3 });
    const got = surgery(act, ret, { lambda: 0.3, out });
    assert.deepEqual(got.out.map((o) => [...o]), want.out.map((o) => [...o]), name);
    const inPlace = out.slice();
    inPlace[7] = act[7];
    inPlace[9] = ret[9];
    assert.doesNotThrow(() => surgery(act, ret, { lambda: 0.3, out: inPlace }), name);
    // out[5] one element past act[7]'s start: it overlaps act[7] (and what follows it).
    const start = act[7].byteOffset / 4 + 1, bad = out.slice();
    bad[5] = buf.subarray(start, start + L);
    assert.throws(() => surgery(act, ret, { lambda: 0, out: bad }),
      (e) => e instanceof RangeError && /^act\[7\] and out\[5\] overlap in memory; an output may only alias its own tensor's act or ret exactly$/.test(e.message), name);
    bad[5] = act[6];
    assert.throws(() => surgery(act, ret, { lambda: 0, out: bad }), (e) => /^out\[5\] and act\[6\] overlap in memory/.test(e.message), name);
  }
});
