// Stop signals on a child training process: SIGINT/SIGTERM finish the step, save a
// checkpoint, print the resume command and exit 130/143; a second signal exits at once
// and the previous checkpoint stays valid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkCheckpoint, findLatestCheckpoint } from '../dist/index.js';
import { tempDir } from './helpers/temp-dir.mjs';

const loop = fileURLToPath(new URL('./fixtures/run-loop.mjs', import.meta.url));

function tmp(t) {
  const dir = tempDir(t, 'craftgrad-sig-');
  return dir;
}

/** Spawns the loop; calls onLine for each stdout line; resolves with code, signal and output. */
function runLoop(args, onLine = () => {}) {
  const child = spawn(process.execPath, [loop, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let pending = '';
  child.stdout.on('data', (d) => {
    out += d;
    pending += d;
    const lines = pending.split('\n');
    pending = lines.pop();
    for (const l of lines) onLine(l, child);
  });
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out, err })));
}

for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  test(`${sig}: finishes the step, saves a checkpoint, prints the resume command, exits ${code}`, async (t) => {
    const dir = join(tmp(t), 'run');
    let sent = false;
    const r = await runLoop([dir, '1000', '--save-every', '50', '--step-delay', '20'], (line, child) => {
      if (!sent && line.startsWith('Step 4/')) {
        sent = true;
        child.kill(sig);
      }
    });
    assert.equal(r.code, code, r.err);
    assert.match(r.err, new RegExp(`${sig} received: finishing the current step and saving a checkpoint`));
    const m = /Stopped at step (\d+)\. Resume with: npx craftgrad train --resume (\S+)/.exec(r.err);
    assert.ok(m, r.err);
    assert.equal(m[2], dir);
    const stopped = Number(m[1]);
    assert.ok(stopped >= 4 && stopped < 1000);
    const c = await checkCheckpoint(join(dir, 'checkpoints', `step-${String(stopped).padStart(6, '0')}`));
    assert.deepEqual(c.problems, []);
    const again = await runLoop([dir, String(stopped + 3), '--resume']);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, new RegExp(`DONE step ${stopped + 3} from ${stopped}`));
  });
}

test('a second signal exits at once and leaves the previous checkpoint valid', async (t) => {
  const dir = join(tmp(t), 'run');
  let sent = false;
  const child = spawn(process.execPath, [loop, dir, '1000', '--save-every', '3', '--step-delay', '400', '--size', '20000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout.on('data', (d) => {
    if (!sent && String(d).includes('Step 7/')) {
      sent = true;
      // 100 ms in, step 8 is inside its 400 ms delay: both signals land before it ends.
      setTimeout(() => child.kill('SIGINT'), 100);
    }
  });
  child.stderr.on('data', (d) => {
    err += d;
    if (sent !== 'twice' && err.includes('SIGINT received:')) {
      sent = 'twice';
      child.kill('SIGINT');
    }
  });
  const r = await new Promise((resolve) => child.on('close', (code) => resolve({ code, err })));
  assert.equal(r.code, 130, r.err);
  assert.match(r.err, /SIGINT received again: exiting now; the previous checkpoint is kept/);
  assert.doesNotMatch(r.err, /Stopped at step/);
  const found = await findLatestCheckpoint(join(dir, 'checkpoints'));
  assert.deepEqual(found.skipped.map((s) => s.problems), []);
  assert.equal(found.latest.step, 6, "no checkpoint saved after the second signal; step 6 (save_every 3) is the newest");
  const again = await runLoop([dir, String(found.latest.step + 2), '--resume', '--save-every', '3', '--size', '20000']);
  assert.equal(again.code, 0, again.err);
  assert.match(again.out, new RegExp(`DONE step ${found.latest.step + 2} from ${found.latest.step}`));
});
