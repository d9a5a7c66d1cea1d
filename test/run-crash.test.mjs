// Crash safety: kill -9 the training process at random moments (checkpoint writes
// included) over and over, resuming each time. Every resume must start from a valid
// checkpoint at or after the previous one, and the finished run must equal an
// uninterrupted one bit for bit (metrics rows, wall-clock fields aside, and weights).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTfEvents } from '../dist/formats/index.js';
import { train } from './fixtures/run-loop.mjs';
import { rng } from './helpers/random.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { metricsRows } from './helpers/run-files.mjs';

const loop = fileURLToPath(new URL('./fixtures/run-loop.mjs', import.meta.url));
const STEPS = 150;
const SIZE = 100000;
const BUDGET_MS = 30000;


// Kills after `kill.ms` milliseconds, or (kill.tmpDirs) right after the n-th checkpoint
// temp directory appears, i.e. in the middle of a checkpoint write.
function spawnLoop(dir, resume, kill) {
  const args = [loop, dir, String(STEPS), '--save-every', '3', '--size', String(SIZE), ...(resume ? ['--resume'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  let timer;
  let watcher;
  if (kill?.ms !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), kill.ms);
  if (kill?.tmpDirs !== undefined) {
    let left = kill.tmpDirs;
    watcher = watch(join(dir, 'checkpoints'), (_ev, name) => {
      if (String(name).startsWith('.tmp-') && --left === 0) child.kill('SIGKILL');
    });
  }
  return new Promise((resolve) => child.on('close', (code, signal) => {
    clearTimeout(timer);
    watcher?.close();
    resolve({ code, signal, out, err });
  }));
}

test('kill -9 at random moments, many times: every resume starts from a valid checkpoint and the run completes exactly', async (t) => {
  const root = tempDir(t, 'craftgrad-crash-');
  const refDir = join(root, 'ref');
  const ref = await train({ dir: refDir, steps: STEPS, saveEvery: 3, size: SIZE });

  const dir = join(root, 'run');
  // A seeded generator for the kill times, so a failure can be replayed.
  const seed = Number(process.env.CRAFTGRAD_CRASH_SEED ?? Date.now() % 100000);
  t.diagnostic(`kill-time seed ${seed} (CRAFTGRAD_CRASH_SEED to replay)`);
  const rand = rng(seed);
  const started = Date.now();
  let kills = 0;
  let tmpLeftovers = 0;
  let lastStart = 0;
  let done = false;
  while (!done) {
    const last = Date.now() - started > BUDGET_MS || kills >= 50;
    const kill = last ? undefined : existsSync(join(dir, 'checkpoints')) && rand() < 0.5 ? { tmpDirs: 1 + Math.floor(rand() * 6) } : { ms: rand() < 0.2 ? rand() * 120 : 80 + rand() * 300 } // some during start-up;
    // As a supervisor would: resume once the run exists (config.json), else start it.
    const r = await spawnLoop(dir, existsSync(join(dir, 'config.json')), kill);
    const resumedAt = /resuming from \S+ \(step (\d+)\)/.exec(r.out);
    assert.doesNotMatch(r.out, /is not valid/, 'an atomic write never leaves an invalid checkpoint');
    if (resumedAt) {
      const s = Number(resumedAt[1]);
      assert.ok(s >= lastStart, `resume went backwards: ${s} after ${lastStart}`);
      lastStart = s;
    }
    if (r.signal === 'SIGKILL') {
      kills++;
      if (existsSync(join(dir, 'checkpoints')) && readdirSync(join(dir, 'checkpoints')).some((n) => n.startsWith('.'))) tmpLeftovers++;
      continue;
    }
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`DONE step ${STEPS}`));
    done = true;
  }
  t.diagnostic(`${kills} kills, ${tmpLeftovers} of them during a checkpoint write, in ${Date.now() - started} ms`);
  assert.ok(kills >= 10, `only ${kills} kills`);
  assert.deepEqual(metricsRows(dir), metricsRows(refDir));
  const final = `step-${String(STEPS).padStart(6, '0')}`;
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'anchor.safetensors', 'state.json']) {
    assert.ok(readFileSync(join(dir, 'checkpoints', final, f)).equals(readFileSync(join(refDir, 'checkpoints', final, f))), f);
  }
  assert.equal(ref.step, STEPS);
  // every event file of the crashed run is whole: each record's CRCs check out
  for (const f of readdirSync(dir).filter((n) => n.startsWith('events.out.tfevents.'))) {
    assert.doesNotThrow(() => readTfEvents(join(dir, f)), f);
  }
});
