// The independent readers of scripts/device/ (run on the GPU machine by session.sh): on a
// tiny CPU run, safetensors (check_safetensors.py) reads every checkpoint file as craftgrad's
// reader does and TensorBoard's event reader (check_tensorboard.py) finds metrics.jsonl's
// scalars; both fail on a changed value. Skipped, with the reason, where python3 lacks
// safetensors or tensorboard (PYTHON=... picks another interpreter).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers/temp-dir.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const python = process.env.PYTHON ?? 'python3';
const has = (module) => spawnSync(python, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
const missing = ['safetensors', 'numpy', 'tensorboard.backend.event_processing.event_accumulator'].filter((m) => !has(m));
const skip = missing.length ? `${python} lacks ${missing.join(', ')} (the GPU machine's python3 has them)` : false;
if (skip) console.log(`# device-readers: skipped: ${skip}`);
const reader = has('torch') ? 'torch' : 'numpy';

function tinyRun(t) {
  const dir = tempDir(t, 'craftgrad-readers-');
  const train = spawnSync(process.execPath, [join(root, 'bin', 'craftgrad.js'), 'train', '--device', 'cpu', '--steps', '6', '--save-every', '3',
    '--val-every', '3', '--width', '32', '--tokens', '4', '--blocks', '2', '--head-width', '32', '--batch-size', '4',
    '--out', dir, '--name', 'r', '--quiet'], { encoding: 'utf8' });
  assert.equal(train.status, 0, train.stderr);
  const run = join(dir, 'r');
  const dump = spawnSync(process.execPath, [join(root, 'scripts', 'device', 'dump-checkpoints.mjs'), run], { encoding: 'utf8' });
  assert.equal(dump.status, 0, dump.stderr);
  writeFileSync(join(dir, 'craftgrad.json'), dump.stdout);
  return { run, json: join(dir, 'craftgrad.json') };
}

const py = (script, ...args) => spawnSync(python, [join(root, 'scripts', 'device', script), ...args], { encoding: 'utf8' });

test(`safetensors.${reader} reads every checkpoint file as craftgrad does; a changed byte is found`, { skip }, (t) => {
  const { run, json } = tinyRun(t);
  const ok = py('check_safetensors.py', run, json, '--reader', reader);
  assert.equal(ok.status, 0, ok.stderr);
  const report = JSON.parse(ok.stdout);
  assert.equal(report.files, 6, 'two checkpoints of three files');
  assert.ok(report.tensors > 0 && report.ok);
  const dump = JSON.parse(readFileSync(json, 'utf8'));
  const file = Object.values(dump.files)[0];
  const name = Object.keys(file.tensors)[0];
  file.tensors[name].sha256 = '0'.repeat(64);
  writeFileSync(json, JSON.stringify(dump));
  const bad = py('check_safetensors.py', run, json, '--reader', reader);
  assert.equal(bad.status, 1, bad.stdout);
  assert.match(bad.stderr, new RegExp(`${name.replaceAll('.', '\\.')}: the values differ`));
});

test('TensorBoard\'s event reader finds metrics.jsonl\'s scalars; a changed metric is found', { skip }, (t) => {
  const { run } = tinyRun(t);
  const ok = py('check_tensorboard.py', run);
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(JSON.parse(ok.stdout).values >= 6);
  const metrics = join(run, 'metrics.jsonl');
  const rows = readFileSync(metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  rows[2].action_loss *= 1.001;
  writeFileSync(metrics, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const bad = py('check_tensorboard.py', run);
  assert.equal(bad.status, 1, bad.stdout);
  assert.match(bad.stderr, /action_loss at step 3/);
});
