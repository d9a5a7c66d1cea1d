// The overflow fallback (native/core/numerics.h): finite values whose fp32 block sums
// overflow are summed again per block in float64. Against a float64 reference, bit for bit
// run to run, for threads 1-3 and every CPU kernel variant. The CUDA form is in
// cuda.test.mjs (the same bits as the CPU's).
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { surgery, setThreads, backendInfo } from '../dist/index.js';
import { overflowPairs, OVERFLOW_SIZES } from './helpers/overflow.mjs';

const DIST = new URL('../dist/index.js', import.meta.url).href;
const HELPER = new URL('./helpers/overflow.mjs', import.meta.url).href;

// float64 reference of <a, r>, <r, r>, <a, a> (products of floats are exact in float64).
function sums64(a, r) {
  let d = 0, q = 0, s = 0;
  for (let i = 0; i < a.length; ++i) {
    d += a[i] * r[i];
    q += r[i] * r[i];
    s += a[i] * a[i];
  }
  return { d, q, s };
}

function digestOf(res) {
  const h = createHash('sha256');
  h.update([...res.dots, ...res.cosines, res.gradNorm].map((x) => x.toString()).join(','));
  for (const o of res.out) h.update(Buffer.from(o.buffer, o.byteOffset, o.byteLength));
  return h.digest('hex');
}

test('fp32 block sums that overflow on finite data are summed in float64: finite, against a float64 reference', () => {
  const { act, ret, huge } = overflowPairs(OVERFLOW_SIZES, 5);
  // The data is finite, but the fp32 products of the huge blocks overflow: without the
  // fallback the statistics would be Inf or NaN.
  assert.ok(act.every((a) => a.every(Number.isFinite)) && ret.every((r) => r.every(Number.isFinite)));
  assert.ok(huge.some((h) => h > 0), 'some tensors have blocks that overflow in fp32');
  const res = surgery(act, ret, { lambda: 0.01, cosines: true });
  assert.equal(res.nonFinite, 0);
  for (let i = 0; i < act.length; ++i) {
    const ref = sums64(act[i], ret[i]);
    assert.ok(Number.isFinite(res.dots[i]), `dots[${i}] finite`);
    // Blocks that do not overflow keep fp32 lanes: relative 1e-6 of the largest term.
    const tol = 1e-6 * Math.sqrt(ref.q * ref.s);
    assert.ok(Math.abs(res.dots[i] - ref.d) <= tol, `dots[${i}] ${res.dots[i]} vs float64 ${ref.d}`);
    const cos = ref.q > 0 && ref.s > 0 ? ref.d / Math.sqrt(ref.q * ref.s) : 0;
    assert.ok(Math.abs(res.cosines[i] - cos) <= 1e-6, `cosines[${i}] ${res.cosines[i]} vs ${cos}`);
  }
  // (‖out‖², pass 2's fp32 lanes, has no fallback: out² of about 1e60 makes gradNorm Inf.)
  assert.equal(digestOf(surgery(act, ret, { lambda: 0.01, cosines: true })), digestOf(res), 'run to run');
});

test('a block of NaN keeps the statistics non-finite while an overflowing block of the same tensor is recomputed', () => {
  const { act, ret } = overflowPairs([3 * 1024], 6);
  act[0][5] = NaN;  // block 0 flagged; blocks 1 and 2 hold huge values (overflowPairs fills blocks 1 mod 2)
  const res = surgery(act, ret, { lambda: 0.01 });
  assert.equal(res.nonFinite, 1);
  assert.ok(Number.isNaN(res.dots[0]));
});

test('the fallback gives the same bits for threads 1, 2, 3 and every CPU kernel variant', () => {
  const { act, ret } = overflowPairs(OVERFLOW_SIZES, 7);
  const digests = [];
  try {
    for (const t of [1, 2, 3]) {
      setThreads(t);
      digests.push(digestOf(surgery(act, ret, { lambda: 0.01, cosines: true })));
    }
  } finally {
    setThreads(2);
  }
  const script = `import { createHash } from 'node:crypto'; import { surgery } from '${DIST}';
    import { overflowPairs, OVERFLOW_SIZES } from '${HELPER}';
    const { act, ret } = overflowPairs(OVERFLOW_SIZES, 7);
    const res = surgery(act, ret, { lambda: 0.01, cosines: true });
    ${digestOf.toString()}
    process.stdout.write(digestOf(res));`;
  const variants = backendInfo().cpu.available;
  for (const isa of variants) {
    digests.push(execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, CRAFTGRAD_CPU_ISA: isa, CRAFTGRAD_THREADS: '3' },
      encoding: 'utf8',
    }));
  }
  for (let i = 1; i < digests.length; ++i) assert.equal(digests[i], digests[0], `run ${i} (threads 1-3, then ${variants.join(', ')})`);
  console.log(`# overflow fallback: same bits for threads 1-3 and variants ${variants.join(', ')}`);
});
