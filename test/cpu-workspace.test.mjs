// The CPU backend's workspace is one pool of blocks for every thread (native/cpu/layers_cpu.cc
// BlockPool): async steps one after the other reuse one block whichever of libuv's worker
// threads runs them. (A block per thread kept one model-sized workspace per pool thread: the
// full-size VLA-Adapter step grew to 18 GiB over four steps, bench/RESULTS.md.)
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./helpers/workspace-probe-child.mjs', import.meta.url));

test('eight more async steps on a 4-thread pool add almost nothing to the peak RSS (one shared workspace)', () => {
  const out = execFileSync(process.execPath, [child], { env: { ...process.env, UV_THREADPOOL_SIZE: '4' }, encoding: 'utf8' });
  const { first, after } = JSON.parse(out.trim());
  assert.ok(first > 60, `the first step's workspace is large enough to see (${first.toFixed(1)} MiB)`);
  // A block per thread grows by up to 3 more workspaces here (405 MiB measured); one pool adds ~0.
  assert.ok(after < 0.5 * first, `peak RSS grew ${after.toFixed(1)} MiB after the first step (first: ${first.toFixed(1)} MiB)`);
});
