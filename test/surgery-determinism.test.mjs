// Bit-identical results for any thread count and any CPU kernel variant.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { surgery, setThreads, backendInfo } from '../dist/index.js';
import { gradPairs } from './helpers/random.mjs';
import { sameBits } from './helpers/same-bits.mjs';

const child = fileURLToPath(new URL('./helpers/digest-child.mjs', import.meta.url));

function runChild(env) {
  const out = execFileSync(process.execPath, [child], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out.trim());
}

test('threads 1, 2 and 3 give the same bits (in process)', () => {
  const { act, ret } = gradPairs([1, 1025, 65537, 400000, 7, 70000, 65536 * 3 + 5], 3);
  const results = [];
  try {
    for (const t of [1, 2, 3]) {
      setThreads(t);
      assert.equal(backendInfo().cpu.threads, t);
      results.push(surgery(act, ret, { lambda: 0.1 }));
    }
  } finally {
    setThreads(2);
  }
  for (const r of results.slice(1)) {
    r.out.forEach((o, i) => assert.ok(sameBits(o, results[0].out[i]), `tensor ${i}`));
    assert.ok(sameBits(r.dots, results[0].dots));
    assert.equal(r.gradNorm, results[0].gradNorm);
  }
});

test('CRAFTGRAD_THREADS=1,2,3 and every CPU kernel variant give the same digest', () => {
  const variants = backendInfo().cpu.available;
  const runs = [];
  for (const threads of ['1', '2', '3']) runs.push(runChild({ CRAFTGRAD_THREADS: threads }));
  for (const isa of variants) runs.push(runChild({ CRAFTGRAD_CPU_ISA: isa, CRAFTGRAD_THREADS: '2' }));
  assert.deepEqual(runs.slice(0, 3).map((r) => r.threads), [1, 2, 3]);
  assert.deepEqual(runs.slice(3).map((r) => r.isa), variants, 'each variant really ran');
  for (const r of runs) assert.equal(r.digest, runs[0].digest, JSON.stringify(r));
  console.log(`# same digest for threads 1-3 and variants ${variants.join(', ')}`);
});

test('an invalid CRAFTGRAD_THREADS is reported, not ignored', () => {
  assert.throws(() => runChild({ CRAFTGRAD_THREADS: 'lots' }), (e) => /CRAFTGRAD_THREADS must be an integer/.test(e.stderr));
});
