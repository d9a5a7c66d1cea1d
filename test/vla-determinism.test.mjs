// VLA-Adapter's step gives the same bits for any thread count and every CPU kernel variant
// (child processes with CRAFTGRAD_THREADS / CRAFTGRAD_CPU_ISA), and the same bits run to run.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { backendInfo } from '../dist/index.js';

const child = fileURLToPath(new URL('./helpers/vla-digest-child.mjs', import.meta.url));

function runChild(env, pooling) {
  const out = execFileSync(process.execPath, [child, pooling], { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim());
}

for (const pooling of ['max', 'mean']) {
  test(`CRAFTGRAD_THREADS=1,2,3 and every CPU kernel variant give the same VLA digest (${pooling} pooling)`, () => {
    const variants = backendInfo().cpu.available;
    const runs = ['1', '2', '3'].map((t) => runChild({ CRAFTGRAD_THREADS: t }, pooling));
    runs.push(runChild({ CRAFTGRAD_THREADS: '2' }, pooling));
    for (const isa of variants) runs.push(runChild({ CRAFTGRAD_CPU_ISA: isa, CRAFTGRAD_THREADS: '2' }, pooling));
    assert.deepEqual(runs.slice(0, 3).map((r) => r.threads), [1, 2, 3]);
    assert.deepEqual(runs.slice(4).map((r) => r.isa), variants, 'each variant really ran');
    assert.ok(Number.isFinite(runs[0].loss) && runs[0].loss > 0, `a real loss: ${runs[0].loss}`);
    for (const r of runs) assert.equal(r.digest, runs[0].digest, JSON.stringify(r));
    console.log(`# same digest for threads 1-3, a rerun, and variants ${variants.join(', ')}`);
  });
}
