// The addon is context-aware: it loads and computes inside worker_threads, concurrently
// with the main thread, with the same results.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { surgery } from '../dist/index.js';
import { gradPairs } from './helpers/random.mjs';
import { sameBits } from './helpers/same-bits.mjs';

const SIZES = [5, 1025, 70000, 3];

test('calls from worker_threads give the same bits as the main thread', async () => {
  const { act, ret } = gradPairs(SIZES, 21);
  const main = surgery(act, ret, { lambda: 0.2 });
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.index).then(async ({ surgery, surgeryAsync }) => {
      const { act, ret } = workerData;
      const sync = surgery(act, ret, { lambda: 0.2 });
      const asyncR = await surgeryAsync(act, ret, { lambda: 0.2 });
      parentPort.postMessage({ sync: sync.out, async: asyncR.out, gradNorm: sync.gradNorm });
    });`;
  const index = new URL('../dist/index.js', import.meta.url).href;
  const results = await Promise.all([0, 1, 2].map(() => new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { act, ret, index } });
    w.once('message', resolve);
    w.once('error', reject);
  })));
  // Meanwhile the main thread keeps computing too.
  surgery(act, ret, { lambda: 0.2 });
  for (const r of results) {
    assert.equal(r.gradNorm, main.gradNorm);
    r.sync.forEach((o, i) => assert.ok(sameBits(o, main.out[i])));
    r.async.forEach((o, i) => assert.ok(sameBits(o, main.out[i])));
  }
});
