// The Qwen2 policy step gives the same bits for any thread count and every CPU kernel
// variant (child processes with CRAFTGRAD_THREADS / CRAFTGRAD_CPU_ISA).
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { backendInfo } from '../dist/index.js';

const child = fileURLToPath(new URL('./helpers/qwen2-digest-child.mjs', import.meta.url));

function runChild(env, pooling) {
  const out = execFileSync(process.execPath, [child, pooling], { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim());
}

for (const pooling of ['max', 'mean']) {
  test(`CRAFTGRAD_THREADS=1,2,3 and every CPU kernel variant give the same digest (${pooling} pooling)`, () => {
    const variants = backendInfo().cpu.available;
    const runs = ['1', '2', '3'].map((t) => runChild({ CRAFTGRAD_THREADS: t }, pooling));
    for (const isa of variants) runs.push(runChild({ CRAFTGRAD_CPU_ISA: isa, CRAFTGRAD_THREADS: '2' }, pooling));
    assert.deepEqual(runs.slice(0, 3).map((r) => r.threads), [1, 2, 3]);
    assert.deepEqual(runs.slice(3).map((r) => r.isa), variants, 'each variant really ran');
    for (const r of runs) assert.equal(r.digest, runs[0].digest, JSON.stringify(r));
    console.log(`# same digest for threads 1-3 and variants ${variants.join(', ')}`);
  });
}
